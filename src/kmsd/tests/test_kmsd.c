/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for qkd-kmsd's pure parts: the key store (ring, reservations, expiry, bounds) and
 * configuration parsing (file, flags, defaults, validation, fibre model). */
#include "ipseq_config.h"
#include "../kmsd.h"

#include <check.h>
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
	ck_assert_uint_eq(kmsd_store_expire(&s, kmsd_store_now_ms()), 0);
	/* a 100 s lifetime still holds at 99 s, and is over at 100 s */
	ck_assert_uint_eq(kmsd_store_expire(&s, kmsd_store_now_ms() + 99 * 1000), 0);
	ck_assert_uint_eq(kmsd_store_expire(&s, kmsd_store_now_ms() + 100 * 1000 + 1), 2);
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
	ck_assert_int_eq(cfg.log_level, KMSD_LOG_DEBUG);
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

int main(void)
{
	Suite *s = suite_create("kmsd");
	TCase *tc = tcase_create("kmsd");
	SRunner *sr;
	int failed;

	kmsd_log_set_level(KMSD_LOG_ERROR);
	tcase_add_test(tc, ring_fifo_and_wrap);
	tcase_add_test(tc, ring_bounds);
	tcase_add_test(tc, ring_pop_verifies_ids);
	tcase_add_test(tc, reservations);
	tcase_add_test(tc, blocks_per_key_math);
	tcase_add_test(tc, config_file_and_flags);
	tcase_add_test(tc, config_fibre_model);
	tcase_add_loop_test(tc, config_rejects, 0, sizeof(bad_flags) / sizeof(bad_flags[0]));
	tcase_add_loop_test(tc, config_rejects_files, 0, 4);
	tcase_add_test(tc, config_missing_file);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
