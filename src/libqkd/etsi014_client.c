/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * etsi014_client.c - ETSI GS QKD 014 over libcurl with mutual TLS.
 *
 * Thread model: a client owns a mutex-protected stack of idle CURL easy handles. A call pops one
 * (or makes a new one), runs the request and pushes it back, so parallel callers never share a
 * handle while sequential calls reuse the open TLS connection of a pooled handle.
 */
#include "etsi014_codec.h"
#include "ipseq_util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#define DEFAULT_CONNECT_TIMEOUT_MS 2000
#define DEFAULT_TOTAL_TIMEOUT_MS 5000
#define DEFAULT_IDLE_HANDLES 4

struct etsi014_client {
	char *base_url;
	char *cert_file;
	char *key_file;
	char *ca_file;
	long connect_timeout_ms;
	long total_timeout_ms;
	pthread_mutex_t lock;
	CURL **idle;
	unsigned n_idle, max_idle;
};

/* Response body being received: bounded, wiped when released (it may hold base64 keys). */
struct body {
	char *data;
	size_t len, cap;
	int too_large;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

const char *etsi014_strerror(enum etsi014_error_code code)
{
	switch (code) {
	case ETSI014_OK: return "success";
	case ETSI014_ERR_ARG: return "invalid argument";
	case ETSI014_ERR_NOMEM: return "out of memory";
	case ETSI014_ERR_TRANSPORT: return "cannot reach KME";
	case ETSI014_ERR_TIMEOUT: return "KME timed out";
	case ETSI014_ERR_TLS: return "TLS failure with KME";
	case ETSI014_ERR_HTTP_400: return "KME: bad request (HTTP 400)";
	case ETSI014_ERR_HTTP_401: return "KME: unauthorized (HTTP 401)";
	case ETSI014_ERR_HTTP_503: return "KME: service unavailable (HTTP 503)";
	case ETSI014_ERR_HTTP_OTHER: return "KME: unexpected HTTP status";
	case ETSI014_ERR_MALFORMED: return "malformed KME response";
	}
	return "unknown error";
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct etsi014_client *etsi014_client_new(const struct etsi014_client_config *cfg,
					  struct etsi014_error *err)
{
	struct etsi014_client *c;
	size_t ulen;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!cfg || !cfg->kme_url || !cfg->cert_file || !cfg->key_file || !cfg->ca_file) {
		etsi014_fail(err, ETSI014_ERR_ARG, "kme_url, cert_file, key_file and ca_file are required");
		return NULL;
	}
	if (strncmp(cfg->kme_url, "https://", 8) != 0) {
		etsi014_fail(err, ETSI014_ERR_ARG, "kme_url must start with https://");
		return NULL;
	}
	if (cfg->connect_timeout_ms < 0 || cfg->total_timeout_ms < 0) {
		etsi014_fail(err, ETSI014_ERR_ARG, "negative timeout");
		return NULL;
	}
	pthread_once(&curl_once, curl_init);
	if (curl_init_rc != CURLE_OK) {
		etsi014_fail(err, ETSI014_ERR_TRANSPORT, "libcurl init failed: %s",
			     curl_easy_strerror(curl_init_rc));
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		return NULL;
	}
	c->base_url = strdup(cfg->kme_url);
	c->cert_file = dup_or_null(cfg->cert_file);
	c->key_file = dup_or_null(cfg->key_file);
	c->ca_file = dup_or_null(cfg->ca_file);
	c->connect_timeout_ms = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
							: DEFAULT_CONNECT_TIMEOUT_MS;
	c->total_timeout_ms = cfg->total_timeout_ms ? cfg->total_timeout_ms
						    : DEFAULT_TOTAL_TIMEOUT_MS;
	c->max_idle = cfg->max_idle_handles ? cfg->max_idle_handles : DEFAULT_IDLE_HANDLES;
	c->idle = calloc(c->max_idle, sizeof(*c->idle));
	if (!c->base_url || !c->cert_file || !c->key_file || !c->ca_file || !c->idle ||
	    pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c->base_url);
		free(c->cert_file);
		free(c->key_file);
		free(c->ca_file);
		free(c->idle);
		free(c);
		etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		return NULL;
	}
	/* A trailing slash would make "//api" paths. */
	ulen = strlen(c->base_url);
	while (ulen > 8 && c->base_url[ulen - 1] == '/')
		c->base_url[--ulen] = '\0';
	return c;
}

void etsi014_client_free(struct etsi014_client *c)
{
	unsigned i;

	if (!c)
		return;
	for (i = 0; i < c->n_idle; i++)
		curl_easy_cleanup(c->idle[i]);
	pthread_mutex_destroy(&c->lock);
	free(c->idle);
	free(c->base_url);
	free(c->cert_file);
	free(c->key_file);
	free(c->ca_file);
	free(c);
}

