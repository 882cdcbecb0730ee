/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipsec_qkd.h - userspace ESP datapath with quantum key rotation (libipsec-qkd).
 *
 * One datapath (iq_dp_t) owns a TUN device for plaintext and a UDP socket (port 4500 by default)
 * for ESP-in-UDP (RFC 3948), and runs one run-to-completion loop in one thread. SAs and policies
 * are installed through the control calls below, which are safe to call from any thread: they are
 * executed by the loop between packet batches (the packet path takes no lock).
 *
 * The API mirrors what strongSwan's kernel_ipsec_t delivers (add_sa/update_sa/query_sa/del_sa,
 * add_policy/del_policy), in plain C types, so the library stays free of strongSwan headers.
 *
 * IKE on port 4500: the datapath owns the socket. Datagrams with the non-ESP marker (four zero
 * bytes) are IKE: they are handed to cfg.ike_recv without the marker; NAT keepalives (one 0xff
 * byte) are dropped; everything else is ESP. iq_ike_send() sends IKE through the same socket and
 * adds the marker. See README.md for the design and the wire format of key rotation.
 */
#ifndef IPSEC_QKD_H
#define IPSEC_QKD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct iq_dp iq_dp_t;

/** Error text of a failed call; every call that can fail takes an optional iq_err_t. */
typedef struct {
	char msg[256];
} iq_err_t;

/** An IPv4 or IPv6 address with port (port 0 where no port applies). */
typedef union {
	struct sockaddr sa;
	struct sockaddr_in in4;
	struct sockaddr_in6 in6;
} iq_addr_t;

/** Offload and batching steps; each can be switched off to measure what it brings. */
enum iq_offload {
	IQ_OFF_MMSG    = 1 << 0, /* recvmmsg/sendmmsg and draining several packets per wakeup */
	IQ_OFF_TUN_TSO = 1 << 1, /* IFF_VNET_HDR + TUN_F_CSUM|TSO4|TSO6: super-packets from TUN */
	IQ_OFF_TUN_USO = 1 << 2, /* also TUN_F_USO4|USO6: UDP super-packets from the TUN, and
							  * (with TUN_GRO) coalesced UDP written back; needs TUN_TSO */
	IQ_OFF_UDP_GSO = 1 << 3, /* UDP_SEGMENT: one sendmsg carries many ESP packets */
	IQ_OFF_UDP_GRO = 1 << 4, /* UDP_GRO: one recvmsg returns many ESP packets */
	IQ_OFF_TUN_GRO = 1 << 5, /* coalesce TCP (and UDP) flows, write GSO super-packets to TUN */
	IQ_OFF_ALL     = (1 << 6) - 1,
};

/** Key-exhaustion policy of a rotating SA (see README.md "Key exhaustion"). */
enum iq_exhaust {
	/** keep using the current window key, but never for more than rpk_max packets */
	IQ_EXHAUST_REUSE = 0,
	/** never extend a window beyond its rpk: drop (and count) until a key arrives */
	IQ_EXHAUST_STALL = 1,
};

struct iq_rotation {
	bool enabled;
	uint32_t rpk_min;      /* packets per window, lower bound (>= 1) */
	uint32_t rpk_max;      /* upper bound (< 2^31); also the reuse bound */
	enum iq_exhaust exhaust;
	uint32_t lookahead;    /* window keys prefetched ahead of the current one (0: default 64) */
};

/** Lifetimes as strongSwan's lifetime_cfg_t: soft = rekey, hard = life; 0 = unlimited. */
struct iq_lifetime {
	uint64_t soft_bytes, hard_bytes;
	uint64_t soft_packets, hard_packets;
	uint64_t soft_time, hard_time;     /* seconds after installation */
};

#define IQ_ENC_AES_GCM_16 20           /* IKEv2 transform ID ENCR_AES_GCM_ICV16 */

struct iq_sa_cfg {
	iq_addr_t src, dst;         /* outer addresses; ports are the UDP encapsulation ports */
	uint32_t spi;               /* host byte order */
	uint32_t reqid;             /* links the SA to policies */
	uint32_t mark_value, mark_mask; /* kept for the caller; not used for matching */
	bool inbound;
	bool esn;                   /* 64-bit extended sequence numbers (RFC 4303) */
	uint32_t replay_window;     /* packets; raised to at least IQ_REPLAY_MIN, 0 = no check */
	uint16_t enc_alg;           /* IQ_ENC_AES_GCM_16 */
	const uint8_t *enc_key;     /* AES key || 4-byte salt: 20 (AES-128) or 36 (AES-256) bytes */
	size_t enc_key_len;
	struct iq_lifetime lifetime;
	struct iq_rotation rotation;
	const char *peer;           /* peer name for the key provider (qkid); may be NULL */
};

