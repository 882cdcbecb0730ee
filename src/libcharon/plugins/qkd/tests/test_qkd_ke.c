/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The qkd plugin's key exchange objects between an initiator and a responder, with a qkid
 * stand-in: the additional QKD key exchange (qkd, strongSwan 6's ke1_qkd) carries only the
 * key_ID and the key confirmation and its secret comes from the quantum key alone; bad KE data,
 * an unknown key_ID and a KME that gives no key fail the exchange; x25519qkd is unchanged.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#include <library.h>
#include <daemon.h>

#include "../qkd_ke.h"
#include "../qkd_derive.h"

#include "charon_test.h"

/* qkid stand-in: key n has key_ID 00000000-0000-4000-8000-00000000000n and bytes n, n+1, ... */
static int issued;
static bool kme_down;

static void make_key(int n, size_t size, chunk_t *key)
{
	size_t i;

	*key = chunk_alloc(size);
	for (i = 0; i < size; i++)
	{
		key->ptr[i] = n + i;
	}
}

static bool fake_new(qkd_qki_t *this, char *peer, size_t size, chunk_t *key,
					 char key_id[QKD_KEY_ID_LEN + 1])
{
	if (kme_down)
	{
		return FALSE;
	}
	issued++;
	snprintf(key_id, QKD_KEY_ID_LEN + 1, "00000000-0000-4000-8000-%012d", issued);
	make_key(issued, size, key);
	return TRUE;
}

static bool fake_by_id(qkd_qki_t *this, char *peer, char *key_id, size_t size, chunk_t *key)
{
	int n;

	if (sscanf(key_id, "00000000-0000-4000-8000-%12d", &n) != 1 || n < 1 || n > issued)
	{
		return FALSE;	/* the KME knows no such key */
	}
	make_key(n, size, key);
	return TRUE;
}

static qkd_peer_t test_peer = { .name = "test" };

static qkd_peer_t *fake_find(qkd_peers_t *this, ike_sa_t *ike_sa)
{
	return &test_peer;
}

static qkd_qki_t qki = { .get_new_key = fake_new, .get_key_by_id = fake_by_id };
static qkd_peers_t peers = { .find = fake_find };

static void setup(void)
{
	issued = 0;
	kme_down = FALSE;
	qkd_ke_set_context(&qki, &peers, NULL, 32);
}

static void teardown(void)
{
	qkd_ke_set_context(NULL, NULL, NULL, 0);
}

/* KEi and KEr of one exchange; FALSE if any step fails */
static bool exchange(key_exchange_method_t method, key_exchange_t **i, key_exchange_t **r,
					 chunk_t *kei, chunk_t *ker)
{
	*i = qkd_ke_create(method);
	*r = qkd_ke_create(method);
	ck_assert(*i && *r);
	return (*i)->get_public_key(*i, kei) && (*r)->set_public_key(*r, *kei) &&
		   (*r)->get_public_key(*r, ker) && (*i)->set_public_key(*i, *ker);
}

START_TEST(test_additional_exchange)
{
	key_exchange_t *i, *r;
	chunk_t kei, ker, ss_i, ss_r, qkey, expect;

	ck_assert(exchange(QKD_ADDITIONAL, &i, &r, &kei, &ker));
	ck_assert_int_eq(i->get_method(i), QKD_ADDITIONAL);
	/* KEi = version || key_ID: no X25519 public value */
	ck_assert_int_eq(kei.len, 1 + QKD_KEY_ID_LEN);
	ck_assert_int_eq(kei.ptr[0], QKD_WIRE_VERSION);
	ck_assert(memeq(kei.ptr + 1, "00000000-0000-4000-8000-000000000001", QKD_KEY_ID_LEN));
	/* KEr = version || confirm */
	ck_assert_int_eq(ker.len, 1 + QKD_CONFIRM_LEN);
	ck_assert_int_eq(ker.ptr[0], QKD_WIRE_VERSION);
	ck_assert(i->get_shared_secret(i, &ss_i));
	ck_assert(r->get_shared_secret(r, &ss_r));
	ck_assert(chunk_equals(ss_i, ss_r));
	/* the secret is the quantum key's own sub-key, 32 bytes, nothing else */
	make_key(1, 32, &qkey);
	ck_assert(qkd_derive_subkey(qkey, QKD_LABEL_ADD_SECRET, &expect));
	ck_assert(chunk_equals(ss_i, expect));
	ck_assert(!chunk_equals(ss_i, qkey));
	chunk_clear(&expect);
	/* not the hybrid's sub-key either */
	ck_assert(qkd_derive_subkey(qkey, QKD_LABEL_KE_SECRET, &expect));
	ck_assert(!chunk_equals(ss_i, expect));
	chunk_clear(&expect);
	chunk_clear(&qkey);
	chunk_clear(&ss_i);
	chunk_clear(&ss_r);
	chunk_free(&kei);
	chunk_free(&ker);
	i->destroy(i);
	r->destroy(r);

	/* a second exchange draws a fresh key */
	ck_assert(exchange(QKD_ADDITIONAL, &i, &r, &kei, &ker));
	ck_assert(memeq(kei.ptr + 1, "00000000-0000-4000-8000-000000000002", QKD_KEY_ID_LEN));
	chunk_free(&kei);
	chunk_free(&ker);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_additional_bad_kei)
{
	key_exchange_t *i, *r;
	chunk_t kei, bad, ss;
	u_char buf[128];

	i = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(i->get_public_key(i, &kei));
	ck_assert(kei.len <= sizeof(buf) - 32);
	memset(buf, 'a', sizeof(buf));
	memcpy(buf, kei.ptr, kei.len);
	/* short, long, the length of x25519qkd's KEi, empty */
	{
		size_t lens[] = { kei.len - 1, kei.len + 1, QKD_KEI_LEN, 0 };
		int n;

		for (n = 0; n < countof(lens); n++)
		{
			r = qkd_ke_create(QKD_ADDITIONAL);
			ck_assert_msg(!r->set_public_key(r, chunk_create(buf, lens[n])), "len %zu",
						  lens[n]);
			r->destroy(r);
		}
	}
	/* another version */
	bad = chunk_clone(kei);
	bad.ptr[0] = QKD_WIRE_VERSION + 1;
	r = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(!r->set_public_key(r, bad));
	r->destroy(r);
	/* not a key_ID */
	bad.ptr[0] = QKD_WIRE_VERSION;
	bad.ptr[9] = 'x';
	r = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(!r->set_public_key(r, bad));
	r->destroy(r);
	/* a key_ID the KME does not know */
	memcpy(bad.ptr + 1, "00000000-0000-4000-8000-000000000099", QKD_KEY_ID_LEN);
	r = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(!r->set_public_key(r, bad));
	ck_assert(!r->get_shared_secret(r, &ss));
	r->destroy(r);
	chunk_free(&bad);
	chunk_free(&kei);
	i->destroy(i);
}
END_TEST

START_TEST(test_additional_bad_ker)
{
	key_exchange_t *i, *r;
	chunk_t kei, ker, bad, ss;

	/* the initiator gets a KEr that is too short, too long, or confirms another key */
	i = qkd_ke_create(QKD_ADDITIONAL);
	r = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(i->get_public_key(i, &kei));
	ck_assert(r->set_public_key(r, kei));
	ck_assert(r->get_public_key(r, &ker));
	ck_assert(!i->set_public_key(i, chunk_create(ker.ptr, ker.len - 1)));
	bad = chunk_cat("cc", ker, chunk_from_chars(0x00));
	ck_assert(!i->set_public_key(i, bad));
	chunk_free(&bad);
	bad = chunk_clone(ker);
	bad.ptr[bad.len - 1] ^= 0x01;
	ck_assert(!i->set_public_key(i, bad));
	chunk_free(&bad);
	/* the right one still passes, and both agree */
	ck_assert(i->set_public_key(i, ker));
	ck_assert(i->get_shared_secret(i, &ss));
	chunk_clear(&ss);
	chunk_free(&kei);
	chunk_free(&ker);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_additional_kme_down)
{
	key_exchange_t *i;
	chunk_t kei, ss;

	kme_down = TRUE;
	i = qkd_ke_create(QKD_ADDITIONAL);
	ck_assert(!i->get_public_key(i, &kei));
	ck_assert(!i->get_shared_secret(i, &ss));
	i->destroy(i);
}
END_TEST

START_TEST(test_hybrid_unchanged)
{
	key_exchange_t *i, *r;
	chunk_t kei, ker, ss_i, ss_r;

	ck_assert(exchange(QKD_X25519, &i, &r, &kei, &ker));
	ck_assert_int_eq(i->get_method(i), QKD_X25519);
	ck_assert_int_eq(kei.len, QKD_KEI_LEN);
	ck_assert_int_eq(ker.len, QKD_KER_LEN);
	ck_assert(i->get_shared_secret(i, &ss_i));
	ck_assert(r->get_shared_secret(r, &ss_r));
	ck_assert(chunk_equals(ss_i, ss_r));
	ck_assert_int_eq(ss_i.len, 32 + QKD_SUBKEY_LEN);	/* X25519 || K_ke */
	/* the KE data of one method is refused by the other */
	{
		key_exchange_t *other = qkd_ke_create(QKD_ADDITIONAL);

		ck_assert(!other->set_public_key(other, kei));
		other->destroy(other);
	}
	chunk_clear(&ss_i);
	chunk_clear(&ss_r);
	chunk_free(&kei);
	chunk_free(&ker);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

/* charon builds IKE_SA_INIT anew after a COOKIE and keeps the key exchange object: the second
 * KEi names a fresh quantum key (the responder drew the first one already), the X25519 value
 * stays, and the exchange completes on the second key; once KEr came, KEi is final */
START_TEST(test_cookie_retry_fresh_key)
{
	key_exchange_t *i, *r;
	chunk_t kei1, kei2, kei3, ker, ss_i, ss_r;

	i = qkd_ke_create(QKD_X25519);
	r = qkd_ke_create(QKD_X25519);
	ck_assert(i->get_public_key(i, &kei1));
	ck_assert(i->get_public_key(i, &kei2));
	ck_assert_int_eq(kei1.len, QKD_KEI_LEN);
	ck_assert_int_eq(kei2.len, QKD_KEI_LEN);
	/* version || X25519 || key_ID: the same X25519 value, another key_ID */
	ck_assert(memeq(kei1.ptr, kei2.ptr, 1 + 32));
	ck_assert(memeq(kei1.ptr + 1 + 32, "00000000-0000-4000-8000-000000000001", QKD_KEY_ID_LEN));
	ck_assert(memeq(kei2.ptr + 1 + 32, "00000000-0000-4000-8000-000000000002", QKD_KEY_ID_LEN));
	ck_assert(r->set_public_key(r, kei2));
	ck_assert(r->get_public_key(r, &ker));
	ck_assert(i->set_public_key(i, ker));
	ck_assert(i->get_shared_secret(i, &ss_i));
	ck_assert(r->get_shared_secret(r, &ss_r));
	ck_assert(chunk_equals(ss_i, ss_r));
	/* answered: asking again returns the same KEi and draws no key */
	ck_assert(i->get_public_key(i, &kei3));
	ck_assert(chunk_equals(kei2, kei3));
	ck_assert_int_eq(issued, 2);
	chunk_clear(&ss_i);
	chunk_clear(&ss_r);
	chunk_free(&kei1);
	chunk_free(&kei2);
	chunk_free(&kei3);
	chunk_free(&ker);
	i->destroy(i);
	r->destroy(r);
}
END_TEST

START_TEST(test_other_method)
{
	ck_assert_ptr_null(qkd_ke_create(CURVE_25519));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkd_ke");
	TCase *tc = tcase_create("ke");

	if (!charon_test_init("X25519, HMAC"))
	{
		return EXIT_FAILURE;
	}
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_additional_exchange);
	tcase_add_test(tc, test_additional_bad_kei);
	tcase_add_test(tc, test_additional_bad_ker);
	tcase_add_test(tc, test_additional_kme_down);
	tcase_add_test(tc, test_hybrid_unchanged);
	tcase_add_test(tc, test_cookie_retry_fresh_key);
	tcase_add_test(tc, test_other_method);
	suite_add_tcase(s, tc);
	return charon_test_run(s);
}
