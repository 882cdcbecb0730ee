/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_outbox.h - peer messages (ASSIGN, ACK, NEED, STALE) queued while an event is handled and
 * encoded by qkid_peer_flush() after it (qkid_outbox.c).
 */
#ifndef QKID_OUTBOX_H
#define QKID_OUTBOX_H

#include <stdint.h>

/* Parked requests retry often; a slave repeats a NEED (or an IKE stash reminder) at most this
 * often. */
#define QKID_NEED_INTERVAL_MS 200

struct qkid_peer;
struct qkid_sa;
struct qkey;

/* master: announce k's assignment */
void qkid_out_assign(struct qkid_peer *p, const struct qkey *k);
/* slave: the key_ID was fetched (status QKP_ACK_OK) or could not be */
void qkid_out_ack(struct qkid_peer *p, const char *id, uint8_t status);
/* the SA's epochs below its floor are dead */
void qkid_out_stale(struct qkid_peer *p, const struct qkid_sa *sa);
/* slave: the SA needs count keys from epoch on (count 0: release report) */
void qkid_out_need(struct qkid_peer *p, const struct qkid_sa *sa, uint32_t epoch, uint32_t count);
/* Encode and send everything queued; dropped if the link is down. */
void qkid_peer_flush(struct qkid_peer *p);

#endif
