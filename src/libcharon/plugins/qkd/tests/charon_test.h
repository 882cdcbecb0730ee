/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * charon_test.h - what every test program of the qkd plugin does around its suite: charon's
 * library (the plugin logs through charon's bus), strongSwan's openssl plugin where the test
 * needs its algorithms, and the suite run in this process (CK_NOFORK: a forked child would
 * inherit charon's threads half-way).
 */
#ifndef QKD_CHARON_TEST_H
#define QKD_CHARON_TEST_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <library.h>
#include <daemon.h>

/* charon's library; with `openssl_for` (what the test needs it for, e.g. "X25519, HMAC") also
 * strongSwan's openssl plugin. false (after saying why) if that plugin does not load. */
static inline bool charon_test_init(const char *openssl_for)
{
	library_init(NULL, "qkd-test");
	libcharon_init();
	if (openssl_for && !lib->plugins->load(lib->plugins, "openssl"))
	{
		fprintf(stderr, "cannot load strongSwan's openssl plugin (%s)\n", openssl_for);
		return false;
	}
	return true;
}

/* runs the suite, frees it and charon's library; the program's exit status */
static inline int charon_test_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	libcharon_deinit();
	library_deinit();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

#endif
