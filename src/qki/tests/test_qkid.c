/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of qkid's parts: anti-replay window, fair-share allocator, rpk advisor,
 * peer-protocol sealing, the peer protocol between a master and a slave (fake link and KME),
 * configuration parser.
 */
#include <check.h>
#include <stddef.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "etsi014_codec.h"

#include "../qkid.h"
#include "../qkid_conf.h"
#include "../qkid_log.h"
#include "ipseq_util.h"
#include "../qkid_fair.h"
#include "../qkid_fetch.h"
#include "../qkid_peerproto.h"
#include "../qkid_replay.h"

/* ---- replay window ---- */

START_TEST(test_replay_in_order)
{
	struct qkid_replay w;
	qkid_replay_reset(&w);
	ck_assert_int_eq(qkid_replay_check(&w, 0), QKID_SEQ_OLD);
	for (uint64_t s = 1; s <= 1000; s++) {
		ck_assert_int_eq(qkid_replay_check(&w, s), QKID_SEQ_NEXT);
		qkid_replay_update(&w, s);
		ck_assert_int_eq(qkid_replay_check(&w, s), QKID_SEQ_OLD);
		ck_assert_int_eq(qkid_replay_check(&w, s - 1), QKID_SEQ_OLD);
	}
}
END_TEST

/* TCP loses nothing and reorders nothing: any skipped number means lost messages (L1) */
START_TEST(test_replay_gap)
{
	struct qkid_replay w;
	qkid_replay_reset(&w);
	ck_assert_int_eq(qkid_replay_check(&w, 2), QKID_SEQ_GAP);       /* the first was lost */
	qkid_replay_update(&w, 1);
	ck_assert_int_eq(qkid_replay_check(&w, 3), QKID_SEQ_GAP);
	ck_assert_int_eq(qkid_replay_check(&w, UINT64_MAX), QKID_SEQ_GAP);
	qkid_replay_update(&w, 2);
	ck_assert_int_eq(qkid_replay_check(&w, 3), QKID_SEQ_NEXT);
	ck_assert_int_eq(qkid_replay_check(&w, 1), QKID_SEQ_OLD);
	qkid_replay_update(&w, UINT64_MAX);     /* nothing can follow the last number */
	ck_assert_int_eq(qkid_replay_check(&w, UINT64_MAX), QKID_SEQ_OLD);
	ck_assert_int_eq(qkid_replay_check(&w, 0), QKID_SEQ_OLD);
}
END_TEST

/* ---- fair share ---- */

/*
 * Simulate N SAs consuming keys at given rates (keys per tick) while the pool gets `supply`
 * keys per tick; returns keys consumed per SA.
 */
static void simulate_ex(const double *rate, size_t n, double supply, int ticks, double *consumed,
			uint32_t capacity, uint64_t slack, int blind)
{
	struct qkid_fair sa[16], *ptr[16];
	double tokens[16] = { 0 }, pool = 0;
	for (size_t i = 0; i < n; i++) {
		memset(&sa[i], 0, sizeof(sa[i]));
		sa[i].capacity = capacity;
		ptr[i] = &sa[i];
		consumed[i] = 0;
	}
	for (int t = 0; t < ticks; t++) {
		pool += supply;
		while (pool >= 1) {
			long i = qkid_fair_pick(ptr, n, slack);
			if (i < 0)
				break;
			sa[i].level++;
			sa[i].vtime++;
			pool -= 1;
		}
		for (size_t i = 0; i < n; i++) {
			tokens[i] += rate[i];
			while (tokens[i] >= 1 && sa[i].level > 0) {
				sa[i].level--;
				tokens[i] -= 1;
				consumed[i]++;
			}
			if (tokens[i] > 2 * rate[i] + 1)
				tokens[i] = 2 * rate[i] + 1;     /* bounded backlog */
			/* drain rate as qkid estimates it: EWMA of consumption; `blind` SAs show
			 * none (just started, or bursty), the worst case for time-to-empty */
			if (!(blind & (1 << i)))
				sa[i].drain_rate = 0.8 * sa[i].drain_rate + 0.2 * rate[i];
		}
	}
}

static void simulate(const double *rate, size_t n, double supply, int ticks, double *consumed,
		     uint32_t capacity, uint64_t slack)
{
	simulate_ex(rate, n, supply, ticks, consumed, capacity, slack, 0);
}

START_TEST(test_fair_burst_does_not_starve)
{
	/* 4 SAs, one bursting at 10x; supply below total demand */
	double rate[4] = { 1, 1, 1, 10 }, got[4];
	simulate(rate, 4, 6, 10000, got, 16, 4);
	/* max-min fair: light SAs get all they ask (1/tick), the burst gets the rest (3/tick) */
	for (int i = 0; i < 3; i++)
		ck_assert_msg(got[i] >= 0.97 * 10000, "light SA %d got %.0f", i, got[i]);
	ck_assert_msg(got[3] >= 0.95 * 3 * 10000, "bursting SA got %.0f", got[3]);
	{
		double rel[4] = { got[0] / 10000, got[1] / 10000, got[2] / 10000, got[3] / 30000 };
		ck_assert(qkid_jain_index(rel, 4) > 0.99);
	}
}
END_TEST

START_TEST(test_fair_trickle_supply)
{
	/* Keys arrive one at a time and the bursting SA empties its buffer at once: every time a
	 * key arrives, all buffers are empty and time-to-empty ties at 0, which the burst (higher
	 * drain rate) would always win. The virtual-time slack must still give the light SAs
	 * their max-min share (0.2 each), the burst the rest (0.4). */
	double rate[4] = { 0.2, 0.2, 0.2, 10 }, got[4];
	simulate(rate, 4, 1, 20000, got, 16, 4);
	for (int i = 0; i < 3; i++)
		ck_assert_msg(got[i] >= 0.9 * 0.2 * 20000, "light SA %d got %.0f", i, got[i]);
	ck_assert_msg(got[3] >= 0.9 * 0.4 * 20000, "bursting SA got %.0f", got[3]);
}
END_TEST

START_TEST(test_fair_equal_demand_equal_share)
{
	double rate[5] = { 5, 5, 5, 5, 5 }, got[5];
	simulate(rate, 5, 10, 5000, got, 8, 4);
	ck_assert(qkid_jain_index(got, 5) > 0.999);
}
END_TEST

START_TEST(test_fair_plenty_everyone_full)
{
	double rate[3] = { 1, 2, 20 }, got[3];
	simulate(rate, 3, 100, 1000, got, 32, 4);
	ck_assert(got[0] >= 999 && got[1] >= 1998 && got[2] >= 19980);
}
END_TEST

START_TEST(test_fair_fastest_first)
{
	/* with one key and equal levels, the faster-draining buffer gets it */
	struct qkid_fair a = { .level = 4, .capacity = 8, .drain_rate = 1 };
	struct qkid_fair b = { .level = 4, .capacity = 8, .drain_rate = 10 };
	struct qkid_fair *p[2] = { &a, &b };
	ck_assert_int_eq(qkid_fair_pick(p, 2, 4), 1);
	/* an empty buffer goes first whatever the rates */
	a.level = 0;
	ck_assert_int_eq(qkid_fair_pick(p, 2, 4), 0);
	/* full buffers get nothing */
	a.level = b.level = 8;
	ck_assert_int_eq(qkid_fair_pick(p, 2, 4), -1);
	/* slack: b far ahead in keys received is skipped although it drains faster */
	a.level = 4;
	b.level = 4;
	b.vtime = 100;
	ck_assert_int_eq(qkid_fair_pick(p, 2, 4), 0);
}
END_TEST