static CURL *handle_get(struct etsi014_client *c)
{
	CURL *h = NULL;

	pthread_mutex_lock(&c->lock);
	if (c->n_idle)
		h = c->idle[--c->n_idle];
	pthread_mutex_unlock(&c->lock);
	if (!h)
		h = curl_easy_init();
	else
		curl_easy_reset(h); /* keeps live connections and the TLS session cache */
	return h;
}

static void handle_put(struct etsi014_client *c, CURL *h)
{
	pthread_mutex_lock(&c->lock);
	if (c->n_idle < c->max_idle) {
		c->idle[c->n_idle++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	if (h)
		curl_easy_cleanup(h);
}

static size_t body_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	char *d;

	if (n > ETSI014_BODY_MAX - b->len) {
		b->too_large = 1;
		return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
	}
	/* the body holds key material: grown without realloc, the old copy wiped */
	d = ipseq_grow_wiped(b->data, &b->cap, b->len, b->len + n + 1, 4096);
	if (!d)
		return 0;
	b->data = d;
	memcpy(b->data + b->len, ptr, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

static void body_release(struct body *b)
{
	if (b->data) {
		ipseq_wipe(b->data, b->cap);
		free(b->data);
	}
	memset(b, 0, sizeof(*b));
}

static enum etsi014_error_code map_curl_error(CURLcode rc, const char *errbuf,
					      struct etsi014_error *err)
{
	const char *what = errbuf[0] ? errbuf : curl_easy_strerror(rc);

	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		return etsi014_fail(err, ETSI014_ERR_TIMEOUT, "%s", what);
	case CURLE_OUT_OF_MEMORY:
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "%s", what);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_USE_SSL_FAILED:
		return etsi014_fail(err, ETSI014_ERR_TLS, "%s", what);
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		/* A TLS 1.3 server rejects our certificate with an alert after the handshake,
		 * which curl reports as a receive error carrying the alert text. */
		if (strstr(what, "alert") || strstr(what, "certificate") || strstr(what, "SSL"))
			return etsi014_fail(err, ETSI014_ERR_TLS, "%s", what);
		return etsi014_fail(err, ETSI014_ERR_TRANSPORT, "%s", what);
	default:
		return etsi014_fail(err, ETSI014_ERR_TRANSPORT, "%s", what);
	}
}

/*
 * Run one request. post_body NULL means GET. On 200 the body is left in *b for the caller to
 * parse; any other outcome fills err and returns its code.
 */
static enum etsi014_error_code perform(struct etsi014_client *c, const char *url,
				       const char *post_body, struct body *b,
				       struct etsi014_error *err)
{
	char errbuf[CURL_ERROR_SIZE];
	struct curl_slist *hdrs = NULL, *h2;
	enum etsi014_error_code rc;
	CURLcode crc;
	long status = 0;
	CURL *h;

	h = handle_get(c);
	if (!h)
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "cannot create curl handle");
	errbuf[0] = '\0';
	hdrs = curl_slist_append(NULL, "Accept: application/json");
	if (hdrs && post_body) {
		h2 = curl_slist_append(hdrs, "Content-Type: application/json");
		if (!h2) {
			curl_slist_free_all(hdrs);
			hdrs = NULL;
		} else {
			hdrs = h2;
		}
	}
	if (!hdrs) {
		handle_put(c, h);
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
	}

	curl_easy_setopt(h, CURLOPT_URL, url);
#if LIBCURL_VERSION_NUM >= 0x075500
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
#else
	curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->total_timeout_ms);
	curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
	curl_easy_setopt(h, CURLOPT_CAPATH, NULL); /* trust only the configured CA */
	curl_easy_setopt(h, CURLOPT_SSLCERT, c->cert_file);
	curl_easy_setopt(h, CURLOPT_SSLKEY, c->key_file);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, body_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "libqkd-etsi014/1");
	if (post_body) {
		curl_easy_setopt(h, CURLOPT_POST, 1L);
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(post_body));
	} else {
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	}

	crc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	/* The handle keeps pointers to these; drop them before it goes back to the pool. */
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
	handle_put(c, h);
	curl_slist_free_all(hdrs);

	if (crc != CURLE_OK) {
		if (b->too_large)
			rc = etsi014_fail(err, ETSI014_ERR_MALFORMED, "response body too large");
		else
			rc = map_curl_error(crc, errbuf, err);
		if (err)
			err->http_status = status;
		return rc;
	}
	if (err)
		err->http_status = status;
	if (status == 200)
		return ETSI014_OK;
	switch (status) {
	case 400: rc = ETSI014_ERR_HTTP_400; break;
	case 401: rc = ETSI014_ERR_HTTP_401; break;
	case 503: rc = ETSI014_ERR_HTTP_503; break;
	default: rc = ETSI014_ERR_HTTP_OTHER; break;
	}
	if (err) {
		err->code = rc;
		etsi014_parse_error_body(b->data, b->len, err);
		if (!err->message[0])
			snprintf(err->message, sizeof(err->message), "HTTP %ld", status);
	}
	return rc;
}

