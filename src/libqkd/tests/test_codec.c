/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit tests for the pure-data parts of libqkd: base64, UUIDs, status, key containers, errors. */
#include "../etsi014_codec.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ID1 "0b8c4c5e-3c1a-4d0e-9b7e-1f2a3b4c5d6e"
#define ID2 "1c9d5d6f-4d2b-4e1f-8c8f-2a3b4c5d6e7f"
/* base64 of 32 bytes 0x00..0x1f */
#define K32 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* base64 of 16 bytes 0x00..0x0f */
#define K16 "AAECAwQFBgcICQoLDA0ODw=="

START_TEST(base64_roundtrip)
{
	uint8_t in[64], out[64];
	char enc[128];
	size_t n;

	for (n = 0; n < sizeof(in); n++)
		in[n] = (uint8_t)(n * 37 + 1);
	for (n = 0; n <= sizeof(in); n++) {
		etsi014_base64_encode(in, n, enc);
		ck_assert_uint_eq(strlen(enc), etsi014_base64_len(n));
		ck_assert_int_eq(etsi014_base64_decode(enc, strlen(enc), out, sizeof(out)), (long)n);
		ck_assert(memcmp(in, out, n) == 0);
	}
}
END_TEST

START_TEST(base64_rejects)
{
	static const char *bad[] = {
		"A", "AA", "AAA", "AAAAA", "A===", "====", "AA=A", "A=AA", "AB==", /* AB==: bits */
		"AAB=", "AA==AAAA", "AA A", "AA\nA", "AA-_", "AA*A", "\xc3\xa9" "AA",
	};
	uint8_t out[16];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(etsi014_base64_decode(bad[i], strlen(bad[i]), out, sizeof(out)) < 0,
			      "accepted '%s'", bad[i]);
	/* does not fit */
	ck_assert_int_lt(etsi014_base64_decode(K32, strlen(K32), out, sizeof(out)), 0);
	ck_assert_int_eq(etsi014_base64_decode("AA==", 4, out, 1), 1);
	ck_assert_int_eq(etsi014_base64_decode("AAA=", 4, out, 2), 2);
}
END_TEST

START_TEST(uuid_text)
{
	uint8_t id[16], id2[16];
	char s[ETSI014_KEY_ID_LEN + 1];

	ck_assert(etsi014_uuid_parse(ID1, id));
	etsi014_uuid_format(id, s);
	ck_assert_str_eq(s, ID1);
	ck_assert(etsi014_uuid_parse("0B8C4C5E-3C1A-4D0E-9B7E-1F2A3B4C5D6E", id2));
	ck_assert(memcmp(id, id2, 16) == 0);
	ck_assert(!etsi014_key_id_valid(NULL));
	ck_assert(!etsi014_key_id_valid(""));
	ck_assert(!etsi014_key_id_valid("0b8c4c5e-3c1a-4d0e-9b7e-1f2a3b4c5d6"));
	ck_assert(!etsi014_key_id_valid(ID1 "0"));
	ck_assert(!etsi014_key_id_valid("0b8c4c5e03c1a-4d0e-9b7e-1f2a3b4c5d6e"));
	ck_assert(!etsi014_key_id_valid("0b8c4c5g-3c1a-4d0e-9b7e-1f2a3b4c5d6e"));
	ck_assert(!etsi014_key_id_valid("0b8c4c5e-3c1a-4d0e-9b7e-1f2a3b4c5d6e "));
	ck_assert(!etsi014_key_id_valid("{b8c4c5e-3c1a-4d0e-9b7e-1f2a3b4c5d6e"));
}
END_TEST

START_TEST(sae_ids)
{
	char longid[ETSI014_ID_MAX + 2];

	ck_assert(etsi014_sae_id_valid("SAE_A", 5));
	ck_assert(!etsi014_sae_id_valid("", 0));
	ck_assert(!etsi014_sae_id_valid("a/b", 3));
	ck_assert(!etsi014_sae_id_valid("a b", 3));
	ck_assert(!etsi014_sae_id_valid("a\nb", 3));
	memset(longid, 'x', sizeof(longid));
	ck_assert(etsi014_sae_id_valid(longid, ETSI014_ID_MAX));
	ck_assert(!etsi014_sae_id_valid(longid, ETSI014_ID_MAX + 1));
}
END_TEST

#define STATUS_OK                                                                              \
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","    \
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":25000,"                 \
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"             \
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}"

