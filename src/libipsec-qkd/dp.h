/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dp.h - internals of the datapath shared by its source files (not installed).
 *
 * Ownership: everything in struct iq_dp belongs to the loop thread while the loop runs.
 * Control calls reach it through a one-slot mailbox (ctl_lock + eventfd) and are executed by
 * the loop between batches; while the loop is not running they run in the caller's thread
 * under ctl_lock. The packet path takes no lock and allocates nothing.
 */
#ifndef IQ_DP_H
#define IQ_DP_H

#include <pthread.h>
#include <stdarg.h>
#include <sys/uio.h>

#include "esp.h"
#include "gso.h"
#include "ipsec_qkd.h"
#include "keyprov.h"
#include "replay.h"
#include "rotation.h"
#include "rpkctl.h"

#define IQ_HASH 256
#define TX_BUF (2u << 20)
#define TX_MSGS 512
#define TX_GSO_SEGS 64          /* UDP_MAX_SEGMENTS is 64 on older kernels */
#define TX_GSO_BYTES 65000      /* below the 65507-byte UDP payload limit */
#define TX_ROOM_BYTES (192u << 10) /* free space needed before reading another TUN packet */
#define TX_ROOM_MSGS 160
#define RX_SLOTS 32
#define RX_SLOT_LEN 65536
#define RBUF_LEN (IQ_VNET_LEN + 65536)
#define TUN_BUDGET 64           /* TUN reads per wakeup (with IQ_OFF_MMSG) */
#define RX_BUDGET 4             /* recvmmsg calls per wakeup (with IQ_OFF_MMSG) */
#define IQ_ECON_RATE_SLOTS 5    /* economy.c: 5 steps of 20 ms */

struct iq_cmd;                  /* ctl.h */

struct iq_sa {
	struct iq_sa *next;         /* all SAs */
	struct iq_sa *hnext;        /* inbound hash chain (by SPI) */
	struct iq_sa *unext;        /* hash chain by uid */
	uint64_t uid;               /* unique per installation, ties provider answers to SAs */
	uint32_t spi, reqid;
	bool inbound, esn;
	iq_addr_t src, dst;
	int sock;                   /* 0: IPv4 socket, 1: IPv6 socket */
	uint32_t mark_value, mark_mask;
	char peer[64];

	uint64_t seq;               /* outbound: last sequence number used */
	struct iq_replay replay;    /* inbound */
	struct iq_aead aead;        /* rotation off: the CHILD_SA key */
	struct iq_rot rot;          /* rotation on: window keys */
	uint8_t child_key[36];
	size_t child_key_len;

	struct iq_lifetime lt;
	uint64_t installed_ms;
	bool soft_fired;
	uint64_t bytes, packets;
	time_t last_use;
	uint64_t rate_packets, pps; /* packet rate over the last second */
	struct iq_sa_econ {         /* economy.c: rotating SAs */
		uint64_t tick_ms, tick_packets;
		uint64_t rate_windows, key_rate_milli;  /* windows used over the last second */
		uint64_t share_milli;   /* the provider's fair share of the key supply */
		bool share_known;       /* the provider answered a report (the loop runs) */
		uint32_t provider_capacity; /* keys the provider lets the SA hold (0: not said) */
		uint64_t pps_milli;     /* packet rate over the last tick */
		struct iq_rpkctl ctl;   /* outbound: the rpk control loop (rpkctl.h) */
		uint64_t ctl_ms;        /* the loop's last step */
		uint64_t ctl_stored;    /* rot.keys_stored at the loop's last step */
		double arrivals;        /* window keys arriving per second, filtered */
		/* packets at the loop's last IQ_ECON_RATE_SLOTS steps: the packet rate over ~100 ms */
		uint64_t rate_at_ms[IQ_ECON_RATE_SLOTS], rate_pkts[IQ_ECON_RATE_SLOTS];
		unsigned rate_i;
		/* key shortage episodes: the exhaustion policy acts (packets beyond rpk, stalls) */
		uint64_t short_mark;    /* reuse_packets + stall_drops at the last tick */
		bool short_on;
		uint64_t short_since_ms, short_last_ms, short_beyond0, short_stall0;
		uint64_t episodes;
	} econ;
	uint64_t replay_drops, auth_drops, policy_drops, pad_drops;
	bool rot_dirty;             /* window moved: check whether to prefetch */
};

struct iq_policy {
	struct iq_policy *next;
	struct iq_policy_cfg cfg;
	uint32_t refs;
	struct iq_sa *sa;           /* outbound: resolved SA for cfg.reqid */
	uint64_t sa_gen;            /* sad generation sa was resolved at */
};

struct tx_msg {
	size_t off, len;
	uint16_t seg_size, nseg;
	bool closed;
	uint64_t sa_uid;
	int sock;
	iq_addr_t dst, src;
};

