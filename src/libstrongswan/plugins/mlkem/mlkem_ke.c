/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "mlkem_ke.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

/** ML-KEM's shared secret K, 32 bytes for every parameter set */
#define MLKEM_SS_LEN 32
/** the seed d || z of a deterministic key generation (FIPS 203, ML-KEM.KeyGen_internal) */
#define MLKEM_KEYGEN_SEED_LEN 64
/** the message m of a deterministic encapsulation (ML-KEM.Encaps_internal) */
#define MLKEM_ENCAPS_SEED_LEN 32

static const mlkem_params_t params[] = {
	{ ML_KEM_512,  "ML-KEM-512",   800,  768 },
	{ ML_KEM_768,  "ML-KEM-768",  1184, 1088 },
	{ ML_KEM_1024, "ML-KEM-1024", 1568, 1568 },
};

/*
 * Described in header
 */
const mlkem_params_t *mlkem_params_get(key_exchange_method_t method)
{
	int i;

	for (i = 0; i < countof(params); i++)
	{
		if (params[i].method == method)
		{
			return &params[i];
		}
	}
	return NULL;
}

typedef struct private_mlkem_ke_t private_mlkem_ke_t;

/**
 * Private data of an ML-KEM key exchange.
 */
struct private_mlkem_ke_t {

	/**
	 * Public interface.
	 */
	key_exchange_t public;

	/**
	 * Sizes and OpenSSL name of the method.
	 */
	const mlkem_params_t *params;

	/**
	 * As initiator: our key pair (OpenSSL wipes its private part when it is freed).
	 */
	EVP_PKEY *key;

	/**
	 * Our encapsulation key as initiator, once generated.
	 */
	chunk_t ek;

	/**
	 * As responder: the ciphertext we encapsulated to the initiator's key.
	 */
	chunk_t ciphertext;

	/**
	 * The shared secret, once encapsulated or decapsulated.
	 */
	chunk_t shared_secret;

	/**
	 * Deterministic randomness for known-answer tests (set_seed), else NULL.
	 */
	drbg_t *drbg;
};

/**
 * Draw a seed from the test DRBG into an OpenSSL parameter list, if there is a DRBG.
 */
static bool seed_params(private_mlkem_ke_t *this, const char *key, uint8_t *seed, size_t len,
						OSSL_PARAM p[2])
{
	p[0] = OSSL_PARAM_construct_end();
	if (!this->drbg)
	{
		return TRUE;
	}
	if (!this->drbg->generate(this->drbg, len, seed))
	{
		return FALSE;
	}
	p[0] = OSSL_PARAM_construct_octet_string(key, seed, len);
	p[1] = OSSL_PARAM_construct_end();
	return TRUE;
}

/**
 * As initiator: generate a key pair and export its encapsulation key.
 */
static bool generate_keypair(private_mlkem_ke_t *this)
{
	EVP_PKEY_CTX *ctx;
	uint8_t seed[MLKEM_KEYGEN_SEED_LEN];
	OSSL_PARAM p[2];
	size_t len = 0;
	bool ok = FALSE;

	ctx = EVP_PKEY_CTX_new_from_name(NULL, this->params->name, NULL);
	if (ctx && seed_params(this, OSSL_PKEY_PARAM_ML_KEM_SEED, seed, sizeof(seed), p) &&
		EVP_PKEY_keygen_init(ctx) > 0 && (!this->drbg || EVP_PKEY_CTX_set_params(ctx, p) > 0) &&
		EVP_PKEY_keygen(ctx, &this->key) > 0)
	{
		this->ek = chunk_alloc(this->params->ek_len);
		ok = EVP_PKEY_get_octet_string_param(this->key, OSSL_PKEY_PARAM_PUB_KEY,
							this->ek.ptr, this->ek.len, &len) > 0 && len == this->ek.len;
	}
	if (!ok)
	{
		DBG1(DBG_LIB, "mlkem: generating an %N key pair failed in OpenSSL",
			 key_exchange_method_names, this->params->method);
		chunk_free(&this->ek);
	}
	memwipe(seed, sizeof(seed));
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

METHOD(key_exchange_t, get_public_key, bool,
	private_mlkem_ke_t *this, chunk_t *value)
{
	/* as responder, set_public_key() encapsulated: our KE data is the ciphertext */
	if (this->ciphertext.ptr)
	{
		*value = chunk_clone(this->ciphertext);
		return TRUE;
	}
	/* as initiator, our KE data is the encapsulation key of a fresh key pair */
	if (!this->ek.ptr && !generate_keypair(this))
	{
		return FALSE;
	}
	*value = chunk_clone(this->ek);
	return TRUE;
}

/**
 * As initiator: decapsulate the responder's ciphertext with our private key.
 */
static bool decapsulate(private_mlkem_ke_t *this, chunk_t ct)
{
	EVP_PKEY_CTX *ctx;
	size_t len = MLKEM_SS_LEN;
	bool ok = FALSE;

	if (ct.len != this->params->ct_len)
	{
		DBG1(DBG_LIB, "mlkem: %N ciphertext from the responder has %zu bytes, %zu expected; "
			 "key exchange failed", key_exchange_method_names, this->params->method, ct.len,
			 this->params->ct_len);
		return FALSE;
	}
	if (this->shared_secret.ptr)
	{
		DBG1(DBG_LIB, "mlkem: a second %N ciphertext for one key exchange refused",
			 key_exchange_method_names, this->params->method);
		return FALSE;
	}
	this->shared_secret = chunk_alloc(MLKEM_SS_LEN);
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, this->key, NULL);
	/* a ciphertext of the right length always decapsulates: a forged one yields ML-KEM's
	 * implicit-rejection secret, and the exchange fails at authentication */
	if (ctx && EVP_PKEY_decapsulate_init(ctx, NULL) > 0 &&
		EVP_PKEY_decapsulate(ctx, this->shared_secret.ptr, &len, ct.ptr, ct.len) > 0 &&
		len == MLKEM_SS_LEN)
	{
		ok = TRUE;
	}
	else
	{
		DBG1(DBG_LIB, "mlkem: %N decapsulation failed in OpenSSL",
			 key_exchange_method_names, this->params->method);
		chunk_clear(&this->shared_secret);
	}
	EVP_PKEY_CTX_free(ctx);
	return ok;
}

