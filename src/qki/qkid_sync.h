/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_sync.h - the peer protocol past the link (qkid_sync.c): the master's assignments, the
 * ASSIGN/ACK/NEED/STALE messages of both roles, and what a new session or a resync does.
 */
#ifndef QKID_SYNC_H
#define QKID_SYNC_H

#include <stddef.h>
#include <stdint.h>

struct qkid_peer;
struct qkp_hdr;
struct qki_attr;
struct qki_msg;

/* An authenticated message from the peer qkid (header checked, payload h->length bytes). */
void qkid_peer_on_message(struct qkid_peer *p, const struct qkp_hdr *h, const uint8_t *payload);
/* The link is up. ready/payload: the slave's READY (master side), NULL on the slave side. */
void qkid_peer_on_up(struct qkid_peer *p, int peer_restarted, const struct qki_attr *ready,
		     const uint8_t *payload, size_t len);
/* slave: our view for READY (SAs and their next epochs, IKE stash level) */
void qkid_peer_fill_ready(struct qkid_peer *p, struct qki_msg *m);
/* Drop every key of this peer and start a new session (operator request). */
void qkid_peer_resync(struct qkid_peer *p);
/* After events: assignments (master) or stash reminders (slave). */
void qkid_sync_work(struct qkid_peer *p, int64_t now);

#endif
