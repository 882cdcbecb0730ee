/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * etsi014_client.h - client for ETSI GS QKD 014 v1.1.1 (REST over HTTPS with mutual TLS).
 *
 * One struct etsi014_client per KME. It keeps a small pool of libcurl handles so connections are
 * reused, and every call is safe from several threads at once. Responses are validated strictly:
 * anything that does not parse exactly as the spec says is ETSI014_ERR_MALFORMED and no key of
 * such a response ever reaches the caller.
 *
 * Key material is returned in a struct etsi014_key_container, whose memory is wiped by
 * etsi014_key_container_free(). Never log key bytes; key_IDs are fine.
 */
#ifndef ETSI014_CLIENT_H
#define ETSI014_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* A key_ID is a UUID in canonical text form: 8-4-4-4-12 hex digits. */
#define ETSI014_KEY_ID_LEN 36
/* Longest SAE/KME ID we accept from a KME or a caller (bytes, without NUL). */
#define ETSI014_ID_MAX 127
/* Largest key we accept (bits). ETSI 014 leaves it to the KME; 64 KiB bits is far above any. */
#define ETSI014_KEY_BITS_MAX 65536
/* Most keys one request may carry, whatever the KME says. */
#define ETSI014_KEYS_MAX 1024

enum etsi014_error_code {
	ETSI014_OK = 0,
	ETSI014_ERR_ARG,        /* the caller passed something invalid (nothing was sent) */
	ETSI014_ERR_NOMEM,
	ETSI014_ERR_TRANSPORT,  /* connect refused, reset, DNS, short read */
	ETSI014_ERR_TIMEOUT,    /* connect or total timeout hit */
	ETSI014_ERR_TLS,        /* handshake failed, KME cert not trusted / wrong host, our cert bad */
	ETSI014_ERR_HTTP_400,   /* KME: bad request (message/details filled in) */
	ETSI014_ERR_HTTP_401,   /* KME: unauthorized SAE (message/details filled in) */
	ETSI014_ERR_HTTP_503,   /* KME: error on server side, e.g. not enough key (message/details) */
	ETSI014_ERR_HTTP_OTHER, /* any other non-200 status (http_status tells which) */
	ETSI014_ERR_MALFORMED,  /* 200 but the body is not a valid ETSI 014 response */
};

struct etsi014_error {
	enum etsi014_error_code code;
	long http_status;       /* 0 if no HTTP response was received */
	char message[256];      /* KME's "message", or our own description of what went wrong */
	char details[512];      /* KME's "details" as compact JSON text, or "" */
};

struct etsi014_client_config {
	const char *kme_url;    /* base URL, e.g. "https://127.0.0.1:8443" (no trailing path) */
	const char *cert_file;  /* SAE client certificate (PEM); its CN is the SAE ID at the KME */
	const char *key_file;   /* its private key (PEM) */
	const char *ca_file;    /* CA bundle that signed the KME's server certificate (PEM) */
	long connect_timeout_ms; /* 0: 2000 */
	long total_timeout_ms;  /* 0: 5000 (whole request incl. connect) */
	unsigned max_idle_handles; /* pooled connections kept for reuse, 0: 4 */
};

/* Answer of Get status. Sizes are in bits, as in the spec. */
struct etsi014_status {
	char source_kme_id[ETSI014_ID_MAX + 1];
	char target_kme_id[ETSI014_ID_MAX + 1];
	char master_sae_id[ETSI014_ID_MAX + 1];
	char slave_sae_id[ETSI014_ID_MAX + 1];
	unsigned key_size;
	unsigned stored_key_count;
	unsigned max_key_count;
	unsigned max_key_per_request;
	unsigned max_key_size;
	unsigned min_key_size;
	unsigned max_sae_id_count;
};

struct etsi014_key {
	char key_id[ETSI014_KEY_ID_LEN + 1];
	size_t len;             /* bytes */
	uint8_t *key;           /* points into the container's own (wiped-on-free) memory */
};