START_TEST(status_ok)
{
	struct etsi014_status st;
	struct etsi014_error e = {0};
	const char *ext = "{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\","
			  "\"master_SAE_ID\":\"SAE_A\",\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,"
			  "\"stored_key_count\":0,\"max_key_count\":1,\"max_key_per_request\":1,"
			  "\"max_key_size\":256,\"min_key_size\":256,\"max_SAE_ID_count\":0,"
			  "\"status_extension\":{\"x\":1}}  \n";

	ck_assert_int_eq(etsi014_parse_status(STATUS_OK, strlen(STATUS_OK), &st, &e), ETSI014_OK);
	ck_assert_str_eq(st.source_kme_id, "KME_A");
	ck_assert_str_eq(st.target_kme_id, "KME_B");
	ck_assert_str_eq(st.master_sae_id, "SAE_A");
	ck_assert_str_eq(st.slave_sae_id, "SAE_B");
	ck_assert_uint_eq(st.key_size, 256);
	ck_assert_uint_eq(st.stored_key_count, 25000);
	ck_assert_uint_eq(st.max_key_count, 100000);
	ck_assert_uint_eq(st.max_key_per_request, 128);
	ck_assert_uint_eq(st.max_key_size, 1024);
	ck_assert_uint_eq(st.min_key_size, 64);
	ck_assert_uint_eq(st.max_sae_id_count, 0);
	ck_assert_int_eq(etsi014_parse_status(ext, strlen(ext), &st, &e), ETSI014_OK);
}
END_TEST

static const char *bad_status[] = {
	"",
	"{",
	"[]",
	"null",
	"{}",
	"{\"source_KME_ID\":\"KME_A\"}",
	/* one field missing (max_SAE_ID_count) */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":25000,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64}",
	/* string where an int belongs */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":\"256\",\"stored_key_count\":25000,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	/* negative */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":-1,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	/* float */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256.5,\"stored_key_count\":1,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	/* huge */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":99999999999999999999,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	/* empty ID */
	"{\"source_KME_ID\":\"\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":1,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	/* min > max */
	"{\"source_KME_ID\":\"KME_A\",\"target_KME_ID\":\"KME_B\",\"master_SAE_ID\":\"SAE_A\","
	"\"slave_SAE_ID\":\"SAE_B\",\"key_size\":256,\"stored_key_count\":1,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":64,"
	"\"min_key_size\":1024,\"max_SAE_ID_count\":0}",
	/* trailing garbage */
	STATUS_OK "x",
	/* two documents */
	STATUS_OK STATUS_OK,
	/* single quotes (not strict JSON) */
	"{'source_KME_ID':'KME_A'}",
};

START_TEST(status_bad)
{
	struct etsi014_status st;
	struct etsi014_error e = {0};
	const char *s = bad_status[_i];

	ck_assert_msg(etsi014_parse_status(s, strlen(s), &st, &e) == ETSI014_ERR_MALFORMED,
		      "accepted status #%d", _i);
	ck_assert_int_eq(e.code, ETSI014_ERR_MALFORMED);
	ck_assert(e.message[0]);
}
END_TEST

START_TEST(status_embedded_nul)
{
	struct etsi014_status st;
	struct etsi014_error e = {0};
	char buf[sizeof(STATUS_OK) + 2];

	memcpy(buf, STATUS_OK, sizeof(STATUS_OK));
	buf[10] = '\0';
	ck_assert_int_eq(etsi014_parse_status(buf, sizeof(STATUS_OK) - 1, &st, &e),
			 ETSI014_ERR_MALFORMED);
}
END_TEST

START_TEST(container_ok)
{
	const char *body = "{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},"
			   "{\"key_ID\":\"" ID2 "\",\"key\":\"" K32 "\",\"key_extension\":{}}],"
			   "\"key_container_extension\":{}}";
	const char *want[] = {ID2, ID1};
	struct etsi014_key_container *kc;
	struct etsi014_error e = {0};
	size_t i;

	ck_assert_int_eq(etsi014_parse_key_container(body, strlen(body), 2, 256, NULL, &kc, &e),
			 ETSI014_OK);
	ck_assert_uint_eq(kc->count, 2);
	ck_assert_str_eq(kc->keys[0].key_id, ID1);
	ck_assert_str_eq(kc->keys[1].key_id, ID2);
	for (i = 0; i < 32; i++)
		ck_assert_uint_eq(kc->keys[1].key[i], i);
	etsi014_key_container_free(kc);

	/* dec_keys: returned in the order asked, any size */
	ck_assert_int_eq(etsi014_parse_key_container(body, strlen(body), 2, 0, want, &kc, &e),
			 ETSI014_OK);
	ck_assert_str_eq(kc->keys[0].key_id, ID2);
	ck_assert_str_eq(kc->keys[1].key_id, ID1);
	ck_assert_uint_eq(kc->keys[0].len, 32);
	etsi014_key_container_free(kc);
	etsi014_key_container_free(NULL);
}
END_TEST

