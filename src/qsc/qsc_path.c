/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc_path.c - relay paths. A relayed key of b bits takes b bits from every link it crosses
 * (one-time-pad XOR hop by hop), so a link's cost is the share of its stored key one relayed bit
 * uses, 1 / stored_bits, and a path's cost the sum over its links. That prefers links with more
 * stored key, never picks a nearly empty link while another path exists, and, with equal levels,
 * the path with fewest hops (h links at level S cost h / S); a detour of h links is taken over a
 * direct link only when every link of it holds more than h times the direct link's key. Equal
 * cost (within 1e-9 relative): fewer hops, then the first found in topology order. Access nodes
 * are leaves of a star: they start or end a path, never relay.
 *
 * Routes are sticky: a working route is replaced only by a path of less than QSC_SWITCH_GAIN
 * times its cost, so levels that move with every key do not flip routes each second. A route
 * whose link goes down is replaced at once. A route of equal cost to the best path is replaced
 * by it too (the tie-break above), so the route does not depend on the order links came up in:
 * one taken while a link of the best path was still down would otherwise stay for good.
 * Every change is logged by node and link names.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ipseq_log.h"

static double link_cost(uint64_t stored_bits)
{
	return 1.0 / (double)(stored_bits ? stored_bits : 1);
}

static int same_cost(double c1, double c2)
{
	return fabs(c1 - c2) <= 1e-9 * fmax(c1, c2);
}

/* (c1, h1) strictly better than (c2, h2)? */
static int better(double c1, int h1, double c2, int h2)
{
	if (same_cost(c1, c2))
		return h1 < h2;
	return c1 < c2;
}

void qsc_path_from(const struct qsc_topo *t, const struct qsc_link_cost *lc, int src,
		   struct qsc_path out[QSC_NODES_MAX])
{
	double dist[QSC_NODES_MAX];
	int hops[QSC_NODES_MAX], prev[QSC_NODES_MAX];
	int done[QSC_NODES_MAX] = {0}, reached[QSC_NODES_MAX] = {0};
	size_t n = t->n_nodes, round, l;
	int u, v;

	memset(out, 0, sizeof(struct qsc_path) * QSC_NODES_MAX);
	for (v = 0; v < (int)n; v++) {
		dist[v] = 0;
		hops[v] = 0;
		prev[v] = -1;
	}
	reached[src] = 1;
	for (round = 0; round < n; round++) {
		u = -1;
		for (v = 0; v < (int)n; v++)
			if (reached[v] && !done[v] &&
			    (u < 0 || better(dist[v], hops[v], dist[u], hops[u])))
				u = v;
		if (u < 0)
			break;
		done[u] = 1;
		if (u != src && t->nodes[u].role == QSC_ACCESS)
			continue; /* a leaf: no relay through it */
		for (l = 0; l < t->n_links; l++) {
			const struct qsc_link *k = &t->links[l];
			double d;

			if (!lc[l].up || (k->end[0] != u && k->end[1] != u))
				continue;
			v = k->end[0] == u ? k->end[1] : k->end[0];
			if (done[v])
				continue;
			d = dist[u] + link_cost(lc[l].stored_bits);
			if (!reached[v] || better(d, hops[u] + 1, dist[v], hops[v])) {
				reached[v] = 1;
				dist[v] = d;
				hops[v] = hops[u] + 1;
				prev[v] = u;
			}
		}
	}
	for (v = 0; v < (int)n; v++) {
		int w, i;

		if (!reached[v])
			continue;
		out[v].n = (uint8_t)(hops[v] + 1);
		for (w = v, i = hops[v]; i >= 0; w = prev[w], i--)
			out[v].node[i] = (uint8_t)w;
	}
}

double qsc_path_cost(const struct qsc_topo *t, const struct qsc_link_cost *lc,
		     const struct qsc_path *p, uint64_t *bottleneck)
{
	double cost = 0;
	unsigned i;

	*bottleneck = 0;
	for (i = 0; i + 1 < p->n; i++) {
		int l = qsc_topo_link_between(t, p->node[i], p->node[i + 1]);

		if (l < 0 || !lc[l].up)
			return -1;
		if (i == 0 || lc[l].stored_bits < *bottleneck)
			*bottleneck = lc[l].stored_bits;
		cost += link_cost(lc[l].stored_bits);
	}
	return cost;
}