START_TEST(test_fair_capacity)
{
	ck_assert_uint_eq(qkid_fair_capacity(256, 4, 4, 64), 64);
	ck_assert_uint_eq(qkid_fair_capacity(256, 3, 4, 64), 64);
	ck_assert_uint_eq(qkid_fair_capacity(256, 8, 4, 64), 32);
	ck_assert_uint_eq(qkid_fair_capacity(256, 1000, 4, 64), 4);
	ck_assert_uint_eq(qkid_fair_capacity(256, 0, 4, 64), 64);
}
END_TEST

START_TEST(test_jain)
{
	double even[3] = { 2, 2, 2 }, one[4] = { 1, 0, 0, 0 };
	ck_assert(qkid_jain_index(even, 3) > 0.9999);
	ck_assert(qkid_jain_index(one, 4) < 0.2501 && qkid_jain_index(one, 4) > 0.2499);
}
END_TEST

/* max-min shares: the water level, checked against hand-computed allocations */
START_TEST(test_fair_shares)
{
	double share[4];
	double skew[4] = { 10, 50, 400, 1000 }, idle[3] = { 0, 0, 500 }, small[2] = { 5, 7 };

	/* supply 300: 10 and 50 are served in full, 240 left for two: 120 each */
	qkid_fair_shares(skew, 4, 300, share);
	ck_assert(fabs(share[0] - 10) < 1e-9 && fabs(share[1] - 50) < 1e-9);
	ck_assert(fabs(share[2] - 120) < 1e-9 && fabs(share[3] - 120) < 1e-9);
	/* one busy SA and two idle ones (a receive direction without traffic): all of it */
	qkid_fair_shares(idle, 3, 155, share);
	ck_assert(share[0] < 1e-9 && share[1] < 1e-9 && fabs(share[2] - 155) < 1e-9);
	/* plenty: every SA gets its demand and an even part of the rest */
	qkid_fair_shares(small, 2, 100, share);
	ck_assert(fabs(share[0] - 49) < 1e-9 && fabs(share[1] - 51) < 1e-9);
	/* no supply, no SA */
	qkid_fair_shares(skew, 4, 0, share);
	ck_assert(share[0] == 0 && share[3] == 0);
	qkid_fair_shares(skew, 0, 100, share);
}
END_TEST


/* ---- peer protocol ---- */

START_TEST(test_peer_seal_verify)
{
	static uint8_t buf[QKP_FRAME_MAX];
	uint8_t key[QKP_KEY_LEN], other[QKP_KEY_LEN];
	struct qki_msg m;
	struct qkp_hdr h;
	size_t n, mark;

	memset(key, 1, sizeof(key));
	memset(other, 2, sizeof(other));
	qkp_init(&m, buf, sizeof(buf), QKP_ASSIGN, 7);
	mark = qki_msg_nest_begin(&m, QKP_A_ENTRY);
	qki_msg_put_str(&m, QKP_A_KEY_ID, "5a0f7f4e-2b4c-4b8e-9f59-0c8a3f9e1d2c");
	qki_msg_put_u8(&m, QKP_A_USE, QKP_USE_SA);
	qki_msg_nest_end(&m, mark);
	n = qkp_seal(&m, key);
	ck_assert(n > QKP_HDR_LEN + QKP_TAG_LEN);
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), 0);
	ck_assert_uint_eq(h.seq, 7);
	ck_assert_uint_eq(QKP_HDR_LEN + h.length + QKP_TAG_LEN, n);
	ck_assert(qkp_verify(buf, &h, key));
	ck_assert(!qkp_verify(buf, &h, other));
	for (size_t i = 0; i < n; i += 7) {     /* every tampered byte is caught */
		buf[i] ^= 0x20;
		ck_assert(qkp_hdr_parse(buf, &h) || !qkp_verify(buf, &h, key));
		buf[i] ^= 0x20;
	}
	buf[2] = QKP_VERSION - 1;       /* an older peer: told apart from garbage */
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), -2);
	buf[2] = QKP_VERSION;
	buf[3] = 0;             /* type 0 */
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), -1);
	buf[3] = QKP_CHALLENGE;
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), 0);
	buf[0] = 0;             /* no magic, no version check */
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), -1);
}
END_TEST

START_TEST(test_peer_session_keys)
{
	uint8_t psk[32], ns[32], nm[32], bs[16], bm[16], s2m[32], m2s[32], s2m2[32], m2s2[32];
	memset(psk, 3, sizeof(psk));
	memset(ns, 4, sizeof(ns));
	memset(nm, 5, sizeof(nm));
	memset(bs, 6, sizeof(bs));
	memset(bm, 7, sizeof(bm));
	qkp_session_keys(psk, 32, ns, nm, bs, bm, s2m, m2s);
	ck_assert(memcmp(s2m, m2s, 32) != 0);   /* no reflection between directions */
	nm[0] ^= 1;             /* a fresh nonce gives fresh keys */
	qkp_session_keys(psk, 32, ns, nm, bs, bm, s2m2, m2s2);
	ck_assert(memcmp(s2m, s2m2, 32) != 0 && memcmp(m2s, m2s2, 32) != 0);
}
END_TEST

/* ---- peer protocol: a master and a slave qkid joined by a fake link ---- */

/*
 * What qkid.c, qkid_link.c and qkid_kme.c provide is replaced here, as fuzz/fuzz_peer_msg.c
 * does: a message a side sends is sealed (zero key) and kept in that side's out list until the
 * test delivers it; a KME request is kept until the test answers it. Key bytes are a function
 * of the key_ID, so the slave's "KME" returns the bytes the master's pool holds.
 */

#define TEST_KEY_LEN 32
#define SIDE_FRAMES 64

struct qkid_kme {
	int submitted;                  /* a request waits for the test's answer */
	enum qkid_kme_job_type type;
	unsigned number;                /* enc_keys: keys asked for */
	size_t n_ids;
	char ids[QKID_KME_IDS_MAX][ETSI014_KEY_ID_LEN + 1];
	struct qkid_kme_result *result; /* answered, not collected yet */
};

struct side {
	struct qkid d;
	struct qkid_conf conf;
	struct qkid_peer p;
	struct qkid_link link;
	struct qkid_kme kme;
	uint8_t *out[SIDE_FRAMES];      /* sealed frames sent, not delivered */
	size_t n_out;
};

int64_t qkid_now_ms(void)
{
	return (int64_t)ipseq_now_ms();
}

void qkid_random(void *buf, size_t n)
{
	memset(buf, 0x5a, n);
}

struct qkid_peer *qkid_peer_by_name(struct qkid *d, const char *name)
{
	(void)name;
	return d->peers;
}

static struct side *side_of(const struct qkid_peer *p)
{
	return (struct side *)((const char *)p - offsetof(struct side, p));
}

struct qki_msg *qkid_link_begin(struct qkid_peer *p, struct qki_msg *m, uint8_t type)
{
	qkp_init(m, p->d->scratch, sizeof(p->d->scratch), type, ++p->link->seq_tx);
	return m;
}