#define IQ_REPLAY_MIN 1024
#define IQ_REPLAY_MAX 32768

/** Identifies an installed SA, like the kernel: SPI + destination address (port ignored). */
struct iq_sa_id {
	iq_addr_t dst;
	uint32_t spi;
};

struct iq_sa_stats {
	uint64_t bytes;        /* inner (plaintext IP) bytes */
	uint64_t packets;
	time_t last_use;       /* CLOCK_MONOTONIC seconds of the last packet, 0 = never */
	/* rotation */
	uint32_t epoch;        /* outbound: window in use; inbound: highest authenticated */
	uint32_t rpk;          /* outbound: current packets per window */
	uint32_t keys_ready;   /* window keys prefetched and derived, ahead of epoch */
	uint64_t windows;      /* window switches */
	uint64_t reuse_packets;/* packets sent beyond a window's rpk under IQ_EXHAUST_REUSE */
	uint64_t stall_drops;  /* packets dropped because no window key was available */
	uint64_t key_requests, key_failures;
	/* inbound drops */
	uint64_t replay_drops, auth_drops, nokey_drops, policy_drops, pad_drops;
	uint64_t epoch_drops;  /* epoch in the IV beyond the epoch space or IQ_JUMP_MAX ahead */
	/* inbound catch-up (rotation.h) */
	uint64_t peeks;        /* looks at the provider's keys for epochs beyond the lookahead */
	uint64_t jumps;        /* window moves beyond the lookahead, each after an authentic packet */
	/* outbound key economy (rpkctl.h): the rpk control loop's inputs and what it achieved */
	uint64_t pps;          /* packets/s over the last second */
	uint64_t key_rate_milli;/* window keys used per second (x 1000) over the last second */
	uint64_t share_milli;  /* the SA's fair share of the key supply, keys/s x 1000 (0: unknown) */
	uint32_t level_target; /* the buffer level (keys_ready) the loop steers to */
	uint64_t episodes;     /* key shortages: times the exhaustion policy had to act */
};

enum iq_policy_dir { IQ_DIR_IN = 0, IQ_DIR_OUT = 1 };

/** A traffic selector as an inclusive range, like strongSwan's traffic_selector_t. */
struct iq_ts {
	int family;                 /* AF_INET or AF_INET6 */
	uint8_t proto;              /* 0 = any */
	uint8_t from[16], to[16];   /* network byte order, first 4 bytes used for IPv4 */
	uint16_t port_from, port_to;/* host byte order, 0..65535 = any */
};

struct iq_policy_cfg {
	enum iq_policy_dir dir;
	struct iq_ts src, dst;
	uint32_t reqid;
	uint32_t priority;          /* lower value wins, like the kernel */
	uint32_t spi;               /* outbound: the SA charon bound to the policy (host order),
	                             * 0: none; chosen before other SAs of the reqid, which charon
	                             * may share between CHILD_SAs of different selectors */
};

/** Datapath-wide counters (all since creation). */
struct iq_dp_stats {
	uint64_t tun_rx_packets, tun_rx_superpackets, tun_tx_packets, tun_tx_superpackets;
	uint64_t esp_tx_packets, esp_rx_packets, udp_tx_msgs, udp_rx_msgs;
	uint64_t ike_rx, keepalive_rx;
	uint64_t drop_no_policy, drop_no_sa, drop_bad_packet, drop_seq_overflow, drop_hard_limit;
	uint64_t drop_replay, drop_auth, drop_nokey, drop_stall, drop_policy_in, drop_pad;
	uint64_t drop_epoch;           /* epoch beyond the epoch space or IQ_JUMP_MAX ahead */
	uint64_t drop_tun_write, drop_udp_send, tx_blocked;
	uint64_t windows, reuse_packets;
	uint64_t keys_delivered, key_failures;
};

/*
 * Key provider: where window keys (quantum keys per SPI and epoch) come from.
 *
 * The functions are blocking and are only ever called from the datapath's key helper thread,
 * never from the packet loop: the loop posts requests into a lock-free ring and picks the keys
 * up from another one when they are ready (prefetched ahead of need).
 */
#define IQ_QKEY_MAX 64

struct iq_key_sa {
	uint32_t spi;
	bool inbound;
	const char *peer;              /* may be NULL */
	uint32_t rpk_min, rpk_max;
	/* set in sa_report calls: the SA's cumulative counters and its key economy now */
	uint64_t packets, bytes;
	uint32_t rpk;                  /* outbound: packets per window in use */
	uint32_t level, capacity;      /* window keys held ahead, and the most it holds (lookahead) */
	uint64_t windows;              /* window switches */
	uint64_t beyond_rpk;           /* packets sent beyond a window's rpk (exhaust = reuse) */
	uint64_t stall_drops;          /* packets dropped for want of a window key */
	uint64_t episodes;             /* key shortages (the exhaustion policy had to act) */
};

