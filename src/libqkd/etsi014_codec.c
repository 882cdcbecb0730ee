/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * etsi014_codec.c - strict parsing of ETSI GS QKD 014 documents, base64 and UUID text.
 *
 * Everything a KME sends is untrusted: a parse either yields a fully valid result or an error,
 * never a partial one. Decoded key bytes live only in container memory that is wiped on free;
 * scratch copies are wiped before they are released.
 */
#include "etsi014_codec.h"
#include "ipseq_util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#define JSON_DEPTH_MAX 16

enum etsi014_error_code etsi014_fail(struct etsi014_error *err, enum etsi014_error_code code,
				     const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return code;
	err->code = code;
	err->details[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return code;
}

/* --- base64 ------------------------------------------------------------------------------------ */

static const char b64_alphabet[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

size_t etsi014_base64_len(size_t n)
{
	return (n + 2) / 3 * 4;
}

void etsi014_base64_encode(const uint8_t *in, size_t n, char *out)
{
	size_t i, o = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = b64_alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = b64_alphabet[v >> 18 & 63];
		out[o++] = b64_alphabet[v >> 12 & 63];
		out[o++] = b64_alphabet[v >> 6 & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
}

long etsi014_base64_decode(const char *in, size_t inlen, uint8_t *out, size_t outcap)
{
	size_t pad = 0, outlen, i, o = 0;

	if (inlen % 4 != 0)
		return -1;
	if (inlen == 0)
		return 0;
	if (in[inlen - 1] == '=')
		pad++;
	if (in[inlen - 2] == '=')
		pad++;
	if (pad == 1 && in[inlen - 2] == '=')
		return -1;
	outlen = inlen / 4 * 3 - pad;
	if (outlen > outcap)
		return -1;
	for (i = 0; i < inlen; i += 4) {
		int last = i + 4 == inlen;
		int a = b64_value(in[i]), b = b64_value(in[i + 1]);
		int c = last && pad == 2 ? 0 : b64_value(in[i + 2]);
		int d = last && pad >= 1 ? 0 : b64_value(in[i + 3]);
		uint32_t v;

		if (a < 0 || b < 0 || c < 0 || d < 0)
			return -1;
		v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
		if (last && pad == 2) {
			if (v & 0xffff)	/* bits past the last byte must be zero (canonical form) */
				return -1;
			out[o++] = v >> 16;
		} else if (last && pad == 1) {
			if (v & 0xff)
				return -1;
			out[o++] = v >> 16;
			out[o++] = v >> 8;
		} else {
			out[o++] = v >> 16;
			out[o++] = v >> 8;
			out[o++] = v;
		}
	}
	return (long)o;
}

/* Decoded length of canonical base64 text, or -1 if the length alone rules it out. */
static long base64_decoded_len(const char *in, size_t inlen)
{
	size_t pad = 0;

	if (inlen % 4 != 0)
		return -1;
	if (inlen == 0)
		return 0;
	if (in[inlen - 1] == '=')
		pad++;
	if (in[inlen - 2] == '=')
		pad++;
	return (long)(inlen / 4 * 3 - pad);
}

/* --- UUID and IDs ------------------------------------------------------------------------------ */

static int hex_value(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int etsi014_uuid_parse(const char *s, uint8_t id[16])
{
	int i, o = 0, hi = -1;

	/* Sequential: a shorter string stops at its NUL, which is neither hex nor a dash. */
	for (i = 0; i < ETSI014_KEY_ID_LEN; i++) {
		int v;

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return 0;
			continue;
		}
		v = hex_value(s[i]);
		if (v < 0)
			return 0;
		if (hi < 0) {
			hi = v;
		} else {
			id[o++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return s[ETSI014_KEY_ID_LEN] == '\0';
}

void etsi014_uuid_format(const uint8_t id[16], char out[ETSI014_KEY_ID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	int i, o = 0;

	for (i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[id[i] >> 4];
		out[o++] = hex[id[i] & 15];
	}
	out[o] = '\0';
}

int etsi014_key_id_valid(const char *s)
{
	uint8_t id[16];

	return s && etsi014_uuid_parse(s, id);
}

int etsi014_key_id_canonical(const char *s, char out[ETSI014_KEY_ID_LEN + 1])
{
	uint8_t id[16];

	if (!s || !etsi014_uuid_parse(s, id))
		return 0;
	etsi014_uuid_format(id, out);
	return 1;
}

int etsi014_sae_id_valid(const char *s, size_t len)
{
	size_t i;

	if (!s || len == 0 || len > ETSI014_ID_MAX)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = s[i];
		if (c < 0x21 || c > 0x7e || c == '/')
			return 0;
	}
	return 1;
}

/* --- JSON -------------------------------------------------------------------------------------- */

/* Parse body as exactly one JSON object (strict syntax, valid UTF-8, nothing but whitespace
 * after it). Returns NULL and fills err otherwise. */
static struct json_object *parse_object(const char *body, size_t len, struct etsi014_error *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	if (!body || len == 0) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "empty response body");
		return NULL;
	}
	if (len > ETSI014_BODY_MAX) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "response body too large (%zu bytes)", len);
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "NUL byte in response body");
		return NULL;
	}
	tok = json_tokener_new_ex(JSON_DEPTH_MAX);
	if (!tok) {
		etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	/* The tokener accumulates every string it reads (base64 keys too) in its print buffer and
	 * json-c frees that unwiped; json-c has no API for it, so wipe through the (public but
	 * deprecated) struct fields of json-c 0.16. */
	if (tok->pb && tok->pb->buf)
		ipseq_wipe(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
	if (jerr != json_tokener_success || !obj) {
		json_object_put(obj);
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "invalid JSON: %s",
			     jerr == json_tokener_continue ? "truncated"
							   : json_tokener_error_desc(jerr));
		return NULL;
	}
	for (; end < len; end++) {
		if (!isspace((unsigned char)body[end])) {
			json_object_put(obj);
			etsi014_fail(err, ETSI014_ERR_MALFORMED, "trailing data after JSON");
			return NULL;
		}
	}
	if (!json_object_is_type(obj, json_type_object)) {
		json_object_put(obj);
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "JSON root is not an object");
		return NULL;
	}
	return obj;
}

/* The member name of root, if it is there and of the given type; else NULL and err says why. */
static struct json_object *get_typed(struct json_object *root, const char *name,
				     enum json_type type, const char *type_name,
				     struct etsi014_error *err)
{
	struct json_object *v;

	if (!json_object_object_get_ex(root, name, &v)) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "missing field %s", name);
		return NULL;
	}
	if (!json_object_is_type(v, type)) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "field %s is not %s", name, type_name);
		return NULL;
	}
	return v;
}

