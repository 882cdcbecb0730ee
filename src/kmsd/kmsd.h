/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd.h - qkd-kmsd, an ETSI GS QKD 014 Key Management Entity simulator.
 *
 * Two kmsd processes (site A, site B) form one simulated QKD link. The link master (the side
 * that listens on link_address) draws key material from a CSPRNG at the configured secret key
 * rate and streams it to the link slave, so both hold identical blocks under identical key_IDs.
 * The link master alone decides which blocks are handed out (it is the single allocator), so
 * both stores stay identical without any consensus protocol: every change to the slave's store
 * is a message from the master, applied in stream order.
 */
#ifndef KMSD_H
#define KMSD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "etsi014_client.h" /* ETSI014_ID_MAX, ETSI014_KEY_ID_LEN */
#include "ipseq_log.h"     /* ipseq_log, IPSEQ_LOG_*: libipseq */
#include "ipseq_util.h"    /* ipseq_wipe, ipseq_now_ms */

#define KMSD_MAX_SAES 32
#define KMSD_BLOCK_BITS_MAX 8192
#define KMSD_KEY_COUNT_MAX 10000000u
#define KMSD_PER_REQUEST_MAX 1024
#define KMSD_MAX_LINKS 16          /* QKD links of one node ([link NAME] sections) */
#define KMSD_PATH_MAX 8            /* nodes on a relay path, both ends included */
#define KMSD_MAX_SAE_IDS 8         /* slaves of one multi-SAE request (max_SAE_ID_count) */

/* --- configuration (kmsd_config.c) ------------------------------------------------------------ */

enum kmsd_link_mode { KMSD_LINK_LISTEN, KMSD_LINK_CONNECT };

struct kmsd_config;

/* One [link NAME] section: its lines are applied, after the node's own settings, to a copy of
 * them (cfg), so a link inherits every setting it does not name. */
struct kmsd_link_conf {
	char *name;
	char **keys, **values;         /* the section's lines, in file order */
	unsigned n;
	struct kmsd_config *cfg;       /* owned; built by kmsd_config_load */
};

struct kmsd_config {
	char *kme_id;
	char *peer_kme_id;
	char *listen;                  /* HTTPS host:port */
	char *cert, *key, *ca;
	char *saes[KMSD_MAX_SAES];     /* SAEs attached to this KME */
	unsigned n_saes;
	char *peer_saes[KMSD_MAX_SAES]; /* SAEs attached to the peer KME */
	unsigned n_peer_saes;
	enum kmsd_link_mode link_mode;
	char *link_address;
	unsigned link_timeout_ms;
	unsigned link_retry_ms;
	unsigned key_size;             /* bits per stored block; the spec's default key_size */
	unsigned min_key_size, max_key_size;
	unsigned max_key_count;
	unsigned max_key_per_request;
	double key_rate;               /* bit/s; 0: from the fibre model */
	double fibre_length_km, attenuation_db_per_km, reference_rate;
	unsigned reservation_lifetime; /* seconds a reserved key waits for its slave */
	double fail_rate;              /* probability of a simulated 503 */
	unsigned max_connections;
	enum ipseq_log_level log_level;
	char *config_file;
	/* metro node: several links, SAEs attached elsewhere, routes, the path controller */
	struct kmsd_link_conf links[KMSD_MAX_LINKS];
	unsigned n_links;
	char *remote_saes[KMSD_MAX_SAES]; /* "SAE_ID@NODE" */
	unsigned n_remote_saes;
	char *routes[KMSD_MAX_SAES];   /* "DEST via NEXT" */
	unsigned n_routes;
	char *controller;              /* https://ADDR:PORT, empty: static routes only */
	char *controller_id;           /* the controller certificate's CN */
	double controller_interval;    /* seconds between link reports */
};

/* Parse argv (and the --config file it names). Returns 0, 1 if --help/--version was handled
 * (exit 0), -1 on error (message printed). */
int kmsd_config_load(struct kmsd_config *cfg, int argc, char **argv);
void kmsd_config_free(struct kmsd_config *cfg);
/* The secret key rate in bit/s: key_rate, or the fibre model. */
double kmsd_config_effective_rate(const struct kmsd_config *cfg);
int kmsd_config_is_local_sae(const struct kmsd_config *cfg, const char *id);
int kmsd_config_is_peer_sae(const struct kmsd_config *cfg, const char *id);
/* The node a remote SAE is attached to (remote_sae = SAE@NODE), copied to node; 0 if unknown. */
int kmsd_config_remote_sae_node(const struct kmsd_config *cfg, const char *sae,
				char node[ETSI014_ID_MAX + 1]);
