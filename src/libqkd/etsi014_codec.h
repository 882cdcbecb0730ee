/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * etsi014_codec.h - the pieces of ETSI GS QKD 014 that are pure data: strict base64, UUID text,
 * and the JSON documents a KME answers with. Internal to libqkd and qkd-kmsd (no network here),
 * separate so they can be unit tested on their own.
 */
#ifndef ETSI014_CODEC_H
#define ETSI014_CODEC_H

#include "etsi014_client.h"

/* Largest response body the client accepts (a full container of max-size keys fits easily). */
#define ETSI014_BODY_MAX (4u * 1024 * 1024)

/* Set *err (if not NULL) and return code. fmt is printf-like for message. */
enum etsi014_error_code etsi014_fail(struct etsi014_error *err, enum etsi014_error_code code,
				     const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Strict RFC 4648 base64 (standard alphabet, padding required, no whitespace, unused bits 0).
 * Returns the decoded length, or -1 if the input is not canonical base64 or does not fit. */
long etsi014_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap);
/* Encoded length for n bytes, without NUL. */
size_t etsi014_base64_len(size_t n);
/* Writes etsi014_base64_len(n) chars plus a NUL; out must hold that many + 1. */
void etsi014_base64_encode(const uint8_t *in, size_t n, char *out);

/* 16 bytes <-> canonical lower-case UUID text (36 chars + NUL). */
void etsi014_uuid_format(const uint8_t id[16], char out[ETSI014_KEY_ID_LEN + 1]);
int etsi014_uuid_parse(const char *s, uint8_t id[16]);

/* 1 if s (len bytes) is a usable SAE/KME ID: 1..ETSI014_ID_MAX printable ASCII, no '/'. */
int etsi014_sae_id_valid(const char *s, size_t len);

/* Parse a Get status answer; every one of the 11 fields is required. */
enum etsi014_error_code etsi014_parse_status(const char *body, size_t len,
					     struct etsi014_status *out,
					     struct etsi014_error *err);

/* Parse a key container. want_count: exact number of keys required. want_bits: exact key size,
 * 0 if any size from 8 bits to ETSI014_KEY_BITS_MAX is acceptable (all keys must still have the
 * same size). want_ids: if not NULL, the key_IDs asked for (want_count of them); the container
 * must hold exactly these and is returned in this order. */
enum etsi014_error_code etsi014_parse_key_container(const char *body, size_t len,
						    size_t want_count, unsigned want_bits,
						    const char *const *want_ids,
						    struct etsi014_key_container **out,
						    struct etsi014_error *err);

/* Fill err->message/details from an error body {"message": ..., "details": [...]}. A JSON object
 * without a string "message" (e.g. {"detail": "..."}), and anything that does not parse, becomes
 * a sanitized excerpt of the body in err->message. Never fails. */
void etsi014_parse_error_body(const char *body, size_t len, struct etsi014_error *err);

/* Allocate a container for n keys of key_len bytes each (key memory zeroed, count = n). */
struct etsi014_key_container *etsi014_key_container_alloc(size_t n, size_t key_len);

#endif
