/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * esp.h - ESP with AES-GCM-16 (RFC 4303, RFC 4106), in place on a packet buffer.
 *
 * Wire format: SPI(4) seq(4) IV(8) ciphertext(payload, padding 1,2,3.., pad length, next
 * header) ICV(16). Nonce = salt(4) || IV(8). AAD = SPI || seq (8 bytes), or SPI || seq_hi ||
 * seq_lo (12 bytes) with ESN. One EVP context per key; only the IV is set per packet.
 */
#ifndef IQ_ESP_H
#define IQ_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#define IQ_ESP_HDR 8
#define IQ_ESP_IV 8
#define IQ_ESP_ICV 16
#define IQ_ESP_OFF (IQ_ESP_HDR + IQ_ESP_IV)     /* payload offset */
#define IQ_ESP_MAX_OVERHEAD (IQ_ESP_OFF + 3 + 2 + IQ_ESP_ICV)

/* next header values */
#define IQ_NH_IPV4 4
#define IQ_NH_IPV6 41
#define IQ_NH_NONE 59

struct iq_aead {
	EVP_CIPHER_CTX *ctx;
	uint8_t salt[4];
	uint8_t key_len;         /* 16 or 32 */
	bool encrypt;
};

/** Set up a context for key (16 or 32 bytes) and salt. Allocates; not for the packet path. */
int iq_aead_init(struct iq_aead *a, bool encrypt, const uint8_t *key, size_t key_len,
				 const uint8_t salt[4]);
/** Replace the key of an initialized context (same length); no allocation. */
int iq_aead_rekey(struct iq_aead *a, const uint8_t *key);
void iq_aead_free(struct iq_aead *a);

/** Total ESP length for an inner packet of inner_len bytes. */
static inline size_t iq_esp_len(size_t inner_len)
{
	size_t pad = (4 - ((inner_len + 2) & 3)) & 3;
	return IQ_ESP_OFF + inner_len + pad + 2 + IQ_ESP_ICV;
}

/**
 * Encrypt in place. The inner packet is at esp + IQ_ESP_OFF (inner_len bytes); the buffer has
 * room up to esp + iq_esp_len(inner_len). Writes SPI, seq, IV, trailer and ICV.
 * Returns the ESP length, or 0 on a crypto failure.
 */
size_t iq_esp_seal(struct iq_aead *a, uint8_t *esp, size_t inner_len, uint8_t next_hdr,
				   uint32_t spi, uint64_t seq, bool esn, const uint8_t iv[IQ_ESP_IV]);

enum iq_esp_err { IQ_ESP_EAUTH = -1, IQ_ESP_ELEN = -2, IQ_ESP_EPAD = -3 };

/**
 * Decrypt and verify in place (esp_len bytes, SPI and seq already parsed by the caller, seq
 * reconstructed). On success returns the inner length (at esp + IQ_ESP_OFF) and the next header.
 */
int iq_esp_open(struct iq_aead *a, uint8_t *esp, size_t esp_len, uint64_t seq, bool esn,
				uint8_t *next_hdr);

static inline uint32_t iq_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline void iq_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline uint16_t iq_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void iq_put16(uint8_t *p, uint16_t v)
{
	p[0] = v >> 8; p[1] = v;
}

#endif