const char *qsc_path_text(const struct qsc_topo *t, const struct qsc_path *p, char *buf,
			  size_t cap)
{
	size_t o = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < p->n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i ? " -> " : "",
				      t->nodes[p->node[i]].name);
	return buf;
}

/* The first link of p that is down, for the log. */
static const char *down_link(const struct qsc_topo *t, const struct qsc_link_cost *lc,
			     const struct qsc_path *p)
{
	unsigned i;

	for (i = 0; i + 1 < p->n; i++) {
		int l = qsc_topo_link_between(t, p->node[i], p->node[i + 1]);

		if (l < 0 || !lc[l].up)
			return l < 0 ? "?" : t->links[l].name;
	}
	return "?";
}

static int same_path(const struct qsc_path *a, const struct qsc_path *b)
{
	return a->n == b->n && memcmp(a->node, b->node, a->n) == 0;
}

/* Decide the route src -> dst given the best path now; 1 if it changed. */
static int decide(struct qsc_path *cur, const struct qsc_path *best, const struct qsc_topo *t,
		  const struct qsc_link_cost *lc, int src, int dst)
{
	const char *s = t->nodes[src].name, *d = t->nodes[dst].name;
	char was[QSC_NODES_MAX * 70], now[QSC_NODES_MAX * 70];
	uint64_t cur_neck = 0, best_neck = 0;
	double cur_cost, best_cost;

	if (cur->n == 0 && best->n == 0)
		return 0;
	cur_cost = cur->n ? qsc_path_cost(t, lc, cur, &cur_neck) : -1;
	qsc_path_text(t, cur, was, sizeof(was));
	if (best->n == 0) {
		ipseq_log(IPSEQ_LOG_WARN, "route %s -> %s: no path (was %s; link %s down)", s, d,
			  was, down_link(t, lc, cur));
		memset(cur, 0, sizeof(*cur));
		return 1;
	}
	if (same_path(cur, best))
		return 0;
	best_cost = qsc_path_cost(t, lc, best, &best_neck);
	qsc_path_text(t, best, now, sizeof(now));
	if (cur->n == 0) {
		ipseq_log(IPSEQ_LOG_INFO, "route %s -> %s: %s (%u hops, least stored %llu bits)",
			  s, d, now, best->n - 1u, (unsigned long long)best_neck);
	} else if (cur_cost < 0) {
		ipseq_log(IPSEQ_LOG_INFO,
			  "route %s -> %s: %s (%u hops, least stored %llu bits) replaces %s: "
			  "link %s down",
			  s, d, now, best->n - 1u, (unsigned long long)best_neck, was,
			  down_link(t, lc, cur));
	} else if (best_cost < QSC_SWITCH_GAIN * cur_cost) {
		ipseq_log(IPSEQ_LOG_INFO,
			  "route %s -> %s: %s (%u hops, least stored %llu bits) replaces %s "
			  "(%u hops, least stored %llu bits): cost %.3g < %.1f x %.3g", s, d, now, best->n - 1u, (unsigned long long)best_neck, was, cur->n - 1u,
			  (unsigned long long)cur_neck, best_cost, QSC_SWITCH_GAIN, cur_cost);
	} else if (same_cost(best_cost, cur_cost)) {
		ipseq_log(IPSEQ_LOG_INFO,
			  "route %s -> %s: %s (%u hops, least stored %llu bits) replaces %s "
			  "(%u hops): equal cost, %s", s, d, now, best->n - 1u,
			  (unsigned long long)best_neck, was, cur->n - 1u,
			  best->n < cur->n ? "fewer hops" : "first in topology order");
	} else {
		return 0; /* the working route stays */
	}
	*cur = *best;
	return 1;
}

unsigned qsc_routes_update(struct qsc_routes *r, const struct qsc_topo *t,
			   const struct qsc_link_cost *lc)
{
	struct qsc_path best[QSC_NODES_MAX];
	unsigned changed = 0;
	size_t src, dst;

	for (src = 0; src < t->n_nodes; src++) {
		qsc_path_from(t, lc, (int)src, best);
		for (dst = 0; dst < t->n_nodes; dst++)
			if (dst != src)
				changed += (unsigned)decide(&r->path[src][dst], &best[dst], t, lc,
							    (int)src, (int)dst);
	}
	if (changed)
		r->version++;
	return changed;
}
