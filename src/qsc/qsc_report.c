/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc_report.c - a node's link report, the body of POST /api/v1/links:
 *
 *   {"node":"N1","links":[{"link":"N1-N2","peer":"N2","up":true,"stored_bits":123456,
 *                          "rate_bps":1000.0,"consumed_bits":789}, ...]}
 *
 * Every member named here is required and checked; other members are ignored (newer nodes may
 * add some). A link appears at most once.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "https_server.h"

static int get_name(struct json_object *o, const char *member, char out[QSC_NAME_MAX + 1])
{
	struct json_object *v;
	const char *s;
	size_t n;

	if (!json_object_object_get_ex(o, member, &v) || !json_object_is_type(v, json_type_string))
		return 0;
	s = json_object_get_string(v);
	n = (size_t)json_object_get_string_len(v);
	if (!qsc_name_valid(s, n))
		return 0;
	memcpy(out, s, n);
	out[n] = '\0';
	return 1;
}

/* A count of bits: a JSON integer from 0 to 2^53 (what every JSON reader holds exactly). */
static int get_bits(struct json_object *o, const char *member, uint64_t *out)
{
	struct json_object *v;
	int64_t n;

	if (!json_object_object_get_ex(o, member, &v) || !json_object_is_type(v, json_type_int))
		return 0;
	n = json_object_get_int64(v);
	if (n < 0 || n > (INT64_C(1) << 53))
		return 0;
	*out = (uint64_t)n;
	return 1;
}

static int get_rate(struct json_object *o, const char *member, double *out)
{
	struct json_object *v;
	double d;

	if (!json_object_object_get_ex(o, member, &v) ||
	    !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return 0;
	d = json_object_get_double(v);
	if (!isfinite(d) || d < 0 || d > 1e15)
		return 0;
	*out = d;
	return 1;
}

static int parse_link(struct json_object *o, size_t i, struct qsc_link_report *l, char *err,
		      size_t errlen)
{
	struct json_object *up;

	if (!json_object_is_type(o, json_type_object))
		return qsc_fail(err, errlen, 0, "links[%zu] is not an object", i);
	if (!get_name(o, "link", l->link))
		return qsc_fail(err, errlen, 0, "links[%zu].link is missing or not a valid name", i);
	if (!get_name(o, "peer", l->peer))
		return qsc_fail(err, errlen, 0, "link %s: peer is missing or not a valid name", l->link);
	if (!json_object_object_get_ex(o, "up", &up) || !json_object_is_type(up, json_type_boolean))
		return qsc_fail(err, errlen, 0, "link %s: up is missing or not true/false", l->link);
	l->up = json_object_get_boolean(up);
	if (!get_bits(o, "stored_bits", &l->stored_bits))
		return qsc_fail(err, errlen, 0, "link %s: stored_bits is missing or not an integer 0..2^53",
			    l->link);
	if (!get_bits(o, "consumed_bits", &l->consumed_bits))
		return qsc_fail(err, errlen, 0, "link %s: consumed_bits is missing or not an integer 0..2^53",
			    l->link);
	if (!get_rate(o, "rate_bps", &l->rate_bps))
		return qsc_fail(err, errlen, 0, "link %s: rate_bps is missing or not a number 0..1e15",
			    l->link);
	return 0;
}

int qsc_report_parse(const char *body, size_t len, struct qsc_report *r, char *err,
		     size_t errlen)
{
	struct json_object *o, *links;
	const char *why = NULL;
	size_t i, j, n;
	int rc = -1;

	memset(r, 0, sizeof(*r));
	o = https_json_object(body, len, &why);
	if (!o)
		return qsc_fail(err, errlen, 0, "%s", why);
	if (!get_name(o, "node", r->node)) {
		qsc_fail(err, errlen, 0, "node is missing or not a valid name");
		goto out;
	}
	if (!json_object_object_get_ex(o, "links", &links) ||
	    !json_object_is_type(links, json_type_array)) {
		qsc_fail(err, errlen, 0, "links is missing or not an array");
		goto out;
	}
	n = json_object_array_length(links);
	if (n > QSC_LINKS_MAX) {
		qsc_fail(err, errlen, 0, "more than %d links", QSC_LINKS_MAX);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (parse_link(json_object_array_get_idx(links, i), i, &r->links[i], err,
			       errlen) < 0)
			goto out;
		for (j = 0; j < i; j++)
			if (strcmp(r->links[j].link, r->links[i].link) == 0) {
				qsc_fail(err, errlen, 0, "link %s is reported twice", r->links[i].link);
				goto out;
			}
		r->n = i + 1;
	}
	rc = 0;
out:
	json_object_put(o);
	return rc;
}
