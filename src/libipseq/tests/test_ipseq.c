/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for libipseq: wiping, wiped buffer growth, the monotonic clock and the log. */
#include "ipseq_config.h"
#include "../ipseq_log.h"
#include "../ipseq_util.h"

#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

START_TEST(wipe_zeroes)
{
	char b[32];

	memset(b, 0x5a, sizeof(b));
	ipseq_wipe(b + 4, 8);
	ck_assert_uint_eq(b[3], 0x5a);
	ck_assert_uint_eq(b[4], 0);
	ck_assert_uint_eq(b[11], 0);
	ck_assert_uint_eq(b[12], 0x5a);
	ipseq_wipe(NULL, 8); /* no crash */
}
END_TEST

START_TEST(grow_wiped)
{
	size_t cap = 0;
	char *b = ipseq_grow_wiped(NULL, &cap, 0, 10, 16), *g;

	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(cap, 16);
	memcpy(b, "0123456789", 10);
	/* large enough: the same buffer */
	ck_assert_ptr_eq(ipseq_grow_wiped(b, &cap, 10, 16, 16), b);
	ck_assert_uint_eq(cap, 16);
	/* growth doubles until it fits and keeps the used bytes */
	g = ipseq_grow_wiped(b, &cap, 10, 40, 16);
	ck_assert_ptr_nonnull(g);
	ck_assert_uint_eq(cap, 64);
	ck_assert_mem_eq(g, "0123456789", 10);
	/* a failed allocation leaves buffer and capacity as they were */
	ck_assert_ptr_null(ipseq_grow_wiped(g, &cap, 10, SIZE_MAX / 2 + 1, 16));
	ck_assert_ptr_null(ipseq_grow_wiped(g, &cap, 10, SIZE_MAX, 16)); /* no doubling overflow */
	ck_assert_uint_eq(cap, 64);
	ck_assert_mem_eq(g, "0123456789", 10);
	free(g);
}
END_TEST

START_TEST(now_ms_monotonic)
{
	uint64_t a = ipseq_now_ms(), b;

	usleep(2000);
	b = ipseq_now_ms();
	ck_assert_uint_gt(a, 0);
	ck_assert_uint_ge(b, a + 1); /* slept 2 ms: the clock moved, whatever the load */
}
END_TEST

/* Lines go to stderr: redirect it into a file and read it back. */
static void read_log(char *out, size_t cap, void (*emit)(void))
{
	FILE *f = tmpfile(), *saved = stderr;
	size_t n;

	ck_assert_ptr_nonnull(f);
	stderr = f;
	emit();
	fflush(f);
	stderr = saved;
	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	fclose(f);
}

static void emit_levels(void)
{
	ipseq_log_open("test-prog", IPSEQ_LOG_WARN, 0);
	ipseq_log(IPSEQ_LOG_INFO, "not shown %d", 1);
	ipseq_log(IPSEQ_LOG_WARN, "shown %d", 2);
	ipseq_log(IPSEQ_LOG_ERR, "error %s", "three");
	ipseq_log_set_level(IPSEQ_LOG_DEBUG);
	ipseq_log(IPSEQ_LOG_DEBUG, "debug now");
	ipseq_log(7, "no such level");
	ipseq_log(-1, "no such level either");
}

START_TEST(log_levels_and_format)
{
	char buf[1024];

	read_log(buf, sizeof(buf), emit_levels);
	ck_assert_ptr_null(strstr(buf, "not shown"));
	ck_assert_ptr_nonnull(strstr(buf, " test-prog warning: shown 2\n"));
	ck_assert_ptr_nonnull(strstr(buf, " test-prog error: error three\n"));
	ck_assert_ptr_nonnull(strstr(buf, " test-prog debug: debug now\n"));
	ck_assert_ptr_null(strstr(buf, "no such level"));
	ck_assert_int_eq(ipseq_log_level(), IPSEQ_LOG_DEBUG);
	/* "HH:MM:SS.mmm " in front of each line */
	ck_assert(buf[2] == ':' && buf[5] == ':' && buf[8] == '.' && buf[12] == ' ');
}
END_TEST

int main(void)
{
	Suite *s = suite_create("ipseq");
	TCase *tc = tcase_create("util");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, wipe_zeroes);
	tcase_add_test(tc, grow_wiped);
	tcase_add_test(tc, now_ms_monotonic);
	tcase_add_test(tc, log_levels_and_format);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
