/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_route.c - where a relay goes next, and the client of the path controller.
 *
 * A relay to node DEST takes, in this order: the controller's path to DEST if its first link is
 * up; the direct link to DEST if it is up; the static `route = DEST via NEXT`; the controller's
 * path even with its first link down (the relay then fails with "link down", and the routes are
 * asked again).
 *
 * The controller (HTTPS/1.1, mutual TLS with this node's KME certificate; the controller's
 * certificate must chain to ca and carry controller_id as CN), JSON bodies:
 *   every controller_interval and when a link goes up or down:
 *     POST /api/v1/links {"node":N,"links":[{"link","peer","up","stored_bits","rate_bps",
 *                          "consumed_bits","relay_key_bits","relay_link_bits"}]}
 *       -> 200 {"routes_version":K}
 *   when K differs from the routes held, or after a relay failed:
 *     GET /api/v1/routes?node=N -> 200 {"version":K,"routes":[{"dst":D,"path":[N,...,D]}]}
 * Unreachable: logged once (and once when it is back); the last routes stay in force.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "etsi014_codec.h"

#define BODY_MAX (256 * 1024)
#define TICK_MS 100

/* --- lookup ------------------------------------------------------------------------------------ */

static int link_up(struct kmsd_node *n, const char *peer)
{
	struct kmsd_kme *k = kmsd_node_link_to(n, peer);

	return k && atomic_load(&k->link.up);
}

static void two_hop(struct kmsd_route *rt, const char *me, const char *next, const char *dst)
{
	memset(rt, 0, sizeof(*rt));
	snprintf(rt->dst, sizeof(rt->dst), "%s", dst);
	snprintf(rt->path[0], sizeof(rt->path[0]), "%s", me);
	snprintf(rt->path[1], sizeof(rt->path[1]), "%s", next);
	rt->n = 2;
}

int kmsd_route_lookup(struct kmsd_node *n, const char *dst, struct kmsd_route *rt)
{
	struct kmsd_routes *r = &n->routes;
	const char *me = n->cfg->kme_id;
	char next[ETSI014_ID_MAX + 1];
	int have_ctl = 0;
	unsigned i;

	if (strcmp(dst, me) == 0)
		return -1;
	pthread_mutex_lock(&r->lock);
	for (i = 0; i < r->n_ctl; i++) {
		if (strcmp(r->ctl[i].dst, dst) == 0) {
			*rt = r->ctl[i];
			have_ctl = 1;
			break;
		}
	}
	pthread_mutex_unlock(&r->lock);
	if (have_ctl && link_up(n, rt->path[1]))
		return 0;
	if (link_up(n, dst)) {
		two_hop(rt, me, dst, dst);
		return 0;
	}
	if (kmsd_config_static_next(n->cfg, dst, next) && kmsd_node_link_to(n, next)) {
		two_hop(rt, me, next, dst);
		return 0;
	}
	if (have_ctl)
		return 0;
	if (kmsd_node_link_to(n, dst)) { /* a direct link that is down: fails with that reason */
		two_hop(rt, me, dst, dst);
		return 0;
	}
	return -1;
}

void kmsd_routes_poke(struct kmsd_node *n)
{
	struct kmsd_routes *r = &n->routes;

	atomic_store(&r->refresh, 1);
	if (r->started && write(r->wake[1], "p", 1) < 0 && errno != EAGAIN)
		ipseq_log(IPSEQ_LOG_DEBUG, "routes: wake pipe: %s", strerror(errno));
}

/* --- the controller client --------------------------------------------------------------------- */

struct body {
	char *p;
	size_t len;
};

static size_t on_data(char *d, size_t size, size_t nmemb, void *arg)
{
	struct body *b = arg;
	size_t n = size * nmemb;
	char *p;

	if (b->len + n > BODY_MAX)
		return 0;
	p = realloc(b->p, b->len + n + 1);
	if (!p)
		return 0;
	memcpy(p + b->len, d, n);
	b->len += n;
	p[b->len] = '\0';
	b->p = p;
	return n;
}

