/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_peer.h - a peer's lifecycle and periodic work (qkid_peer.c).
 */
#ifndef QKID_PEER_H
#define QKID_PEER_H

#include <stddef.h>
#include <stdint.h>

struct qkid;
struct qkid_peer;
struct qkid_peer_conf;

int qkid_peer_init(struct qkid *d, struct qkid_peer *p, const struct qkid_peer_conf *c,
		   char *err, size_t errlen);
void qkid_peer_destroy(struct qkid_peer *p);
void qkid_peer_tick(struct qkid_peer *p, int64_t now);     /* every TICK_MS */
void qkid_peer_work(struct qkid_peer *p, int64_t now);     /* after events: refill, fetch */

#endif