/* base/api/v1/keys/<escaped id>/<op><query> */
static char *make_url(struct etsi014_client *c, const char *sae_id, const char *op,
		      const char *query)
{
	char *esc, *url;
	size_t need;

	esc = curl_easy_escape(NULL, sae_id, 0);
	if (!esc)
		return NULL;
	need = strlen(c->base_url) + strlen(esc) + strlen(op) + (query ? strlen(query) : 0) + 32;
	url = malloc(need);
	if (url)
		snprintf(url, need, "%s/api/v1/keys/%s/%s%s", c->base_url, esc, op,
			 query ? query : "");
	curl_free(esc);
	return url;
}

static enum etsi014_error_code check_sae(const char *sae_id, struct etsi014_error *err)
{
	if (!sae_id || !etsi014_sae_id_valid(sae_id, strlen(sae_id)))
		return etsi014_fail(err, ETSI014_ERR_ARG, "invalid SAE ID");
	return ETSI014_OK;
}

enum etsi014_error_code etsi014_get_status(struct etsi014_client *c, const char *slave_sae_id,
					   struct etsi014_status *out, struct etsi014_error *err)
{
	struct body b = {0};
	enum etsi014_error_code rc;
	char *url;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!c || !out)
		return etsi014_fail(err, ETSI014_ERR_ARG, "NULL argument");
	if ((rc = check_sae(slave_sae_id, err)))
		return rc;
	url = make_url(c, slave_sae_id, "status", NULL);
	if (!url)
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
	rc = perform(c, url, NULL, &b, err);
	free(url);
	if (rc == ETSI014_OK)
		rc = etsi014_parse_status(b.data, b.len, out, err);
	body_release(&b);
	return rc;
}

enum etsi014_error_code etsi014_get_enc_keys_ex(struct etsi014_client *c,
						const char *slave_sae_id,
						const struct etsi014_enc_request *req,
						struct etsi014_key_container **out,
						struct etsi014_error *err)
{
	struct body b = {0};
	enum etsi014_error_code rc;
	char *url = NULL, *post = NULL;
	unsigned number;
	size_t i;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!c || !req || !out)
		return etsi014_fail(err, ETSI014_ERR_ARG, "NULL argument");
	*out = NULL;
	if ((rc = check_sae(slave_sae_id, err)))
		return rc;
	number = req->number ? req->number : 1;
	if (number > ETSI014_KEYS_MAX)
		return etsi014_fail(err, ETSI014_ERR_ARG, "number %u above %d", number,
				    ETSI014_KEYS_MAX);
	if (req->size_bits && (req->size_bits % 8 || req->size_bits > ETSI014_KEY_BITS_MAX))
		return etsi014_fail(err, ETSI014_ERR_ARG, "size %u is not a multiple of 8 up to %d",
				    req->size_bits, ETSI014_KEY_BITS_MAX);

	if (req->method == ETSI014_GET) {
		char query[64];
		int n = 0;

		if (req->n_additional_slave_sae_ids)
			return etsi014_fail(err, ETSI014_ERR_ARG,
					    "additional_slave_SAE_IDs need the POST form");
		query[0] = '\0';
		if (req->number)
			n = snprintf(query, sizeof(query), "?number=%u", req->number);
		if (req->size_bits)
			snprintf(query + n, sizeof(query) - n, "%csize=%u", n ? '&' : '?',
				 req->size_bits);
		url = make_url(c, slave_sae_id, "enc_keys", query);
	} else {
		struct json_object *o = json_object_new_object(), *arr;
		if (!o)
			return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		if (req->number)
			json_object_object_add(o, "number", json_object_new_int64(req->number));
		if (req->size_bits)
			json_object_object_add(o, "size", json_object_new_int64(req->size_bits));
		if (req->n_additional_slave_sae_ids) {
			arr = json_object_new_array();
			json_object_object_add(o, "additional_slave_SAE_IDs", arr);
			for (i = 0; i < req->n_additional_slave_sae_ids; i++) {
				const char *s = req->additional_slave_sae_ids[i];
				if (check_sae(s, err)) {
					json_object_put(o);
					return ETSI014_ERR_ARG;
				}
				json_object_array_add(arr, json_object_new_string(s));
			}
		}
		post = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		if (post)
			url = make_url(c, slave_sae_id, "enc_keys", NULL);
	}
	if (!url) {
		free(post);
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
	}
	rc = perform(c, url, post ? post : NULL, &b, err);
	free(url);
	free(post);
	if (rc == ETSI014_OK)
		rc = etsi014_parse_key_container(b.data, b.len, number, req->size_bits, NULL, out,
						 err);
	body_release(&b);
	return rc;
}

