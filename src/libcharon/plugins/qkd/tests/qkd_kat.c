/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Known-answer inputs for the qkd plugin's derivations: runs the real x25519qkd key exchange
 * (initiator and responder objects), charon's own IKEv2 key derivation with the RFC 8784 PPK,
 * and QPSK, for fixed inputs, and prints inputs and results as "name hex" lines. kat.py
 * recomputes every result with an independent implementation (python3-cryptography) and
 * compares; kat.sh runs both under make check.
 */
#include <stdio.h>
#include <stdlib.h>

#include <library.h>
#include <daemon.h>
#include <sa/ikev2/keymat_v2.h>
#include <bus/listeners/file_logger.h>

#include "../qkd_ke.h"
#include "../qkd_derive.h"
#include "../qkd_abi.h"

#if QKD_STRONGSWAN_6
/* strongSwan 6.0's AUTH octets take the IntAuth of IKE_INTERMEDIATE exchanges (RFC 9242) after
 * the nonce; there are none here */
#define INT_AUTH chunk_empty,
#else
#define INT_AUTH
#endif

/* fixed inputs */
static u_char priv_i[32] = { 0x77, 0x07, 0x6d, 0x0a, 0x73, 0x18, 0xa5, 0x7d, 0x3c, 0x16, 0xc1,
	0x72, 0x51, 0xb2, 0x66, 0x45, 0xdf, 0x4c, 0x2f, 0x87, 0xeb, 0xc0, 0x99, 0x2a, 0xb1, 0x77,
	0xfb, 0xa5, 0x1d, 0xb9, 0x2c, 0x2a };
static u_char priv_r[32] = { 0x5d, 0xab, 0x08, 0x7e, 0x62, 0x4a, 0x8a, 0x4b, 0x79, 0xe1, 0x7f,
	0x8b, 0x83, 0x80, 0x0e, 0xe6, 0x6f, 0x3b, 0xb1, 0x29, 0x26, 0x18, 0xb6, 0xfd, 0x1c, 0x2f,
	0x8b, 0x27, 0xff, 0x88, 0xe0, 0xeb };
static char *qkey_id = "6d6f0d3a-3e7a-4bb4-b8b8-06253ff594da";
static u_char spi_i[8] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 };
static u_char spi_r[8] = { 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01 };

/** fixed quantum keys: qkey = 0x00.., qkey2 = 0x80.. */
static void fill(u_char *buf, size_t len, u_char start)
{
	size_t i;

	for (i = 0; i < len; i++)
	{
		buf[i] = start + i;
	}
}

static void print(char *name, chunk_t c)
{
	size_t i;

	printf("%s ", name);
	for (i = 0; i < c.len; i++)
	{
		printf("%02x", c.ptr[i]);
	}
	printf("\n");
}

static void fail(char *what)
{
	fprintf(stderr, "qkd_kat: %s\n", what);
	exit(EXIT_FAILURE);
}

/* qkid stand-in: every request gets qkey under qkey_id */
static bool fake_key(u_char *out_start, size_t size, chunk_t *key)
{
	*key = chunk_alloc(size);
	fill(key->ptr, size, *out_start);
	return TRUE;
}

static u_char qkey_start = 0x00;

#if QKD_STRONGSWAN_6
/** the additional QKD key exchange (qkd) between two of our objects, with quantum key
 * qkey3 = 0x20..; returns the initiator's */
static key_exchange_t *additional_key_exchange(void)
{
	key_exchange_t *i, *r;
	chunk_t kei, ker, ss_i, ss_r;

	qkey_start = 0x20;
	i = qkd_ke_create(QKD_ADDITIONAL);
	r = qkd_ke_create(QKD_ADDITIONAL);
	if (!i->get_public_key(i, &kei) || !r->set_public_key(r, kei) ||
		!r->get_public_key(r, &ker) || !i->set_public_key(i, ker))
	{
		fail("qkd exchange failed (key confirmation?)");
	}
	if (!i->get_shared_secret(i, &ss_i) || !r->get_shared_secret(r, &ss_r) ||
		!chunk_equals(ss_i, ss_r))
	{
		fail("initiator and responder disagree on the qkd secret");
	}
	print("add_kei", kei);
	print("add_ker", ker);
	print("add_secret", ss_i);
	chunk_free(&kei);
	chunk_free(&ker);
	chunk_clear(&ss_i);
	chunk_clear(&ss_r);
	r->destroy(r);
	qkey_start = 0x00;
	return i;
}
#endif

static bool fake_new(qkd_qki_t *this, char *peer, size_t size, chunk_t *key,
					 char key_id[QKD_KEY_ID_LEN + 1])
{
	snprintf(key_id, QKD_KEY_ID_LEN + 1, "%s", qkey_id);
	return fake_key(&qkey_start, size, key);
}

