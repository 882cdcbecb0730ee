/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid.h - the QKI middleware daemon: shared types of its parts.
 *
 *   qkid.c          main, event loop, signals
 *   qkid_conf.c     qkid.conf
 *   qkid_keys.c     locked key memory, key_ID map, key lists
 *   qkid_kme.c      KME worker thread (ETSI 014 client)
 *   qkid_link.c     TCP link to the peer qkid: handshake, framing, authentication
 *   qkid_peer.c     a peer's lifecycle and periodic work
 *   qkid_sync.c     the peer protocol: assignments, ASSIGN/ACK/NEED/STALE, sessions, resync
 *   qkid_outbox.c   peer messages queued while an event is handled, encoded after it
 *   qkid_sa.c       per-SA key buffers: epochs, cursor, floor; register, keys, flush
 *   qkid_ike.c      IKE keys for the local charon (initiator and responder)
 *   qkid_fetch.c    what to ask the KME for next, and what becomes of its answers
 *   qkid_local.c    the local API server (unix socket)
 *   qkid_fair.c     fair-share refill policy;    qkid_replay.c
 *
 * Key state. Every key_ID qkid learns of lives in its peer's map as a struct qkey, in exactly one
 * list: the master's pool (fetched, unassigned), an SA's epoch list, the IKE lists, the slave's
 * fetch queue, or the tombstones (handed out or dropped: bytes wiped, key_ID remembered so it can
 * never be used again).
 */
#ifndef QKID_H
#define QKID_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "qki_proto.h"
#include "qkid_conf.h"
#include "qkid_fair.h"
#include "qkid_kme.h"
#include "qkid_peerproto.h"
#include "qkid_replay.h"
#include "qkid_supply.h"

#define QKID_MAP_BUCKETS 4096
/* master at the QKD link's rate (qkid_fetch.c): fetches are paced by the time the link takes
 * to make a batch, within these bounds, while a 503 came in the last QKID_SHORT_HOLD_MS */
#define QKID_PACE_MIN_MS   5
#define QKID_PACE_MAX_MS   1000
#define QKID_SHORT_HOLD_MS 2000
#define QKID_SHORT_LOG_QUIET_MS 60000   /* logged again only after a minute without one */
#define QKID_TOMBS_MAX   16384

struct qkid;
struct qkid_peer;
struct qkid_conn;

/* ---- keys (qkid_keys.c) ---------------------------------------------------------------------- */

struct qkid_arena {
	uint8_t *base;
	size_t slot, n_slots, n_free;
	uint32_t *free_list;
	int locked;
};

int qkid_arena_init(struct qkid_arena *a, size_t n_slots, char *err, size_t errlen);
uint8_t *qkid_arena_alloc(struct qkid_arena *a);
void qkid_arena_free(struct qkid_arena *a, uint8_t *p);   /* wipes */
void qkid_arena_destroy(struct qkid_arena *a);

enum qkey_state {
	QK_POOL = 1,     /* master: fetched with enc_keys, not assigned */
	QK_PENDING,      /* master: assigned and announced, slave has not acknowledged */
	QK_ANNOUNCED,    /* slave: assignment known, key not fetched yet */
	QK_FETCHING,     /* slave: in a dec_keys request now */
	QK_READY,        /* bytes present, usable for its assignment */
	QK_USED,         /* tombstone */
};

struct qkey_list {
	struct qkey *head, *tail;
	size_t n;
};

struct qkey {
	struct qkey *hnext;
	struct qkey *prev, *next;
	struct qkey_list *list;
	char id[QKI_KEY_ID_MAX];
	uint8_t *bytes;         /* arena slot, NULL if not fetched or wiped */
	uint16_t len;
	uint8_t use;            /* enum qkp_use, 0 = unassigned */
	uint8_t state;          /* enum qkey_state */
	uint8_t unacked;        /* master: slave has not acknowledged the assignment */
	uint8_t on_demand;      /* slave: fetched for a KEY_GET before its announcement */
	uint8_t rx;
	uint32_t spi, epoch;
	uint8_t fetch_tries;
	uint8_t fetch_single;   /* slave: a batch with it failed: fetch it alone */
	uint8_t failed;         /* tombstone of a key the KME did not know */
	uint8_t handed;         /* given to a local user at least once */
	uint8_t doomed;         /* slave: drop as soon as fetched (assignment void) */
	int64_t t;              /* ms, when it entered its state */
};

void qkey_list_append(struct qkey_list *l, struct qkey *k);
void qkey_list_insert_epoch(struct qkey_list *l, struct qkey *k);  /* sorted by epoch */
void qkey_list_remove(struct qkey *k);

