/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc_links.c - link state from the nodes' reports. Both ends of a link report it; a report is
 * fresh for timeout_ms (qkd-qscd --report-timeout, 3000 ms by default: three missed 1 s reports).
 * A link is up when at least one end's report is fresh and every fresh report says up, so a
 * link whose nodes stop reporting, or whose node reports it down, is routed around.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <stdio.h>
#include <string.h>

#include "ipseq_log.h"

static enum qsc_apply_result refuse(enum qsc_apply_result rc, char *err, size_t errlen,
				    const char *what)
{
	snprintf(err, errlen, "%s", what);
	return rc;
}

enum qsc_apply_result qsc_links_apply(struct qsc_topo *t, const char *caller,
				      const struct qsc_report *r, uint64_t now_ms, char *err,
				      size_t errlen)
{
	char what[256];
	int node, li[QSC_LINKS_MAX];
	size_t i;

	if (strcmp(r->node, caller) != 0) {
		snprintf(what, sizeof(what), "%s may report only its own links, not node %s's",
			 caller, r->node);
		return refuse(QSC_APPLY_FORBIDDEN, err, errlen, what);
	}
	node = qsc_topo_node(t, r->node);
	if (node < 0) {
		snprintf(what, sizeof(what), "%s is not a node of the topology", r->node);
		return refuse(QSC_APPLY_FORBIDDEN, err, errlen, what);
	}
	/* all checks before any change: a report is applied whole or not at all */
	for (i = 0; i < r->n; i++) {
		const struct qsc_link_report *lr = &r->links[i];
		const struct qsc_link *l;
		int peer;

		li[i] = qsc_topo_link(t, lr->link);
		if (li[i] < 0) {
			snprintf(what, sizeof(what), "link %s is not in the topology", lr->link);
			return refuse(QSC_APPLY_BAD, err, errlen, what);
		}
		l = &t->links[li[i]];
		if (l->end[0] != node && l->end[1] != node) {
			snprintf(what, sizeof(what), "link %s joins %s and %s, not %s", l->name,
				 t->nodes[l->end[0]].name, t->nodes[l->end[1]].name, r->node);
			return refuse(QSC_APPLY_FORBIDDEN, err, errlen, what);
		}
		peer = l->end[0] == node ? l->end[1] : l->end[0];
		if (strcmp(t->nodes[peer].name, lr->peer) != 0) {
			snprintf(what, sizeof(what), "link %s: the peer of %s is %s, not %s",
				 l->name, r->node, t->nodes[peer].name, lr->peer);
			return refuse(QSC_APPLY_BAD, err, errlen, what);
		}
	}
	for (i = 0; i < r->n; i++) {
		const struct qsc_link_report *lr = &r->links[i];
		struct qsc_link *l = &t->links[li[i]];
		struct qsc_link_end *e = &l->state[l->end[0] == node ? 0 : 1];

		e->reported = 1;
		e->at_ms = now_ms;
		e->up = lr->up;
		e->stored_bits = lr->stored_bits;
		e->consumed_bits = lr->consumed_bits;
		e->rate_bps = lr->rate_bps;
	}
	t->nodes[node].reported = 1;
	t->nodes[node].at_ms = now_ms;
	return QSC_APPLY_OK;
}

void qsc_link_view(const struct qsc_topo *t, size_t link, uint64_t now_ms, uint64_t timeout_ms,
		   struct qsc_link_view *v)
{
	const struct qsc_link *l = &t->links[link];
	int e, down_by = -1, any = 0;
	uint64_t newest = 0;

	memset(v, 0, sizeof(*v));
	for (e = 0; e < 2; e++) {
		const struct qsc_link_end *s = &l->state[e];

		if (!s->reported)
			continue;
		if (!any || s->at_ms > newest)
			newest = s->at_ms;
		any = 1;
		if (now_ms - s->at_ms > timeout_ms)
			continue;
		if (!s->up && down_by < 0)
			down_by = l->end[e];
		if (v->fresh_ends == 0 || s->stored_bits < v->stored_bits)
			v->stored_bits = s->stored_bits;
		v->fresh_ends++;
	}
	v->up = v->fresh_ends > 0 && down_by < 0;
	if (v->up)
		return;
	if (down_by >= 0)
		snprintf(v->why, sizeof(v->why), "reported down by %s", t->nodes[down_by].name);
	else if (any)
		snprintf(v->why, sizeof(v->why), "no report for %llu ms",
			 (unsigned long long)(now_ms - newest));
	else
		snprintf(v->why, sizeof(v->why), "never reported");
	v->stored_bits = 0;
}

void qsc_links_costs(struct qsc_topo *t, uint64_t now_ms, uint64_t timeout_ms,
		     struct qsc_link_cost lc[QSC_LINKS_MAX])
{
	struct qsc_link_view v;
	size_t i;

	for (i = 0; i < t->n_links; i++) {
		struct qsc_link *l = &t->links[i];

		qsc_link_view(t, i, now_ms, timeout_ms, &v);
		lc[i].up = v.up;
		lc[i].stored_bits = v.stored_bits;
		if (v.up && !l->was_up)
			ipseq_log(IPSEQ_LOG_INFO, "link %s (%s - %s) up, %llu bits stored", l->name,
				  t->nodes[l->end[0]].name, t->nodes[l->end[1]].name,
				  (unsigned long long)v.stored_bits);
		else if (!v.up && l->was_up)
			ipseq_log(IPSEQ_LOG_WARN, "link %s (%s - %s) down: %s", l->name,
				  t->nodes[l->end[0]].name, t->nodes[l->end[1]].name, v.why);
		l->was_up = v.up;
	}
}
