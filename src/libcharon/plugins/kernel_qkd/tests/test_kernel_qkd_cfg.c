/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Rotation settings of the kernel-qkd plugin: which SAs rotate, with which bounds, and that bad
 * settings are refused instead of silently half-applied.
 */
#include <check.h>

#include <library.h>
#include <daemon.h>

#include "../kernel_qkd_peers.h"

static kernel_qkd_peers_t *load(char *conf)
{
	ck_assert(lib->settings->load_string(lib->settings, conf, FALSE));
	return kernel_qkd_peers_create();
}

static const char *lookup(kernel_qkd_peers_t *peers, char *addr, struct iq_rotation *rot)
{
	host_t *host = host_create_from_string(addr, 4500);
	const char *name;

	ck_assert(host);
	name = peers->lookup(peers, host, rot);
	host->destroy(host);
	return name;
}

START_TEST(test_no_config)
{
	kernel_qkd_peers_t *peers = load("");
	struct iq_rotation rot = { .enabled = TRUE };

	ck_assert(lookup(peers, "198.51.100.2", &rot) == NULL);
	ck_assert(!rot.enabled);
	ck_assert(!peers->any_rotation(peers));
	peers->destroy(peers);
}
END_TEST

START_TEST(test_defaults_and_override)
{
	kernel_qkd_peers_t *peers = load(
		"charon { plugins { kernel-qkd {\n"
		"  rotation { enabled = yes\n rpk_min = 100\n rpk_max = 5000\n exhaust = stall\n}\n"
		"  peers {\n"
		"    siteB { remote_addrs = 198.51.100.2, fd00::2\n}\n"
		"    siteC { remote_addrs = 198.51.100.3\n rotation = no\n}\n"
		"    siteD { remote_addrs = 198.51.100.4\n rpk_max = 200\n exhaust = reuse\n}\n"
		" \n}\n"
		"} }\n}\n");
	struct iq_rotation rot;

	ck_assert_str_eq(lookup(peers, "198.51.100.2", &rot), "siteB");
	ck_assert(rot.enabled);
	ck_assert_int_eq(rot.rpk_min, 100);
	ck_assert_int_eq(rot.rpk_max, 5000);
	ck_assert_int_eq(rot.exhaust, IQ_EXHAUST_STALL);
	ck_assert_str_eq(lookup(peers, "fd00::2", &rot), "siteB");

	ck_assert_str_eq(lookup(peers, "198.51.100.3", &rot), "siteC");
	ck_assert(!rot.enabled);

	ck_assert_str_eq(lookup(peers, "198.51.100.4", &rot), "siteD");
	ck_assert(rot.enabled);
	ck_assert_int_eq(rot.rpk_min, 100);
	ck_assert_int_eq(rot.rpk_max, 200);
	ck_assert_int_eq(rot.exhaust, IQ_EXHAUST_REUSE);

	ck_assert(lookup(peers, "198.51.100.9", &rot) == NULL);
	ck_assert(!rot.enabled);
	ck_assert(peers->any_rotation(peers));
	peers->destroy(peers);
}
END_TEST

START_TEST(test_addresses_from_qkd_plugin)
{
	kernel_qkd_peers_t *peers = load(
		"charon { plugins {\n"
		"  qkd { peers { gwB {\n remote_addrs = 198.51.100.2\n}\n}\n}\n"
		"  kernel-qkd { peers { gwB {\n rotation = yes\n}\n}\n}\n"
		"}\n}\n");
	struct iq_rotation rot;

	ck_assert_str_eq(lookup(peers, "198.51.100.2", &rot), "gwB");
	ck_assert(rot.enabled);
	ck_assert_int_eq(rot.rpk_min, 1024);
	ck_assert_int_eq(rot.rpk_max, 65536);
	peers->destroy(peers);
}
END_TEST

START_TEST(test_invalid_refused)
{
	kernel_qkd_peers_t *peers = load(
		"charon { plugins { kernel-qkd { peers {\n"
		"  noaddr { rotation = yes\n}\n"
		"  badexhaust { remote_addrs = 198.51.100.5\n rotation = yes\n exhaust = plaintext\n}\n"
		"  badbounds { remote_addrs = 198.51.100.6\n rotation = yes\n rpk_min = 10\n"
		"              rpk_max = 5\n}\n"
		"  zero { remote_addrs = 198.51.100.7\n rotation = yes\n rpk_min = 0\n}\n"
		"  huge { remote_addrs = 198.51.100.8\n rotation = yes\n rpk_max = 4294967295\n}\n"
		"} } }\n}\n");
	struct iq_rotation rot;

	ck_assert(lookup(peers, "198.51.100.5", &rot) == NULL);
	ck_assert(lookup(peers, "198.51.100.6", &rot) == NULL);
	ck_assert(lookup(peers, "198.51.100.7", &rot) == NULL);
	ck_assert(lookup(peers, "198.51.100.8", &rot) == NULL);
	ck_assert(!rot.enabled);
	ck_assert(!peers->any_rotation(peers));
	peers->destroy(peers);
}
END_TEST