/* route = DEST via NEXT: the next hop towards dst, copied to next; 0 if none. */
int kmsd_config_static_next(const struct kmsd_config *cfg, const char *dst,
			    char next[ETSI014_ID_MAX + 1]);

/* --- key store (kmsd_store.c) ----------------------------------------------------------------- */

struct kmsd_reserved_key {
	struct kmsd_reserved_key *hnext;     /* hash chain */
	struct kmsd_reserved_key *older, *newer; /* age list, oldest first */
	uint8_t id[16];
	char master[ETSI014_ID_MAX + 1];
	char slave[ETSI014_ID_MAX + 1];
	uint64_t expires_ms;                 /* CLOCK_MONOTONIC, see ipseq_now_ms() */
	size_t len;
	uint8_t key[];
};

#define KMSD_STORE_BUCKETS 4096

struct kmsd_store_stats {
	uint64_t generated_blocks;   /* master: made; slave: received */
	uint64_t consumed_blocks;    /* blocks taken out of the store for any key */
	uint64_t served_enc_keys, served_enc_bits; /* handed to master SAEs here */
	uint64_t served_dec_keys, served_dec_bits; /* handed to slave SAEs here */
	uint64_t reserved_keys_made;
	uint64_t expired_keys;
	uint64_t flushed_blocks;     /* dropped on link loss or resync */
};

struct kmsd_store {
	pthread_mutex_t lock;        /* guards everything below */
	/* available blocks, a FIFO ring identical on both KMEs */
	unsigned block_bits;
	size_t block_bytes;
	size_t cap, head, count;
	uint8_t (*ids)[16];
	uint8_t *keys;               /* cap * block_bytes, wiped on every removal */
	/* keys reserved for a slave SAE at this KME */
	struct kmsd_reserved_key *buckets[KMSD_STORE_BUCKETS];
	struct kmsd_reserved_key *oldest, *newest;
	size_t n_reserved, max_reserved;
	struct kmsd_store_stats stats;
};

int kmsd_store_init(struct kmsd_store *s, unsigned block_bits, size_t cap);
void kmsd_store_destroy(struct kmsd_store *s);
/* All below: caller holds s->lock. */
int kmsd_store_resize(struct kmsd_store *s, unsigned block_bits, size_t cap); /* flushes */
void kmsd_store_flush(struct kmsd_store *s);
int kmsd_store_push(struct kmsd_store *s, const uint8_t id[16], const uint8_t *key);
/* Remove n blocks from the head. ids_out (n*16) receives their IDs; if want_ids is not NULL the
 * head must carry exactly these IDs (else nothing is removed and -1 returned). key_out (n *
 * block_bytes, may be NULL) receives their bytes. */
int kmsd_store_pop(struct kmsd_store *s, size_t n, const uint8_t *want_ids, uint8_t *ids_out,
		   uint8_t *key_out);
int kmsd_store_reserve(struct kmsd_store *s, const uint8_t id[16], const char *master,
		       const char *slave, const uint8_t *key, size_t len, unsigned lifetime_s);
struct kmsd_reserved_key *kmsd_store_find_reserved(struct kmsd_store *s, const uint8_t id[16]);
/* The same key_ID may be reserved for several slaves (a multi-SAE relay): the one for slave. */
struct kmsd_reserved_key *kmsd_store_find_reserved_for(struct kmsd_store *s, const uint8_t id[16],
						       const char *slave);
/* Wipes and frees rk. */
void kmsd_store_remove_reserved(struct kmsd_store *s, struct kmsd_reserved_key *rk);
/* Drop reservations whose lifetime ended by now_ms (an ipseq_now_ms() value: CLOCK_MONOTONIC,
 * so lifetimes do not jump with the wall clock). */
size_t kmsd_store_expire(struct kmsd_store *s, uint64_t now_ms);

/* --- QKD link (kmsd_link.c) ------------------------------------------------------------------- */

struct kmsd_kme;
struct https_server;

enum kmsd_link_status {
	KMSD_LINK_OK = 0,
	KMSD_LINK_UNAVAILABLE = 503,  /* not enough key */
	KMSD_LINK_UNAUTHORIZED = 401, /* peer refused the SAE pair */
	KMSD_LINK_DOWN = 1,
	KMSD_LINK_TIMEOUT = 2,
	KMSD_LINK_DESYNC = 3,
	KMSD_LINK_REFUSED = 400,      /* a relay refused as malformed, forged or replayed */
};