struct iq_key_answer {
	uint64_t share_milli;          /* the SA's fair share of the key supply, keys/s x 1000 */
	uint32_t capacity;             /* the most window keys the provider lets the SA hold
					* ahead (0: as many as the lookahead) */
};

struct iq_key_provider {
	void *ctx;
	/** Announce an SA (may be NULL). */
	int (*sa_open)(void *ctx, const struct iq_key_sa *sa, iq_err_t *err);
	/**
	 * Keys for epochs [first, first + count) of an SA. Writes up to count keys of *key_len bytes
	 * each (at most IQ_QKEY_MAX) into keys and the number delivered (from first on) into *got.
	 * Returns 0, or a negative errno (then *got may still tell how many were delivered).
	 */
	int (*get_keys)(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err);
	/**
	 * Like get_keys, but only looks: keys the provider holds for [first, first + count) right
	 * now, without releasing, waiting for or requesting anything (an inbound SA catching up
	 * with a sender beyond its lookahead peeks at candidate epochs that an unauthenticated
	 * packet named, see rotation.h). May be NULL: then no catching up.
	 */
	int (*peek_keys)(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					 uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err);
	/**
	 * The SA's counters (sa->packets ... sa->episodes) for the provider, about once a second
	 * for every rotating SA (may be NULL). The provider answers with the SA's fair share of
	 * the key supply in keys/s x 1000 (0: unknown): the feed-forward of the datapath's rpk
	 * control loop (rpkctl.h); without it the loop does not run and rpk stays rpk_min.
	 */
	int (*sa_report)(void *ctx, const struct iq_key_sa *sa, struct iq_key_answer *ans);
	void (*sa_close)(void *ctx, const struct iq_key_sa *sa);   /* may be NULL */
	void (*destroy)(void *ctx);                                 /* may be NULL */
	/**
	 * TEST ONLY (kernel-qkd save_keys): NULL unless set by the owner. Called on the key helper
	 * thread, never on the packet loop, with every quantum key the provider delivered (before
	 * the window key is derived from it), so a test can decrypt a capture independently.
	 */
	void (*export_qkey)(void *export_ctx, const struct iq_key_sa *sa, uint32_t epoch,
						const uint8_t *qkey, size_t qkey_len);
	void *export_ctx;
};

/**
 * Deterministic test provider: key(spi, epoch) = SHA-256("iq-test-key" || seed || spi || epoch).
 * Two gateways with the same seed agree. budget limits the number of keys served per SA
 * (0 = unlimited), latency_ms delays each get_keys call. For unit tests and benchmarks only.
 */
struct iq_key_provider *iq_test_provider_create(const char *seed, uint64_t budget,
												unsigned latency_ms);

enum iq_log_level { IQ_LOG_ERROR = 0, IQ_LOG_INFO = 1, IQ_LOG_DEBUG = 2 };

/** One sample of a rotating SA's key economy, every 100 ms (iq_dp_cfg.rpk_trace). */
struct iq_rpk_sample {
	uint64_t t_ms;                 /* CLOCK_MONOTONIC milliseconds */
	uint32_t spi;
	bool inbound;
	uint64_t packets;              /* cumulative */
	uint32_t rpk;                  /* outbound: rpk for the next windows */
	uint32_t level, target;        /* window keys held ahead; the loop's target level */
	uint64_t keys_stored;          /* cumulative window keys that arrived from the provider */
	uint64_t windows, beyond_rpk, stall_drops, nokey_drops;   /* cumulative */
	uint64_t share_milli;          /* fair share, keys/s x 1000 (0: unknown) */
	uint64_t pps_milli;            /* the loop's packet rate input, packets/s x 1000 */
};

