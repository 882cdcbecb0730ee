/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The mlkem plugin's key exchange: sizes on the wire, a full exchange, strongSwan's own
 * known-answer vectors, and KE data of the wrong length or encoding refused with a clear line.
 */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include <library.h>
#include <crypto/crypto_tester.h>

#include "../mlkem_ke.h"

/*
 * strongSwan's ML-KEM known-answer vectors (the first four of liboqs' KAT per parameter set),
 * compiled from the strongSwan source package the build's headers come from: they are not
 * copied into this repository.
 */
#include <plugins/test_vectors/test_vectors/ml_kem.c>

static const key_exchange_method_t methods[] = { ML_KEM_512, ML_KEM_768, ML_KEM_1024 };

/* FIPS 203, table 3: encapsulation key and ciphertext bytes */
static const struct { size_t ek, ct; } sizes[] = { { 800, 768 }, { 1184, 1088 }, { 1568, 1568 } };

/* the last line the code under test logged, to check what an operator would read */
static char logged[1024];

static void capture_dbg(debug_t group, level_t level, char *fmt, ...)
{
	va_list args;

	if (level > 1)
	{
		return;
	}
	va_start(args, fmt);
	vsnprintf(logged, sizeof(logged), fmt, args);
	va_end(args);
}

static bool logged_has(const char *what)
{
	return strstr(logged, what) != NULL;
}

/* a complete exchange: initiator i, responder r; returns the responder's ciphertext */
static chunk_t exchange(key_exchange_t *i, key_exchange_t *r, chunk_t *ek)
{
	chunk_t ct;

	ck_assert(i->get_public_key(i, ek));
	ck_assert(r->set_public_key(r, *ek));
	ck_assert(r->get_public_key(r, &ct));
	return ct;
}

START_TEST(test_sizes_and_secret)
{
	key_exchange_t *i, *r;
	chunk_t ek, ct, si, sr;

	i = mlkem_ke_create(methods[_i]);
	r = mlkem_ke_create(methods[_i]);
	ck_assert_ptr_nonnull(i);
	ck_assert_ptr_nonnull(r);
	ck_assert_int_eq(i->get_method(i), methods[_i]);
	ck_assert(!i->get_shared_secret(i, &si));	/* nothing before the exchange */
	ct = exchange(i, r, &ek);
	ck_assert_uint_eq(ek.len, sizes[_i].ek);
	ck_assert_uint_eq(ct.len, sizes[_i].ct);
	ck_assert_uint_eq(mlkem_params_get(methods[_i])->ek_len, sizes[_i].ek);
	ck_assert_uint_eq(mlkem_params_get(methods[_i])->ct_len, sizes[_i].ct);
	ck_assert(i->set_public_key(i, ct));
	ck_assert(i->get_shared_secret(i, &si));
	ck_assert(r->get_shared_secret(r, &sr));
	ck_assert_uint_eq(si.len, 32);
	ck_assert(chunk_equals(si, sr));
	ck_assert(!chunk_equals(si, chunk_from_chars(0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,
							0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0)));
	chunk_clear(&si);
	chunk_clear(&sr);
	chunk_free(&ek);
	chunk_free(&ct);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_ek_wrong_length)
{
	const size_t deltas[] = { 1, 0 };
	key_exchange_t *i, *r;
	chunk_t ek, cut;
	int d;

	i = mlkem_ke_create(methods[_i]);
	ck_assert(i->get_public_key(i, &ek));
	for (d = 0; d < countof(deltas); d++)
	{
		/* one byte short, and nothing at all */
		cut = chunk_create(ek.ptr, deltas[d] ? ek.len - deltas[d] : 0);
		r = mlkem_ke_create(methods[_i]);
		logged[0] = '\0';
		ck_assert(!r->set_public_key(r, cut));
		ck_assert_msg(logged_has("encapsulation key from the initiator has") &&
					  logged_has("expected; key exchange failed"), "logged: '%s'", logged);
		r->destroy(r);
	}
	/* one byte too many */
	ek = chunk_cat("mc", ek, chunk_from_chars(0x00));
	r = mlkem_ke_create(methods[_i]);
	logged[0] = '\0';
	ck_assert(!r->set_public_key(r, ek));
	ck_assert_msg(logged_has("expected; key exchange failed"), "logged: '%s'", logged);
	r->destroy(r);
	chunk_free(&ek);
	i->destroy(i);
}
END_TEST

