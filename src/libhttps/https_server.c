/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * https_server.c - HTTPS/1.1 with mutual TLS for the suite's daemons (see https_server.h).
 * libmicrohttpd runs one thread per connection; the client certificate is checked once per
 * connection and its CN kept as the caller's identity.
 */
#include "ipseq_config.h"
#include "https_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ipseq_addr.h"
#include "ipseq_log.h"
#include "ipseq_util.h"

#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"
#define CN_MAX 255

struct https_server {
	struct MHD_Daemon *mhd;
	https_handler_t handler;
	void *ctx;
	size_t body_max;
	int (*cn_valid)(const char *cn, size_t len);
	char *pem_cert, *pem_key, *pem_ca; /* kept for MHD's lifetime */
};

/* Per TLS connection: the verified identity, checked once. */
struct conn_ctx {
	int checked;
	int ok;
	char cn[CN_MAX + 1];
	char why[160];
};

/* Per request: the uploaded body. */
struct req_ctx {
	char *body;
	size_t len, cap;
	int too_large;
};

/* --- responses --------------------------------------------------------------------------------- */

enum MHD_Result https_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r)
{
	enum MHD_Result ret;

	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

enum MHD_Result https_reply_json(struct MHD_Connection *c, unsigned status, struct json_object *o)
{
	const char *s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
							      JSON_C_TO_STRING_NOSLASHESCAPE);
	enum MHD_Result ret = https_queue(c, status,
					  MHD_create_response_from_buffer(strlen(s), (void *)s,
									  MHD_RESPMEM_MUST_COPY));
	json_object_put(o);
	return ret;
}

enum MHD_Result https_reply_error(struct MHD_Connection *c, const char *who, const char *op,
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
	return https_reply_json(c, status, o);
}

/* --- request bodies ---------------------------------------------------------------------------- */

struct json_object *https_json_object(const char *body, size_t len, const char **why)
{
	struct json_tokener *tok;
	struct json_object *o;
	size_t end;

	if (!body || len == 0) {
		*why = "empty body (a JSON object is required)";
		return NULL;
	}
	if (memchr(body, '\0', len)) {
		*why = "NUL byte in body";
		return NULL;
	}
	if (len > 0x7fffffff) {
		*why = "body too large";
		return NULL;
	}
	tok = json_tokener_new_ex(16);
	if (!tok) {
		*why = "out of memory";
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, body, (int)len);
	if (json_tokener_get_error(tok) != json_tokener_success || !o) {
		json_object_put(o);
		json_tokener_free(tok);
		*why = "body is not valid JSON";
		return NULL;
	}
	end = json_tokener_get_parse_end(tok);
	json_tokener_free(tok);
	for (; end < len; end++) {
		char ch = body[end];
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

/* --- identity ---------------------------------------------------------------------------------- */

static void check_identity(struct https_server *srv, struct MHD_Connection *c,
			   struct conn_ctx *cc)
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
	size_t cnlen = sizeof(cc->cn);
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
		rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cc->cn,
						   &cnlen);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0 || !srv->cn_valid(cc->cn, strlen(cc->cn))) {
		cc->cn[0] = '\0';
		snprintf(cc->why, sizeof(cc->why), "client certificate has no usable CN");
		return;
	}
	cc->ok = 1;
}

/* --- libmicrohttpd callbacks ------------------------------------------------------------------- */

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload_data,
			      size_t *upload_data_size, void **req_cls)
{
	struct https_server *srv = cls;
	struct req_ctx *rq = *req_cls;
	const union MHD_ConnectionInfo *ci;
	struct https_request r = {.conn = c, .method = method, .url = url};
	struct conn_ctx *cc;

	if (!rq) {
		rq = calloc(1, sizeof(*rq));
		if (!rq)
			return MHD_NO;
		*req_cls = rq;
		return MHD_YES;
	}
	if (*upload_data_size) {
		size_t n = *upload_data_size;

		if (!rq->too_large && rq->len + n > srv->body_max) {
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
		check_identity(srv, c, cc);
	r.peer = cc->ok ? cc->cn : NULL;
	r.why = cc->why[0] ? cc->why : "client certificate required";
	r.body = rq->body;
	r.len = rq->len;
	r.too_large = rq->too_large;
	return srv->handler(srv->ctx, &r);
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

/* --- start and stop ---------------------------------------------------------------------------- */

struct https_server *https_server_start(const struct https_server_config *cfg,
					https_handler_t handler, void *ctx)
{
	struct https_server *srv;
	struct sockaddr_storage ss;
	socklen_t sl;
	unsigned flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD |
			 MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL | MHD_USE_ERROR_LOG;

	if (ipseq_resolve(cfg->listen, 1, &ss, &sl) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "listen '%s' is not host:port", cfg->listen);
		return NULL;
	}
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	srv = calloc(1, sizeof(*srv));
	if (!srv)
		return NULL;
	srv->handler = handler;
	srv->ctx = ctx;
	srv->body_max = cfg->body_max;
	srv->cn_valid = cfg->cn_valid;
	srv->pem_cert = read_pem(cfg->cert);
	srv->pem_key = read_pem(cfg->key);
	srv->pem_ca = read_pem(cfg->ca);
	if (srv->pem_cert && srv->pem_key && srv->pem_ca)
		srv->mhd = MHD_start_daemon(
			flags, 0, NULL, NULL, handle, srv,
			MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
			MHD_OPTION_HTTPS_MEM_CERT, srv->pem_cert,
			MHD_OPTION_HTTPS_MEM_KEY, srv->pem_key,
			MHD_OPTION_HTTPS_MEM_TRUST, srv->pem_ca,
			MHD_OPTION_HTTPS_PRIORITIES, TLS_PRIORITY,
			MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections,
			MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
			MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
			MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL,
			MHD_OPTION_NOTIFY_CONNECTION, conn_notify, NULL,
			MHD_OPTION_END);
	if (!srv->mhd) {
		if (srv->pem_cert && srv->pem_key && srv->pem_ca)
			ipseq_log(IPSEQ_LOG_ERR,
				  "cannot start HTTPS on %s (address in use or bad certificate)",
				  cfg->listen);
		https_server_stop(srv);
		return NULL;
	}
	return srv;
}

void https_server_stop(struct https_server *s)
{
	if (!s)
		return;
	if (s->mhd)
		MHD_stop_daemon(s->mhd);
	if (s->pem_key)
		ipseq_wipe(s->pem_key, strlen(s->pem_key));
	free(s->pem_cert);
	free(s->pem_key);
	free(s->pem_ca);
	free(s);
}