struct iq_dp_cfg {
	const char *tun_name;      /* NULL: "ipsecqkd%d" */
	int tun_mtu;               /* 0: 1400 */
	int tun_fd;                /* >= 0: use this fd as the TUN (tests); tun_vnet tells its mode */
	bool tun_fd_vnet;          /* the given tun_fd carries a virtio_net_hdr per packet */
	iq_addr_t bind4;           /* 0.0.0.0:4500 if family is 0 */
	iq_addr_t bind6;           /* family AF_INET6 to also open an IPv6 socket */
	int wan_mtu;               /* 0: 1500; ESP packets larger than this are never GSO-batched */
	uint32_t offload;          /* enum iq_offload bits; 0 is valid (all off) */
	int sock_buf;              /* UDP socket buffer bytes; 0: 4 MiB */
	struct iq_key_provider *keys; /* owned by the datapath after create; NULL: no rotation */
	/** IKE datagram received on the ESP socket (marker removed); from the loop thread,
	 *  must not block. */
	void (*ike_recv)(void *user, const iq_addr_t *src, const iq_addr_t *dst,
					 const uint8_t *data, size_t len);
	/** SA reached a soft (hard = false) or hard lifetime; a hard-expired SA is already gone. */
	void (*expire)(void *user, uint32_t reqid, uint32_t spi, const iq_addr_t *dst, bool hard);
	/** Outbound packet matched a policy whose reqid has no SA (rate-limited per reqid). */
	void (*acquire)(void *user, uint32_t reqid);
	void (*log)(void *user, enum iq_log_level level, const char *msg);
	/** TEST AND BENCHMARK ONLY (may be NULL): a sample of every rotating SA every 100 ms,
	 *  from the loop thread; must not block (kernel-qkd's rpk_trace writes a CSV line). */
	void (*rpk_trace)(void *user, const struct iq_rpk_sample *s);
	enum iq_log_level log_level;
	void *user;
};

/** Create a datapath: opens the TUN device and the UDP socket(s), does not start the loop. */
int iq_dp_create(const struct iq_dp_cfg *cfg, iq_dp_t **dp, iq_err_t *err);
/** Start the loop in its own thread. */
int iq_dp_start(iq_dp_t *dp, iq_err_t *err);
/** Run the loop in the calling thread until iq_dp_stop() (from another thread or a callback). */
int iq_dp_run(iq_dp_t *dp, iq_err_t *err);
/** Ask the loop to stop and wait for its thread (if started with iq_dp_start). */
void iq_dp_stop(iq_dp_t *dp);
/** Stop, wipe all keys, close everything. */
void iq_dp_destroy(iq_dp_t *dp);

/** Name of the TUN device (e.g. for routes). */
const char *iq_dp_tun_name(iq_dp_t *dp);
/** Local port of the IPv4 UDP socket (useful when bound to port 0). */
uint16_t iq_dp_udp_port(iq_dp_t *dp);
/** Local port of the IPv6 UDP socket, 0 if there is none. */
uint16_t iq_dp_udp_port6(iq_dp_t *dp);

int iq_sa_add(iq_dp_t *dp, const struct iq_sa_cfg *cfg, iq_err_t *err);
/** New outer addresses/ports (NULL: unchanged) and/or reqid (0: unchanged). */
int iq_sa_update(iq_dp_t *dp, const struct iq_sa_id *id, const iq_addr_t *new_src,
				 const iq_addr_t *new_dst, uint32_t new_reqid, iq_err_t *err);
int iq_sa_query(iq_dp_t *dp, const struct iq_sa_id *id, struct iq_sa_stats *st, iq_err_t *err);
int iq_sa_del(iq_dp_t *dp, const struct iq_sa_id *id, iq_err_t *err);
int iq_sa_flush(iq_dp_t *dp, iq_err_t *err);
/** A random inbound SPI (>= 0x100) not used by any installed inbound SA. */
int iq_spi_alloc(iq_dp_t *dp, uint32_t *spi, iq_err_t *err);

/** Policies are reference counted like charon expects: adding an identical one again counts. */
int iq_policy_add(iq_dp_t *dp, const struct iq_policy_cfg *pol, iq_err_t *err);
int iq_policy_del(iq_dp_t *dp, const struct iq_policy_cfg *pol, iq_err_t *err);
int iq_policy_flush(iq_dp_t *dp, iq_err_t *err);

int iq_dp_get_stats(iq_dp_t *dp, struct iq_dp_stats *st, iq_err_t *err);

/** Send an IKE message from src (may have port 0 = socket's) to dst through the ESP socket. */
int iq_ike_send(iq_dp_t *dp, const iq_addr_t *src, const iq_addr_t *dst, const void *data,
				size_t len, iq_err_t *err);
/** Send a NAT-T keepalive (RFC 3948: one 0xff byte) from src to dst through the ESP socket. */
int iq_keepalive_send(iq_dp_t *dp, const iq_addr_t *src, const iq_addr_t *dst, iq_err_t *err);

/* Helpers */
int iq_addr_parse(const char *str, uint16_t default_port, iq_addr_t *addr);
/** "192.0.2.0/25" or "192.0.2.1-192.0.2.9" or "any4"/"any6", optional ":proto[:port[-port]]". */
int iq_ts_parse(const char *str, struct iq_ts *ts);
/** Parse a hex key ("0x..." optional) into buf; returns the length or -1. */
int iq_hex_parse(const char *hex, uint8_t *buf, size_t buflen);

#ifdef __cplusplus
}
#endif
#endif /* IPSEC_QKD_H */
