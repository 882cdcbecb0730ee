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
#include "https_server.h"
#include "ipseq_util.h"

#define BODY_MAX (64 * 1024)

/* --- responses --------------------------------------------------------------------------------- */

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
	return https_queue(c, MHD_HTTP_OK,
		     MHD_create_response_from_buffer_with_free_callback_cls(o, b->data,
									    key_body_free, b));
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

static struct json_object *parse_body(const struct https_request *rq, const char **why)
{
	return https_json_object(rq->body, rq->len, why);
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
	if (k->node && k->node->metro)
		json_object_object_add(x, "link", kmsd_node_link_json(k));
	json_object_object_add(o, "status_extension", x);
	return https_reply_json(c, MHD_HTTP_OK, o);
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
	case KMSD_LINK_REFUSED: return "peer KME refused the message";
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
	char what[384];
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
	snprintf(what, sizeof(what), "enc_keys: %s -> %s: %u key(s) of %u bits", master, slave,
		 e->number, e->size);
	kmsd_log_ids(IPSEQ_LOG_INFO, what, e->ids, e->number, e->bpk * 16);
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
		return https_reply_error(c, master, "enc_keys", 503, "QKD link down",
					 "no key material: the link to %s is not established",
					 k->cfg->peer_kme_id);

	pthread_mutex_lock(&s->lock);
	e.bpk = kmsd_blocks_per_key(s, size);
	e.need = (size_t)number * e.bpk;
	e.block_bytes = s->block_bytes;
	if (s->count < e.need) {
		size_t have = s->count;
		pthread_mutex_unlock(&s->lock);
		return https_reply_error(c, master, "enc_keys", 503, "not enough key material",
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
		return https_reply_error(c, master, "enc_keys",
					 st == KMSD_LINK_UNAUTHORIZED ? 401 : 503,
					 enc_refusal(st), "%s", link_reason(st));
	}
	ret = answer_enc(k, c, master, slave, &e);
	enc_keys_free(&e);
	return ret;
}

/* What an enc_keys request asks: GET number/size, or the POST body. */
struct enc_req {
	unsigned number, size;
	char additional[KMSD_MAX_SAE_IDS][ETSI014_ID_MAX + 1];
	unsigned n_additional;
	char why[96];
};

/* additional_slave_SAE_IDs: at most max_add valid SAE IDs, none twice, not the slave itself. */
static const char *parse_additional(struct json_object *v, unsigned max_add, const char *slave,
				    struct enc_req *e)
{
	size_t i, j, n;

	if (!json_object_is_type(v, json_type_array))
		return "additional_slave_SAE_IDs must be an array";
	n = json_object_array_length(v);
	if (n == 0)
		return NULL;
	if (max_add == 0)
		return "additional_slave_SAE_IDs not supported (max_SAE_ID_count is 0)";
	if (n > max_add)
		return "more additional_slave_SAE_IDs than max_SAE_ID_count";
	for (i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(v, i);
		const char *id = json_object_get_string(x);

		if (!json_object_is_type(x, json_type_string) ||
		    !etsi014_sae_id_valid(id, strlen(id)))
			return "additional_slave_SAE_IDs must be SAE ID strings";
		if (strcmp(id, slave) == 0)
			return "additional_slave_SAE_IDs names the slave SAE itself";
		for (j = 0; j < i; j++)
			if (strcmp(e->additional[j], id) == 0)
				return "additional_slave_SAE_IDs names an SAE twice";
		snprintf(e->additional[i], sizeof(e->additional[i]), "%s", id);
	}
	e->n_additional = (unsigned)n;
	return NULL;
}

/* Parse into e (number and size keep their defaults when absent). NULL, or why it is a 400. */
static const char *parse_enc(struct MHD_Connection *c, const char *method,
			     const struct https_request *rq, unsigned max_add, const char *slave,
			     struct enc_req *e)
{
	const char *why = NULL;

