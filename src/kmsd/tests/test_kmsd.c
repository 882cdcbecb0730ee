/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for qkd-kmsd's parts that need no network: the key store (ring, reservations,
 * expiry, bounds), configuration parsing (file, flags, defaults, validation, fibre model) and the
 * KME-to-KME link protocol on buffers (codec, handlers, framing, bad and replayed messages). */
#include "ipseq_config.h"
#include "../kmsd.h"
#include "../kmsd_link_codec.h"
#include "etsi014_codec.h"

#include <check.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void id_of(uint8_t id[16], unsigned n)
{
	memset(id, 0, 16);
	id[0] = (uint8_t)(n >> 8);
	id[1] = (uint8_t)n;
	id[15] = 0x5a;
}

START_TEST(ring_fifo_and_wrap)
{
	struct kmsd_store s;
	uint8_t id[16], key[4], ids[3 * 16], keys[3 * 4];
	unsigned i, round;

	ck_assert_int_eq(kmsd_store_init(&s, 32, 5), 0);
	for (round = 0; round < 4; round++) { /* wraps around the 5-slot ring several times */
		for (i = 0; i < 3; i++) {
			id_of(id, round * 10 + i);
			memset(key, (int)(round * 10 + i), sizeof(key));
			ck_assert_int_eq(kmsd_store_push(&s, id, key), 0);
		}
		ck_assert_uint_eq(s.count, 3);
		ck_assert_int_eq(kmsd_store_pop(&s, 3, NULL, ids, keys), 0);
		for (i = 0; i < 3; i++) {
			id_of(id, round * 10 + i);
			ck_assert(memcmp(ids + i * 16, id, 16) == 0);
			ck_assert_uint_eq(keys[i * 4], round * 10 + i);
		}
	}
	ck_assert_uint_eq(s.stats.generated_blocks, 12);
	ck_assert_uint_eq(s.stats.consumed_blocks, 12);
	kmsd_store_destroy(&s);
}
END_TEST

START_TEST(ring_bounds)
{
	struct kmsd_store s;
	uint8_t id[16], key[32] = {1};
	unsigned i;

	ck_assert_int_eq(kmsd_store_init(&s, 256, 4), 0);
	for (i = 0; i < 4; i++) {
		id_of(id, i);
		ck_assert_int_eq(kmsd_store_push(&s, id, key), 0);
	}
	id_of(id, 99);
	ck_assert_int_eq(kmsd_store_push(&s, id, key), -1); /* max_key_count holds */
	ck_assert_uint_eq(s.count, 4);
	ck_assert_int_eq(kmsd_store_pop(&s, 5, NULL, NULL, NULL), -1); /* not enough */
	ck_assert_uint_eq(s.count, 4);
	kmsd_store_flush(&s);
	ck_assert_uint_eq(s.count, 0);
	ck_assert_uint_eq(s.stats.flushed_blocks, 4);
	ck_assert_int_eq(kmsd_store_resize(&s, 12, 4), -1); /* not a multiple of 8 */
	ck_assert_int_eq(kmsd_store_resize(&s, 512, 8), 0);
	ck_assert_uint_eq(s.block_bytes, 64);
	kmsd_store_destroy(&s);
}
END_TEST

START_TEST(ring_pop_verifies_ids)
{
	struct kmsd_store s;
	uint8_t id[16], key[8] = {0}, want[2 * 16];

	ck_assert_int_eq(kmsd_store_init(&s, 64, 8), 0);
	id_of(id, 1);
	kmsd_store_push(&s, id, key);
	id_of(id, 2);
	kmsd_store_push(&s, id, key);
	id_of(want, 1);
	id_of(want + 16, 3); /* the head holds 1, 2: a mirror that diverged */
	ck_assert_int_eq(kmsd_store_pop(&s, 2, want, NULL, NULL), -1);
	ck_assert_uint_eq(s.count, 2); /* nothing removed */
	id_of(want + 16, 2);
	ck_assert_int_eq(kmsd_store_pop(&s, 2, want, NULL, NULL), 0);
	ck_assert_uint_eq(s.count, 0);
	kmsd_store_destroy(&s);
}
END_TEST

START_TEST(reservations)
{
	struct kmsd_store s;
	uint8_t id[16], key[32];
	struct kmsd_reserved_key *rk;
	unsigned i;

	ck_assert_int_eq(kmsd_store_init(&s, 256, 3), 0); /* at most 3 reservations */
	memset(key, 0xab, sizeof(key));
	for (i = 0; i < 3; i++) {
		id_of(id, i);
		ck_assert_int_eq(kmsd_store_reserve(&s, id, "SAE_A", "SAE_B", key, 32, 100), 0);
	}
	id_of(id, 1);
	/* duplicate */
	ck_assert_int_eq(kmsd_store_reserve(&s, id, "SAE_A", "SAE_B", key, 32, 100), -1);
	rk = kmsd_store_find_reserved(&s, id);
	ck_assert_ptr_nonnull(rk);
	ck_assert_str_eq(rk->master, "SAE_A");
	ck_assert_str_eq(rk->slave, "SAE_B");
	ck_assert_uint_eq(rk->len, 32);
	ck_assert_uint_eq(rk->key[31], 0xab);
	/* a fourth evicts the oldest (id 0) */
	id_of(id, 3);
	ck_assert_int_eq(kmsd_store_reserve(&s, id, "SAE_A", "SAE_B", key, 16, 100), 0);
	ck_assert_uint_eq(s.n_reserved, 3);
	id_of(id, 0);
	ck_assert_ptr_null(kmsd_store_find_reserved(&s, id));
	ck_assert_uint_eq(s.stats.expired_keys, 1);
	/* remove from the middle keeps the age list sound */
	id_of(id, 2);
	kmsd_store_remove_reserved(&s, kmsd_store_find_reserved(&s, id));
	ck_assert_uint_eq(s.n_reserved, 2);
	ck_assert_uint_eq(kmsd_store_expire(&s, ipseq_now_ms()), 0);
	/* a 100 s lifetime still holds at 99 s, and is over at 100 s */
	ck_assert_uint_eq(kmsd_store_expire(&s, ipseq_now_ms() + 99 * 1000), 0);
	ck_assert_uint_eq(kmsd_store_expire(&s, ipseq_now_ms() + 100 * 1000 + 1), 2);
	ck_assert_uint_eq(s.n_reserved, 0);
	ck_assert_ptr_null(s.oldest);
	ck_assert_ptr_null(s.newest);
	kmsd_store_destroy(&s);
}
END_TEST

