/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "esp.h"

int iq_aead_init(struct iq_aead *a, bool encrypt, const uint8_t *key, size_t key_len,
				 const uint8_t salt[4])
{
	const EVP_CIPHER *cipher;

	memset(a, 0, sizeof(*a));
	if (key_len == 16)
		cipher = EVP_aes_128_gcm();
	else if (key_len == 32)
		cipher = EVP_aes_256_gcm();
	else
		return -EINVAL;
	a->ctx = EVP_CIPHER_CTX_new();
	if (!a->ctx)
		return -ENOMEM;
	/* IV length 12 is GCM's default; key set once, the IV per packet */
	if (EVP_CipherInit_ex(a->ctx, cipher, NULL, key, NULL, encrypt ? 1 : 0) != 1) {
		EVP_CIPHER_CTX_free(a->ctx);
		a->ctx = NULL;
		return -EIO;
	}
	memcpy(a->salt, salt, 4);
	a->key_len = key_len;
	a->encrypt = encrypt;
	return 0;
}

int iq_aead_rekey(struct iq_aead *a, const uint8_t *key)
{
	if (!a->ctx)
		return -EINVAL;
	return EVP_CipherInit_ex(a->ctx, NULL, NULL, key, NULL, a->encrypt ? 1 : 0) == 1 ? 0 : -EIO;
}

void iq_aead_free(struct iq_aead *a)
{
	/* EVP_CIPHER_CTX_free cleanses the key schedule */
	if (a->ctx)
		EVP_CIPHER_CTX_free(a->ctx);
	OPENSSL_cleanse(a, sizeof(*a));
}

static size_t build_aad(uint8_t *aad, const uint8_t *esp, uint64_t seq, bool esn)
{
	memcpy(aad, esp, 4);
	if (!esn) {
		memcpy(aad + 4, esp + 4, 4);
		return 8;
	}
	iq_put32(aad + 4, seq >> 32);
	memcpy(aad + 8, esp + 4, 4);
	return 12;
}

size_t iq_esp_seal(struct iq_aead *a, uint8_t *esp, size_t inner_len, uint8_t next_hdr,
				   uint32_t spi, uint64_t seq, bool esn, const uint8_t iv[IQ_ESP_IV])
{
	uint8_t nonce[12], aad[12], *pt = esp + IQ_ESP_OFF;
	size_t pad = (4 - ((inner_len + 2) & 3)) & 3, ptlen, aadlen, i;
	OSSL_PARAM tag[2];
	int outl;

	iq_put32(esp, spi);
	iq_put32(esp + 4, (uint32_t)seq);
	memcpy(esp + IQ_ESP_HDR, iv, IQ_ESP_IV);
	for (i = 0; i < pad; i++)
		pt[inner_len + i] = i + 1;
	pt[inner_len + pad] = pad;
	pt[inner_len + pad + 1] = next_hdr;
	ptlen = inner_len + pad + 2;

	memcpy(nonce, a->salt, 4);
	memcpy(nonce + 4, iv, 8);
	aadlen = build_aad(aad, esp, seq, esn);
	/* EVP_CipherInit_ex2 with only an IV and the tag as a direct parameter, not through
	 * EVP_CIPHER_CTX_ctrl: OpenSSL 3's fixed per-packet cost dominates at MTU sizes with
	 * VAES (measured 0.58 -> 0.48 us per 1400-byte packet) */
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, pt + ptlen,
											   IQ_ESP_ICV);
	tag[1] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 1, NULL) != 1 ||
		EVP_EncryptUpdate(a->ctx, NULL, &outl, aad, aadlen) != 1 ||
		EVP_EncryptUpdate(a->ctx, pt, &outl, pt, ptlen) != 1 ||
		EVP_EncryptFinal_ex(a->ctx, pt + ptlen, &outl) != 1 ||
		EVP_CIPHER_CTX_get_params(a->ctx, tag) != 1)
		return 0;
	return IQ_ESP_OFF + ptlen + IQ_ESP_ICV;
}

int iq_esp_open(struct iq_aead *a, uint8_t *esp, size_t esp_len, uint64_t seq, bool esn,
				uint8_t *next_hdr)
{
	uint8_t nonce[12], aad[12], *ct = esp + IQ_ESP_OFF, padlen;
	size_t ctlen, aadlen, i;
	OSSL_PARAM tag[2];
	int outl;

	if (esp_len < IQ_ESP_OFF + 2 + IQ_ESP_ICV)
		return IQ_ESP_ELEN;
	ctlen = esp_len - IQ_ESP_OFF - IQ_ESP_ICV;
	memcpy(nonce, a->salt, 4);
	memcpy(nonce + 4, esp + IQ_ESP_HDR, 8);
	aadlen = build_aad(aad, esp, seq, esn);
	/* the expected tag goes in with the IV (one parameter call per packet) */
	tag[0] = OSSL_PARAM_construct_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, ct + ctlen,
											   IQ_ESP_ICV);
	tag[1] = OSSL_PARAM_construct_end();
	if (EVP_CipherInit_ex2(a->ctx, NULL, NULL, nonce, 0, tag) != 1 ||
		EVP_DecryptUpdate(a->ctx, NULL, &outl, aad, aadlen) != 1 ||
		EVP_DecryptUpdate(a->ctx, ct, &outl, ct, ctlen) != 1 ||
		EVP_DecryptFinal_ex(a->ctx, ct + ctlen, &outl) != 1)
		return IQ_ESP_EAUTH;
	padlen = ct[ctlen - 2];
	*next_hdr = ct[ctlen - 1];
	if ((size_t)padlen + 2 > ctlen)
		return IQ_ESP_EPAD;
	/* RFC 4303 2.4: padding bytes are 1, 2, 3, ... */
	for (i = 0; i < padlen; i++)
		if (ct[ctlen - 2 - padlen + i] != (uint8_t)(i + 1))
			return IQ_ESP_EPAD;
	return (int)(ctlen - 2 - padlen);
}
