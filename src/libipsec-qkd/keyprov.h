/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyprov.h - runs a (blocking) struct iq_key_provider off the packet path.
 *
 * The loop posts requests into a single-producer/single-consumer ring; a helper thread calls
 * the provider, derives the window keys (HKDF, see rotation.h) and posts them (one answer per
 * window) into a second SPSC ring, then signals an eventfd the loop polls, once per batch. No
 * lock is shared with the loop, and the loop never runs the KDF.
 */
#ifndef IQ_KEYPROV_H
#define IQ_KEYPROV_H

#include <stdbool.h>
#include <stdint.h>

#include "ipsec_qkd.h"

/* KP_PEEK: like KP_GET through the provider's peek_keys (see rotation.h, catching up); only
 * keys come back, no failure answers */
enum iq_kp_type { KP_OPEN, KP_GET, KP_REPORT, KP_CLOSE, KP_PEEK };

struct iq_kp_req {
	enum iq_kp_type type;
	uint64_t uid;
	struct iq_key_sa sa;          /* sa.peer points into peer[] */
	char peer[64];
	uint32_t first, count;
	/* KP_GET, KP_PEEK: the helper derives window keys itself (HKDF off the loop thread) */
	uint8_t salt[36];             /* CHILD_SA key material; wiped after use */
	uint8_t salt_len, key_len;
	uint32_t have_end;            /* the loop holds keys for [first, have_end): skip those */
};

struct iq_kp_done {
	enum iq_kp_type type;
	uint64_t uid;
	int status;                   /* 0 = key/advice delivered, else negative errno */
	uint32_t epoch, count;        /* KP_GET/PEEK: one key for epoch; failure: [epoch, +count) */
	struct iq_key_answer ans;     /* KP_REPORT */
	bool partial;                 /* KP_GET failure: keys before epoch came, the rest not ready */
	uint8_t key_len;
	uint8_t key[IQ_QKEY_MAX];     /* KP_GET/PEEK: the derived window key (key_len bytes) */
	char msg[96];
};

struct iq_keyprov;

int iq_kp_create(struct iq_key_provider *p, struct iq_keyprov **kp);
/** eventfd that is readable when answers wait */
int iq_kp_fd(struct iq_keyprov *kp);
/** false when the request ring is full (try again later) */
bool iq_kp_post(struct iq_keyprov *kp, const struct iq_kp_req *req);
/** Take one answer; the caller wipes it after use. false when none is waiting. */
bool iq_kp_take(struct iq_keyprov *kp, struct iq_kp_done *done);
/** Clear the eventfd (call before draining with iq_kp_take). */
void iq_kp_ack(struct iq_keyprov *kp);
void iq_kp_destroy(struct iq_keyprov *kp);

#endif