START_TEST(blocks_per_key_math)
{
	struct kmsd_store s;

	ck_assert_int_eq(kmsd_store_init(&s, 256, 1), 0);
	ck_assert_uint_eq(kmsd_blocks_per_key(&s, 64), 1);
	ck_assert_uint_eq(kmsd_blocks_per_key(&s, 256), 1);
	ck_assert_uint_eq(kmsd_blocks_per_key(&s, 264), 2);
	ck_assert_uint_eq(kmsd_blocks_per_key(&s, 8192), 32);
	kmsd_store_destroy(&s);
}
END_TEST

/* Every key_ID of a request is in the log, however many: a KME's log is what an audit for key
 * reuse reads (scripts/soak). 40 key_IDs used to end in ",..." after the 13th. */
START_TEST(log_names_every_key_id)
{
	uint8_t ids[40][16];
	char path[] = "/tmp/test_kmsd_log.XXXXXX", line[1200], idtext[ETSI014_KEY_ID_LEN + 1];
	int fd = mkstemp(path), saved = dup(2), lines = 0, named = 0;
	unsigned i;
	FILE *f;

	ck_assert_int_ge(fd, 0);
	for (i = 0; i < 40; i++)
		id_of(ids[i], i + 1);
	ipseq_log_set_level(IPSEQ_LOG_INFO);
	fflush(stderr);
	dup2(fd, 2);
	kmsd_log_ids(IPSEQ_LOG_INFO, "enc_keys: SAE_A -> SAE_B: 40 key(s) of 256 bits",
		     ids[0], 40, 16);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	ipseq_log_set_level(IPSEQ_LOG_ERR);
	f = fdopen(fd, "r");
	ck_assert_ptr_nonnull(f);
	rewind(f);
	while (fgets(line, sizeof(line), f)) {
		lines++;
		ck_assert_ptr_null(strstr(line, "..."));
		ck_assert_uint_lt(strlen(line), 1023);
	}
	ck_assert_int_eq(lines, 3);
	for (i = 0; i < 40; i++) {
		etsi014_uuid_format(ids[i], idtext);
		rewind(f);
		while (fgets(line, sizeof(line), f))
			if (strstr(line, idtext)) {
				named++;
				break;
			}
	}
	ck_assert_int_eq(named, 40);
	fclose(f);
	unlink(path);
}
END_TEST

/* --- configuration ----------------------------------------------------------------------------- */