static bool fake_by_id(qkd_qki_t *this, char *peer, char *key_id, size_t size, chunk_t *key)
{
	if (!streq(key_id, qkey_id))
	{
		fail("responder resolved another key_ID than the initiator sent");
	}
	return fake_key(&qkey_start, size, key);
}

static qkd_peer_t kat_peer = { .name = "kat" };

static qkd_peer_t *fake_find(qkd_peers_t *this, ike_sa_t *ike_sa)
{
	return &kat_peer;
}

/** x25519qkd between two of our own key exchange objects; returns the initiator's */
static key_exchange_t *key_exchange(chunk_t *kei)
{
	key_exchange_t *i, *r;
	chunk_t ker, ss_i, ss_r;

	i = qkd_ke_create(QKD_X25519);
	r = qkd_ke_create(QKD_X25519);
	if (!i || !r ||
#if QKD_STRONGSWAN_6
		!i->set_seed(i, chunk_from_thing(priv_i), NULL) ||
		!r->set_seed(r, chunk_from_thing(priv_r), NULL))
#else
		!i->set_private_key(i, chunk_from_thing(priv_i)) ||
		!r->set_private_key(r, chunk_from_thing(priv_r)))
#endif
	{
		fail("cannot create the key exchanges (X25519 from the openssl plugin?)");
	}
	if (!i->get_public_key(i, kei) || !r->set_public_key(r, *kei) ||
		!r->get_public_key(r, &ker) || !i->set_public_key(i, ker))
	{
		fail("x25519qkd exchange failed (key confirmation?)");
	}
	if (!i->get_shared_secret(i, &ss_i) || !r->get_shared_secret(r, &ss_r) ||
		!chunk_equals(ss_i, ss_r))
	{
		fail("initiator and responder disagree on the shared secret");
	}
	print("kei", *kei);
	print("ker", ker);
	print("ke_secret", ss_i);
	chunk_free(&ker);
	chunk_clear(&ss_i);
	chunk_clear(&ss_r);
	r->destroy(r);
	return i;
}