int qkid_link_send(struct qkid_peer *p, struct qki_msg *m)
{
	static const uint8_t key[QKP_KEY_LEN];
	struct side *s = side_of(p);
	size_t n;
	if (!qkid_link_up(p) || s->n_out == SIDE_FRAMES)
		return -1;
	n = qkp_seal(m, key);
	ck_assert_uint_gt(n, 0);
	s->out[s->n_out] = malloc(n);
	ck_assert_ptr_nonnull(s->out[s->n_out]);
	memcpy(s->out[s->n_out++], p->d->scratch, n);
	return 0;
}

int qkid_link_up(const struct qkid_peer *p)
{
	return p->link && p->link->state == QL_UP;
}

void qkid_link_drop(struct qkid_peer *p, const char *why)
{
	(void)why;
	p->link = NULL;
}

void qkid_link_free(struct qkid_link *l)
{
	(void)l;                /* the test owns the links */
}

void qkid_link_tick(struct qkid_peer *p, int64_t now)
{
	(void)p;
	(void)now;
}

struct qkid_kme *qkid_kme_start(const struct etsi014_client_config *cfg, int notify_fd,
				char *err, size_t errlen)
{
	(void)cfg;
	(void)notify_fd;
	snprintf(err, errlen, "no KME in unit tests");
	return NULL;
}

int qkid_kme_busy(struct qkid_kme *k)
{
	return k->submitted || k->result;
}

int qkid_kme_submit_enc(struct qkid_kme *k, const char *slave_sae, unsigned number,
			unsigned size_bits)
{
	(void)slave_sae;
	(void)size_bits;
	k->submitted = 1;
	k->type = QKID_KME_ENC;
	k->number = number;
	return 0;
}

int qkid_kme_submit_status(struct qkid_kme *k, const char *slave_sae)
{
	(void)slave_sae;
	k->submitted = 1;
	k->type = QKID_KME_STATUS;
	return 0;
}

int qkid_kme_submit_dec(struct qkid_kme *k, const char *master_sae, const char *const *ids,
			size_t n, unsigned size_bits)
{
	(void)master_sae;
	(void)size_bits;
	k->submitted = 1;
	k->type = QKID_KME_DEC;
	k->n_ids = n;
	for (size_t i = 0; i < n; i++)
		snprintf(k->ids[i], sizeof(k->ids[i]), "%s", ids[i]);
	return 0;
}

struct qkid_kme_result *qkid_kme_collect(struct qkid_kme *k)
{
	struct qkid_kme_result *r = k->result;
	k->result = NULL;
	return r;
}

void qkid_kme_result_free(struct qkid_kme_result *r)
{
	if (r)
		etsi014_key_container_free(r->keys);
	free(r);
}

void qkid_kme_stop(struct qkid_kme *k)
{
	(void)k;
}

static void key_of(const char *id, uint8_t *key)
{
	for (size_t i = 0; i < TEST_KEY_LEN; i++)
		key[i] = (uint8_t)(id[strlen(id) - 1 - i % 4] * 31 + i);
}

static void key_id(unsigned i, char id[QKI_KEY_ID_MAX])
{
	snprintf(id, QKI_KEY_ID_MAX, "00000000-0000-4000-8000-%012u", i);
}

static struct side *side_new(int role)
{
	struct side *s = calloc(1, sizeof(*s));
	char err[256];
	ck_assert_ptr_nonnull(s);
	qkid_log_open(QKID_LOG_ERR, 0);
	qkid_conf_defaults(&s->conf);
	s->conf.n_peers = 1;
	snprintf(s->conf.peers[0].name, sizeof(s->conf.peers[0].name), "test");
	s->conf.peers[0].role = role;
	s->conf.peers[0].key_size_bits = TEST_KEY_LEN * 8;
	s->conf.peers[0].sa_buffer_total = 64;
	s->conf.peers[0].sa_buffer_min = 4;
	s->conf.peers[0].sa_buffer_max = 16;
	s->conf.peers[0].ike_stash = 0;         /* only SA keys in these tests */
	s->conf.peers[0].ike_reserve = 0;
	s->conf.peers[0].batch = 16;
	s->d.conf = &s->conf;
	ck_assert_msg(qkid_arena_init(&s->d.arena, 256, err, sizeof(err)) == 0, "%s", err);
	s->d.peers = &s->p;
	s->d.n_peers = 1;
	s->p.d = &s->d;
	s->p.conf = &s->conf.peers[0];
	s->p.role = role;
	s->p.key_len = TEST_KEY_LEN;
	s->p.batch = s->conf.peers[0].batch;
	s->p.kme = &s->kme;
	s->p.kme_state = QKI_KME_OK;
	s->link.state = QL_UP;
	s->p.link = &s->link;
	return s;
}

static void side_free(struct side *s)
{
	for (size_t i = 0; i < s->n_out; i++)
		free(s->out[i]);
	qkid_peer_destroy(&s->p);
	qkid_arena_destroy(&s->d.arena);
	free(s);
}

/* master: n keys in the pool, key_IDs first.. */
static void pool_fill(struct side *m, unsigned first, unsigned n)
{
	for (unsigned i = first; i < first + n; i++) {
		char id[QKI_KEY_ID_MAX];
		uint8_t key[TEST_KEY_LEN];
		struct qkey *k;
		key_id(i, id);
		key_of(id, key);
		k = qkid_key_new(&m->p, id);
		ck_assert_ptr_nonnull(k);
		ck_assert_int_eq(qkid_key_set_bytes(&m->d, k, key, sizeof(key)), 0);
		k->state = QK_POOL;
		qkey_list_append(&m->p.pool, k);
	}
}

/* Hand every frame `from` sent to `to`; returns how many. */
static size_t deliver(struct side *from, struct side *to)
{
	size_t n = from->n_out;
	for (size_t i = 0; i < n; i++) {
		struct qkp_hdr h;
		ck_assert_int_eq(qkp_hdr_parse(from->out[i], &h), 0);
		qkid_peer_on_message(&to->p, &h, from->out[i] + QKP_HDR_LEN);
		free(from->out[i]);
	}
	from->n_out = 0;
	return n;
}

static void discard(struct side *s)
{
	for (size_t i = 0; i < s->n_out; i++)
		free(s->out[i]);
	s->n_out = 0;
}

/* A copy of the last frame s sent (to replay it). */
static uint8_t *last_frame(struct side *s)
{
	struct qkp_hdr h;
	uint8_t *copy;
	ck_assert_uint_gt(s->n_out, 0);
	ck_assert_int_eq(qkp_hdr_parse(s->out[s->n_out - 1], &h), 0);
	copy = malloc(QKP_HDR_LEN + h.length + QKP_TAG_LEN);
	ck_assert_ptr_nonnull(copy);
	memcpy(copy, s->out[s->n_out - 1], QKP_HDR_LEN + h.length + QKP_TAG_LEN);
	return copy;
}

static void replay(const uint8_t *frame, struct side *to)
{
	struct qkp_hdr h;
	ck_assert_int_eq(qkp_hdr_parse(frame, &h), 0);
	qkid_peer_on_message(&to->p, &h, frame + QKP_HDR_LEN);
}

/* The slave's KME answers its pending dec_keys with the bytes of every key_ID asked. */
static size_t kme_answer(struct side *s)
{
	struct qkid_kme_result *r;
	size_t n;
	if (!s->kme.submitted || s->kme.type != QKID_KME_DEC)
		return 0;
	r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	n = s->kme.n_ids;
	r->type = QKID_KME_DEC;
	r->code = ETSI014_OK;
	r->n_ids = n;
	r->keys = etsi014_key_container_alloc(n, TEST_KEY_LEN);
	ck_assert_ptr_nonnull(r->keys);
	for (size_t i = 0; i < n; i++) {
		snprintf(r->ids[i], sizeof(r->ids[i]), "%s", s->kme.ids[i]);
		snprintf(r->keys->keys[i].key_id, sizeof(r->keys->keys[i].key_id), "%s",
			 s->kme.ids[i]);
		key_of(s->kme.ids[i], r->keys->keys[i].key);
	}
	s->kme.submitted = 0;
	s->kme.result = r;
	qkid_peer_kme_done(&s->p);
	return n;
}