START_TEST(test_connection_override)
{
	kernel_qkd_peers_t *peers = load(
		"charon { plugins { kernel-qkd {\n"
		"  rotation { rpk_min = 100\n rpk_max = 5000\n}\n"
		"  peers { gwB { remote_addrs = 198.51.100.2\n rotation = yes\n}\n"
		"          gwC { remote_addrs = 198.51.100.3\n}\n}\n"
		"  connections {\n"
		"    mgmt { rotation = no\n}\n"
		"    repl { rpk_max = 300\n exhaust = stall\n}\n"
		"    toC { rotation = yes\n}\n"
		"    bad { rpk_min = 0\n}\n"
		"  }\n"
		"} }\n}\n");
	struct iq_rotation rot;

	/* no section: the peer's settings stand */
	ck_assert_str_eq(lookup(peers, "198.51.100.2", &rot), "gwB");
	ck_assert(peers->override(peers, NULL, &rot));
	ck_assert(peers->override(peers, "other", &rot));
	ck_assert(rot.enabled);
	ck_assert_int_eq(rot.rpk_max, 5000);
	/* one connection to gwB does not rotate */
	ck_assert(peers->override(peers, "mgmt", &rot));
	ck_assert(!rot.enabled);
	/* another narrows the bounds, the rest from the peer */
	lookup(peers, "198.51.100.2", &rot);
	ck_assert(peers->override(peers, "repl", &rot));
	ck_assert(rot.enabled);
	ck_assert_int_eq(rot.rpk_min, 100);
	ck_assert_int_eq(rot.rpk_max, 300);
	ck_assert_int_eq(rot.exhaust, IQ_EXHAUST_STALL);
	/* a connection turns rotation on for a peer whose default is off */
	ck_assert_str_eq(lookup(peers, "198.51.100.3", &rot), "gwC");
	ck_assert(!rot.enabled);
	ck_assert(peers->override(peers, "toC", &rot));
	ck_assert(rot.enabled);
	/* invalid settings are refused, not half-applied */
	ck_assert(!peers->override(peers, "bad", &rot));
	peers->destroy(peers);
}
END_TEST

START_TEST(test_connection_enables_provider)
{
	kernel_qkd_peers_t *peers = load(
		"charon { plugins { kernel-qkd {\n"
		"  peers { gwB { remote_addrs = 198.51.100.2\n}\n}\n"
		"  connections { repl { rotation = yes\n}\n}\n"
		"} }\n}\n");

	/* no peer rotates by default, but one connection does: window keys are needed */
	ck_assert(peers->any_rotation(peers));
	peers->destroy(peers);
}
END_TEST

START_TEST(test_exhaust_parse)
{
	enum iq_exhaust e;

	ck_assert(kernel_qkd_parse_exhaust("reuse", &e) && e == IQ_EXHAUST_REUSE);
	ck_assert(kernel_qkd_parse_exhaust("stall", &e) && e == IQ_EXHAUST_STALL);
	ck_assert(!kernel_qkd_parse_exhaust("", &e));
	ck_assert(!kernel_qkd_parse_exhaust("Stall ", &e));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kernel_qkd_cfg");
	TCase *tc = tcase_create("rotation");
	SRunner *sr;
	int failed;

	/* the plugin logs through charon's bus */
	library_init(NULL, "charon");
	libcharon_init();
	tcase_add_test(tc, test_no_config);
	tcase_add_test(tc, test_defaults_and_override);
	tcase_add_test(tc, test_addresses_from_qkd_plugin);
	tcase_add_test(tc, test_invalid_refused);
	tcase_add_test(tc, test_connection_override);
	tcase_add_test(tc, test_connection_enables_provider);
	tcase_add_test(tc, test_exhaust_parse);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	libcharon_deinit();
	library_deinit();
	return failed ? 1 : 0;
}
