/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Lifetime of the AUTH-phase keys: the credential set hands charon the PPK and QPSK derived
 * from qkey2, and wipes both once the IKE_SA is established (the listener's ike_updown).
 */
#include <check.h>
#include <stdlib.h>

#include <library.h>
#include <daemon.h>

#include "../qkd_creds.h"
#include "../qkd_listener.h"
#include "../qkd_derive.h"

#include "charon_test.h"

static bool fake_new(qkd_qki_t *this, char *peer, size_t size, chunk_t *key,
					 char key_id[QKD_KEY_ID_LEN + 1])
{
	snprintf(key_id, QKD_KEY_ID_LEN + 1, "%s", "6d6f0d3a-3e7a-4bb4-b8b8-06253ff594da");
	*key = chunk_alloc(size);
	memset(key->ptr, 0x42, size);
	return TRUE;
}

static qkd_peer_t peer = { .name = "gwB" };

static qkd_peer_t *fake_find(qkd_peers_t *this, ike_sa_t *ike_sa)
{
	return &peer;
}

/** the one key a shared key enumeration yields, copied; chunk_empty if none */
static chunk_t shared(qkd_creds_t *creds, shared_key_type_t type, identification_t *me,
					  identification_t *other)
{
	enumerator_t *enumerator;
	shared_key_t *key;
	chunk_t copy = chunk_empty;

	enumerator = creds->set.create_shared_enumerator(&creds->set, type, me, other);
	if (enumerator->enumerate(enumerator, &key, NULL, NULL))
	{
		copy = chunk_clone(key->get_key(key));
	}
	enumerator->destroy(enumerator);
	return copy;
}

START_TEST(test_ppk_and_qpsk_wiped_when_established)
{
	qkd_qki_t qki = { .get_new_key = fake_new };
	qkd_peers_t peers = { .find = fake_find };
	identification_t *placeholder, *me, *other;
	chunk_t ppk, qpsk, want, qkey2 = chunk_alloca(32);
	qkd_budget_t *budget;
	qkd_creds_t *creds;
	qkd_listener_t *listener;
	ike_sa_id_t *ike_sa_id;
	ike_sa_t *ike_sa;
	u_int uid;

	peer.psk = chunk_from_str("a base PSK of the creds test");
	memset(qkey2.ptr, 0x42, qkey2.len);
	budget = qkd_budget_create(8, 60);
	creds = qkd_creds_create(&qki, &peers, budget, 32);
	listener = qkd_listener_create(creds, &peers, budget);
	ike_sa_id = ike_sa_id_create(IKEV2_MAJOR_VERSION, 1, 0, TRUE);
	ike_sa = ike_sa_create(ike_sa_id, TRUE, IKEV2);	/* takes a clone */
	ike_sa_id->destroy(ike_sa_id);
	uid = ike_sa->get_unique_id(ike_sa);
	charon->bus->set_sa(charon->bus, ike_sa);
	placeholder = identification_create_from_string(QKD_PPK_PLACEHOLDER);
	me = identification_create_from_string("gwA.ipseq.test");
	other = identification_create_from_string("gwB.ipseq.test");

	/* IKE_AUTH: charon asks for the PPK, then for the PSK (QPSK) */
	ppk = shared(creds, SHARED_PPK, placeholder, NULL);
	ck_assert(qkd_derive_ppk(qkey2, &want));
	ck_assert_msg(chunk_equals(ppk, want), "the PPK is not HKDF(qkey2, ppk label)");
	chunk_clear(&want);
	qpsk = shared(creds, SHARED_IKE, me, other);
	ck_assert(qkd_derive_qpsk(qkey2, peer.psk, &want));
	ck_assert_msg(chunk_equals(qpsk, want), "the QPSK is not HMAC(HKDF(qkey2, qpsk label), psk)");
	chunk_clear(&want);
	chunk_clear(&ppk);
	chunk_clear(&qpsk);
	ck_assert(creds->holds_keys(creds, uid));

	/* established: SK_d, SK_pi, SK_pr are derived, both AUTH payloads done */
	listener->listener.ike_updown(&listener->listener, ike_sa, TRUE);
	ck_assert_msg(!creds->holds_keys(creds, uid), "PPK/QPSK still held after establishment");
	ck_assert(creds->has_ppk(creds, uid));		/* the fact stays for authorization */
	qpsk = shared(creds, SHARED_IKE, me, other);
	ck_assert_int_eq(qpsk.len, 0);

	charon->bus->set_sa(charon->bus, NULL);
	ike_sa->destroy(ike_sa);
	placeholder->destroy(placeholder);
	me->destroy(me);
	other->destroy(other);
	listener->destroy(listener);
	creds->destroy(creds);
	budget->destroy(budget);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkd_creds");
	TCase *tc = tcase_create("creds");

	if (!charon_test_init("HMAC-SHA256"))
	{
		return EXIT_FAILURE;
	}
	tcase_add_test(tc, test_ppk_and_qpsk_wiped_when_established);
	suite_add_tcase(s, tc);
	return charon_test_run(s);
}