/* Send one peer message with one entry; negative fields are left out. */
static void send_entry(struct side *to, uint8_t type, const char *id, int use, int64_t spi,
		       int rx, int64_t epoch, int status)
{
	static uint8_t buf[QKP_FRAME_MAX];
	static const uint8_t key[QKP_KEY_LEN];
	struct qki_msg m;
	size_t mark;
	qkp_init(&m, buf, sizeof(buf), type, 1);
	mark = qki_msg_nest_begin(&m, QKP_A_ENTRY);
	if (id)
		qki_msg_put_str(&m, QKP_A_KEY_ID, id);
	if (use >= 0)
		qki_msg_put_u8(&m, QKP_A_USE, (uint8_t)use);
	if (spi >= 0)
		qki_msg_put_u32(&m, QKP_A_SPI, (uint32_t)spi);
	if (rx >= 0)
		qki_msg_put_u8(&m, QKP_A_RX, (uint8_t)rx);
	if (epoch >= 0)
		qki_msg_put_u32(&m, QKP_A_EPOCH, (uint32_t)epoch);
	if (status >= 0)
		qki_msg_put_u8(&m, QKP_A_STATUS, (uint8_t)status);
	qki_msg_nest_end(&m, mark);
	ck_assert_uint_gt(qkp_seal(&m, key), 0);
	replay(buf, to);
}

/* Keys of epochs first..first+count-1 as the local API would reply them. */
static int sa_keys(struct side *s, struct qkid_sa *sa, uint32_t first, uint32_t count,
		   uint8_t *buf, size_t *len, uint32_t *got, uint32_t *next)
{
	struct qki_msg m;
	const char *msg = NULL;
	int r;
	qki_msg_init(&m, buf, QKI_HDR_LEN + QKI_MSG_MAX, QKI_T_SA_KEYS | QKI_REPLY, 1);
	r = qkid_sa_keys(sa, first, count, 0, &m, got, next, &msg);
	*len = m.len;
	(void)s;
	return r;
}

#define SPI 0x1000

/* Master and slave with one SA (the slave receives), ASSIGNs of 8 keys delivered to the slave,
 * its dec_keys not answered yet. */
static void exchange_start(struct side **mp, struct side **sp, struct qkid_sa **msa,
			   struct qkid_sa **ssa)
{
	struct side *m = side_new(QKI_ROLE_MASTER), *s = side_new(QKI_ROLE_SLAVE);
	pool_fill(m, 0, 8);
	ck_assert_int_eq(qkid_sa_register(&s->p, SPI, QKI_DIR_IN, NULL, ssa), QKI_OK);
	ck_assert_int_eq(qkid_sa_register(&m->p, SPI, QKI_DIR_OUT, NULL, msa), QKI_OK);
	qkid_peer_flush(&s->p);
	ck_assert_uint_eq(deliver(s, m), 1);            /* NEED: the SA exists */
	qkid_peer_work(&m->p, qkid_now_ms());
	qkid_peer_flush(&m->p);
	ck_assert_uint_eq(m->n_out, 1);                 /* one ASSIGN, 8 entries */
	ck_assert_uint_eq(m->p.pool.n, 0);
	*mp = m;
	*sp = s;
}

START_TEST(test_sync_exchange)
{
	static uint8_t bm[QKI_HDR_LEN + QKI_MSG_MAX], bs[QKI_HDR_LEN + QKI_MSG_MAX];
	struct side *m, *s;
	struct qkid_sa *msa, *ssa;
	size_t lm, ls;
	uint32_t gm, gs, next;

	exchange_start(&m, &s, &msa, &ssa);
	/* the master's datapath waits until the slave has the key */
	ck_assert_int_eq(sa_keys(m, msa, 0, 8, bm, &lm, &gm, &next), QKID_AGAIN);
	deliver(m, s);
	ck_assert_uint_eq(s->p.fetchq.n, 8);
	ck_assert_int_eq(sa_keys(s, ssa, 0, 8, bs, &ls, &gs, &next), QKID_AGAIN);
	qkid_peer_work(&s->p, qkid_now_ms());
	ck_assert_uint_eq(kme_answer(s), 8);            /* one dec_keys for all 8 */
	ck_assert_uint_eq(s->p.fetchq.n, 0);
	qkid_peer_flush(&s->p);
	ck_assert_uint_eq(deliver(s, m), 1);            /* ACK, 8 entries */
	/* both sides now hand out the same 8 keys for epochs 0..7 */
	ck_assert_int_eq(sa_keys(m, msa, 0, 8, bm, &lm, &gm, &next), QKI_OK);
	ck_assert_int_eq(sa_keys(s, ssa, 0, 8, bs, &ls, &gs, &next), QKI_OK);
	ck_assert_uint_eq(gm, 8);
	ck_assert_uint_eq(gs, 8);
	ck_assert_uint_eq(next, 8);
	ck_assert_uint_eq(lm, ls);
	ck_assert(memcmp(bm, bs, lm) == 0);
	ck_assert_uint_eq(m->p.drops + s->p.drops, 0);
	side_free(m);
	side_free(s);
}
END_TEST

START_TEST(test_sync_malformed)
{
	static const uint8_t key[QKP_KEY_LEN];
	static uint8_t buf[QKP_FRAME_MAX];
	struct side *m = side_new(QKI_ROLE_MASTER), *s = side_new(QKI_ROLE_SLAVE);
	char id[QKI_KEY_ID_MAX];
	struct qki_msg msg;
	struct qkp_hdr h;
	size_t mark;

	key_id(1, id);
	/* an attribute that claims more bytes than the message has */
	qkp_init(&msg, buf, sizeof(buf), QKP_ASSIGN, 1);
	mark = qki_msg_nest_begin(&msg, QKP_A_ENTRY);
	qki_msg_put_str(&msg, QKP_A_KEY_ID, id);
	qki_msg_nest_end(&msg, mark);
	ck_assert_uint_gt(qkp_seal(&msg, key), 0);
	ck_assert_int_eq(qkp_hdr_parse(buf, &h), 0);
	buf[QKP_HDR_LEN + 2] = 0xff;                    /* entry length */
	qkid_peer_on_message(&s->p, &h, buf + QKP_HDR_LEN);
	ck_assert_uint_eq(s->p.drops, 1);
	/* entries without a key_ID, with an unknown use, or an SA entry with a bad side */
	send_entry(s, QKP_ASSIGN, NULL, QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 0, -1);
	send_entry(s, QKP_ASSIGN, id, 9, -1, -1, -1, -1);
	send_entry(s, QKP_ASSIGN, id, QKP_USE_SA, SPI, 7, 0, -1);
	ck_assert_uint_eq(s->p.drops, 4);
	ck_assert_ptr_null(qkid_key_find(&s->p, id));
	ck_assert_uint_eq(s->p.fetchq.n, 0);
	ck_assert_ptr_null(s->p.sas);
	/* messages of the wrong direction */
	send_entry(s, QKP_ACK, id, -1, -1, -1, -1, QKP_ACK_OK);
	send_entry(s, QKP_NEED, NULL, -1, SPI, QKI_ROLE_SLAVE, 0, -1);
	send_entry(m, QKP_ASSIGN, id, QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 0, -1);
	ck_assert_uint_eq(s->p.drops, 6);
	ck_assert_uint_eq(m->p.drops, 1);
	ck_assert_ptr_null(s->p.sas);
	ck_assert_ptr_null(m->p.sas);
	ck_assert_ptr_null(qkid_key_find(&m->p, id));
	/* nothing was answered */
	qkid_peer_flush(&s->p);
	qkid_peer_flush(&m->p);
	ck_assert_uint_eq(s->n_out + m->n_out, 0);
	side_free(m);
	side_free(s);
}
END_TEST

