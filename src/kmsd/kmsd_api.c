/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_api.c - the ETSI GS QKD 014 v1.1.1 REST interface of qkd-kmsd (libmicrohttpd + GnuTLS).
 *
 *   GET       /api/v1/keys/{slave_SAE_ID}/status
 *   GET/POST  /api/v1/keys/{slave_SAE_ID}/enc_keys   (number, size; caller is the master SAE)
 *   GET/POST  /api/v1/keys/{master_SAE_ID}/dec_keys  (key_ID(s); caller is the slave SAE)
 *
 * Every connection must present a client certificate chaining to the configured CA with the
 * TLS WWW client purpose; its CN is the caller's SAE ID. Errors are {"message", "details"} with
 * 400 (bad request), 401 (SAE not allowed) or 503 (no key / link down / simulated outage).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <json-c/json.h>
#include <microhttpd.h>

#include "etsi014_codec.h"
#include "ipseq_util.h"

#define BODY_MAX (64 * 1024)
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* Per TLS connection: the verified SAE identity, checked once. */
struct conn_ctx {
	int checked;
	int ok;
	char sae[ETSI014_ID_MAX + 1];
	char why[160];
};

/* Per request: the uploaded body. */
struct req_ctx {
	char *body;
	size_t len, cap;
	int too_large;
};

/* --- responses --------------------------------------------------------------------------------- */

static enum MHD_Result queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status,
				  struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	enum MHD_Result ret = queue(c, status,
				    MHD_create_response_from_buffer(strlen(s), (void *)s,
								    MHD_RESPMEM_MUST_COPY));
	json_object_put(o);
	return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, const char *who, const char *op,
				   unsigned status, const char *message, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

static enum MHD_Result reply_error(struct MHD_Connection *c, const char *who, const char *op,
				   unsigned status, const char *message, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object(), *details = json_object_new_array();
	struct json_object *d = json_object_new_object();
	char detail[320];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	ipseq_log(IPSEQ_LOG_INFO, "%s from %s: %u %s: %s", op, who, status, message, detail);
	json_object_object_add(o, "message", json_object_new_string(message));
	json_object_object_add(d, "reason", json_object_new_string(detail));
	json_object_array_add(details, d);
	json_object_object_add(o, "details", details);
	return reply_json(c, status, o);
}

/* Key containers are written by hand into memory we wipe when MHD is done with it. */
struct key_body {
	size_t cap;
	char data[];
};

static void key_body_free(void *cls)
{
	struct key_body *b = cls;

	ipseq_wipe(b->data, b->cap);
	free(b);
}

struct key_out {
	const uint8_t *id;   /* 16 bytes */
	const uint8_t *key;
	size_t len;
};

static enum MHD_Result reply_keys(struct MHD_Connection *c, const struct key_out *keys, size_t n)
{
	struct key_body *b;
	size_t cap = 16, i, o;

	for (i = 0; i < n; i++)
		cap += 32 + ETSI014_KEY_ID_LEN + etsi014_base64_len(keys[i].len);
	b = malloc(sizeof(*b) + cap);
	if (!b)
		return MHD_NO;
	b->cap = cap;
	o = (size_t)snprintf(b->data, cap, "{\"keys\":[");
	for (i = 0; i < n; i++) {
		char id[ETSI014_KEY_ID_LEN + 1];

		etsi014_uuid_format(keys[i].id, id);
		o += (size_t)snprintf(b->data + o, cap - o, "%s{\"key_ID\":\"%s\",\"key\":\"",
				      i ? "," : "", id);
		etsi014_base64_encode(keys[i].key, keys[i].len, b->data + o);
		o += etsi014_base64_len(keys[i].len);
		o += (size_t)snprintf(b->data + o, cap - o, "\"}");
	}
	o += (size_t)snprintf(b->data + o, cap - o, "]}");
	return queue(c, MHD_HTTP_OK,
		     MHD_create_response_from_buffer_with_free_callback_cls(o, b->data,
									    key_body_free, b));
}

/* --- identity ---------------------------------------------------------------------------------- */