/* A KME answering in upper case: the container holds the canonical (lower-case) key_ID, also
 * when the caller asked dec_keys in upper case. */
START_TEST(container_key_id_canonical)
{
	const char *body = "{\"keys\":[{\"key_ID\":\"0B8C4C5E-3C1A-4D0E-9B7E-1F2A3B4C5D6E\","
			   "\"key\":\"" K32 "\"}]}";
	const char *want[] = {"0b8c4c5e-3C1A-4d0e-9b7e-1f2a3b4c5d6e"};
	struct etsi014_key_container *kc;
	struct etsi014_error e = {0};
	char out[ETSI014_KEY_ID_LEN + 1] = "untouched";

	ck_assert_int_eq(etsi014_parse_key_container(body, strlen(body), 1, 256, NULL, &kc, &e),
			 ETSI014_OK);
	ck_assert_str_eq(kc->keys[0].key_id, ID1);
	etsi014_key_container_free(kc);
	ck_assert_int_eq(etsi014_parse_key_container(body, strlen(body), 1, 0, want, &kc, &e),
			 ETSI014_OK);
	ck_assert_str_eq(kc->keys[0].key_id, ID1);
	etsi014_key_container_free(kc);

	ck_assert_int_eq(etsi014_key_id_canonical("0B8C4C5E-3c1a-4D0E-9b7e-1F2A3B4C5D6E", out), 1);
	ck_assert_str_eq(out, ID1);
	ck_assert_int_eq(etsi014_key_id_canonical("0B8C4C5E-3c1a-4D0E-9b7e-1F2A3B4C5D6", out), 0);
	ck_assert_int_eq(etsi014_key_id_canonical("0B8C4C5E+3c1a-4D0E-9b7e-1F2A3B4C5D6E", out), 0);
	ck_assert_int_eq(etsi014_key_id_canonical(NULL, out), 0);
	ck_assert_str_eq(out, ID1);
}
END_TEST

/* Malformed containers; each asked as enc_keys for 2 keys of 256 bits, or dec_keys for ID1+ID2. */
static const char *bad_containers[] = {
	"",
	"not json",
	"{\"keys\":",
	"[]",
	"{}",
	"{\"keys\":{}}",
	"{\"keys\":[]}",
	"{\"keys\":null}",
	/* one key where two were asked */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"}]}",
	/* three keys where two were asked */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K32 "\"},{\"key_ID\":\"2c9d5d6f-4d2b-4e1f-8c8f-2a3b4c5d6e7f\",\"key\":\"" K32
	"\"}]}",
	/* duplicate key_ID */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID1
	"\",\"key\":\"" K32 "\"}]}",
	/* wrong key length */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K16 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K16 "\"}]}",
	/* mixed lengths */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K16 "\"}]}",
	/* bad base64 */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh!=\"}]}",
	/* base64 with non-zero padding bits */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=\"}]}",
	/* key_ID not a UUID */
	"{\"keys\":[{\"key_ID\":\"key-1\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K32 "\"}]}",
	/* key_ID a number */
	"{\"keys\":[{\"key_ID\":1,\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2 "\",\"key\":\"" K32
	"\"}]}",
	/* key missing */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\"},{\"key_ID\":\"" ID2 "\",\"key\":\"" K32 "\"}]}",
	/* key_ID missing */
	"{\"keys\":[{\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2 "\",\"key\":\"" K32 "\"}]}",
	/* key is an array */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":[1,2]},{\"key_ID\":\"" ID2 "\",\"key\":\"" K32
	"\"}]}",
	/* element not an object */
	"{\"keys\":[\"" ID1 "\",{\"key_ID\":\"" ID2 "\",\"key\":\"" K32 "\"}]}",
	/* empty key */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"\"},{\"key_ID\":\"" ID2 "\",\"key\":\"\"}]}",
	/* truncated */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2 "\",\"ke",
	/* trailing garbage */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K32 "\"}]}]",
	/* key_ID with trailing space */
	"{\"keys\":[{\"key_ID\":\"" ID1 " \",\"key\":\"" K32 "\"},{\"key_ID\":\"" ID2
	"\",\"key\":\"" K32 "\"}]}",
	/* invalid UTF-8 */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\",\"x\":\"\xff\xfe\"},{\"key_ID\":\""
	ID2 "\",\"key\":\"" K32 "\"}]}",
	/* deep nesting */
	"{\"keys\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]"
	"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	/* unknown key_ID for dec (valid UUID, not asked) */
	"{\"keys\":[{\"key_ID\":\"" ID1 "\",\"key\":\"" K32 "\"},{\"key_ID\":\"ffffffff-4d2b-4e1f-8c8f-"
	"2a3b4c5d6e7f\",\"key\":\"" K32 "\"}]}",
};