static int get_uint(struct json_object *root, const char *name, unsigned *out,
		    struct etsi014_error *err)
{
	struct json_object *v;
	int64_t n;

	if (!(v = get_typed(root, name, json_type_int, "an integer", err)))
		return 0;
	errno = 0;
	n = json_object_get_int64(v);
	if (n < 0 || n > (int64_t)UINT32_MAX || errno) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "field %s out of range", name);
		return 0;
	}
	*out = (unsigned)n;
	return 1;
}

static int get_id(struct json_object *root, const char *name, char out[ETSI014_ID_MAX + 1],
		  struct etsi014_error *err)
{
	struct json_object *v;
	const char *s;
	size_t len;

	if (!(v = get_typed(root, name, json_type_string, "a string", err)))
		return 0;
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (!etsi014_sae_id_valid(s, len)) {
		etsi014_fail(err, ETSI014_ERR_MALFORMED, "field %s is not a valid ID", name);
		return 0;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 1;
}

enum etsi014_error_code etsi014_parse_status(const char *body, size_t len,
					     struct etsi014_status *out,
					     struct etsi014_error *err)
{
	struct etsi014_status st;
	struct json_object *root = parse_object(body, len, err);
	int ok;

	if (!root)
		return err ? err->code : ETSI014_ERR_MALFORMED;
	memset(&st, 0, sizeof(st));
	ok = get_id(root, "source_KME_ID", st.source_kme_id, err) &&
	     get_id(root, "target_KME_ID", st.target_kme_id, err) &&
	     get_id(root, "master_SAE_ID", st.master_sae_id, err) &&
	     get_id(root, "slave_SAE_ID", st.slave_sae_id, err) &&
	     get_uint(root, "key_size", &st.key_size, err) &&
	     get_uint(root, "stored_key_count", &st.stored_key_count, err) &&
	     get_uint(root, "max_key_count", &st.max_key_count, err) &&
	     get_uint(root, "max_key_per_request", &st.max_key_per_request, err) &&
	     get_uint(root, "max_key_size", &st.max_key_size, err) &&
	     get_uint(root, "min_key_size", &st.min_key_size, err) &&
	     get_uint(root, "max_SAE_ID_count", &st.max_sae_id_count, err);
	json_object_put(root);
	if (!ok)
		return ETSI014_ERR_MALFORMED;
	if (st.min_key_size > st.max_key_size || st.key_size < st.min_key_size ||
	    st.key_size > st.max_key_size)
		return etsi014_fail(err, ETSI014_ERR_MALFORMED,
				    "inconsistent key sizes (min %u, default %u, max %u)",
				    st.min_key_size, st.key_size, st.max_key_size);
	*out = st;
	return ETSI014_OK;
}

/* --- key containers ---------------------------------------------------------------------------- */

/* One allocation: this header, then the keys array, then all key bytes. */
struct kc_block {
	struct etsi014_key_container pub;
	size_t total;
};

struct etsi014_key_container *etsi014_key_container_alloc(size_t n, size_t key_len)
{
	struct kc_block *b;
	size_t total;
	uint8_t *bytes;
	size_t i;