START_TEST(test_sync_replay)
{
	static uint8_t bm[QKI_HDR_LEN + QKI_MSG_MAX], bs[QKI_HDR_LEN + QKI_MSG_MAX];
	struct side *m, *s;
	struct qkid_sa *msa, *ssa;
	uint8_t *assign, *ack;
	size_t lm, ls;
	uint32_t gm, gs, next;

	exchange_start(&m, &s, &msa, &ssa);
	assign = last_frame(m);
	deliver(m, s);
	/* the same ASSIGN again while the keys are being fetched: no second copy, no answer */
	replay(assign, s);
	ck_assert_uint_eq(s->p.fetchq.n, 8);
	qkid_peer_flush(&s->p);
	ck_assert_uint_eq(s->n_out, 0);
	qkid_peer_work(&s->p, qkid_now_ms());
	ck_assert_uint_eq(kme_answer(s), 8);
	qkid_peer_flush(&s->p);
	ack = last_frame(s);
	deliver(s, m);
	/* again after the fetch (a resend after a reconnect): the slave acknowledges again,
	 * and the master takes a repeated ACK as a duplicate */
	replay(assign, s);
	qkid_peer_flush(&s->p);
	ck_assert_uint_eq(deliver(s, m), 1);
	replay(ack, m);
	ck_assert_int_eq(sa_keys(m, msa, 0, 8, bm, &lm, &gm, &next), QKI_OK);
	ck_assert_int_eq(sa_keys(s, ssa, 0, 8, bs, &ls, &gs, &next), QKI_OK);
	ck_assert_uint_eq(gm, 8);
	ck_assert_uint_eq(lm, ls);
	ck_assert(memcmp(bm, bs, lm) == 0);
	ck_assert_uint_eq(s->p.fetchq.n, 0);
	ck_assert_uint_eq(m->p.drops + s->p.drops, 0);
	free(assign);
	free(ack);
	side_free(m);
	side_free(s);
}
END_TEST

START_TEST(test_sync_out_of_order)
{
	static uint8_t bm[QKI_HDR_LEN + QKI_MSG_MAX];
	struct side *m, *s;
	struct qkid_sa *msa, *ssa;
	char id[QKI_KEY_ID_MAX], other[QKI_KEY_ID_MAX];
	struct qkey *k3;
	size_t lm;
	uint32_t gm, next;

	exchange_start(&m, &s, &msa, &ssa);
	/* an ACK for a key_ID the master never assigned changes nothing */
	key_id(100, other);
	send_entry(m, QKP_ACK, other, -1, -1, -1, -1, QKP_ACK_OK);
	ck_assert_ptr_null(qkid_key_find(&m->p, other));
	/* a key_ID the slave already holds for epoch 3, announced for epoch 4: CONFLICT */
	deliver(m, s);
	k3 = qkid_sa_key(msa, 3);
	ck_assert_ptr_nonnull(k3);
	snprintf(id, sizeof(id), "%s", k3->id);
	send_entry(s, QKP_ASSIGN, id, QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 4, -1);
	ck_assert_uint_eq(s->p.out_ack.n, 1);
	ck_assert_uint_eq(s->p.out_ack.e[0].status, QKP_ACK_CONFLICT);
	/* the master, told the slave cannot take epoch 3's key, buries it and assigns epoch 3
	 * a fresh key from the pool */
	qkid_peer_flush(&s->p);
	deliver(s, m);
	ck_assert_ptr_null(qkid_sa_key(msa, 3));
	pool_fill(m, 8, 1);
	qkid_peer_work(&m->p, qkid_now_ms());
	ck_assert_ptr_nonnull(qkid_sa_key(msa, 3));
	ck_assert_str_ne(qkid_sa_key(msa, 3)->id, id);
	/* a NEED below the floor (the master's datapath skipped ahead) is answered STALE */
	qkid_peer_flush(&m->p);
	discard(m);
	ck_assert_int_eq(sa_keys(m, msa, 20, 1, bm, &lm, &gm, &next), QKID_AGAIN);
	ck_assert_uint_eq(msa->floor, 20);
	send_entry(m, QKP_NEED, NULL, -1, SPI, QKI_ROLE_SLAVE, 0, -1);
	ck_assert_uint_eq(m->p.out_stale.n, 1);
	ck_assert_uint_eq(m->p.out_stale.e[0].epoch, 20);
	ck_assert_uint_eq(m->p.drops + s->p.drops, 0);
	side_free(m);
	side_free(s);
}
END_TEST

START_TEST(test_sync_sa_owner)
{
	struct side *m = side_new(QKI_ROLE_MASTER);
	struct qkid_conn *first = (struct qkid_conn *)1, *second = (struct qkid_conn *)2;
	struct qkid_sa *sa, *other = NULL;

	ck_assert_int_eq(qkid_sa_register(&m->p, SPI, QKI_DIR_OUT, first, &sa), QKI_OK);
	ck_assert_int_eq(qkid_sa_register(&m->p, SPI, QKI_DIR_OUT, first, &sa), QKI_OK);
	/* another connection cannot take the SA while the first one is connected */
	ck_assert_int_eq(qkid_sa_register(&m->p, SPI, QKI_DIR_OUT, second, &other),
			 QKI_ERR_EXISTS);
	ck_assert_ptr_null(other);
	ck_assert_ptr_eq(sa->owner, first);
	/* once it closed, the next registration takes it (a restarted datapath) */
	qkid_conn_gone(&m->d, first);
	ck_assert_int_eq(qkid_sa_register(&m->p, SPI, QKI_DIR_OUT, second, &other), QKI_OK);
	ck_assert_ptr_eq(other, sa);
	ck_assert_ptr_eq(sa->owner, second);
	side_free(m);
}
END_TEST

/* issue 12 M2: key_IDs are kept in lower case; an upper-case copy of a used one is that key_ID */
static void upper(char *dst, const char *src)
{
	for (; *src; src++)
		*dst++ = (char)(*src >= 'a' && *src <= 'f' ? *src - 32 : *src);
	*dst = 0;
}

