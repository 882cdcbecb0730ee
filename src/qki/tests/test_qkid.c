/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of qkid's pure parts: anti-replay window, fair-share allocator, rpk advisor,
 * peer-protocol sealing, configuration parser.
 */
#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../qkid_conf.h"
#include "../qkid_fair.h"
#include "../qkid_peerproto.h"
#include "../qkid_replay.h"
#include "../qkid_rpk.h"

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

/* ---- rpk advisor ---- */

START_TEST(test_rpk)
{
	struct qkid_rpk_input in = { .pkt_rate = 100000, .key_share = 100, .level = 32,
				     .capacity = 64, .rpk_min = 64, .rpk_max = 65536 };
	/* half full: packets per key = supply-matching 1000 */
	ck_assert_uint_eq(qkid_rpk_advise(&in), 1000);
	in.level = 64;          /* full: spend faster */
	ck_assert_uint_eq(qkid_rpk_advise(&in), 500);
	in.level = 0;           /* empty: spend slower */
	ck_assert_uint_eq(qkid_rpk_advise(&in), 2000);
	in.pkt_rate = 1e9;      /* clamp */
	ck_assert_uint_eq(qkid_rpk_advise(&in), 65536);
	in.pkt_rate = 10;
	ck_assert_uint_eq(qkid_rpk_advise(&in), 64);
	in.pkt_rate = 0;        /* idle SA */
	ck_assert_uint_eq(qkid_rpk_advise(&in), 64);
	in.pkt_rate = 1000;     /* unknown supply: by fill level */
	in.key_share = 0;
	in.level = 64;
	ck_assert_uint_eq(qkid_rpk_advise(&in), 64);
	in.level = 0;
	ck_assert_uint_eq(qkid_rpk_advise(&in), 65536);
	in.rpk_min = 0;         /* degenerate bounds do not crash */
	in.rpk_max = 0;
	ck_assert_uint_ge(qkid_rpk_advise(&in), 1);
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

int main(void)
{
	Suite *s = suite_create("qkid");
	TCase *tr = tcase_create("replay"), *tf = tcase_create("fair"), *tk = tcase_create("rpk"),
	      *tp = tcase_create("peerproto"), *tc = tcase_create("conf");
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
	tcase_add_test(tk, test_rpk);
	tcase_add_test(tp, test_peer_seal_verify);
	tcase_add_test(tp, test_peer_session_keys);
	tcase_add_test(tc, test_conf_good);
	tcase_add_test(tc, test_conf_bad);
	tcase_add_test(tc, test_conf_example);
	tcase_add_test(tc, test_conf_auth_key);
	suite_add_tcase(s, tr);
	suite_add_tcase(s, tf);
	suite_add_tcase(s, tk);
	suite_add_tcase(s, tp);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