START_TEST(container_bad_enc)
{
	struct etsi014_key_container *kc = (void *)1;
	struct etsi014_error e = {0};
	const char *s = bad_containers[_i];
	enum etsi014_error_code rc;

	if (_i == (int)(sizeof(bad_containers) / sizeof(bad_containers[0])) - 1)
		return; /* only malformed for dec_keys */
	rc = etsi014_parse_key_container(s, strlen(s), 2, 256, NULL, &kc, &e);
	ck_assert_msg(rc == ETSI014_ERR_MALFORMED, "enc accepted #%d (rc %d)", _i, rc);
	ck_assert_ptr_null(kc);
	ck_assert(e.message[0]);
}
END_TEST

START_TEST(container_bad_dec)
{
	const char *want[] = {ID1, ID2};
	struct etsi014_key_container *kc = (void *)1;
	struct etsi014_error e = {0};
	const char *s = bad_containers[_i];
	enum etsi014_error_code rc;

	if (_i == 11) /* 16-byte keys are fine when no size was asked */
		return;
	rc = etsi014_parse_key_container(s, strlen(s), 2, 0, want, &kc, &e);
	ck_assert_msg(rc == ETSI014_ERR_MALFORMED, "dec accepted #%d (rc %d)", _i, rc);
	ck_assert_ptr_null(kc);
}
END_TEST

START_TEST(error_body)
{
	struct etsi014_error e = {0};
	const char *b1 = "{\"message\":\"not enough keys\",\"details\":[{\"stored\":0}]}";
	const char *b2 = "<html>503 \x01 oops</html>";
	const char *b3 = "{ \"detail\": \"SAE_B is not registered\" }";

	etsi014_parse_error_body(b1, strlen(b1), &e);
	ck_assert_str_eq(e.message, "not enough keys");
	ck_assert_str_eq(e.details, "[{\"stored\":0}]");
	etsi014_parse_error_body(b2, strlen(b2), &e);
	ck_assert_str_eq(e.message, "<html>503 ? oops</html>");
	ck_assert_str_eq(e.details, "");
	etsi014_parse_error_body("", 0, &e);
	ck_assert_str_eq(e.message, "");
	/* no ETSI "message": the body's text, not nothing */
	etsi014_parse_error_body("{\"message\":5}", 13, &e);
	ck_assert_str_eq(e.message, "{\"message\":5}");
	etsi014_parse_error_body(b3, strlen(b3), &e);
	ck_assert_str_eq(e.message, "{\"detail\":\"SAE_B is not registered\"}");
	ck_assert_str_eq(e.details, "");
}
END_TEST

START_TEST(container_alloc_limits)
{
	struct etsi014_key_container *kc;

	ck_assert_ptr_null(etsi014_key_container_alloc(ETSI014_KEYS_MAX + 1, 32));
	ck_assert_ptr_null(etsi014_key_container_alloc(1, ETSI014_KEY_BITS_MAX / 8 + 1));
	kc = etsi014_key_container_alloc(3, 4);
	ck_assert_ptr_nonnull(kc);
	ck_assert_ptr_eq(kc->keys[1].key, kc->keys[0].key + 4);
	etsi014_key_container_free(kc);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("etsi014_codec");
	TCase *tc = tcase_create("codec");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, base64_roundtrip);
	tcase_add_test(tc, base64_rejects);
	tcase_add_test(tc, uuid_text);
	tcase_add_test(tc, sae_ids);
	tcase_add_test(tc, status_ok);
	tcase_add_loop_test(tc, status_bad, 0, sizeof(bad_status) / sizeof(bad_status[0]));
	tcase_add_test(tc, status_embedded_nul);
	tcase_add_test(tc, container_ok);
	tcase_add_test(tc, container_key_id_canonical);
	tcase_add_loop_test(tc, container_bad_enc, 0,
			    sizeof(bad_containers) / sizeof(bad_containers[0]));
	tcase_add_loop_test(tc, container_bad_dec, 0,
			    sizeof(bad_containers) / sizeof(bad_containers[0]));
	tcase_add_test(tc, error_body);
	tcase_add_test(tc, container_alloc_limits);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