	if (strcmp(method, "GET") == 0) {
		struct query q = {0};

		MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, query_iter, &q);
		if (q.unknown) {
			snprintf(e->why, sizeof(e->why), "unknown parameter '%.60s'", q.unknown);
			return e->why;
		}
		if (q.n_key_ids || q.n_number > 1 || q.n_size > 1)
			return "repeated or misplaced parameter";
		if (q.n_number && !parse_dec(q.number, &e->number))
			return "number must be a positive decimal integer";
		if (q.n_size && !parse_dec(q.size, &e->size))
			return "size must be a decimal integer";
	} else {
		struct json_object *o = parse_body(rq, &why), *v;
		int present;

		if (!o)
			return why;
		if (!json_uint(o, "number", &e->number, &present))
			why = "number must be a non-negative integer";
		else if (!json_uint(o, "size", &e->size, &present))
			why = "size must be a non-negative integer";
		else if (json_object_object_get_ex(o, "additional_slave_SAE_IDs", &v))
			why = parse_additional(v, max_add, slave, e);
		if (!why && json_object_object_get_ex(o, "extension_mandatory", &v) &&
		    (!json_object_is_type(v, json_type_array) || json_object_array_length(v) > 0))
			why = "extension_mandatory: no extension is supported";
		else if (!why && json_object_object_get_ex(o, "extension_optional", &v) &&
			 !json_object_is_type(v, json_type_array))
			why = "extension_optional must be an array";
		json_object_put(o);
	}
	return why;
}

static enum MHD_Result do_enc_keys(struct kmsd_kme *k, struct MHD_Connection *c, const char *method,
				   const struct https_request *rq, const char *caller,
				   const char *slave)
{
	struct enc_req e = {.number = 1};
	const char *why;
	unsigned bits;

	pthread_mutex_lock(&k->store.lock);
	bits = k->store.block_bits;
	pthread_mutex_unlock(&k->store.lock);
	e.size = bits;
	why = parse_enc(c, method, rq, 0, slave, &e);
	if (why)
		return https_reply_error(c, caller, "enc_keys", 400, "bad request", "%s", why);
	if (e.number == 0 || e.number > k->max_key_per_request)
		return https_reply_error(c, caller, "enc_keys", 400, "bad request",
					 "number %u outside 1..%u (max_key_per_request)", e.number,
					 k->max_key_per_request);
	if (e.size % 8 || e.size < eff_min_size(k, bits) || e.size > eff_max_size(k, bits))
		return https_reply_error(c, caller, "enc_keys", 400, "bad request",
					 "size %u is not a multiple of 8 within %u..%u", e.size,
					 eff_min_size(k, bits), eff_max_size(k, bits));
	return serve_enc(k, c, caller, slave, e.number, e.size);
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
static int dec_parse_body(struct kmsd_kme *k, const struct https_request *rq, struct dec_work *w)
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

		w->rks[i] = kmsd_store_find_reserved_for(s, w->ids[i], caller);
		if (!w->rks[i]) /* reserved for another slave, or not at all */
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
 * (CONSUMED, over link l: NULL for relayed keys). -1: a key is not deliverable, nothing was
 * answered (w->status, w->why). */
static int dec_deliver(struct kmsd_store *s, struct kmsd_link *l, struct MHD_Connection *c,
		       const char *caller, const char *master, struct dec_work *w,
		       enum MHD_Result *ret)
{
	char what[384];
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
		snprintf(what, sizeof(what), "dec_keys: %s <- %s: %zu key(s) delivered and deleted",
			 caller, master, w->n);
		kmsd_log_ids(IPSEQ_LOG_INFO, what, w->consumed + 2, w->n, 16);
		if (l)
			kmsd_link_send(l, KMSD_MSG_CONSUMED, w->consumed,
				       2 + w->n * 16); /* best effort */
	}
	return 0;
}

/* dec_keys: parse, validate, deliver from s (a link's store, or the node's relayed keys); any
 * refusal is one error answer. */
static enum MHD_Result do_dec_keys(struct kmsd_kme *k, struct MHD_Connection *c, const char *method,
				   const struct https_request *rq, const char *caller,
				   const char *master, struct kmsd_store *s, struct kmsd_link *l)
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
		rc = dec_deliver(s, l, c, caller, master, w, &ret);
	if (rc < 0)
		ret = https_reply_error(c, caller, "dec_keys", w->status,
					w->status == 401 ? "unauthorized" : "bad request", "%s",
					w->why);
	free(w);
	return ret;
}