struct etsi014_key_container {
	size_t count;
	struct etsi014_key *keys;
	/* followed by private storage; allocate and free only through this library */
};

enum etsi014_method {
	ETSI014_POST = 0,       /* JSON body (default, supports every parameter) */
	ETSI014_GET,            /* query string: number/size or key_ID */
};

/* Full form of Get key. Zero fields are left out of the request (KME defaults apply). */
struct etsi014_enc_request {
	unsigned number;        /* 0: omitted (KME default 1) */
	unsigned size_bits;     /* 0: omitted (KME default key_size) */
	const char *const *additional_slave_sae_ids; /* POST only */
	size_t n_additional_slave_sae_ids;
	enum etsi014_method method;
};

/* Create a client. Returns NULL and fills err (if not NULL) on failure.
 * The process must ignore SIGPIPE (charon, qkid and qkd-etsi014 do): libcurl runs with
 * CURLOPT_NOSIGNAL for thread safety, so a KME that closes the TLS connection while a request is
 * written would otherwise kill the process instead of failing the call. */
struct etsi014_client *etsi014_client_new(const struct etsi014_client_config *cfg,
					  struct etsi014_error *err);
/* Close connections and free. NULL is fine. */
void etsi014_client_free(struct etsi014_client *c);

/* GET /api/v1/keys/{slave_sae_id}/status */
enum etsi014_error_code etsi014_get_status(struct etsi014_client *c, const char *slave_sae_id,
					   struct etsi014_status *out, struct etsi014_error *err);

/* Get key (master side): POST /api/v1/keys/{slave_sae_id}/enc_keys with number and size.
 * number 0 means 1; size_bits 0 means the KME's default key_size. On success *out holds
 * exactly `number` keys (each size_bits/8 bytes if size_bits was given). */
enum etsi014_error_code etsi014_get_enc_keys(struct etsi014_client *c, const char *slave_sae_id,
					     unsigned number, unsigned size_bits,
					     struct etsi014_key_container **out,
					     struct etsi014_error *err);
enum etsi014_error_code etsi014_get_enc_keys_ex(struct etsi014_client *c,
						const char *slave_sae_id,
						const struct etsi014_enc_request *req,
						struct etsi014_key_container **out,
						struct etsi014_error *err);

/* Get key with key IDs (slave side): POST /api/v1/keys/{master_sae_id}/dec_keys.
 * NOTE: the path carries the MASTER's SAE ID. On success *out holds exactly the n keys asked
 * for, in the order asked. key_size_bits, if not 0, is the size every key must have. */
enum etsi014_error_code etsi014_get_dec_keys(struct etsi014_client *c, const char *master_sae_id,
					     const char *const *key_ids, size_t n,
					     struct etsi014_key_container **out,
					     struct etsi014_error *err);
enum etsi014_error_code etsi014_get_dec_keys_ex(struct etsi014_client *c,
						const char *master_sae_id,
						const char *const *key_ids, size_t n,
						unsigned key_size_bits, enum etsi014_method method,
						struct etsi014_key_container **out,
						struct etsi014_error *err);

/* Wipe and free. NULL is fine. */
void etsi014_key_container_free(struct etsi014_key_container *kc);

/* Static text for a code, e.g. "HTTP 503 from KME". */
const char *etsi014_strerror(enum etsi014_error_code code);

/* 1 if s is a UUID text (36 chars, hex digits of either case and dashes at 8,13,18,23). */
int etsi014_key_id_valid(const char *s);
/* The canonical form of a key_ID: lower case. Every key_ID is compared in this form only (a KME
 * may answer in upper case; an upper-case copy of a used key_ID must not look new). Returns 1,
 * or 0 (out untouched) if s is not a UUID text. Key containers carry canonical key_IDs. */
int etsi014_key_id_canonical(const char *s, char out[ETSI014_KEY_ID_LEN + 1]);

#ifdef __cplusplus
}
#endif
#endif