int main(void)
{
	qkd_qki_t qki = { .get_new_key = fake_new, .get_key_by_id = fake_by_id };
	qkd_peers_t peers = { .find = fake_find };
	u_char qkey[32], qkey2[32], nonce_i[32], nonce_r[32];
	char reserved[3] = {};
	chunk_t psk = chunk_from_str("base PSK of the known-answer test");
	chunk_t init_i = chunk_from_str("IKE_SA_INIT request bytes");
	chunk_t init_r = chunk_from_str("IKE_SA_INIT response bytes");
	chunk_t kei, ppk, qpsk, skd, octets_i, octets_r, auth;
	identification_t *idi, *idr;
	key_exchange_t *ke;
#if QKD_STRONGSWAN_6
	array_t *kes;
#else
	key_exchange_t *kes;
#endif
	proposal_t *proposal;
	keymat_v2_t *keymat;
	ike_sa_id_t *id;
	uint64_t spi_i_val, spi_r_val;

	library_init(NULL, "qkd-kat");
	libcharon_init();
	if (getenv("KAT_DEBUG"))
	{	/* charon's own log of the derivation, to stderr */
		file_logger_t *logger = file_logger_create("stderr");

		logger->set_level(logger, DBG_ANY, atoi(getenv("KAT_DEBUG")));
		logger->open(logger, FALSE, FALSE);
		charon->bus->add_logger(charon->bus, &logger->logger);
	}
	if (!lib->plugins->load(lib->plugins, "openssl kdf"))
	{
		fail("cannot load strongSwan's openssl and kdf plugins");
	}
	qkd_ke_set_context(&qki, &peers, NULL, sizeof(qkey));
	fill(qkey, sizeof(qkey), 0x00);
	fill(qkey2, sizeof(qkey2), 0x80);
	fill(nonce_i, sizeof(nonce_i), 0x40);
	fill(nonce_r, sizeof(nonce_r), 0xc0);
	print("priv_i", chunk_from_thing(priv_i));
	print("priv_r", chunk_from_thing(priv_r));
	print("qkey", chunk_from_thing(qkey));
	print("key_id", chunk_from_str(qkey_id));
	print("qkey2", chunk_from_thing(qkey2));
	print("psk", psk);
	print("nonce_i", chunk_from_thing(nonce_i));
	print("nonce_r", chunk_from_thing(nonce_r));
	print("spi_i", chunk_from_thing(spi_i));
	print("spi_r", chunk_from_thing(spi_r));
	print("init_i", init_i);
	print("init_r", init_r);

	ke = key_exchange(&kei);

	/* IKE_SA keys as charon derives them (initiator), then RFC 8784 with our PPK */
	memcpy(&spi_i_val, spi_i, sizeof(spi_i_val));
	memcpy(&spi_r_val, spi_r, sizeof(spi_r_val));
	id = ike_sa_id_create(IKEV2_MAJOR_VERSION, spi_i_val, spi_r_val, TRUE);
	proposal = proposal_create_from_string(PROTO_IKE, "aes256gcm16-prfsha256-x25519");
	keymat = keymat_v2_create(TRUE);
#if QKD_STRONGSWAN_6
	/* 6.0 derives from every key exchange of the IKE_SA (RFC 9370); here there is one */
	kes = array_create(0, 1);
	array_insert(kes, ARRAY_TAIL, ke);
#else
	kes = ke;
#endif
	if (!proposal || !keymat->derive_ike_keys(keymat, proposal, kes,
			chunk_from_thing(nonce_i), chunk_from_thing(nonce_r), id, PRF_UNDEFINED,
			chunk_empty))
	{
		fail("charon's IKE key derivation failed");
	}
	keymat->get_skd(keymat, &skd);
	print("skd_no_ppk", skd);
#if QKD_STRONGSWAN_6
	{	/* an IKE_INTERMEDIATE round with qkd as charon runs it (RFC 9370): SKEYSEED(1) =
		 * prf(SK_d(0), SK(1) | Ni | Nr), the SPIs unchanged */
		key_exchange_t *add = additional_key_exchange();
		u_char qkey3[32];
		array_t *kes_add = array_create(0, 1);
		chunk_t skd0 = chunk_clone(skd);

		fill(qkey3, sizeof(qkey3), 0x20);
		print("qkey3", chunk_from_thing(qkey3));
		array_insert(kes_add, ARRAY_TAIL, add);
		if (!keymat->derive_ike_keys(keymat, proposal, kes_add, chunk_from_thing(nonce_i),
				chunk_from_thing(nonce_r), id, PRF_HMAC_SHA2_256, skd0))
		{
			fail("charon's IKE key derivation of the additional key exchange failed");
		}
		chunk_clear(&skd0);
		array_destroy(kes_add);
		add->destroy(add);
		keymat->get_skd(keymat, &skd);
		print("skd_add", skd);
	}
#endif
	if (!qkd_derive_ppk(chunk_from_thing(qkey2), &ppk) ||
		!keymat->derive_ike_keys_ppk(keymat, ppk))
	{
		fail("PPK derivation or application failed");
	}
	print("ppk", ppk);
	keymat->get_skd(keymat, &skd);
	print("skd", skd);
	idi = identification_create_from_string("gwA.ipseq.test");
	idr = identification_create_from_string("gwB.ipseq.test");
	print("idi", idi->get_encoding(idi));
	print("idr", idr->get_encoding(idr));
	/* octets end in prf(SK_pi, IDi') (initiator builds) and prf(SK_pr, IDr') (verifies) */
	if (!keymat->get_auth_octets(keymat, FALSE, init_i, chunk_from_thing(nonce_r), INT_AUTH chunk_empty,
								 idi, reserved, &octets_i, NULL) ||
		!keymat->get_auth_octets(keymat, TRUE, init_r, chunk_from_thing(nonce_i), INT_AUTH chunk_empty,
								 idr, reserved, &octets_r, NULL))
	{
		fail("AUTH octets failed");
	}
	print("octets_i", octets_i);
	print("octets_r", octets_r);
	if (!qkd_derive_qpsk(chunk_from_thing(qkey2), psk, &qpsk) ||
		!keymat->get_psk_sig(keymat, FALSE, init_i, chunk_from_thing(nonce_r), INT_AUTH qpsk,
							 chunk_empty, idi, reserved, &auth))
	{
		fail("QPSK or the PSK AUTH payload failed");
	}
	print("qpsk", qpsk);
	print("auth_i", auth);

	chunk_clear(&ppk);
	chunk_clear(&qpsk);
	chunk_free(&octets_i);
	chunk_free(&octets_r);
	chunk_free(&auth);
	chunk_free(&kei);
	idi->destroy(idi);
	idr->destroy(idr);
	keymat->keymat.destroy(&keymat->keymat);
	proposal->destroy(proposal);
	id->destroy(id);
	ke->destroy(ke);
#if QKD_STRONGSWAN_6
	array_destroy(kes);
#endif
	qkd_ke_set_context(NULL, NULL, NULL, 0);
	libcharon_deinit();
	library_deinit();
	return EXIT_SUCCESS;
}