struct iq_dp {
	struct iq_dp_cfg cfg;
	char tun_name[32];
	int tun_fd;
	bool tun_vnet, own_tun, tun_uso;
	int udp[2];
	bool gso_ok, gro_ok;
	int ctl_efd;

	pthread_mutex_t ctl_lock, call_lock;
	pthread_cond_t ctl_cond;
	struct iq_cmd *cmd;
	bool running, stop_req, threaded;
	pthread_t thread, loop_tid;

	struct iq_keyprov *kp;

	struct iq_sa *sas;
	struct iq_sa *in_hash[IQ_HASH];
	struct iq_sa *uid_hash[IQ_HASH];
	bool keys_check;                    /* a rotating SA moved: see whether to prefetch */
	uint64_t sa_gen, next_uid;
	struct iq_policy *pol[2];           /* IQ_DIR_IN, IQ_DIR_OUT, sorted by priority */

	/* TX: TUN -> ESP -> UDP */
	uint8_t *rbuf;
	uint8_t *txbuf;
	size_t tx_used;
	struct tx_msg txm[TX_MSGS];
	int tx_n, tx_sent;
	bool tx_blocked;
	struct mmsghdr *tx_mm;
	struct iovec *tx_iov;
	uint8_t (*tx_cmsg)[64];

	/* RX: UDP -> ESP -> TUN */
	uint8_t *rxbuf;
	struct mmsghdr rx_mm[RX_SLOTS];
	struct iovec rx_iov[RX_SLOTS];
	iq_addr_t rx_from[RX_SLOTS];
	uint8_t rx_cmsg[RX_SLOTS][128];
	struct iq_gro gro;

	uint64_t now_ms, last_maint_ms, last_rate_ms, last_econ_ms;
	time_t now_s;
	struct { uint32_t reqid; uint64_t at_ms; } acq[16];
	struct iq_dp_stats st;
};

static inline bool iq_offload(const struct iq_dp *dp, unsigned bit)
{
	return (dp->cfg.offload & bit) != 0;
}

/* dp.c */
void iq_log(struct iq_dp *dp, enum iq_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void iq_seterr(iq_err_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
uint64_t iq_now_ms(void);

/* sad.c: SA and policy tables, run on the loop thread (or under ctl_lock) */
struct iq_sa *iq_sad_in(struct iq_dp *dp, uint32_t spi);
struct iq_sa *iq_sad_find(struct iq_dp *dp, const struct iq_sa_id *id);
struct iq_sa *iq_sad_by_uid(struct iq_dp *dp, uint64_t uid);
void iq_sad_link(struct iq_dp *dp, struct iq_sa *sa);
void iq_sad_unlink(struct iq_dp *dp, struct iq_sa *sa);
/* unlink every SA; returns them chained by next, in table order (the caller frees them) */
struct iq_sa *iq_sad_flush(struct iq_dp *dp);
struct iq_sa *iq_sa_prepare(const struct iq_sa_cfg *cfg, iq_err_t *err);
void iq_sa_free(struct iq_sa *sa);
void iq_sa_free_list(struct iq_sa *sa);
void iq_sa_fill_stats(const struct iq_sa *sa, struct iq_sa_stats *st);
struct iq_policy *iq_spd_out(struct iq_dp *dp, const struct iq_flow *f);
bool iq_spd_in_ok(struct iq_dp *dp, const struct iq_sa *sa, const struct iq_flow *f);
struct iq_sa *iq_policy_sa(struct iq_dp *dp, struct iq_policy *p);
int iq_spd_add(struct iq_dp *dp, const struct iq_policy_cfg *cfg, struct iq_policy **spare);
int iq_spd_del(struct iq_dp *dp, const struct iq_policy_cfg *cfg, struct iq_policy **freed);
/* remove every policy; returns them chained by next (the caller frees them) */
struct iq_policy *iq_spd_flush(struct iq_dp *dp);
void iq_policy_free_list(struct iq_policy *p);
bool iq_addr_equal(const iq_addr_t *a, const iq_addr_t *b);
socklen_t iq_addr_len(const iq_addr_t *a);

/* tun.c, udp.c */
/* tunf: TUN_F_* wanted; on return what the kernel accepted */
int iq_tun_open(const char *name, int mtu, bool vnet, unsigned *tunf, char *ifname,
				size_t ifnamelen, iq_err_t *err);
int iq_udp_open(const iq_addr_t *bind, int bufsize, bool gro, bool *gro_ok, iq_err_t *err);
/* control messages for a send from src (none for the wildcard) with UDP_SEGMENT gso (0: none);
 * returns the bytes used of cbuf */
size_t iq_udp_cmsg(uint8_t *cbuf, size_t cap, const iq_addr_t *src, uint16_t gso);

#endif