struct qkey *qkid_key_find(struct qkid_peer *p, const char *id);
struct qkey *qkid_key_new(struct qkid_peer *p, const char *id);   /* NULL if it exists */
/* Copy bytes into locked memory; -1 when the arena is full. */
int qkid_key_set_bytes(struct qkid *d, struct qkey *k, const uint8_t *b, size_t len);
void qkid_key_wipe(struct qkid *d, struct qkey *k);
/* Wipe, and keep only the key_ID as a tombstone. */
void qkid_key_bury(struct qkid_peer *p, struct qkey *k);
/* Remove from the map entirely (tombstone eviction, shutdown). */
void qkid_key_free(struct qkid_peer *p, struct qkey *k);
/* master: the oldest unassigned key of the pool, taken off it; NULL if empty */
struct qkey *qkid_pool_take(struct qkid_peer *p);

/* ---- SAs -------------------------------------------------------------------------------------- */

struct qkid_sa {
	struct qkid_sa *next;
	struct qkid_peer *peer;
	uint32_t spi;
	uint8_t dir;            /* local view, enum qki_dir */
	uint8_t rx;             /* wire view: which role receives, enum qki_role */
	uint8_t registered;     /* by a local datapath (else known only from the peer) */
	struct qkid_conn *owner;
	int64_t idle_since;     /* ms: unregistered since / last use by the peer (implicit SA) */
	struct qkey_list keys;  /* by epoch */
	uint32_t release;       /* lowest epoch the local datapath still needs */
	uint32_t remote;        /* master: the slave's release cursor */
	uint32_t next_assign;   /* master: next epoch to assign */
	uint32_t floor;         /* missing epochs below floor will never come */
	struct qkid_fair fair;
	uint64_t keys_out, refills, starved, consumed;
	uint64_t packets, bytes, last_packets, last_consumed;
	double pkt_rate, drain_rate;
	int64_t t_rate;
	double share;           /* keys/s: the SA's max-min fair share of the peer's supply */
	/* the key economy as the SA's datapath last reported it (SA_REPORT) */
	uint32_t dp_rpk, dp_level, dp_capacity;
	uint64_t windows, beyond_rpk, stall_drops, episodes;
	uint32_t need_epoch;    /* slave: last NEED sent */
	int64_t need_t;
	uint32_t last_cursor;   /* for the drain rate */
};

/* ---- peer link (qkid_link.c) ---------------------------------------------------------------- */

enum qkid_link_state {
	QL_DOWN = 0,
	QL_CONNECTING,          /* slave: TCP connect in progress */
	QL_HELLO,               /* handshake in progress */
	QL_UP,
};

struct qkid_link {
	int fd;
	int state;
	struct qkid_peer *peer; /* NULL while an accepted connection is unidentified */
	uint8_t *rx;            /* QKP_FRAME_MAX */
	size_t rx_len;
	uint8_t *tx;
	size_t tx_len, tx_off, tx_cap;
	uint8_t nonce_local[QKP_NONCE_LEN], nonce_peer[QKP_NONCE_LEN];
	uint8_t boot_peer[QKP_BOOT_LEN];
	uint8_t k_tx[QKP_KEY_LEN], k_rx[QKP_KEY_LEN];
	uint64_t seq_tx;
	struct qkid_replay replay;
	unsigned auth_failures;     /* consecutive */
	int hello_sent;             /* slave: HELLO1 sent (the master's challenge arrived) */
	int64_t t_start, t_rx, t_tx;
	struct sockaddr_storage src;    /* master: where an accepted connection comes from */
	char addr[64];
};

/* ---- peer ------------------------------------------------------------------------------------ */

struct qkp_entry {
	char id[QKI_KEY_ID_MAX];
	uint8_t use, rx, status;
	uint32_t spi, epoch, count;
};

struct qkp_outbox {
	struct qkp_entry *e;
	size_t n, cap;
};

struct qkid_peer {
	struct qkid *d;
	const struct qkid_peer_conf *conf;
	int role;
	unsigned key_len;       /* bytes */

	uint8_t boot[QKP_BOOT_LEN];     /* our incarnation towards this peer (new on resync) */
	struct qkid_link *link;         /* established or being established by us */
	struct qkid_link *candidate;    /* master: accepted, HELLO2 sent, waiting for READY */
	struct sockaddr_storage allowed_src; /* master: the configured peer host (family 0: any) */
	int64_t t_retry;
	unsigned retry_ms;
	uint8_t peer_boot[QKP_BOOT_LEN];
	int peer_boot_known;

	struct qkid_kme *kme;
	int kme_state;          /* enum qki_kme_state */
	int64_t kme_next;
	unsigned backoff_ms, batch;
	uint64_t kme_errors;
	unsigned kme_fail_streak;       /* consecutive failed KME calls */
	int64_t short_t;                /* master: the last enc_keys answered "not enough key"
					 * (503) (qkid_fetch.c) */
	char last_error[QKI_TEXT_MAX];

	struct qkey *map[QKID_MAP_BUCKETS];
	struct qkey_list pool, ike_own, ike_peer, fetchq, tombs;
	struct qkid_sa *sas;
	size_t n_sas;

