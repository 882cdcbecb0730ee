/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qscctl.c - qkd-qscctl: the operator's view of qkd-qscd (GET /api/v1/status over mutual TLS,
 * libcurl), printed as wg(8) prints interfaces, or as the JSON the controller sent.
 */
#include "ipseq_config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <json-c/json.h>

#define BODY_MAX (4 * 1024 * 1024)

struct body {
	char *data;
	size_t len;
	int too_large;
};

static size_t on_data(char *p, size_t size, size_t n, void *cls)
{
	struct body *b = cls;
	size_t add = size * n;
	char *d;

	if (b->len + add > BODY_MAX) {
		b->too_large = 1;
		return 0;
	}
	d = realloc(b->data, b->len + add + 1);
	if (!d)
		return 0;
	memcpy(d + b->len, p, add);
	b->data = d;
	b->len += add;
	b->data[b->len] = '\0';
	return add;
}

/* GET url; the body (NUL-terminated) or NULL with the reason on stderr. */
static char *fetch(const char *url, const char *cert, const char *key, const char *ca, long *status)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct body b = {0};
	CURL *h = curl_easy_init();
	CURLcode rc;

	if (!h)
		return NULL;
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_SSLCERT, cert);
	curl_easy_setopt(h, CURLOPT_SSLKEY, key);
	curl_easy_setopt(h, CURLOPT_CAINFO, ca);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
	rc = curl_easy_perform(h);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
	curl_easy_cleanup(h);
	if (rc != CURLE_OK) {
		fprintf(stderr, "qkd-qscctl: %s: %s\n", url,
			b.too_large ? "answer above 4 MiB" : errbuf[0] ? errbuf : curl_easy_strerror(rc));
		free(b.data);
		return NULL;
	}
	return b.data ? b.data : strdup("");
}

static const char *str(struct json_object *o, const char *member)
{
	struct json_object *v;

	return json_object_object_get_ex(o, member, &v) && json_object_is_type(v, json_type_string)
		       ? json_object_get_string(v) : "?";
}

static int64_t num(struct json_object *o, const char *member, int64_t dflt)
{
	struct json_object *v;

	return json_object_object_get_ex(o, member, &v) &&
			       (json_object_is_type(v, json_type_int) ||
				json_object_is_type(v, json_type_double))
		       ? json_object_get_int64(v) : dflt;
}

static int boolean(struct json_object *o, const char *member)
{
	struct json_object *v;

	return json_object_object_get_ex(o, member, &v) && json_object_is_type(v, json_type_boolean) &&
	       json_object_get_boolean(v);
}

static struct json_object *arr(struct json_object *o, const char *member)
{
	struct json_object *v;

	return json_object_object_get_ex(o, member, &v) && json_object_is_type(v, json_type_array)
		       ? v : NULL;
}

static void print_age(int64_t ms)
{
	if (ms < 0)
		printf("never");
	else
		printf("%.1f s ago", (double)ms / 1000.0);
}

static void print_path(struct json_object *path)
{
	size_t i, n = path ? json_object_array_length(path) : 0;

	for (i = 0; i < n; i++)
		printf("%s%s", i ? " -> " : "",
		       json_object_get_string(json_object_array_get_idx(path, i)));
}