static void check_identity(struct MHD_Connection *c, struct conn_ctx *cc)
{
	const union MHD_ConnectionInfo *ci;
	gnutls_session_t s;
	const gnutls_datum_t *certs;
	gnutls_typed_vdata_st purpose = {
		.type = GNUTLS_DT_KEY_PURPOSE_OID,
		.data = (void *)GNUTLS_KP_TLS_WWW_CLIENT,
	};
	unsigned status = 0, n = 0;
	gnutls_x509_crt_t crt;
	size_t cnlen = sizeof(cc->sae);
	int rc;

	cc->checked = 1;
	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
	if (!ci || !ci->tls_session) {
		snprintf(cc->why, sizeof(cc->why), "not a TLS connection");
		return;
	}
	s = ci->tls_session;
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0) {
		snprintf(cc->why, sizeof(cc->why), "no client certificate presented");
		return;
	}
	rc = gnutls_certificate_verify_peers(s, &purpose, 1, &status);
	if (rc < 0 || status != 0) {
		gnutls_datum_t txt = {0};
		if (rc >= 0 &&
		    gnutls_certificate_verification_status_print(status, GNUTLS_CRT_X509, &txt,
								 0) >= 0) {
			snprintf(cc->why, sizeof(cc->why), "client certificate rejected: %s",
				 txt.data);
			gnutls_free(txt.data);
		} else {
			snprintf(cc->why, sizeof(cc->why), "client certificate rejected: %s",
				 rc < 0 ? gnutls_strerror(rc) : "verification failed");
		}
		return;
	}
	if (gnutls_x509_crt_init(&crt) < 0)
		return;
	rc = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cc->sae,
						   &cnlen);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0 || !etsi014_sae_id_valid(cc->sae, strlen(cc->sae))) {
		cc->sae[0] = '\0';
		snprintf(cc->why, sizeof(cc->why), "client certificate has no usable CN");
		return;
	}
	cc->ok = 1;
}

/* --- request parameters ------------------------------------------------------------------------ */

struct query {
	const char *number, *size;
	unsigned n_number, n_size;
	const char *key_ids[KMSD_PER_REQUEST_MAX + 1];
	unsigned n_key_ids;
	const char *unknown;
};

static enum MHD_Result query_iter(void *cls, enum MHD_ValueKind kind, const char *key,
				  const char *value)
{
	struct query *q = cls;

	if (strcmp(key, "number") == 0) {
		q->number = value;
		q->n_number++;
	} else if (strcmp(key, "size") == 0) {
		q->size = value;
		q->n_size++;
	} else if (strcmp(key, "key_ID") == 0) {
		if (q->n_key_ids <= KMSD_PER_REQUEST_MAX)
			q->key_ids[q->n_key_ids] = value;
		q->n_key_ids++;
	} else if (!q->unknown) {
		q->unknown = key;
	}
	return MHD_YES;
}

/* Strict decimal: digits only, no sign, no leading zeros beyond "0", at most 9 digits. */
static int parse_dec(const char *s, unsigned *out)
{
	unsigned v = 0;
	size_t i, n = s ? strlen(s) : 0;

	if (n == 0 || n > 9 || (n > 1 && s[0] == '0'))
		return 0;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return 0;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = v;
	return 1;
}

static struct json_object *parse_body(const struct req_ctx *rq, const char **why)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (!rq->body || rq->len == 0) {
		*why = "empty body (a JSON object is required)";
		return NULL;
	}
	if (memchr(rq->body, '\0', rq->len)) {
		*why = "NUL byte in body";
		return NULL;
	}
	tok = json_tokener_new_ex(16);
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, rq->body, (int)rq->len);
	if (json_tokener_get_error(tok) != json_tokener_success || !o) {
		json_object_put(o);
		json_tokener_free(tok);
		*why = "body is not valid JSON";
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < rq->len; end++) {
		char ch = rq->body[end];
		if (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n') {
			json_object_put(o);
			*why = "trailing data after the JSON object";
			return NULL;
		}
	}
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		*why = "body is not a JSON object";
		return NULL;
	}
	return o;
}

static int json_uint(struct json_object *o, const char *name, unsigned *out, int *present)
{
	struct json_object *v;
	int64_t n;

	*present = json_object_object_get_ex(o, name, &v);
	if (!*present)
		return 1;
	if (!json_object_is_type(v, json_type_int))
		return 0;
	n = json_object_get_int64(v);
	if (n < 0 || n > 0x7fffffff)
		return 0;
	*out = (unsigned)n;
	return 1;
}

/* --- endpoints --------------------------------------------------------------------------------- */

static unsigned eff_min_size(const struct kmsd_kme *k, unsigned block_bits)
{
	return k->min_key_size < block_bits ? k->min_key_size : block_bits;
}

static unsigned eff_max_size(const struct kmsd_kme *k, unsigned block_bits)
{
	return k->max_key_size > block_bits ? k->max_key_size : block_bits;
}

