/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_ike.h - IKE keys for the local charon (qkid_ike.c).
 */
#ifndef QKID_IKE_H
#define QKID_IKE_H

#include <stddef.h>
#include <stdint.h>

struct qkid_peer;
struct qkey;

/* Initiator: a fresh key of `size` bytes and its key_ID. QKI_OK, QKID_AGAIN or an error. */
int qkid_ike_new(struct qkid_peer *p, size_t size, uint8_t *key, char *key_id, const char **msg);
/* Responder: the key the peer's charon took under key_id (a UUID in either case; compared in
 * lower case, the one form qkid keeps, so an upper-case copy of a used key_ID is KEY_USED). */
int qkid_ike_get(struct qkid_peer *p, const char *key_id, size_t size, uint8_t *key,
		 const char **msg);
/* Remember a key the peer's charon may ask for (bounded: the oldest are buried). */
void qkid_ike_peer_add(struct qkid_peer *p, struct qkey *k);

#endif