/* A request from an HTTP thread waiting for the link: filled by the link thread. */
struct kmsd_link_pending {
	struct kmsd_link_pending *next;
	uint32_t id;
	int done;
	enum kmsd_link_status status;
	/* ALLOC at the link slave: where the link thread puts blocks (number*bpk ids and bytes) */
	size_t nblocks;
	uint8_t *ids;
	uint8_t *bytes;
	size_t bytes_len;
	char why[128];               /* a relay NACK's reason, from the node that refused */
	pthread_cond_t cond;
};

struct kmsd_link {
	struct kmsd_kme *kme;
	pthread_t thread;
	int started;
	int wake[2];                 /* pipe: HTTP threads wake the link thread */
	atomic_int stop;
	atomic_int up;
	/* outgoing messages, written by the link thread only */
	pthread_mutex_t qlock;
	struct kmsd_out_msg *qhead, *qtail;
	/* requests waiting for an answer */
	pthread_mutex_t plock;
	struct kmsd_link_pending *pending;
	uint32_t next_id;
	/* link thread private */
	int listen_fd, fd;
	void *tls;                   /* gnutls_session_t */
	void *creds;                 /* gnutls_certificate_credentials_t */
	uint8_t *rbuf;
	size_t rlen, rcap;
	double credit_bits;
	struct timespec last_tick;
	unsigned peer_version;       /* from the peer's HELLO; relays need 2 */
	/* link master: blocks handed to the slave for a relay it sends (RELAY_GRANT), waiting for
	 * its RELAY; guarded by the store lock, wiped when used, expired or the link drops */
	struct kmsd_relay_grant *grants;
};

/* The link thread (kmsd_link.c): TLS connection, handshake, reading and writing. */
int kmsd_link_start(struct kmsd_link *l, struct kmsd_kme *kme);
/* Stop the thread (the link goes down: waiting requests complete); stop also frees. */
void kmsd_link_halt(struct kmsd_link *l);
void kmsd_link_stop(struct kmsd_link *l);

/* The protocol (kmsd_link_proto.c): handle every complete frame in l->rbuf[0..rlen), remove it
 * from the buffer and queue the answers. -1: a malformed, unexpected or contradicting message;
 * the caller drops the link. */
int kmsd_link_process(struct kmsd_link *l);
/* This side's requests: ALLOC_REQ (slave) and RESERVE (master, caller holds the store lock). */
int kmsd_link_send_alloc_req(struct kmsd_link *l, uint32_t req, unsigned number, unsigned size,
			     const char *master, const char *slave);
int kmsd_link_send_reserve(struct kmsd_link *l, uint32_t req, unsigned number, unsigned size,
			   size_t bpk, const char *master, const char *slave, const uint8_t *ids);

/* Send queue and pending requests (kmsd_link_queue.c). */
struct kmsd_out_msg {
	struct kmsd_out_msg *next;
	size_t len;
	uint8_t data[]; /* the whole frame: u32 length, u8 type, payload */
};
/* Queue a message (caller may hold the store lock: that keeps the stream in store order). */
int kmsd_link_send(struct kmsd_link *l, uint8_t type, const uint8_t *payload, size_t len);
/* Wipe and free a list of queued messages. */
void kmsd_link_free_msgs(struct kmsd_out_msg *m);
/* Pending registry: register before sending, wait, then release. */
struct kmsd_link_pending *kmsd_link_pending_new(struct kmsd_link *l);
enum kmsd_link_status kmsd_link_pending_wait(struct kmsd_link *l, struct kmsd_link_pending *p,
					     unsigned timeout_ms);
void kmsd_link_pending_release(struct kmsd_link *l, struct kmsd_link_pending *p);
/* The link thread's side; caller holds l->plock. find: a request not yet done, or NULL. */
struct kmsd_link_pending *kmsd_link_pending_find(struct kmsd_link *l, uint32_t id);
void kmsd_link_pending_complete(struct kmsd_link_pending *p, enum kmsd_link_status st);

/* Largest frame body (type + payload) on the KME-to-KME stream. */
#define KMSD_LINK_MSG_MAX (1u << 20)