static enum MHD_Result do_status(struct kmsd_kme *k, struct MHD_Connection *c, const char *caller,
				 const char *slave)
{
	struct json_object *o = json_object_new_object(), *x = json_object_new_object();
	struct kmsd_store *s = &k->store;
	struct kmsd_store_stats st;
	unsigned bits;
	size_t count, cap, reserved;

	pthread_mutex_lock(&s->lock);
	bits = s->block_bits;
	count = s->count;
	cap = s->cap;
	reserved = s->n_reserved;
	st = s->stats;
	pthread_mutex_unlock(&s->lock);

	json_object_object_add(o, "source_KME_ID", json_object_new_string(k->cfg->kme_id));
	json_object_object_add(o, "target_KME_ID", json_object_new_string(k->cfg->peer_kme_id));
	json_object_object_add(o, "master_SAE_ID", json_object_new_string(caller));
	json_object_object_add(o, "slave_SAE_ID", json_object_new_string(slave));
	json_object_object_add(o, "key_size", json_object_new_int64(bits));
	json_object_object_add(o, "stored_key_count", json_object_new_int64((int64_t)count));
	json_object_object_add(o, "max_key_count", json_object_new_int64((int64_t)cap));
	json_object_object_add(o, "max_key_per_request",
			       json_object_new_int64(k->max_key_per_request));
	json_object_object_add(o, "max_key_size", json_object_new_int64(eff_max_size(k, bits)));
	json_object_object_add(o, "min_key_size", json_object_new_int64(eff_min_size(k, bits)));
	json_object_object_add(o, "max_SAE_ID_count", json_object_new_int64(0));
	/* Simulator bookkeeping (optional per the spec): lets tests check the key budget. */
	json_object_object_add(x, "link_up", json_object_new_boolean(atomic_load(&k->link.up)));
	json_object_object_add(x, "link_master", json_object_new_boolean(k->is_link_master));
	json_object_object_add(x, "key_rate_bps", json_object_new_double(k->rate_bps));
	json_object_object_add(x, "generated_bits",
			       json_object_new_int64((int64_t)(st.generated_blocks * bits)));
	json_object_object_add(x, "consumed_bits",
			       json_object_new_int64((int64_t)(st.consumed_blocks * bits)));
	json_object_object_add(x, "served_enc_keys", json_object_new_int64((int64_t)st.served_enc_keys));
	json_object_object_add(x, "served_enc_bits", json_object_new_int64((int64_t)st.served_enc_bits));
	json_object_object_add(x, "served_dec_keys", json_object_new_int64((int64_t)st.served_dec_keys));
	json_object_object_add(x, "served_dec_bits", json_object_new_int64((int64_t)st.served_dec_bits));
	json_object_object_add(x, "reserved_keys", json_object_new_int64((int64_t)reserved));
	json_object_object_add(x, "expired_keys", json_object_new_int64((int64_t)st.expired_keys));
	json_object_object_add(x, "flushed_bits",
			       json_object_new_int64((int64_t)(st.flushed_blocks * bits)));
	json_object_object_add(o, "status_extension", x);
	return reply_json(c, MHD_HTTP_OK, o);
}

static const char *link_reason(enum kmsd_link_status st)
{
	switch (st) {
	case KMSD_LINK_OK: return "ok";
	case KMSD_LINK_UNAVAILABLE: return "not enough key material on the link";
	case KMSD_LINK_UNAUTHORIZED: return "peer KME refused the SAE pair";
	case KMSD_LINK_DOWN: return "QKD link went down";
	case KMSD_LINK_TIMEOUT: return "peer KME did not answer in time";
	case KMSD_LINK_DESYNC: return "key stores diverged; link resynchronising";
	}
	return "link error";
}

/* One enc_keys request: number keys of size bits, bpk blocks each, need blocks in all. ids and
 * bytes hold the blocks once taken (bytes wiped when freed). */
struct enc_keys {
	unsigned number, size;
	size_t bpk, need, block_bytes;
	uint8_t *ids, *bytes;
	size_t bytes_len;
};

static void enc_keys_free(struct enc_keys *e)
{
	if (e->bytes)
		ipseq_wipe(e->bytes, e->bytes_len);
	free(e->bytes);
	free(e->ids);
	e->bytes = e->ids = NULL;
}

/* Link master: take the blocks and tell the slave which ones, in one lock hold (the caller
 * holds the store lock). *pp: the request the slave's ack completes. */