	if (n > ETSI014_KEYS_MAX || key_len > ETSI014_KEY_BITS_MAX / 8)
		return NULL;
	total = sizeof(*b) + n * sizeof(struct etsi014_key) + n * key_len;
	b = calloc(1, total);
	if (!b)
		return NULL;
	b->total = total;
	b->pub.count = n;
	b->pub.keys = (struct etsi014_key *)(b + 1);
	bytes = (uint8_t *)(b->pub.keys + n);
	for (i = 0; i < n; i++) {
		b->pub.keys[i].len = key_len;
		b->pub.keys[i].key = bytes + i * key_len;
	}
	return &b->pub;
}

void etsi014_key_container_free(struct etsi014_key_container *kc)
{
	struct kc_block *b = (struct kc_block *)kc;

	if (!b)
		return;
	ipseq_wipe(b, b->total);
	free(b);
}

enum etsi014_error_code etsi014_parse_key_container(const char *body, size_t len,
						    size_t want_count, unsigned want_bits,
						    const char *const *want_ids,
						    struct etsi014_key_container **out,
						    struct etsi014_error *err)
{
	struct json_object *root, *keys;
	struct etsi014_key_container *kc = NULL;
	enum etsi014_error_code rc = ETSI014_ERR_MALFORMED;
	size_t n, i, j, key_len = 0;

	*out = NULL;
	if (want_count == 0 || want_count > ETSI014_KEYS_MAX)
		return etsi014_fail(err, ETSI014_ERR_ARG, "bad expected key count %zu", want_count);
	root = parse_object(body, len, err);
	if (!root)
		return err ? err->code : ETSI014_ERR_MALFORMED;
	if (!json_object_object_get_ex(root, "keys", &keys) ||
	    !json_object_is_type(keys, json_type_array)) {
		etsi014_fail(err, rc, "missing or non-array field keys");
		goto out;
	}
	n = json_object_array_length(keys);
	if (n != want_count) {
		etsi014_fail(err, rc, "KME returned %zu keys, %zu were asked for", n, want_count);
		goto out;
	}

	/* First pass: shape, IDs, sizes. Nothing is decoded before the whole document checks out. */
	for (i = 0; i < n; i++) {
		struct json_object *k = json_object_array_get_idx(keys, i), *id, *key;
		long klen;

		if (!json_object_is_type(k, json_type_object)) {
			etsi014_fail(err, rc, "keys[%zu] is not an object", i);
			goto out;
		}
		if (!json_object_object_get_ex(k, "key_ID", &id) ||
		    !json_object_is_type(id, json_type_string) ||
		    json_object_get_string_len(id) != ETSI014_KEY_ID_LEN ||
		    !etsi014_key_id_valid(json_object_get_string(id))) {
			etsi014_fail(err, rc, "keys[%zu].key_ID missing or not a UUID", i);
			goto out;
		}
		if (!json_object_object_get_ex(k, "key", &key) ||
		    !json_object_is_type(key, json_type_string)) {
			etsi014_fail(err, rc, "keys[%zu].key missing or not a string", i);
			goto out;
		}
		klen = base64_decoded_len(json_object_get_string(key),
					  (size_t)json_object_get_string_len(key));
		if (klen <= 0 || klen > ETSI014_KEY_BITS_MAX / 8) {
			etsi014_fail(err, rc, "keys[%zu].key has a bad base64 length", i);
			goto out;
		}
		if (want_bits && (size_t)klen * 8 != want_bits) {
			etsi014_fail(err, rc, "key %s has %ld bits, %u were asked for",
				     json_object_get_string(id), klen * 8, want_bits);
			goto out;
		}
		if (i > 0 && (size_t)klen != key_len) {
			etsi014_fail(err, rc, "keys of different sizes in one container");
			goto out;
		}
		key_len = (size_t)klen;
	}