/* Message types on the KME-to-KME stream. */
enum kmsd_link_msg {
	KMSD_MSG_HELLO = 1,
	KMSD_MSG_KEYS = 2,        /* master -> slave: new blocks */
	KMSD_MSG_ALLOC_REQ = 3,   /* slave -> master: a master SAE at the slave wants keys */
	KMSD_MSG_ALLOC_REP = 4,   /* master -> slave: the blocks chosen (or a refusal) */
	KMSD_MSG_RESERVE = 5,     /* master -> slave: keys handed to a master SAE at the master */
	KMSD_MSG_RESERVE_ACK = 6, /* slave -> master */
	KMSD_MSG_CONSUMED = 7,    /* either way: a slave SAE fetched these keys (informational) */
	/* link version 2: key relay between nodes (kmsd_relay.c) */
	KMSD_MSG_RELAY = 8,       /* either way: keys XOR link key, towards a destination node */
	KMSD_MSG_RELAY_ACK = 9,   /* back: stored at the destination (0) or refused (NACK) */
	KMSD_MSG_RELAY_ALLOC = 10, /* slave -> master: give me link blocks for a relay I send */
	KMSD_MSG_RELAY_GRANT = 11, /* master -> slave: these blocks (or a refusal) */
};

/* --- the KME: one end of one QKD link (kmsd_api.c, kmsd_node.c) ------------------------------- */

struct kmsd_node;

/* Link key spent on relays over one link (guarded by the link's store lock). */
struct kmsd_relay_stats {
	uint64_t keys_sent, keys_received;   /* relayed keys that crossed this link */
	uint64_t key_bits;                   /* their bits */
	uint64_t link_bits;                  /* link key consumed for them (whole blocks) */
	uint64_t refused;                    /* relays refused (NACK sent or received) */
};

struct kmsd_kme {
	struct kmsd_config *cfg;     /* this link's settings (the node's own in a one-link node) */
	struct kmsd_store store;
	struct kmsd_link link;
	int is_link_master;
	_Atomic double rate_bps;     /* link master: generation rate; SIGHUP may change it */
	unsigned min_key_size, max_key_size, max_key_per_request; /* local limits */
	struct kmsd_node *node;      /* the node this link belongs to; NULL for a bare link */
	const char *name;            /* [link NAME], or "default" */
	struct kmsd_relay_stats relay;
};

/* A route: path[0] is this node, path[n-1] the destination (or, from a static route, the next
 * hop only: the next node routes on). */
struct kmsd_route {
	char dst[ETSI014_ID_MAX + 1];
	char path[KMSD_PATH_MAX][ETSI014_ID_MAX + 1];
	unsigned n;
};

/* Routes from the path controller (kmsd_route.c); static routes are in cfg->routes. */
struct kmsd_routes {
	pthread_mutex_t lock;
	struct kmsd_route *ctl;      /* the controller's last answer, kept while it is down */
	unsigned n_ctl;
	int64_t version;             /* routes_version of ctl; -1: none yet */
	atomic_int refresh;          /* a relay failed: ask for routes now */
	int reachable;               /* for logging the controller's loss and return once */
	pthread_t thread;
	int started;
	int wake[2];
	atomic_int stop;
};

/* A metro KMS node: one HTTPS server for its SAEs, one kmsd_kme per QKD link. */
struct kmsd_node {
	struct kmsd_config *cfg;
	struct kmsd_kme *links;
	unsigned n_links;
	int metro;                   /* [link] sections or remote SAEs: relays, multi-SAE */
	struct kmsd_store relayed;   /* keys relayed here, reserved for their slave SAEs */
	pthread_mutex_t seen_lock;   /* relays seen (replay guard): a bounded FIFO hash set */
	struct kmsd_seen *seen;
	int32_t *seen_buckets;
	size_t seen_next;
	atomic_int forwards;         /* relay forward threads running */
	struct kmsd_routes routes;
	uint64_t relayed_keys_sent, relayed_keys_delivered; /* under relayed.lock */
	atomic_int outage;           /* SIGUSR1 toggles a simulated outage (503 everywhere) */
	struct https_server *httpd;
};

int kmsd_api_start(struct kmsd_node *node);
void kmsd_api_stop(struct kmsd_node *node);

/* The node (kmsd_node.c): lookups and the replay guard; kmsd.c starts and stops it. */
int kmsd_node_init(struct kmsd_node *n, struct kmsd_config *cfg);
void kmsd_node_destroy(struct kmsd_node *n);
/* The link whose peer_sae lists sae (a direct ETSI pair), or NULL. */
struct kmsd_kme *kmsd_node_link_for_sae(struct kmsd_node *n, const char *sae);
/* The link to the neighbour node peer, or NULL. */
struct kmsd_kme *kmsd_node_link_to(struct kmsd_node *n, const char *peer);
/* One link's state and counters as JSON (a json-c object): the relayed status and the
 * controller's link report. */