START_TEST(test_ek_of_another_size)
{
	key_exchange_t *i, *r;
	chunk_t ek;
	char want[64];

	/* the encapsulation key of the next parameter set, as a confused peer would send it */
	i = mlkem_ke_create(methods[(_i + 1) % countof(methods)]);
	r = mlkem_ke_create(methods[_i]);
	ck_assert(i->get_public_key(i, &ek));
	logged[0] = '\0';
	ck_assert(!r->set_public_key(r, ek));
	snprintf(want, sizeof(want), "has %zu bytes, %zu expected", ek.len, sizes[_i].ek);
	ck_assert_msg(logged_has(want), "logged: '%s'", logged);
	chunk_free(&ek);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_ek_bad_encoding)
{
	key_exchange_t *r;
	chunk_t ek, ct;

	/* every 12-bit coefficient 0xfff, above q = 3329: fails FIPS 203's modulus check */
	ek = chunk_alloc(sizes[_i].ek);
	memset(ek.ptr, 0xff, ek.len);
	r = mlkem_ke_create(methods[_i]);
	logged[0] = '\0';
	ck_assert(!r->set_public_key(r, ek));
	ck_assert_msg(logged_has("not a valid encoding"), "logged: '%s'", logged);
	ck_assert(!r->get_shared_secret(r, &ct));
	r->destroy(r);
	chunk_free(&ek);
}
END_TEST

START_TEST(test_ct_wrong_length)
{
	key_exchange_t *i, *r;
	chunk_t ek, ct, s;

	i = mlkem_ke_create(methods[_i]);
	r = mlkem_ke_create(methods[_i]);
	ct = exchange(i, r, &ek);
	logged[0] = '\0';
	ck_assert(!i->set_public_key(i, chunk_create(ct.ptr, ct.len - 1)));
	ck_assert_msg(logged_has("ciphertext from the responder has") &&
				  logged_has("expected; key exchange failed"), "logged: '%s'", logged);
	ck_assert(!i->set_public_key(i, chunk_empty));
	ck_assert(!i->get_shared_secret(i, &s));
	/* the right ciphertext still works after the refusals */
	ck_assert(i->set_public_key(i, ct));
	ck_assert(i->get_shared_secret(i, &s));
	chunk_clear(&s);
	chunk_free(&ek);
	chunk_free(&ct);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_ct_forged)
{
	key_exchange_t *i, *r;
	chunk_t ek, ct, si, sr;

	/* a forged ciphertext of the right length gives ML-KEM's implicit-rejection secret: the
	 * exchange goes on and fails at authentication, with no shared secret in common */
	i = mlkem_ke_create(methods[_i]);
	r = mlkem_ke_create(methods[_i]);
	ct = exchange(i, r, &ek);
	ct.ptr[ct.len / 2] ^= 0x01;
	ck_assert(i->set_public_key(i, ct));
	ck_assert(i->get_shared_secret(i, &si));
	ck_assert(r->get_shared_secret(r, &sr));
	ck_assert(!chunk_equals(si, sr));
	chunk_clear(&si);
	chunk_clear(&sr);
	chunk_free(&ek);
	chunk_free(&ct);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

/* strongSwan's crypto tester runs its known-answer sequence (the DRBG of the vector's seed
 * drawn by both sides in turn) and compares the initiator's and responder's KE data and the
 * shared secret byte for byte */
START_TEST(test_known_answers)
{
	ke_test_vector_t *vectors[] = {
		&mlkem512_0, &mlkem512_1, &mlkem512_2, &mlkem512_3,
		&mlkem768_0, &mlkem768_1, &mlkem768_2, &mlkem768_3,
		&mlkem1024_0, &mlkem1024_1, &mlkem1024_2, &mlkem1024_3,
	};
	crypto_tester_t *tester;
	int v;

	tester = crypto_tester_create();
	for (v = 0; v < countof(vectors); v++)
	{
		tester->add_ke_vector(tester, vectors[v]);
	}
	logged[0] = '\0';
	ck_assert_msg(tester->test_ke(tester, methods[_i], (ke_constructor_t)mlkem_ke_create,
								  NULL, "mlkem"), "logged: '%s'", logged);
	ck_assert_msg(logged_has("passed 4 test vectors"), "logged: '%s'", logged);
	tester->destroy(tester);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("mlkem");
	TCase *tc = tcase_create("ke");
	SRunner *sr;
	int failed, n = countof(methods);

	library_init(NULL, "mlkem-test");
	/* the KAT's CTR-DRBG: strongSwan's drbg plugin on the openssl plugin's AES */
	if (!lib->plugins->load(lib->plugins, "openssl drbg"))
	{
		fprintf(stderr, "loading strongSwan's openssl and drbg plugins failed\n");
		return EXIT_FAILURE;
	}
	dbg = capture_dbg;
	tcase_add_loop_test(tc, test_sizes_and_secret, 0, n);
	tcase_add_loop_test(tc, test_ek_wrong_length, 0, n);
	tcase_add_loop_test(tc, test_ek_of_another_size, 0, n);
	tcase_add_loop_test(tc, test_ek_bad_encoding, 0, n);
	tcase_add_loop_test(tc, test_ct_wrong_length, 0, n);
	tcase_add_loop_test(tc, test_ct_forged, 0, n);
	tcase_add_loop_test(tc, test_known_answers, 0, n);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_set_fork_status(sr, CK_NOFORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	library_deinit();
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
