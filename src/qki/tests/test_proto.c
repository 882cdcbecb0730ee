/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests of the local API codec (qki_proto.c). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "../qki_proto.h"

static size_t build_key_new(uint8_t *buf, size_t cap)
{
	struct qki_msg m;
	qki_msg_init(&m, buf, cap, QKI_T_KEY_NEW, 7);
	qki_msg_put_str(&m, QKI_A_PEER, "site-b");
	qki_msg_put_u32(&m, QKI_A_SIZE, 32);
	qki_msg_put_u32(&m, QKI_A_WAIT_MS, 2000);
	return qki_msg_finish(&m);
}

START_TEST(test_roundtrip)
{
	uint8_t buf[256];
	static const uint8_t expect[] = {
		0x51, 0x4b, 0x01, 0x02, 0, 0, 0, 7, 0, 0, 0, 0x1a,
		0, 1, 0, 6, 's', 'i', 't', 'e', '-', 'b',
		0, 4, 0, 4, 0, 0, 0, 0x20,
		0, 9, 0, 4, 0, 0, 0x07, 0xd0,
	};
	size_t n = build_key_new(buf, sizeof(buf));
	struct qki_hdr h;
	struct qki_attrs a;
	char peer[QKI_NAME_MAX];
	uint32_t v;

	ck_assert_uint_eq(n, sizeof(expect));
	ck_assert(memcmp(buf, expect, n) == 0);   /* the example in API.md */
	ck_assert_int_eq(qki_hdr_parse(buf, n, &h), QKI_OK);
	ck_assert_uint_eq(h.type, QKI_T_KEY_NEW);
	ck_assert_uint_eq(h.seq, 7);
	ck_assert_uint_eq(h.length, n - QKI_HDR_LEN);
	ck_assert_int_eq(qki_attrs_parse(buf + QKI_HDR_LEN, h.length, &a, NULL), QKI_OK);
	ck_assert(qki_attr_str(&a, QKI_A_PEER, peer, sizeof(peer)));
	ck_assert_str_eq(peer, "site-b");
	ck_assert(qki_attr_u32(&a, QKI_A_SIZE, &v));
	ck_assert_uint_eq(v, 32);
	ck_assert(!qki_attr_u32(&a, QKI_A_SPI, &v));
	ck_assert(!qki_attr_str(&a, QKI_A_PEER, peer, 6));   /* does not fit: refused */
}
END_TEST

START_TEST(test_nested)
{
	uint8_t buf[512], key[32];
	struct qki_msg m;
	struct qki_attrs a, ek;
	struct qki_iter it;
	uint16_t t, l;
	const uint8_t *v;
	uint32_t epoch;
	int n = 0;
	size_t len, mark;

	memset(key, 0xab, sizeof(key));
	qki_msg_init(&m, buf, sizeof(buf), QKI_T_SA_KEYS | QKI_REPLY, 1);
	for (int i = 0; i < 3; i++) {
		mark = qki_msg_nest_begin(&m, QKI_A_EPOCH_KEY);
		qki_msg_put_u32(&m, QKI_A_EPOCH, 10 + i);
		qki_msg_put_str(&m, QKI_A_KEY_ID, "4f0d2c3e-0000-4000-8000-000000000001");
		qki_msg_put(&m, QKI_A_KEY, key, sizeof(key));
		qki_msg_nest_end(&m, mark);
	}
	qki_msg_put_u32(&m, QKI_A_RPK, 1024);
	len = qki_msg_finish(&m);
	ck_assert(len > 0);
	ck_assert_int_eq(qki_attrs_parse(buf + QKI_HDR_LEN, len - QKI_HDR_LEN, &a, NULL), QKI_OK);
	qki_iter_init(&it, buf + QKI_HDR_LEN, len - QKI_HDR_LEN);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		if (t != QKI_A_EPOCH_KEY)
			continue;
		ck_assert_int_eq(qki_attrs_parse(v, l, &ek, NULL), QKI_OK);
		ck_assert(qki_attr_u32(&ek, QKI_A_EPOCH, &epoch));
		ck_assert_uint_eq(epoch, 10 + n);
		ck_assert_uint_eq(ek.a[QKI_A_KEY].len, 32);
		n++;
	}
	ck_assert_int_eq(n, 3);
}
END_TEST