START_TEST(test_key_id_case)
{
	struct side *s = side_new(QKI_ROLE_SLAVE);
	char id[QKI_KEY_ID_MAX], id2[QKI_KEY_ID_MAX], up[QKI_KEY_ID_MAX];
	uint8_t key[TEST_KEY_LEN], want[TEST_KEY_LEN];
	const char *msg = NULL;

	/* the slave's charon takes an IKE key on demand (a hex letter in the key_ID) */
	snprintf(id, sizeof(id), "00000000-0000-4000-8000-00000000abcd");
	ck_assert_int_eq(qkid_ike_get(&s->p, id, TEST_KEY_LEN, key, &msg), QKID_AGAIN);
	qkid_peer_work(&s->p, qkid_now_ms());
	ck_assert_uint_eq(kme_answer(s), 1);
	ck_assert_int_eq(qkid_ike_get(&s->p, id, TEST_KEY_LEN, key, &msg), QKI_OK);
	key_of(id, want);
	ck_assert(memcmp(key, want, sizeof(key)) == 0);
	/* an upper-case copy: KEY_USED, nothing fetched, nothing handed out */
	upper(up, id);
	ck_assert_str_ne(up, id);
	memset(key, 0, sizeof(key));
	msg = NULL;
	ck_assert_int_eq(qkid_ike_get(&s->p, up, TEST_KEY_LEN, key, &msg), QKI_ERR_KEY_USED);
	qkid_peer_work(&s->p, qkid_now_ms());
	ck_assert_int_eq(s->kme.submitted, 0);
	ck_assert_uint_eq(s->p.fetchq.n, 0);
	ck_assert_uint_eq(key[0] | key[TEST_KEY_LEN - 1], 0);

	/* the peer's ASSIGN in upper case is the key_ID it announced before, not a second key */
	snprintf(id2, sizeof(id2), "00000000-0000-4000-8000-00000000beef");
	send_entry(s, QKP_ASSIGN, id2, QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 0, -1);
	ck_assert_uint_eq(s->p.fetchq.n, 1);
	upper(up, id2);
	send_entry(s, QKP_ASSIGN, up, QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 0, -1);
	ck_assert_uint_eq(s->p.fetchq.n, 1);
	ck_assert_ptr_nonnull(qkid_key_find(&s->p, id2));
	ck_assert_ptr_null(qkid_key_find(&s->p, up));
	/* a key_ID that is no UUID is malformed */
	send_entry(s, QKP_ASSIGN, "not-a-uuid", QKP_USE_SA, SPI, QKI_ROLE_SLAVE, 1, -1);
	ck_assert_uint_eq(s->p.fetchq.n, 1);
	ck_assert_int_eq(qkid_ike_get(&s->p, "not-a-uuid", TEST_KEY_LEN, key, &msg),
			 QKI_ERR_INVALID);
	side_free(s);
}
END_TEST

/* ---- configuration ---- */

static const char good_conf[] =
	"# comment\n"
	"socket = /tmp/x.sock\n"
	"listen = 127.0.0.1:7800\n"
	"rpk_min = 100   # trailing comment\n"
	"[peer site-b]\n"
	"local_sae = SAE_A\n"
	"peer_sae = SAE_B\n"
	"auth_key_file = /nonexistent\n"
	"kme_url = https://127.0.0.1:8443\n"
	"kme_cert = c\nkme_key = k\nkme_ca = a\n"
	"key_size = 256\n"
	"[peer site-c]\n"
	"local_sae = SAE_Z\n"
	"peer_sae = SAE_C\n"
	"address = 127.0.0.1:7801\n"
	"auth_key_file = /nonexistent\n"
	"kme_url = https://127.0.0.1:8443\n"
	"kme_cert = c\nkme_key = k\nkme_ca = a\n";

