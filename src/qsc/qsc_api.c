/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc_api.c - qkd-qscd's HTTPS API (libhttps: mutual TLS, the caller is its certificate's CN):
 *
 *   POST /api/v1/links           a node reports its links   -> {"routes_version": K}
 *   GET  /api/v1/routes?node=N   N's relay path per destination -> {"version": K, "routes": [...]}
 *   GET  /api/v1/status          topology, link state, routes (operators, qkd-qscctl status)
 *
 * A node may report only its own links (403, logged); errors are {"message", "details"}.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "https_server.h"
#include "ipseq_log.h"
#include "ipseq_util.h"

#define BODY_MAX (256 * 1024)

static struct json_object *path_json(const struct qsc_topo *t, const struct qsc_path *p)
{
	struct json_object *a = json_object_new_array();
	unsigned i;

	for (i = 0; i < p->n; i++)
		json_object_array_add(a, json_object_new_string(t->nodes[p->node[i]].name));
	return a;
}

/* The routes of one source node; caller holds the lock. */
static struct json_object *routes_json(const struct qsc *q, int src)
{
	struct json_object *a = json_object_new_array();
	size_t dst;

	for (dst = 0; dst < q->topo.n_nodes; dst++) {
		const struct qsc_path *p = &q->routes->path[src][dst];
		struct json_object *r;

		if ((int)dst == src || p->n == 0)
			continue;
		r = json_object_new_object();
		json_object_object_add(r, "dst", json_object_new_string(q->topo.nodes[dst].name));
		json_object_object_add(r, "path", path_json(&q->topo, p));
		json_object_array_add(a, r);
	}
	return a;
}

static struct json_object *age_json(int reported, uint64_t at_ms, uint64_t now_ms)
{
	return reported ? json_object_new_int64((int64_t)(now_ms - at_ms)) : NULL;
}

static struct json_object *status_json(struct qsc *q, uint64_t now_ms)
{
	struct json_object *o = json_object_new_object(), *nodes = json_object_new_array();
	struct json_object *links = json_object_new_array(), *routes = json_object_new_array();
	const struct qsc_topo *t = &q->topo;
	size_t i, j;

	json_object_object_add(o, "controller", json_object_new_string(q->name));
	json_object_object_add(o, "routes_version", json_object_new_int64((int64_t)q->routes->version));
	json_object_object_add(o, "report_timeout_ms", json_object_new_int64((int64_t)q->timeout_ms));
	json_object_object_add(o, "uptime_ms", json_object_new_int64((int64_t)(now_ms - q->started_ms)));
	for (i = 0; i < t->n_nodes; i++) {
		struct json_object *n = json_object_new_object();

		json_object_object_add(n, "name", json_object_new_string(t->nodes[i].name));
		json_object_object_add(n, "role", json_object_new_string(
			t->nodes[i].role == QSC_ACCESS ? "access" : "backbone"));
		json_object_object_add(n, "report_age_ms",
				       age_json(t->nodes[i].reported, t->nodes[i].at_ms, now_ms));
		json_object_array_add(nodes, n);
	}
	for (i = 0; i < t->n_links; i++) {
		const struct qsc_link *l = &t->links[i];
		struct json_object *k = json_object_new_object(), *ends = json_object_new_array();
		struct qsc_link_view v;

		qsc_link_view(t, i, now_ms, q->timeout_ms, &v);
		json_object_object_add(k, "link", json_object_new_string(l->name));
		json_object_object_add(k, "nodes", json_object_new_array_ext(2));
		for (j = 0; j < 2; j++)
			json_object_array_add(json_object_object_get(k, "nodes"),
					      json_object_new_string(t->nodes[l->end[j]].name));
		json_object_object_add(k, "up", json_object_new_boolean(v.up));
		if (!v.up)
			json_object_object_add(k, "down_reason", json_object_new_string(v.why));
		json_object_object_add(k, "stored_bits", json_object_new_int64((int64_t)v.stored_bits));
		for (j = 0; j < 2; j++) {
			const struct qsc_link_end *s = &l->state[j];
			struct json_object *e = json_object_new_object();

			json_object_object_add(e, "node", json_object_new_string(t->nodes[l->end[j]].name));
			json_object_object_add(e, "report_age_ms", age_json(s->reported, s->at_ms, now_ms));
			if (s->reported) {
				json_object_object_add(e, "up", json_object_new_boolean(s->up));
				json_object_object_add(e, "stored_bits",
						       json_object_new_int64((int64_t)s->stored_bits));
				json_object_object_add(e, "rate_bps", json_object_new_double(s->rate_bps));
				json_object_object_add(e, "consumed_bits",
						       json_object_new_int64((int64_t)s->consumed_bits));
			}
			json_object_array_add(ends, e);
		}
		json_object_object_add(k, "ends", ends);
		json_object_array_add(links, k);
	}
	for (i = 0; i < t->n_nodes; i++) {
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "node", json_object_new_string(t->nodes[i].name));
		json_object_object_add(r, "routes", routes_json(q, (int)i));
		json_object_array_add(routes, r);
	}
	json_object_object_add(o, "nodes", nodes);
	json_object_object_add(o, "links", links);
	json_object_object_add(o, "routes", routes);
	return o;
}

