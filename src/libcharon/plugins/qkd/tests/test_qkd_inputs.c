/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Input validation of the qkd plugin: key_IDs from the wire, base PSK files from disk.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/stat.h>

#include <library.h>
#include <daemon.h>

#include "../qkd_qki.h"
#include "../qkd_peers.h"

#include "charon_test.h"

START_TEST(test_key_id_valid)
{
	const char *good = "2b9f3c1e-5a7d-4e2f-9c3b-1d2e3f4a5b6c";
	const char *bad[] = {
		"",
		"2b9f3c1e-5a7d-4e2f-9c3b-1d2e3f4a5b6",       /* short */
		"2b9f3c1e-5a7d-4e2f-9c3b-1d2e3f4a5b6c0",     /* long */
		"2b9f3c1e5a7d-4e2f-9c3b-1d2e3f4a5b6c-",      /* dash misplaced */
		"2b9f3c1e-5a7d-4e2f-9c3b-1d2e3f4a5b6g",      /* not hex */
		"2b9f3c1e-5a7d-4e2f-9c3b\0001d2e3f4a5b6c",   /* NUL inside */
		"qkd",
	};
	int i;

	ck_assert(qkd_key_id_valid(good, strlen(good)));
	ck_assert(qkd_key_id_valid("2B9F3C1E-5A7D-4E2F-9C3B-1D2E3F4A5B6C", 36));
	{
		char up[] = "2B9F3C1E-5A7D-4E2F-9C3B-1D2E3F4A5B6C";

		qkd_key_id_lower(up);       /* the one form qkid compares */
		ck_assert_str_eq(up, good);
	}
	for (i = 0; i < countof(bad); i++)
	{
		ck_assert_msg(!qkd_key_id_valid(bad[i], i == 5 ? 36 : strlen(bad[i])), "bad[%d]", i);
	}
}
END_TEST

static char *psk_file(const char *contents, mode_t mode)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "/tmp/qkd-psk-XXXXXX");
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, contents, strlen(contents)), strlen(contents));
	fchmod(fd, mode);
	close(fd);
	return path;
}

START_TEST(test_psk_formats)
{
	chunk_t psk;
	char *path;

	path = psk_file("0x000102030405060708090a0b0c0d0e0f\n", 0600);
	ck_assert(qkd_psk_load(path, &psk));
	ck_assert_int_eq(psk.len, 16);
	ck_assert_int_eq(psk.ptr[15], 0x0f);
	chunk_clear(&psk);
	unlink(path);

	path = psk_file("0sAAECAwQFBgcICQoLDA0ODxAREhM=\n", 0400);
	ck_assert(qkd_psk_load(path, &psk));
	ck_assert_int_eq(psk.len, 20);
	ck_assert_int_eq(psk.ptr[19], 0x13);
	chunk_clear(&psk);
	unlink(path);

	path = psk_file("a literal secret of some length  \n", 0600);
	ck_assert(qkd_psk_load(path, &psk));
	ck_assert(chunk_equals(psk, chunk_from_str("a literal secret of some length")));
	chunk_clear(&psk);
	unlink(path);
}
END_TEST

START_TEST(test_psk_refused)
{
	chunk_t psk = chunk_empty;
	char *path;

	path = psk_file("a literal secret of some length\n", 0640);
	ck_assert(!qkd_psk_load(path, &psk));	/* group readable */
	unlink(path);
	path = psk_file("a literal secret of some length\n", 0604);
	ck_assert(!qkd_psk_load(path, &psk));	/* world readable */
	unlink(path);
	path = psk_file("short\n", 0600);
	ck_assert(!qkd_psk_load(path, &psk));	/* under 16 bytes */
	unlink(path);
	path = psk_file("", 0600);
	ck_assert(!qkd_psk_load(path, &psk));	/* empty */
	unlink(path);
	ck_assert(!qkd_psk_load("/nonexistent/qkd.psk", &psk));
	ck_assert(!qkd_psk_load("/tmp", &psk));	/* a directory */
	ck_assert_ptr_null(psk.ptr);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkd_inputs");
	TCase *tc = tcase_create("inputs");

	if (!charon_test_init(NULL))
	{
		return EXIT_FAILURE;
	}
	tcase_add_test(tc, test_key_id_valid);
	tcase_add_test(tc, test_psk_formats);
	tcase_add_test(tc, test_psk_refused);
	suite_add_tcase(s, tc);
	return charon_test_run(s);
}