/* The controller's certificate CN (curl verified the chain and the host name). */
static int cn_is(CURL *c, const char *want)
{
	struct curl_certinfo *ci = NULL;
	struct curl_slist *s;
	size_t wl = strlen(want);

	if (curl_easy_getinfo(c, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci || ci->num_of_certs < 1)
		return 0;
	for (s = ci->certinfo[0]; s; s = s->next) {
		const char *v, *p;

		if (strncmp(s->data, "Subject:", 8) != 0)
			continue;
		v = s->data + 8;
		/* OpenSSL prints "O = x, CN = y", GnuTLS "O=x,CN=y" */
		for (p = strstr(v, "CN"); p; p = strstr(p + 2, "CN")) {
			const char *q = p + 2;
			while (*q == ' ')
				q++;
			if (*q++ != '=')
				continue;
			while (*q == ' ')
				q++;
			if (strncmp(q, want, wl) == 0 && (q[wl] == '\0' || q[wl] == ',' || q[wl] == '/'))
				return 1;
		}
	}
	return 0;
}

/* One request; 0 and the body on 200, else -1 with a reason. */
static int call(struct kmsd_node *n, const char *path, const char *post, struct body *out,
		char *why, size_t why_len)
{
	struct kmsd_config *cfg = n->cfg;
	char url[512];
	struct curl_slist *hdr = NULL;
	long code = 0;
	CURLcode rc;
	CURL *c = curl_easy_init();
	int ok;

	why[0] = '\0';
	out->p = NULL;
	out->len = 0;
	if (!c) {
		snprintf(why, why_len, "curl_easy_init failed");
		return -1;
	}
	snprintf(url, sizeof(url), "%s%s", cfg->controller, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(c, CURLOPT_SSLCERT, cfg->cert);
	curl_easy_setopt(c, CURLOPT_SSLKEY, cfg->key);
	curl_easy_setopt(c, CURLOPT_CAINFO, cfg->ca);
	curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(c, CURLOPT_SSLVERSION, CURL_SSLVERSION_TLSv1_2);
	curl_easy_setopt(c, CURLOPT_CERTINFO, 1L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
	if (post) {
		hdr = curl_slist_append(hdr, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdr);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, post);
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
	if (rc != CURLE_OK)
		snprintf(why, why_len, "%s", curl_easy_strerror(rc));
	else if (!cn_is(c, cfg->controller_id))
		snprintf(why, why_len, "certificate CN is not controller_id '%s'",
			 cfg->controller_id);
	else if (code != 200)
		snprintf(why, why_len, "HTTP %ld", code);
	ok = why[0] == '\0';
	curl_slist_free_all(hdr);
	curl_easy_cleanup(c);
	if (ok)
		return 0;
	free(out->p);
	out->p = NULL;
	return -1;
}

static char *links_report(struct kmsd_node *n)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();
	char *text;
	unsigned i;

	json_object_object_add(o, "node", json_object_new_string(n->cfg->kme_id));
	for (i = 0; i < n->n_links; i++)
		json_object_array_add(arr, kmsd_node_link_json(&n->links[i]));
	json_object_object_add(o, "links", arr);
	text = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return text;
}

static struct json_object *parse(const struct body *b)
{
	struct json_object *o;

	if (!b->p)
		return NULL;
	o = json_tokener_parse(b->p);
	if (o && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return NULL;
	}
	return o;
}

/* {"version":K,"routes":[{"dst":D,"path":[...]}]}: keep the entries that start here and end at
 * their dst; a bad entry is skipped with a warning. */
static int take_routes(struct kmsd_node *n, const struct body *b)
{
	struct kmsd_routes *r = &n->routes;
	struct json_object *o = parse(b), *v, *arr;
	struct kmsd_route *rts = NULL;
	unsigned count = 0;
	int64_t version;
	size_t i, j, len;

	if (!o || !json_object_object_get_ex(o, "version", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    !json_object_object_get_ex(o, "routes", &arr) ||
	    !json_object_is_type(arr, json_type_array)) {
		json_object_put(o);
		ipseq_log(IPSEQ_LOG_WARN, "path controller: routes answer is not "
			  "{\"version\":K,\"routes\":[...]}");
		return -1;
	}
	version = json_object_get_int64(v);
	len = json_object_array_length(arr);
	rts = calloc(len ? len : 1, sizeof(*rts));
	if (!rts) {
		json_object_put(o);
		return -1;
	}
	for (i = 0; i < len; i++) {
		struct json_object *e = json_object_array_get_idx(arr, i), *d, *p;
		struct kmsd_route *rt = &rts[count];
		const char *dst;
		int ok = 1;

		if (!json_object_object_get_ex(e, "dst", &d) ||
		    !json_object_is_type(d, json_type_string) ||
		    !json_object_object_get_ex(e, "path", &p) ||
		    !json_object_is_type(p, json_type_array) || json_object_array_length(p) < 2 ||
		    json_object_array_length(p) > KMSD_PATH_MAX) {
			ipseq_log(IPSEQ_LOG_WARN, "path controller: route %zu malformed, skipped", i);
			continue;
		}
		dst = json_object_get_string(d);
		if (!etsi014_sae_id_valid(dst, strlen(dst)))
			ok = 0;
		rt->n = (unsigned)json_object_array_length(p);
		for (j = 0; ok && j < rt->n; j++) {
			struct json_object *h = json_object_array_get_idx(p, j);
			const char *name = json_object_get_string(h);
			if (!json_object_is_type(h, json_type_string) ||
			    !etsi014_sae_id_valid(name, strlen(name)))
				ok = 0;
			else
				snprintf(rt->path[j], sizeof(rt->path[j]), "%s", name);
		}
		if (!ok || strcmp(rt->path[0], n->cfg->kme_id) != 0 ||
		    strcmp(rt->path[rt->n - 1], dst) != 0 || !kmsd_node_link_to(n, rt->path[1])) {
			ipseq_log(IPSEQ_LOG_WARN, "path controller: route %zu (to %.64s) does not start "
				  "here on one of our links or end at its dst, skipped", i,
				  ok ? dst : "?");
			continue;
		}
		snprintf(rt->dst, sizeof(rt->dst), "%s", dst);
		count++;
	}
	json_object_put(o);
	pthread_mutex_lock(&r->lock);
	free(r->ctl);
	r->ctl = rts;
	r->n_ctl = count;
	r->version = version;
	pthread_mutex_unlock(&r->lock);
	for (i = 0; i < count; i++) {
		char path[KMSD_PATH_MAX * (ETSI014_ID_MAX + 1)] = "";
		size_t o2 = 0;
		for (j = 0; j < rts[i].n; j++)
			o2 += (size_t)snprintf(path + o2, sizeof(path) - o2, "%s%s", j ? ">" : "",
					       rts[i].path[j]);
		ipseq_log(IPSEQ_LOG_INFO, "route to %s: %s (controller, version %lld)", rts[i].dst,
			  path, (long long)version);
	}
	return 0;
}

static void reachable(struct kmsd_node *n, int ok, const char *why)
{
	struct kmsd_routes *r = &n->routes;

	if (ok && r->reachable != 1)
		ipseq_log(IPSEQ_LOG_INFO, "path controller %s reachable", n->cfg->controller);
	else if (!ok && r->reachable != 0)
		ipseq_log(IPSEQ_LOG_WARN, "path controller %s unreachable (%s): keeping the last "
			  "%u route(s) (version %lld) and the static ones", n->cfg->controller, why,
			  r->n_ctl, (long long)r->version);
	r->reachable = ok;
}

/* Report the links; fetch routes when their version moved or a relay asked for it. */
static void exchange(struct kmsd_node *n)
{
	struct kmsd_routes *r = &n->routes;
	char why[256] = "", path[160];
	char *report = links_report(n);
	struct body b;
	struct json_object *o, *v;
	int64_t version = -1;

	if (!report)
		return;
	if (call(n, "/api/v1/links", report, &b, why, sizeof(why)) < 0) {
		free(report);
		reachable(n, 0, why);
		return;
	}
	free(report);
	o = parse(&b);
	if (o && json_object_object_get_ex(o, "routes_version", &v) &&
	    json_object_is_type(v, json_type_int))
		version = json_object_get_int64(v);
	json_object_put(o);
	free(b.p);
	if (version < 0) {
		reachable(n, 0, "links answer has no routes_version");
		return;
	}
	reachable(n, 1, NULL);
	if (version == r->version && !atomic_exchange(&r->refresh, 0))
		return;
	snprintf(path, sizeof(path), "/api/v1/routes?node=%s", n->cfg->kme_id);
	if (call(n, path, NULL, &b, why, sizeof(why)) < 0) {
		reachable(n, 0, why);
		return;
	}
	take_routes(n, &b);
	free(b.p);
}

static void *routes_main(void *arg)
{
	struct kmsd_node *n = arg;
	struct kmsd_routes *r = &n->routes;
	uint64_t next = 0, interval = (uint64_t)(n->cfg->controller_interval * 1000);
	uint32_t last_up = 0;
	char buf[64];

	while (!atomic_load(&r->stop)) {
		struct pollfd p = {.fd = r->wake[0], .events = POLLIN};
		uint32_t up = 0;
		unsigned i;

		for (i = 0; i < n->n_links && i < 32; i++)
			if (atomic_load(&n->links[i].link.up))
				up |= 1u << i;
		if (up != last_up || atomic_load(&r->refresh) || ipseq_now_ms() >= next) {
			last_up = up;
			exchange(n);
			next = ipseq_now_ms() + (interval ? interval : 1000);
		}
		if (poll(&p, 1, TICK_MS) > 0)
			while (read(r->wake[0], buf, sizeof(buf)) > 0)
				;
	}
	return NULL;
}

int kmsd_routes_start(struct kmsd_node *n)
{
	struct kmsd_routes *r = &n->routes;
	unsigned i;
	char next[ETSI014_ID_MAX + 1];

	for (i = 0; i < n->cfg->n_routes; i++) {
		char dst[ETSI014_ID_MAX + 1];
		if (sscanf(n->cfg->routes[i], "%64s via %64s", dst, next) == 2)
			ipseq_log(IPSEQ_LOG_INFO, "static route to %s via %s%s", dst, next,
				  kmsd_node_link_to(n, next) ? "" : " (no link to it: unused)");
	}
	if (!n->cfg->controller[0])
		return 0;
	if (pipe2(r->wake, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	if (pthread_create(&r->thread, NULL, routes_main, n) != 0)
		return -1;
	r->started = 1;
	ipseq_log(IPSEQ_LOG_INFO, "path controller %s (CN %s), reporting every %.1f s",
		  n->cfg->controller, n->cfg->controller_id, n->cfg->controller_interval);
	return 0;
}

void kmsd_routes_stop(struct kmsd_node *n)
{
	struct kmsd_routes *r = &n->routes;

	if (r->started) {
		atomic_store(&r->stop, 1);
		if (write(r->wake[1], "s", 1) < 0)
			ipseq_log(IPSEQ_LOG_DEBUG, "routes: wake pipe: %s", strerror(errno));
		pthread_join(r->thread, NULL);
		r->started = 0;
	}
	if (r->wake[0] >= 0)
		close(r->wake[0]);
	if (r->wake[1] >= 0)
		close(r->wake[1]);
	r->wake[0] = r->wake[1] = -1;
	free(r->ctl);
	r->ctl = NULL;
	r->n_ctl = 0;
}