static char *write_conf(const char *text)
{
	static char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/tmp/kmsd-test.XXXXXX");
	close(mkstemp(path));
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static int load(struct kmsd_config *cfg, int argc, const char **argv)
{
	FILE *saved = stderr;
	int rc;

	stderr = fopen("/dev/null", "w"); /* the error messages are expected */
	rc = kmsd_config_load(cfg, argc, (char **)argv);
	fclose(stderr);
	stderr = saved;
	return rc;
}

START_TEST(config_file_and_flags)
{
	struct kmsd_config cfg;
	char *path = write_conf("# comment\n\n  kme_id = KME_X\npeer_kme_id=KME_Y\n"
				"cert = c.pem\nkey = k.pem\nca = ca.pem\nsae = S1\nsae = S2\n"
				"peer_sae = P1\nkey_rate = 1234.5\nlink_mode = connect\n");
	const char *argv[] = {"qkd-kmsd", "--config", path, "--sae", "S3", "--max-key-count=77",
			      "--log_level", "debug"};

	ck_assert_int_eq(load(&cfg, 8, argv), 0);
	ck_assert_str_eq(cfg.kme_id, "KME_X");
	ck_assert_str_eq(cfg.peer_kme_id, "KME_Y");
	ck_assert_uint_eq(cfg.n_saes, 1); /* the flag list replaces the file's */
	ck_assert_str_eq(cfg.saes[0], "S3");
	ck_assert_uint_eq(cfg.n_peer_saes, 1);
	ck_assert_uint_eq(cfg.max_key_count, 77);
	ck_assert_int_eq(cfg.link_mode, KMSD_LINK_CONNECT);
	ck_assert_int_eq(cfg.log_level, IPSEQ_LOG_DEBUG);
	ck_assert(fabs(kmsd_config_effective_rate(&cfg) - 1234.5) < 1e-9);
	ck_assert_uint_eq(cfg.key_size, 256); /* default */
	ck_assert(kmsd_config_is_local_sae(&cfg, "S3"));
	ck_assert(!kmsd_config_is_local_sae(&cfg, "S1"));
	ck_assert(kmsd_config_is_peer_sae(&cfg, "P1"));
	kmsd_config_free(&cfg);
	unlink(path);
}
END_TEST

START_TEST(config_fibre_model)
{
	struct kmsd_config cfg;
	const char *argv[] = {"qkd-kmsd", "--cert", "c", "--key", "k", "--ca", "a", "--sae", "A",
			      "--peer-sae", "B", "--fibre-length-km", "50", "--reference-rate", "1e6"};

	ck_assert_int_eq(load(&cfg, 15, argv), 0);
	/* 50 km * 0.2 dB/km = 10 dB -> a tenth */
	ck_assert(fabs(kmsd_config_effective_rate(&cfg) - 1e5) < 1e-3);
	kmsd_config_free(&cfg);
}
END_TEST

static const char *bad_flags[][4] = {
	{"--key-size", "100"},          /* not a multiple of 8 */
	{"--key-size", "32"},           /* below min_key_size 64 */
	{"--min-key-size", "512"},      /* above key_size */
	{"--max-key-count", "0"},
	{"--max-key-count", "-5"},
	{"--max-key-per-request", "5000"},
	{"--fail-rate", "1.5"},
	{"--key-rate", "abc"},
	{"--key-rate", "-1"},
	{"--link-mode", "both"},
	{"--log-level", "loud"},
	{"--sae", "has/slash"},
	{"--peer-kme-id", "KME_A"},     /* same as kme_id */
	{"--no-such-flag", "1"},
	{"--reservation-lifetime", "0"},
};

START_TEST(config_rejects)
{
	struct kmsd_config cfg;
	const char *argv[] = {"qkd-kmsd", "--cert", "c", "--key", "k", "--ca", "a", "--sae", "A",
			      "--peer-sae", "B", bad_flags[_i][0], bad_flags[_i][1]};

	ck_assert_msg(load(&cfg, 13, argv) == -1, "accepted %s %s", bad_flags[_i][0],
		      bad_flags[_i][1]);
	kmsd_config_free(&cfg);
}
END_TEST

START_TEST(config_rejects_files)
{
	static const char *bad[] = {
		"cert = c\nkey = k\nca = a\nsae = A\npeer_sae = B\nnonsense\n",
		"cert = c\nkey = k\nca = a\nsae = A\npeer_sae = B\nunknown_setting = 1\n",
		"cert = c\nkey = k\nca = a\nsae = A\n", /* no peer_sae */
		"key = k\nca = a\nsae = A\npeer_sae = B\n", /* no cert */
	};
	struct kmsd_config cfg;
	char *path = write_conf(bad[_i]);
	const char *argv[] = {"qkd-kmsd", "--config", path};

	ck_assert_int_eq(load(&cfg, 3, argv), -1);
	kmsd_config_free(&cfg);
	unlink(path);
}
END_TEST

START_TEST(config_missing_file)
{
	struct kmsd_config cfg;
	const char *argv[] = {"qkd-kmsd", "--config", "/nonexistent/kmsd.conf"};

	ck_assert_int_eq(load(&cfg, 3, argv), -1);
	kmsd_config_free(&cfg);
}
END_TEST

/* --- link protocol, on buffers ----------------------------------------------------------------- */

/* One side of a link without socket, TLS or thread: frames go into l->rbuf by hand, answers are
 * taken from the send queue. KME_A's SAE is SAE_A, the peer KME's SAE is SAE_B. */
struct side {
	struct kmsd_config cfg;
	struct kmsd_kme kme;
};

static void side_init(struct side *sd, int master)
{
	struct kmsd_link *l = &sd->kme.link;

	memset(sd, 0, sizeof(*sd));
	sd->cfg.kme_id = master ? "KME_A" : "KME_B";
	sd->cfg.peer_kme_id = master ? "KME_B" : "KME_A";
	sd->cfg.saes[0] = master ? "SAE_A" : "SAE_B";
	sd->cfg.n_saes = 1;
	sd->cfg.peer_saes[0] = master ? "SAE_B" : "SAE_A";
	sd->cfg.n_peer_saes = 1;
	sd->cfg.reservation_lifetime = 100;
	sd->kme.cfg = &sd->cfg;
	sd->kme.is_link_master = master;
	ck_assert_int_eq(kmsd_store_init(&sd->kme.store, 256, 16), 0);
	l->kme = &sd->kme;
	l->fd = l->listen_fd = -1;
	ck_assert_int_eq(pipe2(l->wake, O_NONBLOCK), 0);
	pthread_mutex_init(&l->qlock, NULL);
	pthread_mutex_init(&l->plock, NULL);
	atomic_store(&l->up, 1);
}

static void side_free(struct side *sd)
{
	struct kmsd_link *l = &sd->kme.link;

	kmsd_link_free_msgs(l->qhead);
	free(l->rbuf);
	close(l->wake[0]);
	close(l->wake[1]);
	pthread_mutex_destroy(&l->qlock);
	pthread_mutex_destroy(&l->plock);
	kmsd_store_destroy(&sd->kme.store);
}

/* Append raw bytes to the receive buffer, as read_available does. */
static void feed_raw(struct side *sd, const void *d, size_t n)
{
	struct kmsd_link *l = &sd->kme.link;

	if (l->rlen + n > l->rcap) {
		l->rcap = l->rlen + n;
		l->rbuf = realloc(l->rbuf, l->rcap);
		ck_assert_ptr_nonnull(l->rbuf);
	}
	memcpy(l->rbuf + l->rlen, d, n);
	l->rlen += n;
}

/* Append one frame: u32 big-endian length of type + payload, u8 type, payload. */
static void feed(struct side *sd, uint8_t type, const struct kmsd_wbuf *w)
{
	size_t n = w ? w->len : 0;
	uint8_t hdr[5] = {(uint8_t)((n + 1) >> 24), (uint8_t)((n + 1) >> 16),
			  (uint8_t)((n + 1) >> 8), (uint8_t)(n + 1), type};

	feed_raw(sd, hdr, 5);
	if (n)
		feed_raw(sd, w->p, n);
}

/* Take the oldest queued message; its type, and its payload as a reader over *m (free it). */
static uint8_t take(struct side *sd, struct kmsd_out_msg **m, struct kmsd_rbuf *r)
{
	struct kmsd_link *l = &sd->kme.link;
	uint32_t len;

	*m = l->qhead;
	ck_assert_msg(*m != NULL, "no message queued");
	l->qhead = (*m)->next;
	if (!l->qhead)
		l->qtail = NULL;
	(*m)->next = NULL;
	len = (uint32_t)(*m)->data[0] << 24 | (uint32_t)(*m)->data[1] << 16 |
	      (uint32_t)(*m)->data[2] << 8 | (*m)->data[3];
	ck_assert_uint_eq(len + 4, (*m)->len);
	memset(r, 0, sizeof(*r));
	r->p = (*m)->data + 5;
	r->len = len - 1;
	return (*m)->data[4];
}

/* Move the oldest message queued at from into to's receive buffer, as the wire would. */
static uint8_t carry(struct side *from, struct side *to)
{
	struct kmsd_out_msg *m;
	struct kmsd_rbuf r;
	uint8_t type = take(from, &m, &r);

	feed_raw(to, m->data, m->len);
	kmsd_link_free_msgs(m);
	return type;
}

/* n blocks with IDs id_of(first..), key bytes all equal to their number */
static void keys_payload(struct kmsd_wbuf *w, unsigned first, unsigned n)
{
	uint8_t id[16], key[32];
	unsigned i;

	kmsd_w_u16(w, (uint16_t)n);
	for (i = first; i < first + n; i++) {
		id_of(id, i);
		memset(key, (int)i, sizeof(key));
		kmsd_w_bytes(w, id, 16);
		kmsd_w_bytes(w, key, sizeof(key));
	}
}

static void push_blocks(struct side *sd, unsigned first, unsigned n)
{
	uint8_t id[16], key[32];
	unsigned i;

	for (i = first; i < first + n; i++) {
		id_of(id, i);
		memset(key, (int)i, sizeof(key));
		ck_assert_int_eq(kmsd_store_push(&sd->kme.store, id, key), 0);
	}
}

static void alloc_req(struct kmsd_wbuf *w, uint32_t req, unsigned number, unsigned size,
		      const char *master, const char *slave)
{
	kmsd_w_u32(w, req);
	kmsd_w_u16(w, (uint16_t)number);
	kmsd_w_u32(w, size);
	kmsd_w_str(w, master);
	kmsd_w_str(w, slave);
}

/* RESERVE / ALLOC_REP body naming blocks id_of(first..first+n) */
static void ids_of(struct kmsd_wbuf *w, unsigned first, unsigned n)
{
	uint8_t id[16];
	unsigned i;

	for (i = first; i < first + n; i++) {
		id_of(id, i);
		kmsd_w_bytes(w, id, 16);
	}
}

START_TEST(link_keys_fill_the_slave)
{
	struct side b;
	struct kmsd_wbuf w = {0};
	uint8_t ids[3 * 16], keys[3 * 32], id[16];

	side_init(&b, 0);
	keys_payload(&w, 10, 3);
	feed(&b, KMSD_MSG_KEYS, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_uint_eq(b.kme.link.rlen, 0);
	ck_assert_uint_eq(b.kme.store.count, 3);
	ck_assert_int_eq(kmsd_store_pop(&b.kme.store, 3, NULL, ids, keys), 0);
	id_of(id, 12);
	ck_assert(memcmp(ids + 2 * 16, id, 16) == 0);
	ck_assert_uint_eq(keys[2 * 32], 12);
	ck_assert_ptr_null(b.kme.link.qhead); /* KEYS is not answered */
	kmsd_w_free(&w);
	side_free(&b);
}
END_TEST

/* The master answers ALLOC_REQ from the head of its store and reserves the keys for its SAE. */
START_TEST(link_alloc_req_at_master)
{
	struct side a;
	struct kmsd_wbuf w = {0};
	struct kmsd_out_msg *m;
	struct kmsd_rbuf r;
	struct kmsd_reserved_key *rk;
	uint8_t id[16];

	side_init(&a, 1);
	push_blocks(&a, 1, 5);
	alloc_req(&w, 77, 2, 256, "SAE_B", "SAE_A");
	feed(&a, KMSD_MSG_ALLOC_REQ, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert_uint_eq(a.kme.store.count, 3);
	ck_assert_uint_eq(a.kme.store.n_reserved, 2);
	id_of(id, 2);
	rk = kmsd_store_find_reserved(&a.kme.store, id);
	ck_assert_ptr_nonnull(rk);
	ck_assert_str_eq(rk->master, "SAE_B");
	ck_assert_str_eq(rk->slave, "SAE_A");
	ck_assert_uint_eq(rk->len, 32);
	ck_assert_uint_eq(rk->key[0], 2);

	ck_assert_uint_eq(take(&a, &m, &r), KMSD_MSG_ALLOC_REP);
	ck_assert_uint_eq(kmsd_r_u32(&r), 77);  /* request id */
	ck_assert_uint_eq(kmsd_r_u16(&r), 0);   /* status */
	ck_assert_uint_eq(kmsd_r_u16(&r), 2);   /* number */
	ck_assert_uint_eq(kmsd_r_u32(&r), 256); /* size */
	ck_assert_uint_eq(kmsd_r_u16(&r), 1);   /* blocks per key */
	id_of(id, 1);
	ck_assert(memcmp(kmsd_r_bytes(&r, 16), id, 16) == 0);
	id_of(id, 2);
	ck_assert(memcmp(kmsd_r_bytes(&r, 16), id, 16) == 0);
	ck_assert(!r.err && r.off == r.len);
	kmsd_link_free_msgs(m);
	kmsd_w_free(&w);
	side_free(&a);
}
END_TEST

/* Refusals are answers, not errors: not enough blocks (503), a pair not registered here (401). */
START_TEST(link_alloc_req_refused)
{
	static const struct {
		unsigned number, stored;
		const char *master, *slave;
		unsigned status;
	} c[] = {
		{4, 3, "SAE_B", "SAE_A", 503},
		{1, 3, "SAE_X", "SAE_A", 401},
		{1, 3, "SAE_B", "SAE_Y", 401},
	};
	struct side a;
	struct kmsd_wbuf w = {0};
	struct kmsd_out_msg *m;
	struct kmsd_rbuf r;

	side_init(&a, 1);
	push_blocks(&a, 1, c[_i].stored);
	alloc_req(&w, 5, c[_i].number, 256, c[_i].master, c[_i].slave);
	feed(&a, KMSD_MSG_ALLOC_REQ, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert_uint_eq(a.kme.store.count, c[_i].stored); /* nothing taken */
	ck_assert_uint_eq(a.kme.store.n_reserved, 0);
	ck_assert_uint_eq(take(&a, &m, &r), KMSD_MSG_ALLOC_REP);
	ck_assert_uint_eq(kmsd_r_u32(&r), 5);
	ck_assert_uint_eq(kmsd_r_u16(&r), c[_i].status);
	kmsd_link_free_msgs(m);
	kmsd_w_free(&w);
	side_free(&a);
}
END_TEST

/* The slave's HTTP thread waits on a pending entry; ALLOC_REP fills it with the named blocks. */
START_TEST(link_alloc_rep_at_slave)
{
	struct side b;
	struct kmsd_wbuf w = {0};
	struct kmsd_link_pending *p;
	uint8_t id[16];

	side_init(&b, 0);
	push_blocks(&b, 1, 4);
	p = kmsd_link_pending_new(&b.kme.link);
	p->nblocks = 2;
	p->ids = calloc(2, 16);
	p->bytes_len = 2 * 32;
	p->bytes = calloc(1, p->bytes_len);
	kmsd_w_u32(&w, p->id);
	kmsd_w_u16(&w, 0);
	kmsd_w_u16(&w, 2);
	kmsd_w_u32(&w, 256);
	kmsd_w_u16(&w, 1);
	ids_of(&w, 1, 2);
	feed(&b, KMSD_MSG_ALLOC_REP, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_int_eq(kmsd_link_pending_wait(&b.kme.link, p, 1000), KMSD_LINK_OK);
	id_of(id, 2);
	ck_assert(memcmp(p->ids + 16, id, 16) == 0);
	ck_assert_uint_eq(p->bytes[32], 2);
	ck_assert_uint_eq(b.kme.store.count, 2);
	kmsd_link_pending_release(&b.kme.link, p);

	/* the same answer again (a replay): the blocks are gone, the mirrors diverged */
	feed(&b, KMSD_MSG_ALLOC_REP, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), -1);
	ck_assert_uint_eq(b.kme.store.count, 2);
	kmsd_w_free(&w);
	side_free(&b);
}
END_TEST

/* A refusal completes the request with the peer's status; an answer nobody waits for any more
 * still removes the blocks, as the master removed them. */
START_TEST(link_alloc_rep_refusal_and_late_answer)
{
	struct side b;
	struct kmsd_wbuf w = {0};
	struct kmsd_link_pending *p;

	side_init(&b, 0);
	push_blocks(&b, 1, 4);
	p = kmsd_link_pending_new(&b.kme.link);
	kmsd_w_u32(&w, p->id);
	kmsd_w_u16(&w, 401);
	kmsd_w_u16(&w, 1);
	kmsd_w_u32(&w, 256);
	kmsd_w_u16(&w, 0);
	feed(&b, KMSD_MSG_ALLOC_REP, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_int_eq(kmsd_link_pending_wait(&b.kme.link, p, 1000), KMSD_LINK_UNAUTHORIZED);
	ck_assert_uint_eq(b.kme.store.count, 4);
	kmsd_link_pending_release(&b.kme.link, p);

	w.len = 0;
	kmsd_w_u32(&w, 12345); /* no such request */
	kmsd_w_u16(&w, 0);
	kmsd_w_u16(&w, 1);
	kmsd_w_u32(&w, 512);   /* two blocks per key */
	kmsd_w_u16(&w, 2);
	ids_of(&w, 1, 2);
	feed(&b, KMSD_MSG_ALLOC_REP, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_uint_eq(b.kme.store.count, 2);
	kmsd_w_free(&w);
	side_free(&b);
}
END_TEST

/* RESERVE at the slave: the named head blocks become a key for its SAE, acknowledged. */
START_TEST(link_reserve_at_slave)
{
	struct side b;
	struct kmsd_wbuf w = {0};
	struct kmsd_out_msg *m;
	struct kmsd_rbuf r;
	struct kmsd_reserved_key *rk;
	uint8_t id[16];

	side_init(&b, 0);
	push_blocks(&b, 1, 4);
	kmsd_w_u32(&w, 9);
	kmsd_w_u16(&w, 1);
	kmsd_w_u32(&w, 512);
	kmsd_w_u16(&w, 2);
	kmsd_w_str(&w, "SAE_A");
	kmsd_w_str(&w, "SAE_B");
	ids_of(&w, 1, 2);
	feed(&b, KMSD_MSG_RESERVE, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_uint_eq(b.kme.store.count, 2);
	id_of(id, 1);
	rk = kmsd_store_find_reserved(&b.kme.store, id);
	ck_assert_ptr_nonnull(rk);
	ck_assert_uint_eq(rk->len, 64); /* the concatenation of blocks 1 and 2 */
	ck_assert_uint_eq(rk->key[0], 1);
	ck_assert_uint_eq(rk->key[32], 2);
	ck_assert_uint_eq(take(&b, &m, &r), KMSD_MSG_RESERVE_ACK);
	ck_assert_uint_eq(kmsd_r_u32(&r), 9);
	ck_assert_uint_eq(kmsd_r_u16(&r), 0);
	kmsd_link_free_msgs(m);

	/* out of order: blocks 4 and 3 are stored, but 4 is not at the head */
	w.len = 0;
	kmsd_w_u32(&w, 10);
	kmsd_w_u16(&w, 1);
	kmsd_w_u32(&w, 256);
	kmsd_w_u16(&w, 1);
	kmsd_w_str(&w, "SAE_A");
	kmsd_w_str(&w, "SAE_B");
	ids_of(&w, 4, 1);
	feed(&b, KMSD_MSG_RESERVE, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), -1);
	ck_assert_uint_eq(b.kme.store.count, 2);
	ck_assert_ptr_null(b.kme.link.qhead);
	kmsd_w_free(&w);
	side_free(&b);
}
END_TEST

/* RESERVE for a pair not registered here: the blocks go (as at the master), no key is kept,
 * and the ack says 401. */
START_TEST(link_reserve_unregistered_pair)
{
	struct side b;
	struct kmsd_wbuf w = {0};
	struct kmsd_out_msg *m;
	struct kmsd_rbuf r;

	side_init(&b, 0);
	push_blocks(&b, 1, 2);
	kmsd_w_u32(&w, 3);
	kmsd_w_u16(&w, 1);
	kmsd_w_u32(&w, 256);
	kmsd_w_u16(&w, 1);
	kmsd_w_str(&w, "SAE_A");
	kmsd_w_str(&w, "SAE_Z");
	ids_of(&w, 1, 1);
	feed(&b, KMSD_MSG_RESERVE, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_uint_eq(b.kme.store.count, 1);
	ck_assert_uint_eq(b.kme.store.n_reserved, 0);
	ck_assert_uint_eq(take(&b, &m, &r), KMSD_MSG_RESERVE_ACK);
	ck_assert_uint_eq(kmsd_r_u32(&r), 3);
	ck_assert_uint_eq(kmsd_r_u16(&r), 401);
	kmsd_link_free_msgs(m);
	kmsd_w_free(&w);
	side_free(&b);
}
END_TEST

/* RESERVE_ACK completes the master's request once; a replayed ack finds nobody and is ignored. */
START_TEST(link_reserve_ack_at_master)
{
	struct side a;
	struct kmsd_wbuf w = {0};
	struct kmsd_link_pending *p;

	side_init(&a, 1);
	p = kmsd_link_pending_new(&a.kme.link);
	kmsd_w_u32(&w, p->id);
	kmsd_w_u16(&w, 0);
	feed(&a, KMSD_MSG_RESERVE_ACK, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert(p->done);
	ck_assert_int_eq(p->status, KMSD_LINK_OK);
	p->status = KMSD_LINK_DOWN; /* a replay must not touch a completed request */
	feed(&a, KMSD_MSG_RESERVE_ACK, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert_int_eq(p->status, KMSD_LINK_DOWN);
	kmsd_link_pending_release(&a.kme.link, p);
	kmsd_w_free(&w);
	side_free(&a);
}
END_TEST

/* A frame arrives in pieces: nothing happens until it is whole; two frames in one read. */
START_TEST(link_truncated_frames_wait)
{
	struct side b;
	struct kmsd_wbuf w = {0}, w2 = {0};
	struct kmsd_link *l = &b.kme.link;
	uint8_t *all;
	size_t n;

	side_init(&b, 0);
	keys_payload(&w, 1, 2);
	feed(&b, KMSD_MSG_KEYS, &w);
	keys_payload(&w2, 3, 1);
	feed(&b, KMSD_MSG_KEYS, &w2);
	n = l->rlen;
	all = malloc(n);
	memcpy(all, l->rbuf, n);
	l->rlen = 0;
	feed_raw(&b, all, 3);                 /* not even the length */
	ck_assert_int_eq(kmsd_link_process(l), 0);
	ck_assert_uint_eq(l->rlen, 3);
	feed_raw(&b, all + 3, 40);            /* half of the first frame */
	ck_assert_int_eq(kmsd_link_process(l), 0);
	ck_assert_uint_eq(l->rlen, 43);
	ck_assert_uint_eq(b.kme.store.count, 0);
	feed_raw(&b, all + 43, n - 43 - 10);  /* the first frame and most of the second */
	ck_assert_int_eq(kmsd_link_process(l), 0);
	ck_assert_uint_eq(b.kme.store.count, 2);
	feed_raw(&b, all + n - 10, 10);
	ck_assert_int_eq(kmsd_link_process(l), 0);
	ck_assert_uint_eq(b.kme.store.count, 3);
	ck_assert_uint_eq(l->rlen, 0);
	free(all);
	kmsd_w_free(&w);
	kmsd_w_free(&w2);
	side_free(&b);
}
END_TEST

/* Whole frames whose payload is cut short, or says more than it carries: the link drops. */
START_TEST(link_short_payloads_drop)
{
	static const struct {
		int master;
		uint8_t type;
		size_t keep;  /* bytes of the full payload that are sent */
	} c[] = {
		{0, KMSD_MSG_KEYS, 1},          /* count cut */
		{0, KMSD_MSG_KEYS, 2 + 16 + 20}, /* first key cut */
		{1, KMSD_MSG_ALLOC_REQ, 9},     /* size cut */
		{1, KMSD_MSG_ALLOC_REQ, 16},    /* slave SAE cut */
		{0, KMSD_MSG_ALLOC_REP, 14 + 15}, /* block ID cut */
		{0, KMSD_MSG_RESERVE, 12},      /* SAE names missing */
		{1, KMSD_MSG_RESERVE_ACK, 5},   /* status cut */
		{0, KMSD_MSG_CONSUMED, 2 + 8},  /* key_ID cut */
	};
	struct side sd;
	struct kmsd_wbuf w = {0}, cut = {0};
	struct kmsd_link_pending *p;

	side_init(&sd, c[_i].master);
	push_blocks(&sd, 1, 4);
	p = kmsd_link_pending_new(&sd.kme.link);
	switch (c[_i].type) {
	case KMSD_MSG_KEYS: keys_payload(&w, 10, 2); break;
	case KMSD_MSG_ALLOC_REQ: alloc_req(&w, 1, 1, 256, "SAE_B", "SAE_A"); break;
	case KMSD_MSG_ALLOC_REP:
		kmsd_w_u32(&w, p->id);
		kmsd_w_u16(&w, 0);
		kmsd_w_u16(&w, 1);
		kmsd_w_u32(&w, 256);
		kmsd_w_u16(&w, 1);
		ids_of(&w, 1, 1);
		break;
	case KMSD_MSG_RESERVE:
		kmsd_w_u32(&w, 1);
		kmsd_w_u16(&w, 1);
		kmsd_w_u32(&w, 256);
		kmsd_w_u16(&w, 1);
		kmsd_w_str(&w, "SAE_A");
		kmsd_w_str(&w, "SAE_B");
		ids_of(&w, 1, 1);
		break;
	case KMSD_MSG_RESERVE_ACK:
		kmsd_w_u32(&w, p->id);
		kmsd_w_u16(&w, 0);
		break;
	case KMSD_MSG_CONSUMED:
		kmsd_w_u16(&w, 1);
		ids_of(&w, 1, 1);
		break;
	}
	ck_assert_uint_lt(c[_i].keep, w.len);
	kmsd_w_bytes(&cut, w.p, c[_i].keep);
	feed(&sd, c[_i].type, &cut);
	ck_assert_int_eq(kmsd_link_process(&sd.kme.link), -1);
	ck_assert_uint_eq(sd.kme.store.count, 4); /* nothing applied */
	ck_assert(!p->done);
	ck_assert_ptr_null(sd.kme.link.qhead);
	kmsd_link_pending_release(&sd.kme.link, p);
	kmsd_w_free(&w);
	kmsd_w_free(&cut);
	side_free(&sd);
}
END_TEST

/* Types the receiving side must never get: unknown ones, HELLO after the handshake, and
 * messages of the other direction (the slave never allocates, the master never mirrors). */
START_TEST(link_unexpected_types_drop)
{
	static const struct {
		int master;
		uint8_t type;
	} c[] = {
		{0, 0}, {1, 0}, {0, 8}, {1, 99}, {0, 255},
		{0, KMSD_MSG_HELLO}, {1, KMSD_MSG_HELLO},
		{1, KMSD_MSG_KEYS}, {0, KMSD_MSG_ALLOC_REQ}, {1, KMSD_MSG_ALLOC_REP},
		{1, KMSD_MSG_RESERVE}, {0, KMSD_MSG_RESERVE_ACK},
	};
	struct side sd;
	struct kmsd_wbuf w = {0};

	side_init(&sd, c[_i].master);
	push_blocks(&sd, 1, 2);
	keys_payload(&w, 5, 1); /* a payload some type could take */
	feed(&sd, c[_i].type, &w);
	ck_assert_int_eq(kmsd_link_process(&sd.kme.link), -1);
	ck_assert_uint_eq(sd.kme.store.count, 2);
	ck_assert_ptr_null(sd.kme.link.qhead);
	kmsd_w_free(&w);
	side_free(&sd);
}
END_TEST

/* Length fields: zero and above KMSD_LINK_MSG_MAX drop the link before any payload arrives;
 * KEYS that do not fit the store or an ALLOC_REQ beyond the request limits drop it too. */
START_TEST(link_oversize_lengths_drop)
{
	struct side b, a;
	struct kmsd_wbuf w = {0};
	uint8_t zero[5] = {0, 0, 0, 0, KMSD_MSG_KEYS};
	uint32_t big = KMSD_LINK_MSG_MAX + 1;
	uint8_t huge[5] = {(uint8_t)(big >> 24), (uint8_t)(big >> 16), (uint8_t)(big >> 8),
			   (uint8_t)big, KMSD_MSG_KEYS};

	side_init(&b, 0);
	feed_raw(&b, zero, sizeof(zero));
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), -1);
	b.kme.link.rlen = 0;
	feed_raw(&b, huge, sizeof(huge));
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), -1);
	b.kme.link.rlen = 0;
	keys_payload(&w, 1, 17); /* the store holds 16 */
	feed(&b, KMSD_MSG_KEYS, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), -1);
	side_free(&b);

	side_init(&a, 1);
	push_blocks(&a, 1, 4);
	w.len = 0;
	alloc_req(&w, 1, KMSD_PER_REQUEST_MAX + 1, 256, "SAE_B", "SAE_A");
	feed(&a, KMSD_MSG_ALLOC_REQ, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), -1);
	a.kme.link.rlen = 0;
	w.len = 0;
	alloc_req(&w, 1, 1, ETSI014_KEY_BITS_MAX + 8, "SAE_B", "SAE_A");
	feed(&a, KMSD_MSG_ALLOC_REQ, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), -1);
	a.kme.link.rlen = 0;
	w.len = 0;
	alloc_req(&w, 1, 1, 100, "SAE_B", "SAE_A"); /* not a multiple of 8 */
	feed(&a, KMSD_MSG_ALLOC_REQ, &w);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), -1);
	ck_assert_uint_eq(a.kme.store.count, 4);
	ck_assert_ptr_null(a.kme.link.qhead);
	kmsd_w_free(&w);
	side_free(&a);
}
END_TEST

