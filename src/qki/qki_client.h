/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qki_client.h - client library for qkid's local API (unix socket, protocol version 1).
 *
 * Link: noinst libtool convenience library src/qki/libqkiclient.la (libc only), e.g. in a
 * Makefile.am:   foo_la_CPPFLAGS = -I$(top_srcdir)/src/qki
 *                foo_la_LIBADD   = $(top_builddir)/src/qki/libqkiclient.la
 * It has no globals and no threads. One struct qki_client is one connection; use it from one
 * thread at a time (give each thread its own, or lock around calls). Every call blocks for at
 * most the client's timeout (set at connect, change with qki_client_set_timeout).
 *
 * Every call returns QKI_OK (0) or an enum qki_error_code (qki_proto.h) and, if err is not NULL,
 * fills err->code and a human readable err->message (the daemon's text where it sent one).
 * After QKI_ERR_IO or QKI_ERR_TIMEOUT the connection is closed and the next call connects again
 * on its own (or call qki_client_reconnect()). SA registrations survive a reconnect for
 * sa_orphan_timeout seconds (qkid.conf); re-register after a reconnect, it is idempotent.
 *
 * Keys are written into caller buffers; the caller wipes them (qki_wipe) when done. The library
 * wipes its own message buffers after every call.
 */
#ifndef QKI_CLIENT_H
#define QKI_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "qki_proto.h"

#ifdef __cplusplus
extern "C" {
#endif


struct qki_client;

struct qki_error {
	int code;                       /* enum qki_error_code */
	char message[QKI_TEXT_MAX];
};

/* --- connection ------------------------------------------------------------------------------ */

/* Connect to qkid at path (NULL: QKI_DEFAULT_SOCKET). timeout_ms bounds the connect and is the
 * default for every later call (<= 0: 5000). Returns NULL and fills err on failure. */
struct qki_client *qki_client_connect(const char *path, int timeout_ms, struct qki_error *err);
/* Close the connection and free. NULL is fine. */
void qki_client_close(struct qki_client *c);
/* Drop the current connection (if any) and connect again to the same path. */
int qki_client_reconnect(struct qki_client *c, struct qki_error *err);
void qki_client_set_timeout(struct qki_client *c, int timeout_ms);
/* Daemon's version string and protocol version (a cheap liveness probe). */
int qki_version(struct qki_client *c, char *version, size_t version_size, struct qki_error *err);

/* --- IKE: the charon plugin ------------------------------------------------------------------ */

/* A fresh key shared with peer (a peer name of qkid.conf), for an IKE initiator. qkid makes
 * sure the peer's qkid will give the same key for key_id, and never hands it out again here.
 * size: key length in bytes (1..the peer's key_size). key: size bytes. key_id: NUL terminated.
 * Errors: NO_PEER, INVALID, NO_KEY (pool empty and nothing arrived within the timeout),
 * KME, PEER_DOWN (slave side: the master qkid must allocate), TIMEOUT. */
int qki_get_new_key(struct qki_client *c, const char *peer, size_t size, uint8_t *key,
		    char key_id[QKI_KEY_ID_MAX], struct qki_error *err);

/* The key the peer's qkid handed out under key_id (IKE responder). Each key_id is answered once:
 * a second request gets KEY_USED (a replayed IKE message cannot draw the key again).
 * Errors: NO_PEER, INVALID, UNKNOWN_KEY (neither qkid nor the KME know it), KEY_USED, KME. */
int qki_get_key_by_id(struct qki_client *c, const char *peer, const char *key_id, size_t size,
		      uint8_t *key, struct qki_error *err);

/* --- ESP datapath ---------------------------------------------------------------------------- */

/* Register an SA: spi as on the wire, dir from this gateway's view (QKI_DIR_OUT: we encrypt).
 * The same SA is registered on the peer gateway with the opposite dir; qkid matches them by
 * (spi, which side receives). qkid then keeps a fair-share buffer of epoch keys for it.
 * *capacity (if not NULL) receives the SA's buffer size in keys. Registering again from a new
 * connection (after a datapath restart) takes the SA over; it is not an error. */
int qki_sa_register(struct qki_client *c, const char *peer, uint32_t spi, enum qki_dir dir,
		    uint32_t *capacity, struct qki_error *err);

struct qki_epoch_key {
	uint32_t epoch;
	uint32_t size;                  /* bytes */
	char key_id[QKI_KEY_ID_MAX];
	uint8_t key[QKI_KEY_MAX];
};

/* Keys for epochs first_epoch, first_epoch+1, ... (at most count, at most QKI_EPOCH_BATCH_MAX),
 * contiguous from first_epoch; *n_keys says how many arrived. The same (SA, epoch) always gives
 * the same key. Asking for first_epoch releases (wipes in qkid) every epoch below it, so pass the
 * lowest epoch you still need. wait_ms: how long qkid may wait for the first key (0: answer at
 * once, for prefetch). *rpk (if not NULL) receives the current rpk advice.
 * Errors: NO_SA, NO_KEY (none of them available within wait_ms), STALE (first_epoch was released
 * or lost in a resync; *next_epoch then holds the lowest epoch qkid can serve), KME, PEER_DOWN. */
int qki_sa_get_epoch_keys(struct qki_client *c, uint32_t spi, enum qki_dir dir,
			  uint32_t first_epoch, unsigned count, unsigned wait_ms,
			  struct qki_epoch_key *keys, unsigned *n_keys, uint32_t *rpk,
			  uint32_t *next_epoch, struct qki_error *err);

/* The keys qkid holds ready for epochs first_epoch.. right now (at most count), without
 * releasing anything below first_epoch, waiting, or asking the peer qkid for them: a look that
 * changes no key state (for a receiver that checks an unauthenticated epoch, libipsec-qkd's
 * catch-up). Errors: NO_SA, NO_KEY (none held), STALE, INVALID (epoch beyond QKI_EPOCH_LIMIT). */
int qki_sa_peek_epoch_keys(struct qki_client *c, uint32_t spi, enum qki_dir dir,
			   uint32_t first_epoch, unsigned count, struct qki_epoch_key *keys,
			   unsigned *n_keys, struct qki_error *err);

/* What a datapath reports about an SA: cumulative counters since registration and its key
 * economy now (0 where it has none: an inbound SA has no rpk). */
struct qki_sa_counters {
	uint64_t packets, bytes;
	uint32_t rpk;                   /* packets per window in use */
	uint32_t level, capacity;       /* window keys held ahead; the most it holds */
	uint64_t windows, beyond_rpk, stall_drops, episodes;
};

/* What qkid answers: its rpk advice and the SA's max-min fair share of the key supply. */
struct qki_sa_feedback {
	uint32_t rpk;
	uint64_t share_milli;           /* keys/s x 1000 */
	uint32_t capacity;              /* keys qkid holds for the SA at most, handed out ones
					 * included until released (0: qkid did not say) */
};

/* Report an SA's counters (feeds the SA's packet rate, its fair share and the per-SA
 * statistics of qkictl). *fb (if not NULL) receives qkid's answer (zeros on failure). */
int qki_sa_report(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		  const struct qki_sa_counters *cnt, struct qki_sa_feedback *fb,
		  struct qki_error *err);

/* Forget the SA; its buffered keys are wiped. */
int qki_sa_unregister(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		      struct qki_error *err);

/* --- an SA's rpk and the inputs of the datapath's rpk loop ------------------------------------ */

struct qki_rpk_advice {
	uint32_t rpk;                   /* packets per key the datapath reported (0: none yet) */
	uint32_t rpk_min, rpk_max;      /* qkid.conf's bounds */
	uint32_t level, capacity;       /* the SA's buffer at qkid */
	uint64_t pkt_rate_milli;        /* SA packets/s x 1000 */
	uint64_t key_rate_milli;        /* this SA's fair share of the key supply, keys/s x 1000 */
	uint32_t dp_level, dp_capacity; /* window keys the datapath holds ahead, its lookahead */
	uint64_t beyond_rpk, episodes;  /* packets beyond rpk, key shortages */
};

int qki_rpk_advice(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		   struct qki_rpk_advice *out, struct qki_error *err);

/* --- operator actions (qkictl) --------------------------------------------------------------- */

/* Wipe every buffered key of the SA (it refills with fresh keys). *wiped: how many. */
int qki_sa_flush(struct qki_client *c, uint32_t spi, enum qki_dir dir, unsigned *wiped,
		 struct qki_error *err);
/* Drop the peer session and every key assigned but not yet handed out; resync afresh. */
int qki_peer_resync(struct qki_client *c, const char *peer, struct qki_error *err);

struct qki_peer_status {
	char name[QKI_NAME_MAX];
	char local_sae[QKI_TEXT_MAX];
	char peer_sae[QKI_TEXT_MAX];
	uint8_t role;                   /* enum qki_role */
	uint8_t link;                   /* enum qki_link_state */
	uint8_t kme;                    /* enum qki_kme_state */
	uint32_t key_size;              /* bytes */
	uint32_t pool_level, pool_capacity; /* unassigned keys (master) / fetched not yet used */
	uint32_t ike_level;             /* IKE keys ready without a round trip */
	uint32_t backoff_ms;
	uint64_t keys_in, keys_out;
	uint64_t rate_in_milli, rate_out_milli;
	uint64_t errors, drops, resyncs;
	char last_error[QKI_TEXT_MAX];
};

struct qki_sa_status {
	uint32_t spi;
	uint8_t dir;
	char peer[QKI_NAME_MAX];
	uint32_t level, capacity;
	uint32_t next_epoch;
	uint32_t rpk;
	uint64_t keys_out, refills, starved;
	uint64_t packets, bytes;
	uint64_t pkt_rate_milli, drain_rate_milli;
	/* the key economy as the SA's datapath last reported it, and the SA's fair share */
	uint64_t share_milli;
	uint32_t dp_rpk, dp_level, dp_capacity;
	uint64_t windows, beyond_rpk, stall_drops, episodes;
};

struct qki_status {
	char version[QKI_TEXT_MAX];
	uint64_t uptime_s;
	uint32_t rpk_min, rpk_max;
	uint32_t keys_held, keys_slots;  /* qkid's key memory: keys in it, its size */
	size_t n_peers;
	struct qki_peer_status *peers;
	size_t n_sas;
	struct qki_sa_status *sas;
};

/* Everything qkictl shows. peer: only that peer (and its SAs), NULL for all. Free with
 * qki_status_free. */
int qki_status(struct qki_client *c, const char *peer, struct qki_status **out,
	       struct qki_error *err);
void qki_status_free(struct qki_status *st);

#ifdef __cplusplus
}
#endif
#endif