static enum kmsd_link_status reserve_blocks(struct kmsd_kme *k, const char *master,
					    const char *slave, struct enc_keys *e,
					    struct kmsd_link_pending **pp)
{
	kmsd_store_pop(&k->store, e->need, NULL, e->ids, e->bytes);
	*pp = kmsd_link_pending_new(&k->link);
	if (*pp && kmsd_link_send_reserve(&k->link, (*pp)->id, e->number, e->size, e->bpk, master,
					  slave, e->ids) == 0)
		return KMSD_LINK_OK;
	return KMSD_LINK_DOWN;
}

/* Link slave: the master allocates; ask it and wait while the link thread fills our buffers,
 * then take them back. */
static enum kmsd_link_status ask_master(struct kmsd_kme *k, const char *master, const char *slave,
					struct enc_keys *e, struct kmsd_link_pending **pp)
{
	struct kmsd_link_pending *p = kmsd_link_pending_new(&k->link);
	enum kmsd_link_status st;

	*pp = p;
	if (!p)
		return KMSD_LINK_DOWN;
	p->nblocks = e->need;
	p->ids = e->ids;
	p->bytes = e->bytes;
	p->bytes_len = e->bytes_len;
	e->ids = NULL; /* owned by p now */
	e->bytes = NULL;
	if (kmsd_link_send_alloc_req(&k->link, p->id, e->number, e->size, master, slave) < 0)
		return KMSD_LINK_DOWN;
	st = kmsd_link_pending_wait(&k->link, p, k->cfg->link_timeout_ms);
	if (st == KMSD_LINK_OK) {
		pthread_mutex_lock(&k->link.plock);
		e->ids = p->ids;
		e->bytes = p->bytes;
		p->ids = NULL;
		p->bytes = NULL;
		pthread_mutex_unlock(&k->link.plock);
	}
	return st;
}

static const char *enc_refusal(enum kmsd_link_status st)
{
	if (st == KMSD_LINK_UNAVAILABLE)
		return "not enough key material";
	if (st == KMSD_LINK_UNAUTHORIZED)
		return "SAE pair not registered at peer KME";
	return "peer KME unavailable";
}

/* Count, log and send the keys taken for master -> slave. */
static enum MHD_Result answer_enc(struct kmsd_kme *k, struct MHD_Connection *c,
				  const char *master, const char *slave, const struct enc_keys *e)
{
	struct kmsd_store *s = &k->store;
	struct key_out *out = calloc(e->number, sizeof(*out));
	enum MHD_Result ret;
	char ids_text[512];
	size_t i;

	for (i = 0; out && i < e->number; i++) {
		out[i].id = e->ids + i * e->bpk * 16;
		out[i].key = e->bytes + i * e->bpk * e->block_bytes;
		out[i].len = e->size / 8;
	}
	pthread_mutex_lock(&s->lock);
	s->stats.served_enc_keys += e->number;
	s->stats.served_enc_bits += (uint64_t)e->number * e->size;
	pthread_mutex_unlock(&s->lock);
	kmsd_format_ids(e->ids, e->number, e->bpk * 16, ids_text, sizeof(ids_text));
	ipseq_log(IPSEQ_LOG_INFO, "enc_keys: %s -> %s: %u key(s) of %u bits: %s", master, slave,
		  e->number, e->size, ids_text);
	ret = out ? reply_keys(c, out, e->number) : MHD_NO;
	free(out);
	return ret;
}