/* A whole exchange between a master and a slave, frames carried from one queue to the other:
 * keys flow, a slave-side request is allocated by the master, both stores stay identical. */
START_TEST(link_master_and_slave_agree)
{
	struct side a, b;
	struct kmsd_link_pending *p;
	struct kmsd_wbuf w = {0};

	side_init(&a, 1);
	side_init(&b, 0);
	keys_payload(&w, 1, 6);
	/* the master's generator pushes and queues in one step; do the same by hand */
	push_blocks(&a, 1, 6);
	feed(&b, KMSD_MSG_KEYS, &w);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);

	/* SAE_B (master SAE at KME_B) wants 2 keys of 512 bits for SAE_A */
	p = kmsd_link_pending_new(&b.kme.link);
	p->nblocks = 4;
	p->ids = calloc(4, 16);
	p->bytes_len = 4 * 32;
	p->bytes = calloc(1, p->bytes_len);
	ck_assert_int_eq(kmsd_link_send_alloc_req(&b.kme.link, p->id, 2, 512, "SAE_B", "SAE_A"), 0);
	ck_assert_uint_eq(carry(&b, &a), KMSD_MSG_ALLOC_REQ);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert_uint_eq(carry(&a, &b), KMSD_MSG_ALLOC_REP);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_int_eq(kmsd_link_pending_wait(&b.kme.link, p, 1000), KMSD_LINK_OK);
	ck_assert_uint_eq(a.kme.store.count, 2);
	ck_assert_uint_eq(b.kme.store.count, 2);
	ck_assert_uint_eq(a.kme.store.head, b.kme.store.head);
	ck_assert(memcmp(a.kme.store.ids[a.kme.store.head], b.kme.store.ids[b.kme.store.head],
			 16) == 0);
	/* the key the slave-side SAE got is the one reserved at the master for SAE_A */
	ck_assert(memcmp(kmsd_store_find_reserved(&a.kme.store, p->ids)->key, p->bytes, 64) == 0);
	ck_assert_ptr_nonnull(kmsd_store_find_reserved(&a.kme.store, p->ids + 2 * 16));
	kmsd_link_pending_release(&b.kme.link, p);
	kmsd_w_free(&w);
	side_free(&a);
	side_free(&b);
}
END_TEST