	uint32_t peer_ike_level;        /* master: slave's last reported stash level */
	uint32_t ike_asked;             /* slave: stash keys asked for, not arrived */
	int64_t ike_need_t;

	struct qkp_outbox out_assign, out_ack, out_need, out_stale;
	int need_ike;           /* slave: send IKE_LEVEL with the next NEED */

	uint64_t keys_in, keys_out, drops, resyncs, drops_ike;
	uint64_t last_in, last_out;
	double rate_in, rate_out;
	int64_t t_rate;
	int supply_known;       /* rate_in learnt once: a supply-limited second or a measurement */
	int supply_limited;     /* since the last rate sample, the KME could not give what qkid
				 * asked for (or, slave, an SA was short): the intake is the supply */
	struct qkid_supply supply;      /* master: the supply measured at the KME (status) */
};

/* ---- local connections (qkid_local.c) ------------------------------------------------------- */

/* What a local caller may do, from its SO_PEERCRED credentials at connect time. */
enum qkid_access {
	QKID_ACCESS_NONE = 0,   /* VERSION only */
	QKID_ACCESS_STATUS,     /* also STATUS and RPK_ADVICE: no key, no change */
	QKID_ACCESS_KEYS,       /* everything: root, qkid's own user, members of key_group */
};

struct qkid_conn {
	struct qkid_conn *next;
	int fd;
	uid_t uid;              /* of the process that connected */
	uint8_t access;         /* enum qkid_access */
	uint8_t refused;        /* a request was refused and logged (once per connection) */
	uint8_t *rx;            /* QKI_HDR_LEN + QKI_MSG_MAX */
	size_t rx_len;
	uint8_t *tx;
	size_t tx_len, tx_off, tx_cap;
	int parked;             /* the request in rx waits for keys */
	int64_t park_deadline;
	int64_t t_partial;      /* when a partial message started, 0 none */
	int closing;
};

/* ---- daemon ---------------------------------------------------------------------------------- */

struct qkid {
	struct qkid_conf *conf;
	struct qkid_arena arena;
	struct qkid_peer *peers;
	size_t n_peers;
	int64_t t_start;
	int notify_rd, notify_wr;
	int local_fd;
	gid_t key_gid, status_gid;      /* (gid_t)-1: none */
	struct qkid_conn *conns;
	size_t n_conns;
	int listen_fd;
	struct qkid_link **unbound;     /* accepted peer connections before HELLO1 */
	size_t n_unbound;
	uint64_t refused;               /* peer port connections refused, not yet logged */
	int64_t t_refused_log;
	uint64_t generation;    /* bumped when keys arrive: parked requests retry */
	uint8_t scratch[QKP_FRAME_MAX];         /* peer messages being built */
	uint8_t reply[QKI_HDR_LEN + QKI_MSG_MAX]; /* local replies being built */
};

int64_t qkid_now_ms(void);
/* Exponentially weighted moving average of per-second rates, weight 1/2. */
static inline double qkid_ewma(double old, double sample)
{
	return old == 0 ? sample : 0.5 * old + 0.5 * sample;
}
void qkid_random(void *buf, size_t n);
struct qkid_peer *qkid_peer_by_name(struct qkid *d, const char *name);

/* qkid_link.c */
int qkid_link_listen(struct qkid *d, char *err, size_t errlen);
void qkid_link_accept(struct qkid *d);
void qkid_link_tick(struct qkid_peer *p, int64_t now);
void qkid_link_sweep(struct qkid *d, int64_t now);
void qkid_link_io(struct qkid *d, struct qkid_link *l, short revents);
void qkid_link_free(struct qkid_link *l);
void qkid_link_drop(struct qkid_peer *p, const char *why);
/* Build a message for the peer in d->scratch: begin, add attributes, send (seals and queues). */
struct qki_msg *qkid_link_begin(struct qkid_peer *p, struct qki_msg *m, uint8_t type);
int qkid_link_send(struct qkid_peer *p, struct qki_msg *m);
int qkid_link_up(const struct qkid_peer *p);

/* not possible yet: park the request (qkid_ike_*, qkid_sa_keys) */
#define QKID_AGAIN (-1)

#include "qkid_outbox.h"
#include "qkid_sa.h"
#include "qkid_ike.h"
#include "qkid_fetch.h"
#include "qkid_sync.h"
#include "qkid_peer.h"

/* qkid_local.c */
int qkid_local_open(struct qkid *d, char *err, size_t errlen);
void qkid_local_accept(struct qkid *d);
void qkid_local_io(struct qkid *d, struct qkid_conn *c, short revents);
void qkid_local_retry(struct qkid *d, int64_t now);
void qkid_local_close(struct qkid *d, struct qkid_conn *c);
void qkid_local_reap(struct qkid *d);

#endif