/* --- relayed keys: SAEs attached to other nodes (remote_sae) --------------------------------- */

/* Status towards a slave SAE at node dst: the first hop's link stands for the key supply. */
static enum MHD_Result do_relay_status(struct kmsd_node *n, struct MHD_Connection *c,
				       const char *caller, const char *slave, const char *dst)
{
	struct json_object *o = json_object_new_object(), *x = json_object_new_object();
	struct json_object *links = json_object_new_array(), *path = json_object_new_array();
	struct kmsd_route rt;
	struct kmsd_kme *first = NULL;
	uint64_t stored_bits = 0, cap = 0, sent, delivered;
	size_t reserved;
	unsigned i;

	if (kmsd_route_lookup(n, dst, &rt) == 0 && rt.n >= 2)
		first = kmsd_node_link_to(n, rt.path[1]);
	if (first) {
		pthread_mutex_lock(&first->store.lock);
		stored_bits = (uint64_t)first->store.count * first->store.block_bits;
		cap = (uint64_t)first->store.cap * first->store.block_bits / n->cfg->key_size;
		pthread_mutex_unlock(&first->store.lock);
		for (i = 0; i < rt.n; i++)
			json_object_array_add(path, json_object_new_string(rt.path[i]));
	}
	pthread_mutex_lock(&n->relayed.lock);
	reserved = n->relayed.n_reserved;
	sent = n->relayed_keys_sent;
	delivered = n->relayed_keys_delivered;
	pthread_mutex_unlock(&n->relayed.lock);
	json_object_object_add(o, "source_KME_ID", json_object_new_string(n->cfg->kme_id));
	json_object_object_add(o, "target_KME_ID", json_object_new_string(dst));
	json_object_object_add(o, "master_SAE_ID", json_object_new_string(caller));
	json_object_object_add(o, "slave_SAE_ID", json_object_new_string(slave));
	json_object_object_add(o, "key_size", json_object_new_int64(n->cfg->key_size));
	json_object_object_add(o, "stored_key_count",
			       json_object_new_int64((int64_t)(stored_bits / n->cfg->key_size)));
	json_object_object_add(o, "max_key_count", json_object_new_int64((int64_t)cap));
	json_object_object_add(o, "max_key_per_request",
			       json_object_new_int64(n->cfg->max_key_per_request));
	json_object_object_add(o, "max_key_size", json_object_new_int64(n->cfg->max_key_size));
	json_object_object_add(o, "min_key_size", json_object_new_int64(n->cfg->min_key_size));
	json_object_object_add(o, "max_SAE_ID_count", json_object_new_int64(KMSD_MAX_SAE_IDS - 1));
	json_object_object_add(x, "relayed", json_object_new_boolean(1));
	json_object_object_add(x, "link_up", json_object_new_boolean(first &&
								     atomic_load(&first->link.up)));
	json_object_object_add(x, "route", path);
	json_object_object_add(x, "hops", json_object_new_int64(first ? rt.n - 1 : 0));
	json_object_object_add(x, "relayed_keys_sent", json_object_new_int64((int64_t)sent));
	json_object_object_add(x, "relayed_keys_delivered",
			       json_object_new_int64((int64_t)delivered));
	json_object_object_add(x, "relayed_keys_reserved", json_object_new_int64((int64_t)reserved));
	for (i = 0; i < n->n_links; i++)
		json_object_array_add(links, kmsd_node_link_json(&n->links[i]));
	json_object_object_add(x, "links", links);
	json_object_object_add(o, "status_extension", x);
	return https_reply_json(c, MHD_HTTP_OK, o);
}

/* Relayed enc_keys: fresh keys from the CSPRNG, relayed to every slave's node (one relay per
 * destination node, carrying all its slaves); the SAE gets them once every destination stored
 * them. A node that refuses (a relay NACK) makes the request fail with 503 and the
 * refusing node's reason; destinations that already stored the keys let them expire unfetched, since their
 * key_IDs never reach the master SAE. */