struct json_object *kmsd_node_link_json(struct kmsd_kme *k);
/* 1 if a relay of key_ID id towards dst passed here before; else 0, and it is remembered (the
 * last KMSD_SEEN_MAX of them). */
#define KMSD_SEEN_MAX 16384
int kmsd_node_seen(struct kmsd_node *n, const uint8_t id[16], const char *dst);

/* --- key relay (kmsd_relay.c) ------------------------------------------------------------------ */

#define KMSD_RELAY_VERSION 1

struct kmsd_relay_grant {
	struct kmsd_relay_grant *next;
	uint32_t id;
	uint64_t expires_ms;
	size_t nblocks;
	uint8_t *ids, *bytes;
};

/* Source: relay number keys of size bits (key_ids, keys) from master here to the slaves at
 * dst (all attached there). Blocks until dst stored them or refused; why gets the reason. */
enum kmsd_link_status kmsd_relay_send(struct kmsd_node *n, const char *dst, const char *master,
				      const char *const *slaves, unsigned n_slaves,
				      unsigned number, unsigned size, const uint8_t *key_ids,
				      const uint8_t *keys, char *why, size_t why_len);
/* The link thread's part (kmsd_link_proto.c hands the frames over). -1: drop the link. */
int kmsd_relay_on_relay(struct kmsd_link *l, const uint8_t *p, size_t len);
int kmsd_relay_on_ack(struct kmsd_link *l, const uint8_t *p, size_t len);
int kmsd_relay_on_alloc(struct kmsd_link *l, const uint8_t *p, size_t len);
int kmsd_relay_on_grant(struct kmsd_link *l, const uint8_t *p, size_t len);
/* Wipe and drop grants (all, or only expired ones); caller holds the store lock. */
void kmsd_relay_grants_drop(struct kmsd_link *l, int only_expired);

/* --- routes and the path controller client (kmsd_route.c) -------------------------------------- */

int kmsd_routes_start(struct kmsd_node *n);
void kmsd_routes_stop(struct kmsd_node *n);
/* Where a relay to dst goes from here: *route (path[0] is this node). 0, or -1 if no route. */
int kmsd_route_lookup(struct kmsd_node *n, const char *dst, struct kmsd_route *route);
/* A relay failed or a link changed: report and re-read routes soon. */
void kmsd_routes_poke(struct kmsd_node *n);

/* --- test build: a hex trace of every relay buffer (kmsd_trace.c) ------------------------------ */

#ifdef KMSD_TEST_BUFFER_TRACE
void kmsd_trace(struct kmsd_node *n, const char *what, const uint8_t *key_id, const uint8_t *buf,
		size_t len);
#else
static inline void kmsd_trace(struct kmsd_node *n, const char *what, const uint8_t *key_id,
			      const uint8_t *buf, size_t len)
{
	(void)n, (void)what, (void)key_id, (void)buf, (void)len;
}
#endif

/* Helpers shared by kmsd_api.c and kmsd_link.c (kmsd_store.c). Caller holds the store lock. */
size_t kmsd_blocks_per_key(const struct kmsd_store *s, unsigned size_bits);
/* "key_ID,key_ID,..." into out, ",..." when cap is too small (texts other than the log). */
void kmsd_format_ids(const uint8_t *ids, size_t n, size_t stride, char *out, size_t cap);
/* Log "what: key_ID,key_ID,..." naming every one of the n key_IDs (stride bytes apart), at most
 * KMSD_LOG_IDS_PER_LINE per line (a log line holds 1023 characters); later lines say which
 * key_IDs they continue with. So a KME's log alone tells every key it delivered (scripts/soak
 * checks it for reuse against the served counters). */
#define KMSD_LOG_IDS_PER_LINE 16
void kmsd_log_ids(int level, const char *what, const uint8_t *ids, size_t n, size_t stride);

/* --- key generation at the link master (kmsd_keygen.c) ---------------------------------------- */

/* A fresh key_ID: 16 random bytes made a UUID v4. */
void kmsd_make_key_id(uint8_t id[16]);
/* Generate the blocks the time since l->last_tick earned at kme->rate_bps, push them into the
 * store and queue them as KEYS. Called by the link thread while the link is up. */
int kmsd_keygen_tick(struct kmsd_link *l);

#endif
