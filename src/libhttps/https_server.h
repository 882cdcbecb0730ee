/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * https_server.h - the suite's HTTPS/1.1 server with mutual TLS (libmicrohttpd + GnuTLS), shared
 * by qkd-kmsd's ETSI 014 API and qkd-qscd's controller API. A client is identified by the CN of
 * its certificate, which must chain to the configured CA with the TLS WWW client purpose. A
 * request body is collected up to a bound in memory that is wiped when the request ends (it may
 * hold key_IDs or keys), then the handler sees the whole request once.
 */
#ifndef HTTPS_SERVER_H
#define HTTPS_SERVER_H

#include <stddef.h>

#include <json-c/json.h>
#include <microhttpd.h>

struct https_request {
	struct MHD_Connection *conn;
	const char *method, *url;
	const char *peer;  /* CN of the verified client certificate, NULL when not identified */
	const char *why;   /* when peer is NULL: why, in operator words */
	const char *body;  /* NUL-terminated, NULL when empty */
	size_t len;
	int too_large;     /* the body was above body_max and was discarded */
};

/* Called once per complete request; must queue a response (or return MHD_NO). */
typedef enum MHD_Result (*https_handler_t)(void *ctx, const struct https_request *rq);

struct https_server_config {
	const char *listen;          /* "host:port" or "[v6]:port" */
	const char *cert, *key, *ca; /* PEM files: server certificate and key, CA for clients */
	unsigned max_connections;
	size_t body_max;
	/* which certificate CNs are usable identities (e.g. etsi014_sae_id_valid) */
	int (*cn_valid)(const char *cn, size_t len);
};

struct https_server;

/* Start serving (one thread per connection). NULL on error, logged. */
struct https_server *https_server_start(const struct https_server_config *cfg,
					https_handler_t handler, void *ctx);
void https_server_stop(struct https_server *s);

/* Queue r with Content-Type application/json and release it. */
enum MHD_Result https_queue(struct MHD_Connection *c, unsigned status, struct MHD_Response *r);
/* Queue o (plain JSON text) and release o. */
enum MHD_Result https_reply_json(struct MHD_Connection *c, unsigned status, struct json_object *o);
/* An error as ETSI 014 shapes it, {"message": message, "details": [{"reason": ...}]}, logged at
 * INFO as "OP from WHO: STATUS MESSAGE: REASON". */
enum MHD_Result https_reply_error(struct MHD_Connection *c, const char *who, const char *op,
				  unsigned status, const char *message, const char *fmt, ...)
	__attribute__((format(printf, 6, 7)));

/* A request body that must be one JSON object: strict JSON, valid UTF-8, no NUL byte, nothing
 * but white space after it. NULL with *why set otherwise. */
struct json_object *https_json_object(const char *body, size_t len, const char **why);

#endif
