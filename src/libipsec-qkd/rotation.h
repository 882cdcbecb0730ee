/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rotation.h - per-SA window keys (IPSeQ ESP phase).
 *
 * Window (epoch) e of an SA covers a run of sequence numbers. Its AES key is
 *   K_e = HKDF-SHA256(IKM = quantum key for (SPI, e), salt = CHILD_SA key || salt,
 *                     info = "IPSeQ ESP window key" || SPI (be32) || e (be32), L = key length)
 * and the 8-byte ESP IV carries e (be32) || low 32 bits of the sequence number, so the receiver
 * picks the key by epoch without knowing the sender's rpk schedule. The nonce salt stays the
 * CHILD_SA's. Derived keys live in a ring indexed by epoch; a few EVP contexts are keyed from it
 * on demand (re-keying a context costs ~0.1 us and allocates nothing).
 */
#ifndef IQ_ROTATION_H
#define IQ_ROTATION_H

#include <stdbool.h>
#include <stdint.h>

#include "esp.h"
#include "ipsec_qkd.h"

#define IQ_KEYRING 128          /* power of two, >= back + lookahead + 1 */
#define IQ_CTX_SLOTS 4
#define IQ_LOOKAHEAD_DEFAULT 64
#define IQ_LOOKAHEAD_MAX 64     /* also the most keys one request asks for (qkid's batch) */
#define IQ_BACK_MAX 48
#define IQ_RETRY_MS 100         /* after the provider failed */
#define IQ_RETRY_SOFT_MS 10     /* after a partial answer (keys not ready yet) */

/*
 * The epoch space. The IV carries 32 bits, and an SA never uses an epoch at or above
 * IQ_EPOCH_LIMIT, so epoch + lookahead (+ a request's count) never wraps; qkid refuses the same
 * epochs (QKI_EPOCH_LIMIT). An outbound SA whose epoch reaches IQ_EPOCH_REKEY asks for a rekey
 * (the datapath's expire callback, soft); at the limit it stops switching windows and the
 * exhaustion policy holds until the new SA takes over. Only a long-lived ESN SA with a small
 * rpk gets there (2^32 windows of rpk packets).
 */
#define IQ_EPOCH_LIMIT 0xffff0000u
#define IQ_EPOCH_REKEY (IQ_EPOCH_LIMIT - (1u << 24))

/*
 * Inbound catch-up, when the sender ran beyond the lookahead (its packets were lost for a
 * while). Nothing a packet says moves key state before it authenticates: after IQ_FAR_PEEK
 * packets beyond the lookahead (at most one peek per IQ_PEEK_MS), the datapath peeks at the
 * provider's keys for IQ_CAND_KEYS epochs from the latest such epoch on (a peek releases
 * nothing), keeps them apart as candidates, and moves its window there only when a packet
 * authenticates under one. Epochs more than IQ_JUMP_MAX windows ahead are dropped without a
 * look (counted in epoch_drops): no qkid holds keys that far ahead of its SA's use.
 */
#define IQ_JUMP_MAX (1u << 16)
#define IQ_FAR_PEEK 8
#define IQ_PEEK_MS 100
#define IQ_CAND_KEYS 16

struct iq_wkey {
	uint32_t epoch;
	bool valid;
	uint8_t key[32];
};

struct iq_rot {
	bool enabled, inbound;
	uint32_t spi;
	uint32_t rpk_min, rpk_max, lookahead, back;
	enum iq_exhaust exhaust;

	bool cur_valid;            /* outbound: a window key is in use; inbound: one authenticated */
	uint32_t epoch;            /* current window */
	uint32_t window_pkts;      /* outbound: packets sent in the current window */
	uint32_t window_rpk;       /* outbound: rpk fixed when the window started */
	uint32_t rpk;              /* outbound: target for the next windows */

	uint32_t requested_end;    /* epochs below this were requested (or delivered) */
	uint64_t retry_at_ms;      /* after a provider failure: do not ask again before */
	uint32_t far_epoch, far_count; /* inbound: packets beyond the lookahead since the last
									* authentic packet or peek, and the latest such epoch */
	uint64_t peek_at_ms;       /* inbound: no peek before */
	uint32_t cand_first;       /* inbound: cand[] holds peeked keys of [cand_first, +CAND) */
	struct iq_wkey cand[IQ_CAND_KEYS];

	struct iq_wkey ring[IQ_KEYRING];
	struct iq_aead slot[IQ_CTX_SLOTS];
	uint32_t slot_epoch[IQ_CTX_SLOTS];
	bool slot_keyed[IQ_CTX_SLOTS];

	uint8_t hkdf_salt[36];     /* the CHILD_SA key material */
	size_t hkdf_salt_len;
	size_t key_len;

	uint64_t windows, reuse_packets, stall_drops, nokey_drops;
	uint64_t jumps;            /* inbound: authenticated moves beyond the lookahead */
	uint64_t epoch_drops;      /* inbound: epoch at/above the limit or beyond IQ_JUMP_MAX */
	uint64_t peeks;            /* inbound: candidate key look-ups (catch-up) */
	uint64_t keys_delivered, key_requests, key_failures;
	uint64_t keys_stored;      /* delivered keys kept (new epochs in the keep range) */
	bool rekey_due;            /* outbound: epoch reached IQ_EPOCH_REKEY */
};