START_TEST(test_conf_good)
{
	static struct qkid_conf c;
	char err[256];
	qkid_conf_defaults(&c);
	ck_assert_msg(qkid_conf_parse(&c, good_conf, strlen(good_conf), err, sizeof(err)) == 0,
		      "%s", err);
	ck_assert_msg(qkid_conf_finish(&c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(c.n_peers, 2);
	ck_assert_uint_eq(c.rpk_min, 100);
	ck_assert_str_eq(c.peers[0].name, "site-b");
	ck_assert_int_eq(c.peers[0].role, 1);   /* SAE_A < SAE_B: master */
	ck_assert_int_eq(c.peers[1].role, 2);   /* SAE_Z > SAE_C: slave */
	ck_assert_uint_eq(c.peers[0].key_size_bits, 256);
}
END_TEST

START_TEST(test_conf_bad)
{
	static const char *const bad[] = {
		"nonsense\n",
		"unknown_key = 1\n",
		"rpk_min = -1\n",
		"rpk_min = 12abc\n",
		"socket_mode = 999\n",
		"[peer]\n",
		"[peer a b]\n",
		"[peer x]\n[peer x]\n",
		"[peer x]\nkey_size = 12\n",
		"[peer x]\nkey_size = 1024\n",
		"[peer x]\nrole = boss\n",
		"[section]\n",
		"[peer x\n",
		"log_level = loud\n",
		" = value\n",
	};
	static struct qkid_conf c;
	char err[256];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		qkid_conf_defaults(&c);
		err[0] = 0;
		ck_assert_msg(qkid_conf_parse(&c, bad[i], strlen(bad[i]), err, sizeof(err)) != 0,
			      "accepted: %s", bad[i]);
		ck_assert_msg(strstr(err, "line "), "no line number for '%s': %s", bad[i], err);
	}
	/* semantic errors */
	qkid_conf_defaults(&c);
	ck_assert(qkid_conf_parse(&c, "rpk_min = 10\nrpk_max = 5\n", 24, err, sizeof(err)) == 0);
	ck_assert(qkid_conf_finish(&c, err, sizeof(err)) != 0);
	qkid_conf_defaults(&c);
	ck_assert(qkid_conf_parse(&c, "[peer x]\nlocal_sae = A\n", 23, err, sizeof(err)) == 0);
	ck_assert(qkid_conf_finish(&c, err, sizeof(err)) != 0);
	ck_assert(strstr(err, "required"));
	/* a master without listen */
	qkid_conf_defaults(&c);
	ck_assert(qkid_conf_parse(&c, good_conf, strlen(good_conf), err, sizeof(err)) == 0);
	c.listen[0] = 0;
	ck_assert(qkid_conf_finish(&c, err, sizeof(err)) != 0);
	/* NUL byte */
	qkid_conf_defaults(&c);
	ck_assert(qkid_conf_parse(&c, "socket = a\0b\n", 13, err, sizeof(err)) != 0);
}
END_TEST

START_TEST(test_conf_example)
{
	/* conf/qkid.conf documents every setting: it must parse and pass the checks */
	static struct qkid_conf c;
	char err[512];
	qkid_conf_defaults(&c);
	ck_assert_msg(qkid_conf_load(&c, QKID_EXAMPLE_CONF, err, sizeof(err)) == 0, "%s", err);
	ck_assert_msg(qkid_conf_finish(&c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(c.n_peers, 1);
	ck_assert_int_eq(c.peers[0].role, 1);
}
END_TEST

START_TEST(test_conf_auth_key)
{
	static struct qkid_conf c;
	char err[256], path[] = "/tmp/qkid-test-key.XXXXXX";
	int fd = mkstemp(path);
	const char *hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";
	ck_assert(fd >= 0);
	ck_assert(write(fd, hex, strlen(hex)) == (ssize_t)strlen(hex));
	close(fd);
	qkid_conf_defaults(&c);
	ck_assert(qkid_conf_parse(&c, good_conf, strlen(good_conf), err, sizeof(err)) == 0);
	c.n_peers = 1;
	strcpy(c.peers[0].auth_key_file, path);
	chmod(path, 0600);
	ck_assert_msg(qkid_conf_load_keys(&c, err, sizeof(err)) == 0, "%s", err);
	ck_assert_uint_eq(c.peers[0].auth_key_len, 32);
	ck_assert_uint_eq(c.peers[0].auth_key[1], 0x11);
	chmod(path, 0640);      /* group-readable: refused */
	ck_assert(qkid_conf_load_keys(&c, err, sizeof(err)) != 0);
	ck_assert(strstr(err, "0600"));
	chmod(path, 0600);
	fd = open(path, O_WRONLY | O_TRUNC);
	ck_assert(write(fd, "abcd\n", 5) == 5);        /* too short */
	close(fd);
	ck_assert(qkid_conf_load_keys(&c, err, sizeof(err)) != 0);
	unlink(path);
	qkid_conf_wipe(&c);
}
END_TEST

/* qkid_supply.h: the link's rate from the KME's stored key count and qkid's intake */
START_TEST(test_supply_measured)
{
	struct qkid_supply s;
	int64_t t = 100000;

	qkid_supply_init(&s, t);
	ck_assert(!qkid_supply_probe_due(&s, t));
	ck_assert(qkid_supply_probe_due(&s, t + QKID_SUPPLY_PROBE_MS));
	/* no answer yet: only a rise of the intake counts */
	ck_assert(fabs(qkid_supply_estimate(&s, 100, 62, 0, t) - 100) < 1e-9);
	ck_assert(fabs(qkid_supply_estimate(&s, 100, 140, 0, t) - 120) < 1e-9);
	/* 20 km at low load: qkid takes 62 keys/s, the KME stores 93/s more: 155 keys/s */
	qkid_supply_status(&s, t, 1000, 400, 100000, 256, 256, 16);
	qkid_supply_status(&s, t + 1000, 1062, 493, 100000, 256, 256, 16);
	ck_assert(fabs(s.gen - 155) < 1e-9);
	ck_assert(fabs(qkid_supply_estimate(&s, 62, 62, 0, t + 1000) - 155) < 1e-9);
	/* the link slows while keys are still stored: seen without a 503 (smoothed: 155 -> 97.5) */
	qkid_supply_status(&s, t + 2000, 1102, 453, 100000, 256, 256, 16);
	ck_assert(fabs(s.gen - 0.5 * (155 + 0)) < 1e-9);
	/* stale: the old rules again */
	ck_assert(fabs(qkid_supply_estimate(&s, 80, 50, 0, t + 2000 + QKID_SUPPLY_STALE_MS + 1)
		       - 80) < 1e-9);
	/* the KME counts in 128-bit blocks, qkid takes 256-bit keys */
	qkid_supply_init(&s, t);
	qkid_supply_status(&s, t, 0, 200, 1000, 128, 256, 16);
	qkid_supply_status(&s, t + 2000, 100, 400, 1000, 128, 256, 16);
	ck_assert(fabs(s.gen - 100) < 1e-9);    /* (100 + 100) keys over 2 s */
}
END_TEST

START_TEST(test_supply_not_measurable)
{
	struct qkid_supply s;
	int64_t t = 100000;
	struct qkid_peer p = { 0 };
	struct qkid_conf dc = { .rpk_min = 64 };
	struct qkid d = { .conf = &dc };
	struct qkid_sa sa = { .peer = &p, .pkt_rate = 24000 };

	/* a full store (generation pauses): no figure from spans that touch it */
	qkid_supply_init(&s, t);
	qkid_supply_status(&s, t, 0, 120, 128, 256, 256, 16);
	ck_assert(qkid_supply_store_full(&s, t));
	qkid_supply_status(&s, t + 1000, 62, 128, 128, 256, 256, 16);
	ck_assert_int_eq(s.gen_t, 0);
	ck_assert(!qkid_supply_store_full(&s, t + 1000 + QKID_SUPPLY_STALE_MS + 1));
	/* nonsense (stored above max, key size 0) ends the measurement */
	qkid_supply_status(&s, t + 2000, 62, 50, 128, 256, 256, 16);
	qkid_supply_status(&s, t + 3000, 62, 200, 128, 256, 256, 16);
	qkid_supply_status(&s, t + 4000, 62, 60, 128, 256, 256, 16);
	ck_assert_int_eq(s.gen_t, 0);
	ck_assert_uint_eq(s.unusable, 1);
	qkid_supply_status(&s, t + 5000, 62, 70, 128, 0, 256, 16);
	ck_assert_uint_eq(s.unusable, 2);
	/* a span shorter than QKID_SUPPLY_MIN_SPAN_MS: too few keys to tell */
	qkid_supply_status(&s, t + 6000, 62, 70, 128, 256, 256, 16);
	qkid_supply_status(&s, t + 6100, 64, 72, 128, 256, 256, 16);
	ck_assert_int_eq(s.gen_t, 0);
	/* another consumer drains the shared store faster than we take: the last figure stays */
	qkid_supply_status(&s, t + 7000, 100, 80, 128, 256, 256, 16);
	ck_assert(fabs(s.gen - (36 + 8) / 0.9) < 1e-6);
	qkid_supply_status(&s, t + 8000, 110, 20, 128, 256, 256, 16);
	ck_assert(fabs(s.gen - (36 + 8) / 0.9) < 1e-6);
	ck_assert_uint_eq(s.unusable, 3);
	/* a second the KME was short: its intake, and the measurement waits the hold out */
	ck_assert(fabs(qkid_supply_estimate(&s, 300, 40, 1, t + 8000) - 40) < 1e-9);
	/* ... but if qkid emptied a store in that second, no more than the link made (2026-12-03:
	 * 2359 keys/s read as the supply at 0 km, where the link made 391) */
	ck_assert(fabs(qkid_supply_estimate(&s, 300, 2359, 1, t + 8000) - s.gen) < 1e-9);
	ck_assert(fabs(qkid_supply_estimate(&s, 150, 90, 0, t + 9000) - 150) < 1e-9);
	qkid_supply_status(&s, t + 8000 + QKID_SUPPLY_LIMITED_HOLD_MS, 300, 30, 128, 256, 256, 16);
	ck_assert(fabs(qkid_supply_estimate(&s, 150, 90, 0, t + 8000 + QKID_SUPPLY_LIMITED_HOLD_MS)
		       - s.gen) < 1e-9);

	/* the shares: a full store lets the SA have its demand (24000 / 64 = 375 keys/s) over a
	 * supply figure of 155 */
	p.d = &d;
	p.sas = &sa;
	p.rate_in = 155;
	p.supply_known = 1;
	sa.registered = 1;
	qkid_supply_init(&p.supply, qkid_now_ms());
	qkid_sa_shares(&p);
	ck_assert(fabs(sa.share - 155) < 1e-6);
	qkid_supply_status(&p.supply, qkid_now_ms(), 0, 128, 128, 256, 256, 16);
	qkid_sa_shares(&p);
	ck_assert(fabs(sa.share - 375) < 1e-6);
}
END_TEST

/* The master's status request answered with code: what state the KME is in after it, and
 * what qkid asks next. */
static struct side *status_answered(enum etsi014_error_code code)
{
	struct side *m = side_new(QKI_ROLE_MASTER);
	struct qkid_kme_result *r = calloc(1, sizeof(*r));
	int64_t now = qkid_now_ms();

	ck_assert_ptr_nonnull(r);
	qkid_supply_init(&m->p.supply, now - QKID_SUPPLY_PROBE_MS);
	qkid_fetch_schedule(&m->p, now);
	ck_assert(m->kme.submitted && m->kme.type == QKID_KME_STATUS);
	r->type = QKID_KME_STATUS;
	r->code = code;
	m->kme.submitted = 0;
	m->kme.result = r;
	qkid_peer_kme_done(&m->p);
	return m;
}

/* A status request that times out is a hung KME, shown as such (CI at cef360e: the status
 * request was the one the hung KME held, its timeout was taken for "no supply figure", and the
 * next status request went first again, so qkictl never showed the KME failing); an HTTP error
 * to it only means the supply cannot be read, and a fetch goes next. */
START_TEST(test_supply_status_failure)
{
	struct side *m = status_answered(ETSI014_ERR_TIMEOUT);
	ck_assert_int_eq(m->p.kme_state, QKI_KME_BACKOFF);
	ck_assert_msg(strstr(m->p.last_error, "status: KME timed out"), "%s", m->p.last_error);
	side_free(m);

	m = status_answered(ETSI014_ERR_HTTP_OTHER);
	ck_assert_int_eq(m->p.kme_state, QKI_KME_OK);
	ck_assert_uint_eq(m->p.supply.unusable, 1);
	m->conf.peers[0].pool_target = 8;               /* something to fetch */
	qkid_fetch_schedule(&m->p, qkid_now_ms());
	ck_assert(m->kme.submitted && m->kme.type == QKID_KME_ENC);
	side_free(m);
}
END_TEST

/* The master's pending enc_keys answered: with `code`, or OK with the keys asked for (key_IDs
 * from *next on). */
#define TEST_KME_RTT_MS 3    /* the round trip enc_answer's results report */

static void enc_answer(struct side *m, enum etsi014_error_code code, unsigned *next)
{
	struct qkid_kme_result *r = calloc(1, sizeof(*r));
	ck_assert_ptr_nonnull(r);
	ck_assert(m->kme.submitted && m->kme.type == QKID_KME_ENC);
	r->type = QKID_KME_ENC;
	r->code = code;
	r->elapsed_ms = TEST_KME_RTT_MS;
	if (code == ETSI014_OK) {
		r->keys = etsi014_key_container_alloc(m->kme.number, TEST_KEY_LEN);
		ck_assert_ptr_nonnull(r->keys);
		for (unsigned i = 0; i < m->kme.number; i++) {
			char id[QKI_KEY_ID_MAX];
			key_id((*next)++, id);
			snprintf(r->keys->keys[i].key_id, sizeof(r->keys->keys[i].key_id), "%s", id);
			key_of(id, r->keys->keys[i].key);
		}
	}
	m->kme.submitted = 0;
	m->kme.result = r;
	qkid_peer_kme_done(&m->p);
}

/* At the QKD link's rate the master's KME answers "not enough key" (503): that is no failing
 * KME, and the next fetch waits as long as the link takes to make it, not the 100 ms back-off
 * (bench keys at 0 km, 2026-12-03: lumps of ~40 keys 110 ms apart emptied SA buffers of 32).
 * A 503 to a single key is a failure. */
START_TEST(test_kme_short_paced)
{
	struct side *m = side_new(QKI_ROLE_MASTER);
	int64_t now = qkid_now_ms(), next_at, t0, t1;
	unsigned next = 1;

	m->conf.peers[0].pool_target = 1000;            /* always something to fetch */
	qkid_supply_init(&m->p.supply, now);            /* status not due for a second */
	m->p.supply.gen = 400;                          /* measured at the KME: 400 keys/s */
	m->p.supply.gen_t = now;
	qkid_fetch_schedule(&m->p, now);
	ck_assert_uint_eq(m->kme.number, 16);
	enc_answer(m, ETSI014_ERR_HTTP_503, &next);
	ck_assert_int_eq(m->p.kme_state, QKI_KME_OK);
	ck_assert_uint_eq(m->p.kme_errors, 0);
	ck_assert_int_ge(m->p.short_t, now);           /* the short answer is remembered */
	ck_assert_uint_eq(m->p.batch, 8);
	next_at = m->p.kme_next;
	/* 8 keys at 400 keys/s: 20 ms (the clock may have moved a little meanwhile) */
	ck_assert_msg(next_at - now >= 19 && next_at - now <= 25, "waits %lld ms",
		      (long long)(next_at - now));
	qkid_fetch_schedule(&m->p, next_at - 1);
	ck_assert(!m->kme.submitted);
	qkid_fetch_schedule(&m->p, next_at);
	ck_assert(m->kme.submitted);
	ck_assert_uint_eq(m->kme.number, 8);
	/* the answer: the next batch (9) is asked for 22 ms after this one was, i.e. after the
	 * answer came less the request's round trip */
	t0 = qkid_now_ms();
	enc_answer(m, ETSI014_OK, &next);
	t1 = qkid_now_ms();
	ck_assert_uint_eq(m->p.pool.n, 8);
	ck_assert_uint_eq(m->p.batch, 9);
	ck_assert_msg(m->p.kme_next >= t0 - TEST_KME_RTT_MS + 22 &&
		      m->p.kme_next <= t1 - TEST_KME_RTT_MS + 22, "next fetch at %+lld ms",
		      (long long)(m->p.kme_next - t0));
	/* down to one key: a 503 then is a KME that has none, a failure with back-off */
	m->p.batch = 1;
	qkid_fetch_schedule(&m->p, m->p.kme_next);
	ck_assert_uint_eq(m->kme.number, 1);
	enc_answer(m, ETSI014_ERR_HTTP_503, &next);
	ck_assert_int_eq(m->p.kme_state, QKI_KME_BACKOFF);
	ck_assert_uint_eq(m->p.kme_errors, 1);
	side_free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkid");
	TCase *tr = tcase_create("replay"), *tf = tcase_create("fair"),
	      *tp = tcase_create("peerproto"), *tc = tcase_create("conf"),
	      *ts = tcase_create("sync"), *tsu = tcase_create("supply");
	SRunner *sr;
	int failed;

	tcase_add_test(tr, test_replay_in_order);
	tcase_add_test(tr, test_replay_gap);
	tcase_add_test(tf, test_fair_burst_does_not_starve);
	tcase_add_test(tf, test_fair_trickle_supply);
	tcase_add_test(tf, test_fair_equal_demand_equal_share);
	tcase_add_test(tf, test_fair_plenty_everyone_full);
	tcase_add_test(tf, test_fair_fastest_first);
	tcase_add_test(tf, test_fair_capacity);
	tcase_add_test(tf, test_jain);
	tcase_add_test(tf, test_fair_shares);
	tcase_add_test(tp, test_peer_seal_verify);
	tcase_add_test(tp, test_peer_session_keys);
	tcase_add_test(ts, test_sync_exchange);
	tcase_add_test(ts, test_sync_malformed);
	tcase_add_test(ts, test_sync_replay);
	tcase_add_test(ts, test_sync_out_of_order);
	tcase_add_test(ts, test_sync_sa_owner);
	tcase_add_test(ts, test_key_id_case);
	tcase_add_test(tc, test_conf_good);
	tcase_add_test(tc, test_conf_bad);
	tcase_add_test(tc, test_conf_example);
	tcase_add_test(tc, test_conf_auth_key);
	tcase_add_test(tsu, test_supply_measured);
	tcase_add_test(tsu, test_supply_not_measurable);
	tcase_add_test(tsu, test_supply_status_failure);
	tcase_add_test(tsu, test_kme_short_paced);
	suite_add_tcase(s, tr);
	suite_add_tcase(s, tf);
	suite_add_tcase(s, tp);
	suite_add_tcase(s, ts);
	suite_add_tcase(s, tc);
	suite_add_tcase(s, tsu);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
