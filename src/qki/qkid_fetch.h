/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_fetch.h - a peer's KME requests: scheduling and results (qkid_fetch.c).
 */
#ifndef QKID_FETCH_H
#define QKID_FETCH_H

#include <stdint.h>

struct qkid_peer;

/* Submit the next enc_keys/dec_keys (or a status probe while backing off) if the worker is
 * idle and it is time. */
void qkid_fetch_schedule(struct qkid_peer *p, int64_t now);
/* The worker finished a job: take its keys or count its failure. */
void qkid_peer_kme_done(struct qkid_peer *p);

#endif
