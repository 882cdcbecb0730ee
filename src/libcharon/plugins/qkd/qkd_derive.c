/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_derive.h"

#include <utils/debug.h>

/**
 * HMAC-SHA256(key, a || b) into out (32 bytes)
 */
static bool hmac(chunk_t key, chunk_t a, chunk_t b, u_char out[HASH_SIZE_SHA256])
{
	prf_t *prf;
	bool ok;

	prf = lib->crypto->create_prf(lib->crypto, PRF_HMAC_SHA2_256);
	if (!prf)
	{
		DBG1(DBG_LIB, "qkd: HMAC-SHA256 not available (load the openssl or hmac plugin)");
		return FALSE;
	}
	ok = prf->set_key(prf, key) &&
		 prf->get_bytes(prf, a, NULL) &&
		 prf->get_bytes(prf, b, out);
	prf->destroy(prf);
	return ok;
}

/*
 * Described in header
 */
bool qkd_derive_subkey(chunk_t ikm, char *label, chunk_t *out)
{
	u_char zero_salt[HASH_SIZE_SHA256] = {}, prk[HASH_SIZE_SHA256];
	u_char counter = 0x01;
	bool ok;

	/* RFC 5869 with L = HashLen: PRK = HMAC(salt, IKM), OKM = T(1) = HMAC(PRK, info || 0x01) */
	*out = chunk_alloc(QKD_SUBKEY_LEN);
	ok = hmac(chunk_from_thing(zero_salt), ikm, chunk_empty, prk) &&
		 hmac(chunk_from_thing(prk), chunk_from_str(label), chunk_from_thing(counter),
			  out->ptr);
	memwipe(prk, sizeof(prk));
	if (!ok)
	{
		chunk_clear(out);
	}
	return ok;
}

/*
 * Described in header
 */
bool qkd_derive_confirm(chunk_t qkey, char *label, chunk_t kei, chunk_t pub_r, u_char *confirm,
						size_t len)
{
	u_char mac[HASH_SIZE_SHA256];
	chunk_t key;
	bool ok;

	if (len > sizeof(mac) || !qkd_derive_subkey(qkey, label, &key))
	{
		return FALSE;
	}
	ok = hmac(key, kei, pub_r, mac);
	if (ok)
	{
		memcpy(confirm, mac, len);
	}
	memwipe(mac, sizeof(mac));
	chunk_clear(&key);
	return ok;
}

/*
 * Described in header
 */
bool qkd_derive_ke_secret(chunk_t x25519, chunk_t qkey, chunk_t *secret)
{
	chunk_t key;

	if (!qkd_derive_subkey(qkey, QKD_LABEL_KE_SECRET, &key))
	{
		return FALSE;
	}
	*secret = chunk_cat("cs", x25519, key);
	return TRUE;
}

/*
 * Described in header
 */
bool qkd_derive_ppk(chunk_t qkey2, chunk_t *ppk)
{
	return qkd_derive_subkey(qkey2, QKD_LABEL_PPK, ppk);
}

/*
 * Described in header
 */
bool qkd_derive_qpsk(chunk_t qkey2, chunk_t psk, chunk_t *qpsk)
{
	chunk_t key;
	bool ok;

	if (!qkd_derive_subkey(qkey2, QKD_LABEL_QPSK, &key))
	{
		return FALSE;
	}
	*qpsk = chunk_alloc(HASH_SIZE_SHA256);
	ok = hmac(key, psk, chunk_empty, qpsk->ptr);
	chunk_clear(&key);
	if (!ok)
	{
		chunk_clear(qpsk);
	}
	return ok;
}