	kc = etsi014_key_container_alloc(n, key_len);
	if (!kc) {
		rc = etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		goto out;
	}
	for (i = 0; i < n; i++) {
		struct json_object *k = json_object_array_get_idx(keys, i), *id, *key;
		const char *ids;
		size_t slot = i;

		json_object_object_get_ex(k, "key_ID", &id);
		json_object_object_get_ex(k, "key", &key);
		ids = json_object_get_string(id);
		if (want_ids) {
			for (slot = 0; slot < n; slot++)
				if (strcasecmp(want_ids[slot], ids) == 0)
					break;
			if (slot == n) {
				etsi014_fail(err, rc, "KME returned key_ID %s that was not asked for",
					     ids);
				goto out;
			}
			if (kc->keys[slot].key_id[0]) {
				etsi014_fail(err, rc, "duplicate key_ID %s", ids);
				goto out;
			}
		} else {
			for (j = 0; j < i; j++) {
				if (strcasecmp(kc->keys[j].key_id, ids) == 0) {
					etsi014_fail(err, rc, "duplicate key_ID %s", ids);
					goto out;
				}
			}
		}
		etsi014_key_id_canonical(ids, kc->keys[slot].key_id);   /* validated above */
		if (etsi014_base64_decode(json_object_get_string(key),
					  (size_t)json_object_get_string_len(key), kc->keys[slot].key,
					  key_len) != (long)key_len) {
			etsi014_fail(err, rc, "key %s is not valid base64", ids);
			goto out;
		}
	}
	*out = kc;
	kc = NULL;
	rc = ETSI014_OK;
out:
	etsi014_key_container_free(kc);
	/* json-c does not wipe: clear the base64 key strings before the tree is freed. */
	if (json_object_object_get_ex(root, "keys", &keys) &&
	    json_object_is_type(keys, json_type_array)) {
		for (i = 0; i < json_object_array_length(keys); i++) {
			struct json_object *k = json_object_array_get_idx(keys, i), *key;
			if (json_object_is_type(k, json_type_object) &&
			    json_object_object_get_ex(k, "key", &key) &&
			    json_object_is_type(key, json_type_string))
				ipseq_wipe((char *)json_object_get_string(key),
					     (size_t)json_object_get_string_len(key));
		}
	}
	json_object_put(root);
	return rc;
}

/* --- error bodies ------------------------------------------------------------------------------ */

static void copy_printable(char *dst, size_t cap, const char *src, size_t len)
{
	size_t i, o = 0;

	for (i = 0; i < len && o + 1 < cap; i++) {
		unsigned char c = src[i];
		dst[o++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[o] = '\0';
}

void etsi014_parse_error_body(const char *body, size_t len, struct etsi014_error *err)
{
	struct etsi014_error scratch;
	struct json_object *root, *msg, *details;

	if (!err)
		return;
	err->message[0] = err->details[0] = '\0';
	root = len ? parse_object(body, len, &scratch) : NULL;
	if (!root) {
		if (len)
			copy_printable(err->message, sizeof(err->message), body, len);
		return;
	}
	if (json_object_object_get_ex(root, "message", &msg) &&
	    json_object_is_type(msg, json_type_string))
		copy_printable(err->message, sizeof(err->message), json_object_get_string(msg),
			       (size_t)json_object_get_string_len(msg));
	if (json_object_object_get_ex(root, "details", &details)) {
		const char *s = json_object_to_json_string_ext(
			details, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s)
			copy_printable(err->details, sizeof(err->details), s, strlen(s));
	}
	if (!err->message[0]) {
		/* Not an ETSI error object (e.g. {"detail": ...} from a web framework in front of
		 * the KME): its text says more than the HTTP status alone. */
		const char *s = json_object_to_json_string_ext(
			root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		if (s)
			copy_printable(err->message, sizeof(err->message), s, strlen(s));
	}
	json_object_put(root);
}
