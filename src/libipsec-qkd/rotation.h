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
#define IQ_FAR_JUMP 32          /* far-ahead packets without an authentic one: follow them */
#define IQ_RETRY_MS 100         /* after the provider failed */
#define IQ_RETRY_SOFT_MS 10     /* after a partial answer (keys not ready yet) */

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
									* authentic packet, and the latest such epoch */

	struct iq_wkey ring[IQ_KEYRING];
	struct iq_aead slot[IQ_CTX_SLOTS];
	uint32_t slot_epoch[IQ_CTX_SLOTS];
	bool slot_keyed[IQ_CTX_SLOTS];

	EVP_KDF_CTX *kdf;          /* HKDF-SHA256, fetched once */
	uint8_t hkdf_salt[36];     /* the CHILD_SA key material */
	size_t hkdf_salt_len;
	size_t key_len;

	uint64_t windows, reuse_packets, stall_drops, nokey_drops, jumps;
	uint64_t keys_delivered, key_requests, key_failures;
};

/** Set up rotation state (allocates the EVP contexts). child_key = AES key || salt. */
int iq_rot_init(struct iq_rot *r, const struct iq_rotation *cfg, uint32_t spi, bool inbound,
				const uint8_t *child_key, size_t child_key_len, uint32_t replay_window);
void iq_rot_free(struct iq_rot *r);

/** HKDF-SHA256 derivation of a window key (exposed for tests). */
int iq_rot_derive(const uint8_t *salt, size_t salt_len, uint32_t spi, uint32_t epoch,
				  const uint8_t *qkey, size_t qkey_len, uint8_t *out, size_t out_len);

/** A quantum key arrived for an epoch: derive and keep it if the epoch is still useful.
 *  Returns 1 if stored, 0 if not needed, negative on error. The qkey is not wiped here. */
int iq_rot_deliver(struct iq_rot *r, uint32_t epoch, const uint8_t *qkey, size_t qkey_len);

/** Keep an already derived window key (r->key_len bytes) if the epoch is still useful. */
int iq_rot_store(struct iq_rot *r, uint32_t epoch, const uint8_t *key);

/** HKDF context for iq_rot_derive_with (fetched once; for the key helper thread). */
EVP_KDF_CTX *iq_rot_kdf_new(void);
int iq_rot_derive_with(EVP_KDF_CTX *kdf, const uint8_t *salt, size_t salt_len, uint32_t spi,
					   uint32_t epoch, const uint8_t *qkey, size_t qkey_len, uint8_t *out,
					   size_t out_len);

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

/** Inbound: the context for a packet of epoch e, or NULL (unknown/expired epoch). */
struct iq_aead *iq_rot_rx(struct iq_rot *r, uint32_t epoch);
/** Inbound: a packet of epoch e authenticated; may advance the current window. */
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

/** Number of window keys ready ahead of the current window (for stats and rpk adaptation). */
uint32_t iq_rot_keys_ready(const struct iq_rot *r);
/** Number of consecutive window keys held from epoch `from` on. */
uint32_t iq_rot_held(const struct iq_rot *r, uint32_t from);

#endif