START_TEST(test_malformed)
{
	uint8_t buf[256], bad[256];
	size_t n = build_key_new(buf, sizeof(buf));
	struct qki_hdr h;
	struct qki_attrs a;
	const char *why = NULL;

	/* bad magic, version, oversize length */
	memcpy(bad, buf, n);
	bad[0] = 0;
	ck_assert_int_eq(qki_hdr_parse(bad, n, &h), QKI_ERR_PROTO);
	memcpy(bad, buf, n);
	bad[2] = 2;
	ck_assert_int_eq(qki_hdr_parse(bad, n, &h), QKI_ERR_VERSION);
	ck_assert_uint_eq(h.seq, 7);
	memcpy(bad, buf, n);
	qki_put32(bad + 8, QKI_MSG_MAX + 1);
	ck_assert_int_eq(qki_hdr_parse(bad, n, &h), QKI_ERR_PROTO);
	ck_assert_int_eq(qki_hdr_parse(buf, 11, &h), QKI_ERR_PROTO);

	/* every truncation of the payload is either a valid prefix or refused */
	for (size_t cut = 1; cut < n - QKI_HDR_LEN; cut++) {
		int r = qki_attrs_parse(buf + QKI_HDR_LEN, cut, &a, &why);
		ck_assert(r == QKI_ERR_PROTO || cut == 10 || cut == 18);
	}
	/* wrong integer size */
	memcpy(bad, buf, n);
	bad[QKI_HDR_LEN + 10 + 3] = 3;
	ck_assert_int_eq(qki_attrs_parse(bad + QKI_HDR_LEN, n - QKI_HDR_LEN, &a, &why),
			 QKI_ERR_PROTO);
	/* duplicate attribute */
	memcpy(bad, buf, n);
	memcpy(bad + QKI_HDR_LEN + 18, bad + QKI_HDR_LEN + 10, 8);
	ck_assert_int_eq(qki_attrs_parse(bad + QKI_HDR_LEN, n - QKI_HDR_LEN, &a, &why),
			 QKI_ERR_PROTO);
	ck_assert_str_eq(why, "duplicate attribute");
	/* NUL in a string */
	memcpy(bad, buf, n);
	bad[QKI_HDR_LEN + 6] = 0;
	ck_assert_int_eq(qki_attrs_parse(bad + QKI_HDR_LEN, n - QKI_HDR_LEN, &a, &why),
			 QKI_ERR_PROTO);
	/* empty peer name */
	{
		uint8_t e[] = { 0, 1, 0, 0 };
		ck_assert_int_eq(qki_attrs_parse(e, sizeof(e), &a, &why), QKI_ERR_PROTO);
	}
	/* unknown attribute skipped */
	{
		uint8_t u[] = { 0x70, 0, 0, 2, 1, 2, 0, 5, 0, 4, 0, 0, 0, 9 };
		uint32_t spi;
		ck_assert_int_eq(qki_attrs_parse(u, sizeof(u), &a, &why), QKI_OK);
		ck_assert(qki_attr_u32(&a, QKI_A_SPI, &spi));
		ck_assert_uint_eq(spi, 9);
	}
	/* nesting too deep */
	{
		uint8_t d[] = { 0, 17, 0, 8, 0, 18, 0, 4, 0, 19, 0, 0 };
		ck_assert_int_eq(qki_attrs_parse(d, sizeof(d), &a, &why), QKI_ERR_PROTO);
	}
}
END_TEST

START_TEST(test_random_garbage)
{
	/* Random bytes (a cheap in-tree complement to the fuzzer): the parser never crashes, gives
	 * one of its two answers, names the reason of a refusal, and whatever it accepts lies within
	 * the input, with the fixed sizes its accessors rely on. Both answers must occur, or the
	 * generator tests nothing. */
	static const uint16_t fixed4[] = { QKI_A_SPI, QKI_A_EPOCH, QKI_A_COUNT };
	uint8_t buf[512];
	struct qki_attrs a;
	unsigned seed = 12345, accepted = 0, refused = 0;
	for (int i = 0; i < 20000; i++) {
		size_t n = (size_t)(rand_r(&seed) % sizeof(buf));
		const char *why = NULL;
		int r;
		for (size_t j = 0; j < n; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		/* bias towards known attribute types and plausible TLV lengths */
		if (n >= 4) {
			qki_put16(buf, (uint16_t)(rand_r(&seed) % (QKI_A_ATTR_MAX + 4)));
			qki_put16(buf + 2, (uint16_t)(rand_r(&seed) % (n - 3)));
		}
		memset(&a, 0xa5, sizeof(a));
		r = qki_attrs_parse(buf, n, &a, &why);
		if (r == QKI_ERR_PROTO) {
			refused++;
			ck_assert_msg(why && *why, "refusal without a reason (input %d)", i);
			continue;
		}
		ck_assert_int_eq(r, QKI_OK);
		accepted++;
		for (unsigned t = 0; t < QKI_A_ATTR_MAX; t++) {
			if (!a.a[t].present)
				continue;
			ck_assert_msg(a.a[t].val >= buf + 4 && a.a[t].val + a.a[t].len <= buf + n,
				      "attribute %u outside the input (input %d)", t, i);
		}
		for (size_t k = 0; k < sizeof(fixed4) / sizeof(fixed4[0]); k++) {
			uint32_t v;
			if (a.a[fixed4[k]].present)
				ck_assert(qki_attr_u32(&a, fixed4[k], &v));
		}
	}
	/* both paths ran many times: the count accepted (87 of 20000 with 56 attribute types)
	 * moves with the number of attribute types the generator draws from */
	ck_assert_uint_gt(accepted, 50);
	ck_assert_uint_gt(refused, 100);
}
END_TEST

START_TEST(test_overflow)
{
	uint8_t buf[20];
	struct qki_msg m;
	qki_msg_init(&m, buf, sizeof(buf), QKI_T_STATUS, 1);
	qki_msg_put_str(&m, QKI_A_PEER, "a-very-long-peer-name");
	ck_assert_uint_eq(qki_msg_finish(&m), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qki_proto");
	TCase *tc = tcase_create("codec");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_roundtrip);
	tcase_add_test(tc, test_nested);
	tcase_add_test(tc, test_malformed);
	tcase_add_test(tc, test_random_garbage);
	tcase_add_test(tc, test_overflow);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