/** Set up rotation state (allocates the EVP contexts). child_key = AES key || salt. */
int iq_rot_init(struct iq_rot *r, const struct iq_rotation *cfg, uint32_t spi, bool inbound,
				const uint8_t *child_key, size_t child_key_len, uint32_t replay_window);
void iq_rot_free(struct iq_rot *r);

/** HKDF-SHA256 derivation of one window key (sets up and frees its HMAC contexts). */
int iq_rot_derive(const uint8_t *salt, size_t salt_len, uint32_t spi, uint32_t epoch,
				  const uint8_t *qkey, size_t qkey_len, uint8_t *out, size_t out_len);

/** A quantum key arrived for an epoch: derive and keep it if the epoch is still useful.
 *  Returns 1 if stored, 0 if not needed, negative on error. The qkey is not wiped here. */
int iq_rot_deliver(struct iq_rot *r, uint32_t epoch, const uint8_t *qkey, size_t qkey_len);

/** Keep an already derived window key (r->key_len bytes) if the epoch is still useful. */
int iq_rot_store(struct iq_rot *r, uint32_t epoch, const uint8_t *key);
/** A peeked window key (see iq_rot_peek): kept as a candidate if the epoch is one. */
int iq_rot_store_peeked(struct iq_rot *r, uint32_t epoch, const uint8_t *key);

/**
 * The same derivation for many keys (the key helper thread): HMAC-SHA256 fetched once,
 * iq_hkdf_salt once per SA (the CHILD_SA key material), then iq_hkdf_window_key per epoch
 * (out_len <= 32). iq_hkdf_forget overwrites the salt's and the last PRK's HMAC states when a
 * batch is done; iq_hkdf_free cleanses and frees.
 */
struct iq_hkdf {
	EVP_MAC_CTX *extract;      /* HMAC keyed with the salt: HKDF-Extract */
	EVP_MAC_CTX *expand;       /* HMAC keyed with each PRK: HKDF-Expand */
};
int iq_hkdf_init(struct iq_hkdf *h);
int iq_hkdf_salt(struct iq_hkdf *h, const uint8_t *salt, size_t salt_len);
int iq_hkdf_window_key(struct iq_hkdf *h, uint32_t spi, uint32_t epoch, const uint8_t *qkey,
					   size_t qkey_len, uint8_t *out, size_t out_len);
void iq_hkdf_forget(struct iq_hkdf *h);
void iq_hkdf_free(struct iq_hkdf *h);

/**
 * The provider could not deliver epochs [first, first + count): ask again later. soft: it
 * delivered the keys before first but had no more ready (not counted as a failure).
 */
void iq_rot_failed(struct iq_rot *r, uint32_t first, uint32_t count, uint64_t now_ms,
				   bool soft);

/**
 * Outbound: the context to seal the next packet with, switching windows as rpk says and
 * applying the exhaustion policy. NULL means drop the packet (counted in stall_drops).
 */
struct iq_aead *iq_rot_tx(struct iq_rot *r, uint32_t *epoch);

/**
 * Inbound: the context for a packet of epoch e, or NULL (unknown, expired or out-of-bounds
 * epoch; counted). Changes no key state: the packet is not authentic yet.
 */
struct iq_aead *iq_rot_rx(struct iq_rot *r, uint32_t epoch);
/** Inbound: a packet of epoch e authenticated; may advance the current window (also to a
 *  candidate epoch beyond the lookahead). */
void iq_rot_rx_ok(struct iq_rot *r, uint32_t epoch);

/**
 * Which epochs to request now, if any (returns count, 0 = nothing); marks them requested.
 * Requests always start at the current window (the lowest epoch still needed from the
 * provider; older windows an inbound SA keeps locally) and cover the lookahead: a provider may
 * release everything below `first` (qkid does), and must never see a request for epochs beyond
 * what it may have assigned while earlier ones are still outstanding (qkid takes that as a
 * jump and kills the epochs in between on both gateways). Keys already held are delivered
 * again and ignored.
 */
uint32_t iq_rot_want(struct iq_rot *r, uint64_t now_ms, uint32_t *first);

/**
 * Inbound: which epochs to peek at now for catching up (returns count, 0 = nothing). A peek
 * must not release or move anything at the provider; its keys go to iq_rot_store_peeked.
 * Replaces (wipes) the previous candidates.
 */
uint32_t iq_rot_peek(struct iq_rot *r, uint64_t now_ms, uint32_t *first);

/** Number of window keys ready ahead of the current window (for stats and rpk adaptation). */
uint32_t iq_rot_keys_ready(const struct iq_rot *r);
/** Number of consecutive window keys held from epoch `from` on. */
uint32_t iq_rot_held(const struct iq_rot *r, uint32_t from);

#endif