static enum MHD_Result post_links(struct qsc *q, const struct https_request *rq)
{
	struct qsc_report *r = malloc(sizeof(*r));
	enum qsc_apply_result res;
	char err[300];
	uint64_t version;

	if (!r)
		return MHD_NO;
	if (qsc_report_parse(rq->body, rq->len, r, err, sizeof(err)) < 0) {
		free(r);
		return https_reply_error(rq->conn, rq->peer, "links", 400, "bad request", "%s", err);
	}
	pthread_mutex_lock(&q->lock);
	res = qsc_links_apply(&q->topo, rq->peer, r, ipseq_now_ms(), err, sizeof(err));
	if (res == QSC_APPLY_OK)
		qsc_refresh(q, ipseq_now_ms());
	version = q->routes->version;
	pthread_mutex_unlock(&q->lock);
	free(r);
	if (res == QSC_APPLY_FORBIDDEN) {
		ipseq_log(IPSEQ_LOG_WARN, "refused a link report from %s: %s", rq->peer, err);
		return https_reply_error(rq->conn, rq->peer, "links", 403, "forbidden", "%s", err);
	}
	if (res != QSC_APPLY_OK)
		return https_reply_error(rq->conn, rq->peer, "links", 400, "bad request", "%s", err);
	{
		struct json_object *o = json_object_new_object();

		json_object_object_add(o, "routes_version", json_object_new_int64((int64_t)version));
		return https_reply_json(rq->conn, 200, o);
	}
}

static enum MHD_Result get_routes(struct qsc *q, const struct https_request *rq)
{
	const char *node = MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, "node");
	struct json_object *o;
	int n;

	if (!node || !qsc_name_valid(node, strlen(node)))
		return https_reply_error(rq->conn, rq->peer, "routes", 400, "bad request",
					 "the query needs node=NAME");
	pthread_mutex_lock(&q->lock);
	n = qsc_topo_node(&q->topo, node);
	if (n < 0) {
		pthread_mutex_unlock(&q->lock);
		return https_reply_error(rq->conn, rq->peer, "routes", 404, "not found",
					 "%s is not a node of the topology", node);
	}
	qsc_refresh(q, ipseq_now_ms());
	o = json_object_new_object();
	json_object_object_add(o, "version", json_object_new_int64((int64_t)q->routes->version));
	json_object_object_add(o, "routes", routes_json(q, n));
	pthread_mutex_unlock(&q->lock);
	return https_reply_json(rq->conn, 200, o);
}

static enum MHD_Result get_status(struct qsc *q, const struct https_request *rq)
{
	struct json_object *o;
	uint64_t now = ipseq_now_ms();

	pthread_mutex_lock(&q->lock);
	qsc_refresh(q, now);
	o = status_json(q, now);
	pthread_mutex_unlock(&q->lock);
	return https_reply_json(rq->conn, 200, o);
}

static enum MHD_Result handle(void *cls, const struct https_request *rq)
{
	struct qsc *q = cls;
	int is_get = strcmp(rq->method, "GET") == 0, is_post = strcmp(rq->method, "POST") == 0;

	if (!rq->peer)
		return https_reply_error(rq->conn, "unidentified client", rq->url, 401,
					 "unauthorized", "%s", rq->why);
	if (rq->too_large)
		return https_reply_error(rq->conn, rq->peer, rq->url, 400, "bad request",
					 "body above %d bytes", BODY_MAX);
	if (strcmp(rq->url, "/api/v1/links") == 0) {
		if (!is_post)
			return https_reply_error(rq->conn, rq->peer, "links", 405,
						 "method not allowed", "links is POST only");
		return post_links(q, rq);
	}
	if (strcmp(rq->url, "/api/v1/routes") == 0 || strcmp(rq->url, "/api/v1/status") == 0) {
		if (!is_get)
			return https_reply_error(rq->conn, rq->peer, rq->url, 405,
						 "method not allowed", "GET only");
		return rq->url[8] == 'r' ? get_routes(q, rq) : get_status(q, rq);
	}
	(void)is_post;
	return https_reply_error(rq->conn, rq->peer, rq->url, 404, "not found",
				 "no such endpoint");
}

int qsc_api_start(struct qsc *q, const struct qsc_api_config *cfg)
{
	struct https_server_config hc = {
		.listen = cfg->listen,
		.cert = cfg->cert,
		.key = cfg->key,
		.ca = cfg->ca,
		.max_connections = cfg->max_connections,
		.body_max = BODY_MAX,
		.cn_valid = qsc_name_valid,
	};

	q->httpd = https_server_start(&hc, handle, q);
	return q->httpd ? 0 : -1;
}

void qsc_api_stop(struct qsc *q)
{
	https_server_stop(q->httpd);
	q->httpd = NULL;
}
