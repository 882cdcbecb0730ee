/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The load-time version guard accepts exactly the release of our headers.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../qkd_abi.h"

static char *write_program(const char *contents, size_t len)
{
	static char path[64];
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "/tmp/qkd-abi-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	f = fdopen(fd, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(contents, 1, len, f), len);
	fclose(f);
	return path;
}

START_TEST(test_same_version)
{
	char running[32], blob[] = "\x7f" "ELF junk\0Starting IKE charon daemon (strongSwan " VERSION ", Linux 6.1)";
	char *path = write_program(blob, sizeof(blob));

	ck_assert(qkd_abi_check_program(path, running));
	ck_assert_str_eq(running, VERSION);
	unlink(path);
}
END_TEST

/* the other supported release: a plugin built for one refuses a charon of the other */
#if QKD_STRONGSWAN_6
#define OTHER_RELEASE "5.9.8"
#else
#define OTHER_RELEASE "6.0.1"
#endif

START_TEST(test_other_version)
{
	char running[32], blob[] = "xx (strongSwan " OTHER_RELEASE ", Linux 6.1) yy";
	char *path = write_program(blob, sizeof(blob));

	ck_assert(!qkd_abi_check_program(path, running));
	ck_assert_str_eq(running, OTHER_RELEASE);
	unlink(path);
}
END_TEST

START_TEST(test_supported_releases)
{
	ck_assert(qkd_abi_supported(VERSION));
	ck_assert(qkd_abi_supported("5.9.8"));
	ck_assert(qkd_abi_supported("6.0.1"));
	ck_assert(qkd_abi_supported("6.0.12"));
	ck_assert(!qkd_abi_supported("5.9.14"));
	ck_assert(!qkd_abi_supported("5.9.80"));
	ck_assert(!qkd_abi_supported("6.1.0"));
	ck_assert(!qkd_abi_supported("6.0"));
	ck_assert(!qkd_abi_supported("6.0."));
	ck_assert(!qkd_abi_supported("6.0.1rc1"));
	ck_assert(!qkd_abi_supported("6.0.123"));
	ck_assert(!qkd_abi_supported(""));
}
END_TEST

START_TEST(test_no_banner)
{
	char running[32], blob[] = "not charon at all";
	char *path = write_program(blob, sizeof(blob));

	ck_assert(!qkd_abi_check_program(path, running));
	ck_assert_str_eq(running, "");
	unlink(path);
	ck_assert(!qkd_abi_check_program("/nonexistent/charon", running));
}
END_TEST

START_TEST(test_debian_charon)
{
	char running[32];

	/* Debian's charon is what the plugin is built for and the lab runs (scripts/bootstrap
	 * installs it): without it the guard is untested, so that is a failure, not a pass. */
	ck_assert_msg(access("/usr/lib/ipsec/charon", R_OK) == 0,
				  "/usr/lib/ipsec/charon missing: install strongswan-charon (scripts/bootstrap)");
	/* the charon we run against in the lab must pass the guard */
	ck_assert_msg(qkd_abi_check_program("/usr/lib/ipsec/charon", running),
				  "installed charon is %s, headers are " VERSION, running);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkd_abi");
	TCase *tc = tcase_create("version guard");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_same_version);
	tcase_add_test(tc, test_other_version);
	tcase_add_test(tc, test_supported_releases);
	tcase_add_test(tc, test_no_banner);
	tcase_add_test(tc, test_debian_charon);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