/* Take number keys of size bits for master -> slave, through the link master, and answer. */
static enum MHD_Result serve_enc(struct kmsd_kme *k, struct MHD_Connection *c, const char *master,
				 const char *slave, unsigned number, unsigned size)
{
	struct kmsd_store *s = &k->store;
	struct enc_keys e = {.number = number, .size = size};
	struct kmsd_link_pending *p = NULL;
	enum kmsd_link_status st;
	enum MHD_Result ret;

	if (!atomic_load(&k->link.up))
		return reply_error(c, master, "enc_keys", 503, "QKD link down",
				   "no key material: the link to %s is not established",
				   k->cfg->peer_kme_id);

	pthread_mutex_lock(&s->lock);
	e.bpk = kmsd_blocks_per_key(s, size);
	e.need = (size_t)number * e.bpk;
	e.block_bytes = s->block_bytes;
	if (s->count < e.need) {
		size_t have = s->count;
		pthread_mutex_unlock(&s->lock);
		return reply_error(c, master, "enc_keys", 503, "not enough key material",
				   "%zu key block(s) of %u bits stored, %zu needed", have,
				   (unsigned)(e.block_bytes * 8), e.need);
	}
	e.ids = malloc(e.need * 16);
	e.bytes_len = e.need * e.block_bytes;
	e.bytes = malloc(e.bytes_len);
	if (!e.ids || !e.bytes) {
		pthread_mutex_unlock(&s->lock);
		enc_keys_free(&e);
		return MHD_NO;
	}
	if (k->is_link_master) {
		st = reserve_blocks(k, master, slave, &e, &p);
		pthread_mutex_unlock(&s->lock);
		if (st == KMSD_LINK_OK)
			st = kmsd_link_pending_wait(&k->link, p, k->cfg->link_timeout_ms);
	} else {
		pthread_mutex_unlock(&s->lock);
		st = ask_master(k, master, slave, &e, &p);
	}
	kmsd_link_pending_release(&k->link, p);
	if (st != KMSD_LINK_OK) {
		enc_keys_free(&e);
		return reply_error(c, master, "enc_keys", st == KMSD_LINK_UNAUTHORIZED ? 401 : 503,
				   enc_refusal(st), "%s", link_reason(st));
	}
	ret = answer_enc(k, c, master, slave, &e);
	enc_keys_free(&e);
	return ret;
}

static enum MHD_Result do_enc_keys(struct kmsd_kme *k, struct MHD_Connection *c, const char *method,
				   const struct req_ctx *rq, const char *caller, const char *slave)
{
	unsigned number = 1, size, bits;
	const char *why = NULL;

	pthread_mutex_lock(&k->store.lock);
	bits = k->store.block_bits;
	pthread_mutex_unlock(&k->store.lock);
	size = bits;

	if (strcmp(method, "GET") == 0) {
		struct query q = {0};

		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_iter, &q);
		if (q.unknown)
			return reply_error(c, caller, "enc_keys", 400, "bad request",
					   "unknown parameter '%.60s'", q.unknown);
		if (q.n_key_ids || q.n_number > 1 || q.n_size > 1)
			return reply_error(c, caller, "enc_keys", 400, "bad request",
					   "repeated or misplaced parameter");
		if (q.n_number && !parse_dec(q.number, &number))
			return reply_error(c, caller, "enc_keys", 400, "bad request",
					   "number must be a positive decimal integer");
		if (q.n_size && !parse_dec(q.size, &size))
			return reply_error(c, caller, "enc_keys", 400, "bad request",
					   "size must be a decimal integer");
	} else {
		struct json_object *o = parse_body(rq, &why), *v;
		int present, ok = 1;

		if (!o)
			return reply_error(c, caller, "enc_keys", 400, "bad request", "%s", why);
		if (!json_uint(o, "number", &number, &present))
			why = "number must be a non-negative integer", ok = 0;
		else if (!json_uint(o, "size", &size, &present))
			why = "size must be a non-negative integer", ok = 0;
		else if (json_object_object_get_ex(o, "additional_slave_SAE_IDs", &v) &&
			 (!json_object_is_type(v, json_type_array) ||
			  json_object_array_length(v) > 0))
			why = "additional_slave_SAE_IDs not supported (max_SAE_ID_count is 0)",
			ok = 0;
		else if (json_object_object_get_ex(o, "extension_mandatory", &v) &&
			 (!json_object_is_type(v, json_type_array) ||
			  json_object_array_length(v) > 0))
			why = "extension_mandatory: no extension is supported", ok = 0;
		else if (json_object_object_get_ex(o, "extension_optional", &v) &&
			 !json_object_is_type(v, json_type_array))
			why = "extension_optional must be an array", ok = 0;
		json_object_put(o);
		if (!ok)
			return reply_error(c, caller, "enc_keys", 400, "bad request", "%s", why);
	}
	if (number == 0 || number > k->max_key_per_request)
		return reply_error(c, caller, "enc_keys", 400, "bad request",
				   "number %u outside 1..%u (max_key_per_request)", number,
				   k->max_key_per_request);
	if (size % 8 || size < eff_min_size(k, bits) || size > eff_max_size(k, bits))
		return reply_error(c, caller, "enc_keys", 400, "bad request",
				   "size %u is not a multiple of 8 within %u..%u", size,
				   eff_min_size(k, bits), eff_max_size(k, bits));
	return serve_enc(k, c, caller, slave, number, size);
}

