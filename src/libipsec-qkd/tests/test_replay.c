/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Anti-replay window: edges, reordering, large jumps, ESN inference, random model check. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

static enum iq_replay_verdict accept(struct iq_replay *r, uint64_t seq, bool esn)
{
	uint64_t full;
	enum iq_replay_verdict v = iq_replay_check(r, (uint32_t)seq, esn, &full);

	if (v == IQ_REPLAY_OK) {
		ck_assert_uint_eq(full, seq);
		iq_replay_update(r, full);
	}
	return v;
}

START_TEST(test_basic)
{
	struct iq_replay r;
	uint64_t s;

	ck_assert_int_eq(iq_replay_init(&r, 1024), 0);
	ck_assert_uint_ge(r.window, 1024);
	ck_assert_int_eq(accept(&r, 0, false), IQ_REPLAY_ZERO);
	for (s = 1; s <= 100; s++)
		ck_assert_int_eq(accept(&r, s, false), IQ_REPLAY_OK);
	for (s = 1; s <= 100; s++)
		ck_assert_int_eq(accept(&r, s, false), IQ_REPLAY_SEEN);
	/* jump ahead, then fill the hole: out of order inside the window is fine, once */
	ck_assert_int_eq(accept(&r, 1000, false), IQ_REPLAY_OK);
	for (s = 999; s > 100; s--)
		ck_assert_int_eq(accept(&r, s, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 500, false), IQ_REPLAY_SEEN);
	/* edges */
	ck_assert_int_eq(accept(&r, 1000 + r.window, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 1000 + r.window - r.window, false), IQ_REPLAY_OLD);
	ck_assert_int_eq(accept(&r, 1001, false), IQ_REPLAY_OK);   /* top - window + 1 */
	ck_assert_int_eq(accept(&r, 1001, false), IQ_REPLAY_SEEN);
	/* a jump far beyond the window clears everything it passes */
	ck_assert_int_eq(accept(&r, 1000000, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 1000000 - 5, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 1000000 - r.window + 1, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 1000000 - r.window, false), IQ_REPLAY_OLD);
	iq_replay_free(&r);
}
END_TEST

START_TEST(test_disabled)
{
	struct iq_replay r;

	ck_assert_int_eq(iq_replay_init(&r, 0), 0);
	ck_assert_int_eq(accept(&r, 5, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 5, false), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 0, false), IQ_REPLAY_ZERO);
	iq_replay_free(&r);
}
END_TEST

/* ESN (RFC 4303 A.2): the high half is inferred from the window position */
START_TEST(test_esn)
{
	struct iq_replay r;
	uint64_t full, base = 0xfffffff0ull;
	int i;

	ck_assert_int_eq(iq_replay_init(&r, 1024), 0);
	for (i = 0; i < 16; i++)
		ck_assert_int_eq(accept(&r, base + i, true), IQ_REPLAY_OK);
	/* crossing 2^32: wire seq 0, 1, 2 are 2^32 + 0.. */
	ck_assert_int_eq(accept(&r, 0x100000000ull, true), IQ_REPLAY_OK);
	ck_assert_int_eq(accept(&r, 0x100000002ull, true), IQ_REPLAY_OK);
	/* a late packet from below the boundary still maps to the old subspace */
	ck_assert_int_eq(iq_replay_check(&r, 0xfffffff5u, true, &full), IQ_REPLAY_SEEN);
	ck_assert_uint_eq(full, 0xfffffff5ull);
	ck_assert_int_eq(accept(&r, 0x100000001ull, true), IQ_REPLAY_OK);
	ck_assert_int_eq(iq_replay_check(&r, 1, true, &full), IQ_REPLAY_SEEN);
	ck_assert_uint_eq(full, 0x100000001ull);
	/* without ESN the same wire value is a different (old) number */
	iq_replay_free(&r);
}
END_TEST

/* random reordering against a model: accept iff never seen and within the window */
START_TEST(test_model)
{
	struct iq_replay r;
	static uint8_t seen[200000];
	uint64_t top = 0, i;

	memset(seen, 0, sizeof(seen));
	srand(42);
	ck_assert_int_eq(iq_replay_init(&r, 2048), 0);
	for (i = 0; i < 150000; i++) {
		uint64_t s = (i / 2) + (rand() % 3000);
		enum iq_replay_verdict v;
		bool exp;

		if (s == 0 || s >= sizeof(seen))
			continue;
		exp = !seen[s] && !(top >= s && top - s >= r.window);
		v = accept(&r, s, false);
		ck_assert_int_eq(v == IQ_REPLAY_OK, exp);
		if (exp) {
			seen[s] = 1;
			if (s > top)
				top = s;
		}
	}
	iq_replay_free(&r);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("replay");
	TCase *tc = tcase_create("window");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_basic);
	tcase_add_test(tc, test_disabled);
	tcase_add_test(tc, test_esn);
	tcase_add_test(tc, test_model);
	tcase_set_timeout(tc, 60);   /* the 4 s default expires on a loaded machine */
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
