/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipseq_addr.h - "host:port" and "[v6]:port" to a socket address (libipseq), for the daemons'
 * listeners and links.
 */
#ifndef IPSEQ_ADDR_H
#define IPSEQ_ADDR_H

#include <sys/socket.h>

/* Numeric port; passive: for bind (empty host: any). 0, or -1 when it does not resolve. */
int ipseq_resolve(const char *hostport, int passive, struct sockaddr_storage *ss, socklen_t *sl);

#endif