static int print_status(struct json_object *o)
{
	struct json_object *nodes = arr(o, "nodes"), *links = arr(o, "links"), *routes = arr(o, "routes");
	size_t i, j, k;

	if (!nodes || !links || !routes) {
		fprintf(stderr, "qkd-qscctl: the answer is not a controller status\n");
		return 1;
	}
	printf("controller: %s\n", str(o, "controller"));
	printf("  routes version: %lld\n", (long long)num(o, "routes_version", 0));
	printf("  report timeout: %lld ms\n\n", (long long)num(o, "report_timeout_ms", 0));
	for (i = 0; i < json_object_array_length(nodes); i++) {
		struct json_object *n = json_object_array_get_idx(nodes, i);

		printf("node: %s (%s)\n  last report: ", str(n, "name"), str(n, "role"));
		print_age(num(n, "report_age_ms", -1));
		printf("\n");
	}
	for (i = 0; i < json_object_array_length(links); i++) {
		struct json_object *l = json_object_array_get_idx(links, i), *ends = arr(l, "ends");
		int up = boolean(l, "up");

		printf("\nlink: %s\n  state: %s", str(l, "link"), up ? "up" : "down");
		if (!up)
			printf(" (%s)", str(l, "down_reason"));
		printf("\n  stored key: %lld bits\n", (long long)num(l, "stored_bits", 0));
		for (j = 0; ends && j < json_object_array_length(ends); j++) {
			struct json_object *e = json_object_array_get_idx(ends, j), *v;
			int64_t age = num(e, "report_age_ms", -1);

			printf("  end %s: ", str(e, "node"));
			if (age < 0) {
				printf("no report\n");
				continue;
			}
			json_object_object_get_ex(e, "rate_bps", &v);
			printf("%s, %lld bits stored, %.0f bit/s, %lld bits consumed, report ",
			       boolean(e, "up") ? "up" : "down", (long long)num(e, "stored_bits", 0),
			       v ? json_object_get_double(v) : 0.0, (long long)num(e, "consumed_bits", 0));
			print_age(age);
			printf("\n");
		}
	}
	printf("\n");
	for (i = 0; i < json_object_array_length(routes); i++) {
		struct json_object *r = json_object_array_get_idx(routes, i), *list = arr(r, "routes");

		for (k = 0; list && k < json_object_array_length(list); k++) {
			struct json_object *e = json_object_array_get_idx(list, k), *path = arr(e, "path");

			printf("route: %s -> %s: ", str(r, "node"), str(e, "dst"));
			print_path(path);
			printf(" (%zu hops)\n", path ? json_object_array_length(path) - 1 : 0);
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qkd-qscctl [--url URL] --cert PEM --key PEM --ca PEM status [--json]\n"
		"\n"
		"Show the Quantum Security Controller's topology, every link's state and key level,\n"
		"the last report's age and the current relay routes (qkd-qscctl(8)).\n"
		"\n"
		"  --url URL     the controller (default https://127.0.0.1:8450)\n"
		"  --cert PEM    client certificate (signed by the controller's CA) and --key its key\n"
		"  --ca PEM      CA of the controller's certificate\n"
		"  --json        print the controller's JSON answer as it came\n"
		"  --help\n");
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"ca", required_argument, NULL, 'a'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *base = "https://127.0.0.1:8450", *cert = NULL, *key = NULL, *ca = NULL;
	struct json_object *o;
	char url[1024], *text;
	long status = 0;
	int c, as_json = 0, rc;

	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': base = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 'a': ca = optarg; break;
		case 'j': as_json = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc - 1 || strcmp(argv[optind], "status") != 0) {
		fprintf(stderr, "qkd-qscctl: the only command is 'status'\n");
		usage(stderr);
		return 2;
	}
	if (!cert || !key || !ca) {
		fprintf(stderr, "qkd-qscctl: --cert, --key and --ca are required\n");
		return 2;
	}
	if ((size_t)snprintf(url, sizeof(url), "%s/api/v1/status", base) >= sizeof(url)) {
		fprintf(stderr, "qkd-qscctl: --url is too long\n");
		return 2;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 1;
	text = fetch(url, cert, key, ca, &status);
	curl_global_cleanup();
	if (!text)
		return 1;
	if (status != 200) {
		fprintf(stderr, "qkd-qscctl: the controller answered %ld: %s\n", status, text);
		free(text);
		return 1;
	}
	if (as_json) {
		printf("%s\n", text);
		free(text);
		return 0;
	}
	o = json_tokener_parse(text);
	free(text);
	if (!o || !json_object_is_type(o, json_type_object)) {
		fprintf(stderr, "qkd-qscctl: the controller's answer is not JSON\n");
		json_object_put(o);
		return 1;
	}
	rc = print_status(o);
	json_object_put(o);
	return rc;
}