static enum MHD_Result do_relay_enc(struct kmsd_node *n, struct MHD_Connection *c,
				    const char *method, const struct https_request *rq,
				    const char *caller, const char *slave)
{
	struct enc_req e = {.number = 1, .size = n->cfg->key_size};
	const char *slaves[KMSD_MAX_SAE_IDS], *at_dst[KMSD_MAX_SAE_IDS];
	char dsts[KMSD_MAX_SAE_IDS][ETSI014_ID_MAX + 1];
	/* the log line names two SAE_IDs of up to ETSI014_ID_MAX characters each */
	char why[2 * ETSI014_ID_MAX + 96] = "";
	struct key_out *out = NULL;
	uint8_t *ids = NULL, *keys = NULL;
	size_t klen, i;
	unsigned n_slaves, d, m;
	enum kmsd_link_status st = KMSD_LINK_OK;
	enum MHD_Result ret;
	const char *bad;

	bad = parse_enc(c, method, rq, KMSD_MAX_SAE_IDS - 1, slave, &e);
	if (bad)
		return https_reply_error(c, caller, "enc_keys", 400, "bad request", "%s", bad);
	if (e.number == 0 || e.number > n->cfg->max_key_per_request)
		return https_reply_error(c, caller, "enc_keys", 400, "bad request",
					 "number %u outside 1..%u (max_key_per_request)", e.number,
					 n->cfg->max_key_per_request);
	if (e.size % 8 || e.size < n->cfg->min_key_size || e.size > n->cfg->max_key_size)
		return https_reply_error(c, caller, "enc_keys", 400, "bad request",
					 "size %u is not a multiple of 8 within %u..%u", e.size,
					 n->cfg->min_key_size, n->cfg->max_key_size);
	slaves[0] = slave;
	for (i = 0; i < e.n_additional; i++)
		slaves[i + 1] = e.additional[i];
	n_slaves = e.n_additional + 1;
	for (i = 0; i < n_slaves; i++)
		if (!kmsd_config_remote_sae_node(n->cfg, slaves[i], dsts[i]))
			return https_reply_error(c, caller, "enc_keys", 401, "unauthorized",
						 "SAE %s is not registered (no remote_sae entry "
						 "at %s)", slaves[i], n->cfg->kme_id);

	klen = e.size / 8;
	ids = malloc((size_t)e.number * 16);
	keys = calloc(e.number, klen);
	out = calloc(e.number, sizeof(*out));
	if (!ids || !keys || !out) {
		ret = MHD_NO;
		goto done;
	}
	for (i = 0; i < e.number; i++)
		kmsd_make_key_id(ids + i * 16);
	gnutls_rnd(GNUTLS_RND_KEY, keys, (size_t)e.number * klen);
	/* one relay per destination node, in the order the slaves were named */
	for (d = 0; d < n_slaves && st == KMSD_LINK_OK; d++) {
		unsigned cnt = 0;

		for (m = 0; m < d; m++)
			if (strcmp(dsts[m], dsts[d]) == 0)
				break;
		if (m < d)
			continue; /* that node was served with its first slave */
		for (m = d; m < n_slaves; m++)
			if (strcmp(dsts[m], dsts[d]) == 0)
				at_dst[cnt++] = slaves[m];
		st = kmsd_relay_send(n, dsts[d], caller, at_dst, cnt, e.number, e.size, ids, keys,
				     why, sizeof(why));
	}
	if (st != KMSD_LINK_OK) { /* the SAE is registered here: whatever a node refused, 503 */
		ret = https_reply_error(c, caller, "enc_keys", 503, "key relay failed", "%s", why);
		goto done;
	}
	for (i = 0; i < e.number; i++) {
		out[i].id = ids + i * 16;
		out[i].key = keys + i * klen;
		out[i].len = klen;
	}
	snprintf(why, sizeof(why), "enc_keys: %s -> %s%s: %u relayed key(s) of %u bits", caller,
		 slave, n_slaves > 1 ? " and additional slaves" : "", e.number, e.size);
	kmsd_log_ids(IPSEQ_LOG_INFO, why, ids, e.number, 16);
	ret = reply_keys(c, out, e.number);
done:
	if (keys) {
		ipseq_wipe(keys, (size_t)e.number * klen);
		free(keys);
	}
	free(ids);
	free(out);
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

static enum MHD_Result handle(void *cls, const struct https_request *rq)
{
	struct kmsd_node *n = cls;
	struct kmsd_kme *k;
	struct MHD_Connection *c = rq->conn;
	const char *url = rq->url, *method = rq->method, *caller = rq->peer;
	char node[ETSI014_ID_MAX + 1];
	char id[ETSI014_ID_MAX + 1];
	const char *rest, *slash, *op;
	size_t idlen;

	if (!caller)
		return https_reply_error(c, "unidentified client", url, 401, "unauthorized", "%s",
					 rq->why);
	if (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)
		return https_reply_error(c, caller, url, 405, "method not allowed",
					 "use GET or POST");
	if (strncmp(url, "/api/v1/keys/", 13) != 0)
		return https_reply_error(c, caller, url, 404, "not found", "no such endpoint");
	rest = url + 13;
	slash = strchr(rest, '/');
	idlen = slash ? (size_t)(slash - rest) : 0;
	if (!slash || !etsi014_sae_id_valid(rest, idlen))
		return https_reply_error(c, caller, url, 404, "not found", "no such endpoint");
	memcpy(id, rest, idlen);
	id[idlen] = '\0';
	op = slash + 1;
	if (strcmp(op, "status") != 0 && strcmp(op, "enc_keys") != 0 &&
	    strcmp(op, "dec_keys") != 0)
		return https_reply_error(c, caller, url, 404, "not found", "no such endpoint");
	if (strcmp(op, "status") == 0 && strcmp(method, "GET") != 0)
		return https_reply_error(c, caller, op, 405, "method not allowed",
					 "status is GET only");

	if (atomic_load(&n->outage))
		return https_reply_error(c, caller, op, 503, "KME unavailable", "simulated outage");
	if (fail_roll(n->cfg->fail_rate))
		return https_reply_error(c, caller, op, 503, "KME unavailable",
					 "simulated failure");

	/* Only registered pairs: the caller attached here, the other SAE at a neighbour's end of
	 * one of our links (peer_sae: the link's own keys), or at a node keys are relayed to
	 * (remote_sae). */
	if (!kmsd_config_is_local_sae(n->cfg, caller))
		return https_reply_error(c, caller, op, 401, "unauthorized",
					 "SAE %s is not registered at %s", caller, n->cfg->kme_id);
	k = kmsd_node_link_for_sae(n, id);
	if (!k && !(n->metro && kmsd_config_remote_sae_node(n->cfg, id, node)))
		return https_reply_error(c, caller, op, 401, "unauthorized",
					 "SAE %s is not registered at %s", id,
					 n->metro ? "any node we know" :
						    n->links[0].cfg->peer_kme_id);
	if (rq->too_large)
		return https_reply_error(c, caller, op, 400, "bad request", "body above %d bytes",
					 BODY_MAX);

	if (!k) {
		if (strcmp(op, "status") == 0)
			return do_relay_status(n, c, caller, id, node);
		if (strcmp(op, "enc_keys") == 0)
			return do_relay_enc(n, c, method, rq, caller, id);
		return do_dec_keys(&n->links[0], c, method, rq, caller, id, &n->relayed, NULL);
	}
	if (strcmp(op, "status") == 0)
		return do_status(k, c, caller, id);
	if (strcmp(op, "enc_keys") == 0)
		return do_enc_keys(k, c, method, rq, caller, id);
	return do_dec_keys(k, c, method, rq, caller, id, &k->store, &k->link);
}

int kmsd_api_start(struct kmsd_node *k)
{
	struct https_server_config hc = {
		.listen = k->cfg->listen,
		.cert = k->cfg->cert,
		.key = k->cfg->key,
		.ca = k->cfg->ca,
		.max_connections = (unsigned)k->cfg->max_connections,
		.body_max = BODY_MAX,
		.cn_valid = etsi014_sae_id_valid,
	};

	k->httpd = https_server_start(&hc, handle, k);
	return k->httpd ? 0 : -1;
}

void kmsd_api_stop(struct kmsd_node *k)
{
	https_server_stop(k->httpd);
	k->httpd = NULL;
}