/**
 * Import the initiator's encapsulation key. OpenSSL checks its encoding on import (the
 * modulus check of FIPS 203, section 7.2).
 */
static EVP_PKEY *import_ek(private_mlkem_ke_t *this, chunk_t ek)
{
	EVP_PKEY_CTX *ctx;
	EVP_PKEY *peer = NULL;
	OSSL_PARAM p[] = {
		OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, ek.ptr, ek.len),
		OSSL_PARAM_construct_end(),
	};

	ctx = EVP_PKEY_CTX_new_from_name(NULL, this->params->name, NULL);
	if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
		EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, p) <= 0)
	{
		DBG1(DBG_LIB, "mlkem: %N encapsulation key from the initiator is not a valid "
			 "encoding (FIPS 203 modulus check); key exchange failed",
			 key_exchange_method_names, this->params->method);
		peer = NULL;
	}
	EVP_PKEY_CTX_free(ctx);
	return peer;
}

/**
 * As responder: encapsulate a fresh shared secret to the initiator's encapsulation key.
 */
static bool encapsulate(private_mlkem_ke_t *this, chunk_t ek)
{
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *peer;
	uint8_t seed[MLKEM_ENCAPS_SEED_LEN];
	OSSL_PARAM p[2];
	size_t ct_len, ss_len = MLKEM_SS_LEN;
	bool ok = FALSE;

	if (ek.len != this->params->ek_len)
	{
		DBG1(DBG_LIB, "mlkem: %N encapsulation key from the initiator has %zu bytes, %zu "
			 "expected; key exchange failed", key_exchange_method_names, this->params->method,
			 ek.len, this->params->ek_len);
		return FALSE;
	}
	if (this->ciphertext.ptr)
	{
		DBG1(DBG_LIB, "mlkem: a second %N encapsulation key for one key exchange refused",
			 key_exchange_method_names, this->params->method);
		return FALSE;
	}
	peer = import_ek(this, ek);
	if (!peer)
	{
		return FALSE;
	}
	this->ciphertext = chunk_alloc(this->params->ct_len);
	this->shared_secret = chunk_alloc(MLKEM_SS_LEN);
	ct_len = this->ciphertext.len;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, peer, NULL);
	if (ctx && seed_params(this, OSSL_KEM_PARAM_IKME, seed, sizeof(seed), p) &&
		EVP_PKEY_encapsulate_init(ctx, p) > 0 &&
		EVP_PKEY_encapsulate(ctx, this->ciphertext.ptr, &ct_len, this->shared_secret.ptr,
							 &ss_len) > 0 &&
		ct_len == this->params->ct_len && ss_len == MLKEM_SS_LEN)
	{
		ok = TRUE;
	}
	else
	{
		DBG1(DBG_LIB, "mlkem: %N encapsulation failed in OpenSSL",
			 key_exchange_method_names, this->params->method);
		chunk_free(&this->ciphertext);
		chunk_clear(&this->shared_secret);
	}
	memwipe(seed, sizeof(seed));
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer);
	return ok;
}

METHOD(key_exchange_t, set_public_key, bool,
	private_mlkem_ke_t *this, chunk_t value)
{
	/* only the initiator has a key pair: it receives the ciphertext */
	if (this->key)
	{
		return decapsulate(this, value);
	}
	return encapsulate(this, value);
}

METHOD(key_exchange_t, get_shared_secret, bool,
	private_mlkem_ke_t *this, chunk_t *secret)
{
	if (!this->shared_secret.ptr)
	{
		return FALSE;
	}
	*secret = chunk_clone(this->shared_secret);
	return TRUE;
}

METHOD(key_exchange_t, set_seed, bool,
	private_mlkem_ke_t *this, chunk_t value, drbg_t *drbg)
{
	/* only the DRBG of strongSwan's known-answer tests: d || z for the key pair, m for the
	 * encapsulation, drawn in the order of the liboqs KAT */
	if (!drbg)
	{
		return FALSE;
	}
	DESTROY_IF(this->drbg);
	this->drbg = drbg->get_ref(drbg);
	return TRUE;
}

METHOD(key_exchange_t, get_method, key_exchange_method_t,
	private_mlkem_ke_t *this)
{
	return this->params->method;
}

METHOD(key_exchange_t, destroy, void,
	private_mlkem_ke_t *this)
{
	EVP_PKEY_free(this->key);
	chunk_clear(&this->shared_secret);
	chunk_free(&this->ek);
	chunk_free(&this->ciphertext);
	DESTROY_IF(this->drbg);
	free(this);
}

/*
 * Described in header
 */
key_exchange_t *mlkem_ke_create(key_exchange_method_t method)
{
	private_mlkem_ke_t *this;
	const mlkem_params_t *p;

	p = mlkem_params_get(method);
	if (!p)
	{
		return NULL;
	}
	INIT(this,
		.public = {
			.get_shared_secret = _get_shared_secret,
			.set_public_key = _set_public_key,
			.get_public_key = _get_public_key,
			.set_seed = _set_seed,
			.get_method = _get_method,
			.destroy = _destroy,
		},
		.params = p,
	);
	return &this->public;
}