/* The master hands keys to its own SAE: RESERVE tells the slave, whose ack completes the wait. */
START_TEST(link_reserve_round_trip)
{
	struct side a, b;
	struct kmsd_link_pending *p;
	struct kmsd_reserved_key *rk;
	uint8_t ids[2 * 16], bytes[2 * 32];

	side_init(&a, 1);
	side_init(&b, 0);
	push_blocks(&a, 1, 4);
	push_blocks(&b, 1, 4);
	ck_assert_int_eq(kmsd_store_pop(&a.kme.store, 2, NULL, ids, bytes), 0);
	p = kmsd_link_pending_new(&a.kme.link);
	ck_assert_int_eq(kmsd_link_send_reserve(&a.kme.link, p->id, 1, 512, 2, "SAE_A", "SAE_B",
						ids), 0);
	ck_assert_uint_eq(carry(&a, &b), KMSD_MSG_RESERVE);
	ck_assert_int_eq(kmsd_link_process(&b.kme.link), 0);
	ck_assert_uint_eq(carry(&b, &a), KMSD_MSG_RESERVE_ACK);
	ck_assert_int_eq(kmsd_link_process(&a.kme.link), 0);
	ck_assert_int_eq(kmsd_link_pending_wait(&a.kme.link, p, 1000), KMSD_LINK_OK);
	ck_assert_uint_eq(b.kme.store.count, a.kme.store.count);
	rk = kmsd_store_find_reserved(&b.kme.store, ids);
	ck_assert_ptr_nonnull(rk);
	ck_assert_str_eq(rk->master, "SAE_A");
	ck_assert_str_eq(rk->slave, "SAE_B");
	ck_assert_uint_eq(rk->len, 64);
	ck_assert(memcmp(rk->key, bytes, 64) == 0);
	kmsd_link_pending_release(&a.kme.link, p);
	side_free(&a);
	side_free(&b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kmsd");
	TCase *tc = tcase_create("kmsd");
	SRunner *sr;
	int failed;

	ipseq_log_set_level(IPSEQ_LOG_ERR);
	tcase_add_test(tc, ring_fifo_and_wrap);
	tcase_add_test(tc, ring_bounds);
	tcase_add_test(tc, ring_pop_verifies_ids);
	tcase_add_test(tc, reservations);
	tcase_add_test(tc, blocks_per_key_math);
	tcase_add_test(tc, log_names_every_key_id);
	tcase_add_test(tc, config_file_and_flags);
	tcase_add_test(tc, config_fibre_model);
	tcase_add_loop_test(tc, config_rejects, 0, sizeof(bad_flags) / sizeof(bad_flags[0]));
	tcase_add_loop_test(tc, config_rejects_files, 0, 4);
	tcase_add_test(tc, config_missing_file);
	suite_add_tcase(s, tc);
	tc = tcase_create("link");
	tcase_add_test(tc, link_keys_fill_the_slave);
	tcase_add_test(tc, link_alloc_req_at_master);
	tcase_add_loop_test(tc, link_alloc_req_refused, 0, 3);
	tcase_add_test(tc, link_alloc_rep_at_slave);
	tcase_add_test(tc, link_alloc_rep_refusal_and_late_answer);
	tcase_add_test(tc, link_reserve_at_slave);
	tcase_add_test(tc, link_reserve_unregistered_pair);
	tcase_add_test(tc, link_reserve_ack_at_master);
	tcase_add_test(tc, link_truncated_frames_wait);
	tcase_add_loop_test(tc, link_short_payloads_drop, 0, 8);
	tcase_add_loop_test(tc, link_unexpected_types_drop, 0, 12);
	tcase_add_test(tc, link_oversize_lengths_drop);
	tcase_add_test(tc, link_master_and_slave_agree);
	tcase_add_test(tc, link_reserve_round_trip);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