/* Scratch for one dec_keys request, on the heap rather than a 70 KiB stack frame. */
struct dec_work {
	const char *ids_text[KMSD_PER_REQUEST_MAX];
	uint8_t ids[KMSD_PER_REQUEST_MAX][16];
	struct kmsd_reserved_key *rks[KMSD_PER_REQUEST_MAX];
	struct key_out out[KMSD_PER_REQUEST_MAX];
	uint8_t consumed[2 + KMSD_PER_REQUEST_MAX * 16];
	size_t n;                 /* key_IDs asked for */
	struct json_object *body; /* POST: holds the ids_text strings */
	unsigned status;          /* the error answer when a step fails: 400 or 401, and why */
	char why[320];
};

static int dec_fail(struct dec_work *w, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int dec_fail(struct dec_work *w, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(w->why, sizeof(w->why), fmt, ap);
	va_end(ap);
	w->status = status;
	return -1;
}

/* GET: repeated key_ID parameters and nothing else. */
static int dec_parse_query(struct kmsd_kme *k, struct MHD_Connection *c, struct dec_work *w)
{
	struct query q = {0};
	size_t i;

	MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_iter, &q);
	if (q.unknown || q.n_number || q.n_size)
		return dec_fail(w, 400, "only key_ID parameters are allowed");
	if (q.n_key_ids == 0)
		return dec_fail(w, 400, "key_ID parameter missing");
	if (q.n_key_ids > k->max_key_per_request)
		return dec_fail(w, 400, "%u key_IDs, max_key_per_request is %u", q.n_key_ids,
				k->max_key_per_request);
	w->n = q.n_key_ids;
	for (i = 0; i < w->n; i++)
		w->ids_text[i] = q.key_ids[i] ? q.key_ids[i] : "";
	return 0;
}

/* POST: {"key_IDs": [{"key_ID": "..."}, ...]}. */
static int dec_parse_body(struct kmsd_kme *k, const struct req_ctx *rq, struct dec_work *w)
{
	struct json_object *arr;
	const char *why = NULL;
	size_t i;

	w->body = parse_body(rq, &why);
	if (!w->body)
		return dec_fail(w, 400, "%s", why);
	if (!json_object_object_get_ex(w->body, "key_IDs", &arr) ||
	    !json_object_is_type(arr, json_type_array) || json_object_array_length(arr) == 0)
		return dec_fail(w, 400, "key_IDs must be a non-empty array");
	w->n = json_object_array_length(arr);
	if (w->n > k->max_key_per_request)
		return dec_fail(w, 400, "%zu key_IDs, max_key_per_request is %u", w->n,
				k->max_key_per_request);
	for (i = 0; i < w->n; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *id;

		if (!json_object_is_type(e, json_type_object) ||
		    !json_object_object_get_ex(e, "key_ID", &id) ||
		    !json_object_is_type(id, json_type_string))
			return dec_fail(w, 400, "key_IDs[%zu] must be an object with a key_ID string",
					i);
		w->ids_text[i] = json_object_get_string(id);
	}
	return 0;
}

/* Every key_ID a UUID, none twice. */
static int dec_validate(struct dec_work *w)
{
	size_t i, j;

	for (i = 0; i < w->n; i++) {
		if (!etsi014_uuid_parse(w->ids_text[i], w->ids[i]))
			return dec_fail(w, 400, "key_ID '%.40s' is not a UUID", w->ids_text[i]);
		for (j = 0; j < i; j++)
			if (memcmp(w->ids[i], w->ids[j], 16) == 0)
				return dec_fail(w, 400, "key_ID %s requested twice", w->ids_text[i]);
	}
	return 0;
}

/* All or nothing: every key must be reserved for caller from master before any is handed out.
 * Caller holds the store lock. */
static int dec_find(struct kmsd_store *s, const char *caller, const char *master,
		    struct dec_work *w)
{
	size_t i;

	for (i = 0; i < w->n; i++) {
		char t[ETSI014_KEY_ID_LEN + 1];

		w->rks[i] = kmsd_store_find_reserved(s, w->ids[i]);
		etsi014_uuid_format(w->ids[i], t);
		if (!w->rks[i])
			return dec_fail(w, 400, "key_ID %s unknown, expired or already fetched", t);
		if (strcmp(w->rks[i]->slave, caller) != 0 || strcmp(w->rks[i]->master, master) != 0)
			return dec_fail(w, 401, "key_ID %s is not reserved for %s from %s", t, caller,
					master);
		w->out[i].id = w->rks[i]->id;
		w->out[i].key = w->rks[i]->key;
		w->out[i].len = w->rks[i]->len;
	}
	return 0;
}