enum etsi014_error_code etsi014_get_enc_keys(struct etsi014_client *c, const char *slave_sae_id,
					     unsigned number, unsigned size_bits,
					     struct etsi014_key_container **out,
					     struct etsi014_error *err)
{
	struct etsi014_enc_request req = {
		.number = number,
		.size_bits = size_bits,
		.method = ETSI014_POST,
	};

	return etsi014_get_enc_keys_ex(c, slave_sae_id, &req, out, err);
}

enum etsi014_error_code etsi014_get_dec_keys_ex(struct etsi014_client *c,
						const char *master_sae_id,
						const char *const *key_ids, size_t n,
						unsigned key_size_bits, enum etsi014_method method,
						struct etsi014_key_container **out,
						struct etsi014_error *err)
{
	struct body b = {0};
	enum etsi014_error_code rc;
	char *url = NULL, *post = NULL;
	size_t i, j;

	if (err)
		memset(err, 0, sizeof(*err));
	if (!c || !out || !key_ids)
		return etsi014_fail(err, ETSI014_ERR_ARG, "NULL argument");
	*out = NULL;
	if ((rc = check_sae(master_sae_id, err)))
		return rc;
	if (n == 0 || n > ETSI014_KEYS_MAX)
		return etsi014_fail(err, ETSI014_ERR_ARG, "need 1 to %d key_IDs", ETSI014_KEYS_MAX);
	if (key_size_bits % 8 || key_size_bits > ETSI014_KEY_BITS_MAX)
		return etsi014_fail(err, ETSI014_ERR_ARG, "bad key size %u", key_size_bits);
	for (i = 0; i < n; i++) {
		if (!etsi014_key_id_valid(key_ids[i]))
			return etsi014_fail(err, ETSI014_ERR_ARG, "key_IDs[%zu] is not a UUID", i);
		for (j = 0; j < i; j++)
			if (strcasecmp(key_ids[i], key_ids[j]) == 0)
				return etsi014_fail(err, ETSI014_ERR_ARG, "duplicate key_ID %s",
						    key_ids[i]);
	}

	if (method == ETSI014_GET) {
		/* GET carries key_ID parameters; KMEs that follow the letter of the spec take only
		 * one, ours takes several. UUIDs need no escaping. */
		size_t qlen = n * (ETSI014_KEY_ID_LEN + 8) + 1, o = 0;
		char *query = malloc(qlen);

		if (!query)
			return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		for (i = 0; i < n; i++)
			o += snprintf(query + o, qlen - o, "%ckey_ID=%s", i ? '&' : '?', key_ids[i]);
		url = make_url(c, master_sae_id, "dec_keys", query);
		free(query);
	} else {
		struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

		if (!o || !arr) {
			json_object_put(o);
			json_object_put(arr);
			return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
		}
		json_object_object_add(o, "key_IDs", arr);
		for (i = 0; i < n; i++) {
			struct json_object *k = json_object_new_object();
			json_object_object_add(k, "key_ID", json_object_new_string(key_ids[i]));
			json_object_array_add(arr, k);
		}
		post = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
		if (post)
			url = make_url(c, master_sae_id, "dec_keys", NULL);
	}
	if (!url) {
		free(post);
		return etsi014_fail(err, ETSI014_ERR_NOMEM, "out of memory");
	}
	rc = perform(c, url, post, &b, err);
	free(url);
	free(post);
	if (rc == ETSI014_OK)
		rc = etsi014_parse_key_container(b.data, b.len, n, key_size_bits, key_ids, out, err);
	body_release(&b);
	return rc;
}

enum etsi014_error_code etsi014_get_dec_keys(struct etsi014_client *c, const char *master_sae_id,
					     const char *const *key_ids, size_t n,
					     struct etsi014_key_container **out,
					     struct etsi014_error *err)
{
	return etsi014_get_dec_keys_ex(c, master_sae_id, key_ids, n, 0, ETSI014_POST, out, err);
}