/* Answer with the keys (*ret) and delete them once the answer is queued; tell the peer
 * (CONSUMED). -1: a key is not deliverable, nothing was answered (w->status, w->why). */
static int dec_deliver(struct kmsd_kme *k, struct MHD_Connection *c, const char *caller,
		       const char *master, struct dec_work *w, enum MHD_Result *ret)
{
	struct kmsd_store *s = &k->store;
	char logids[512];
	size_t i;

	/* A reservation past its lifetime is gone now, not at the link thread's next
	 * once-a-second sweep. */
	pthread_mutex_lock(&s->lock);
	kmsd_store_expire(s, ipseq_now_ms());
	if (dec_find(s, caller, master, w) < 0) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	*ret = reply_keys(c, w->out, w->n);
	if (*ret == MHD_YES) {
		w->consumed[0] = (uint8_t)(w->n >> 8);
		w->consumed[1] = (uint8_t)w->n;
		for (i = 0; i < w->n; i++) {
			memcpy(w->consumed + 2 + i * 16, w->ids[i], 16);
			s->stats.served_dec_keys++;
			s->stats.served_dec_bits += w->rks[i]->len * 8;
			kmsd_store_remove_reserved(s, w->rks[i]);
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (*ret == MHD_YES) {
		kmsd_format_ids(w->consumed + 2, w->n, 16, logids, sizeof(logids));
		ipseq_log(IPSEQ_LOG_INFO,
			  "dec_keys: %s <- %s: %zu key(s) delivered and deleted: %s", caller,
			  master, w->n, logids);
		kmsd_link_send(&k->link, KMSD_MSG_CONSUMED, w->consumed,
			       2 + w->n * 16); /* best effort */
	}
	return 0;
}

/* dec_keys: parse, validate, deliver; any refusal is one error answer. */
static enum MHD_Result do_dec_keys(struct kmsd_kme *k, struct MHD_Connection *c, const char *method,
				   const struct req_ctx *rq, const char *caller, const char *master)
{
	struct dec_work *w = calloc(1, sizeof(*w));
	enum MHD_Result ret = MHD_NO;
	int rc;

	if (!w)
		return MHD_NO;
	if (strcmp(method, "GET") == 0)
		rc = dec_parse_query(k, c, w);
	else
		rc = dec_parse_body(k, rq, w);
	if (rc == 0)
		rc = dec_validate(w);
	json_object_put(w->body); /* ids_text is not used below */
	if (rc == 0)
		rc = dec_deliver(k, c, caller, master, w, &ret);
	if (rc < 0)
		ret = reply_error(c, caller, "dec_keys", w->status,
				  w->status == 401 ? "unauthorized" : "bad request", "%s", w->why);
	free(w);
	return ret;
}

static int fail_roll(double rate)
{
	uint32_t r;

	if (rate <= 0)
		return 0;
	gnutls_rnd(GNUTLS_RND_NONCE, &r, sizeof(r));
	return r < rate * 4294967296.0;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct kmsd_kme *k = cls;
	struct req_ctx *rq = *req_cls;
	const union MHD_ConnectionInfo *ci;
	struct conn_ctx *cc;
	char id[ETSI014_ID_MAX + 1];
	const char *rest, *slash, *op;
	size_t idlen;

	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (!rq->too_large && rq->len + n > BODY_MAX) {
			rq->too_large = 1;
		} else if (!rq->too_large) {
			char *b = ipseq_grow_wiped(rq->body, &rq->cap, rq->len, rq->len + n + 1,
						   1024);
			if (!b)
				return MHD_NO;
			rq->body = b;
			memcpy(rq->body + rq->len, upload_data, n);
			rq->len += n;
			rq->body[rq->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	cc = ci ? ci->socket_context : NULL;
	if (!cc)
		return MHD_NO;
	if (!cc->checked)
		check_identity(c, cc);
	if (!cc->ok)
		return reply_error(c, "unidentified client", url, 401, "unauthorized", "%s",
				   cc->why[0] ? cc->why : "client certificate required");

	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		return reply_error(c, cc->sae, url, 405, "method not allowed", "use GET or POST");
	if (strncmp(url, "/api/v1/keys/", 13) != 0)
		return reply_error(c, cc->sae, url, 404, "not found", "no such endpoint");
	rest = url + 13;
	slash = strchr(rest, '/');
	idlen = slash ? (size_t)(slash - rest) : 0;
	if (!slash || !etsi014_sae_id_valid(rest, idlen))
		return reply_error(c, cc->sae, url, 404, "not found", "no such endpoint");
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	op = slash + 1;
	if (strcmp(op, "status") != 0 && strcmp(op, "enc_keys") != 0 &&
	    strcmp(op, "dec_keys") != 0)
		return reply_error(c, cc->sae, url, 404, "not found", "no such endpoint");
	if (strcmp(op, "status") == 0 && strcmp(method, "GET") != 0)
		return reply_error(c, cc->sae, op, 405, "method not allowed", "status is GET only");

	if (atomic_load(&k->outage))
		return reply_error(c, cc->sae, op, 503, "KME unavailable", "simulated outage");
	if (fail_roll(k->cfg->fail_rate))
		return reply_error(c, cc->sae, op, 503, "KME unavailable", "simulated failure");

	/* Only registered pairs: the caller attached here, the other SAE at the peer KME. */
	if (!kmsd_config_is_local_sae(k->cfg, cc->sae))
		return reply_error(c, cc->sae, op, 401, "unauthorized",
				   "SAE %s is not registered at %s", cc->sae, k->cfg->kme_id);
	if (!kmsd_config_is_peer_sae(k->cfg, id))
		return reply_error(c, cc->sae, op, 401, "unauthorized",
				   "SAE %s is not registered at %s", id, k->cfg->peer_kme_id);
	if (rq->too_large)
		return reply_error(c, cc->sae, op, 400, "bad request", "body above %d bytes",
				   BODY_MAX);

	if (strcmp(op, "status") == 0)
		return do_status(k, c, cc->sae, id);
	if (strcmp(op, "enc_keys") == 0)
		return do_enc_keys(k, c, method, rq, cc->sae, id);
	return do_dec_keys(k, c, method, rq, cc->sae, id);
}

static void request_done(void *cls, struct MHD_Connection *c, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct req_ctx *rq = *req_cls;

	if (!rq)
		return;
	if (rq->body) {
		ipseq_wipe(rq->body, rq->cap);
		free(rq->body);
	}
	free(rq);
	*req_cls = NULL;
}

static void conn_notify(void *cls, struct MHD_Connection *c, void **socket_context,
			enum MHD_ConnectionNotificationCode toe)
{
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = calloc(1, sizeof(struct conn_ctx));
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
		free(*socket_context);
		*socket_context = NULL;
	}
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	ipseq_log(IPSEQ_LOG_DEBUG, "httpd: %s", buf);
}

static char *read_pem(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f) {
		ipseq_log(IPSEQ_LOG_ERR, "cannot open %s", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) < 0 || (n = ftell(f)) < 0 || n > (1 << 20) ||
	    fseek(f, 0, SEEK_SET) < 0) {
		fclose(f);
		return NULL;
	}
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int kmsd_api_start(struct kmsd_kme *k)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;

	if (kmsd_resolve(k->cfg->listen, 1, &ss, &sl) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "listen '%s' is not host:port", k->cfg->listen);
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	k->pem_cert = read_pem(k->cfg->cert);
	k->pem_key = read_pem(k->cfg->key);
	k->pem_ca = read_pem(k->cfg->ca);
	if (!k->pem_cert || !k->pem_key || !k->pem_ca)
		return -1;
	k->httpd = MHD_start_daemon(
		flags, 0, NULL, NULL, handle, k,
		MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_HTTPS_MEM_CERT, k->pem_cert,
		MHD_OPTION_HTTPS_MEM_KEY, k->pem_key,
		MHD_OPTION_HTTPS_MEM_TRUST, k->pem_ca,
		MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITY,
		MHD_OPTION_CONNECTION_LIMIT, (unsigned)k->cfg->max_connections,
		MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
		MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
		MHD_OPTION_NOTIFY_CONNECTION, conn_notify, NULL,
		MHD_OPTION_END);
	if (!k->httpd) {
		ipseq_log(IPSEQ_LOG_ERR,
			  "cannot start HTTPS on %s (address in use or bad certificate)",
			  k->cfg->listen);
		return -1;
	}
	return 0;
}

void kmsd_api_stop(struct kmsd_kme *k)
{
	if (k->httpd)
		MHD_stop_daemon(k->httpd);
	k->httpd = NULL;
	if (k->pem_key)
		ipseq_wipe(k->pem_key, strlen(k->pem_key));
	free(k->pem_cert);
	free(k->pem_key);
	free(k->pem_ca);
	k->pem_cert = k->pem_key = k->pem_ca = NULL;
}
