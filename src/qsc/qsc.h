/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qsc.h - qkd-qscd, the Quantum Security Controller of a metro QKD network: the topology (nodes
 * and QKD links), what the nodes report about their links, and the relay path per pair of nodes.
 *
 *   qsc_topo.c    the topology file
 *   qsc_report.c  a node's link report (JSON body of POST /api/v1/links)
 *   qsc_links.c   link state from the reports: up/down, stored key, report age
 *   qsc_path.c    relay paths per (source, destination) and the routes table
 *   qsc_api.c     the HTTPS API (libhttps): links, routes, status
 *   qscd.c        the daemon: options, timer, signals
 *
 * Names only, never key material: the controller sees key levels, not keys.
 */
#ifndef QSC_H
#define QSC_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define QSC_NAME_MAX 63     /* node and link names: [A-Za-z0-9._-], like certificate CNs */
#define QSC_NODES_MAX 64
#define QSC_LINKS_MAX 256
#define QSC_LINE_MAX 512    /* topology file: longest line */

/* --- topology (qsc_topo.c) ------------------------------------------------------------------- */

enum qsc_role {
	QSC_BACKBONE = 0,   /* relays keys for others */
	QSC_ACCESS = 1,     /* star access node: source or destination only, never a relay */
};

/* What one end of a link last reported (qsc_links.c). */
struct qsc_link_end {
	int reported;            /* a report arrived since start */
	uint64_t at_ms;          /* when (monotonic) */
	int up;
	uint64_t stored_bits, consumed_bits;
	double rate_bps;
};

struct qsc_node {
	char name[QSC_NAME_MAX + 1];
	enum qsc_role role;
	int reported;
	uint64_t at_ms;          /* last report from this node */
};

struct qsc_link {
	char name[QSC_NAME_MAX + 1];
	int end[2];              /* node indexes, end[0] != end[1] */
	struct qsc_link_end state[2]; /* as reported by end[0], end[1] */
	int was_up;              /* up at the last qsc_links_costs, to log changes */
};

struct qsc_topo {
	struct qsc_node nodes[QSC_NODES_MAX];
	size_t n_nodes;
	struct qsc_link links[QSC_LINKS_MAX];
	size_t n_links;
};

/* Parse a topology (the file's text, len bytes). 0, or -1 with "line N: what" in err. */
int qsc_topo_parse(const char *text, size_t len, struct qsc_topo *t, char *err, size_t errlen);
/* Read and parse a file. 0, or -1 with the reason in err. */
int qsc_topo_load(const char *path, struct qsc_topo *t, char *err, size_t errlen);
int qsc_topo_node(const struct qsc_topo *t, const char *name);   /* index or -1 */
int qsc_topo_link(const struct qsc_topo *t, const char *name);   /* index or -1 */
/* The link between nodes a and b, or -1. */
int qsc_topo_link_between(const struct qsc_topo *t, int a, int b);
int qsc_name_valid(const char *s, size_t len);
/* "line N: what" (line 0: just what) into err; returns -1. */
int qsc_fail(char *err, size_t errlen, unsigned line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- a node's report (qsc_report.c) ----------------------------------------------------------- */

struct qsc_link_report {
	char link[QSC_NAME_MAX + 1], peer[QSC_NAME_MAX + 1];
	int up;
	uint64_t stored_bits, consumed_bits;
	double rate_bps;
};

struct qsc_report {
	char node[QSC_NAME_MAX + 1];
	size_t n;
	struct qsc_link_report links[QSC_LINKS_MAX];
};

/* Parse {"node":..., "links":[{"link","peer","up","stored_bits","rate_bps","consumed_bits"}]}.
 * 0, or -1 with the reason in err. */
int qsc_report_parse(const char *body, size_t len, struct qsc_report *r, char *err,
		     size_t errlen);

/* --- link state (qsc_links.c) ----------------------------------------------------------------- */

enum qsc_apply_result {
	QSC_APPLY_OK = 0,
	QSC_APPLY_FORBIDDEN,     /* 403: the caller reports for another node or a link not its own */
	QSC_APPLY_BAD,           /* 400: unknown node or link, peer not the link's other end */
};

/* Apply caller's report at now_ms, all or nothing. On refusal err says why. */
enum qsc_apply_result qsc_links_apply(struct qsc_topo *t, const char *caller,
				      const struct qsc_report *r, uint64_t now_ms, char *err,
				      size_t errlen);

/* A link as the controller sees it at now_ms: up when at least one end reported within
 * timeout_ms and every end that did says up; stored_bits the smaller of those ends' levels. */
struct qsc_link_view {
	int up;
	int fresh_ends;          /* ends with a report younger than timeout_ms */
	uint64_t stored_bits;
	char why[96];            /* when down: "reported down by N1", "no report for 3012 ms" */
};
void qsc_link_view(const struct qsc_topo *t, size_t link, uint64_t now_ms, uint64_t timeout_ms,
		   struct qsc_link_view *v);

/* Per link: usable (up) and its stored key, the input of a path computation. */
struct qsc_link_cost {
	int up;
	uint64_t stored_bits;
};

/* Every link's view at now_ms into lc[]; logs each link that went up or down since the last
 * call, with the reason. */
void qsc_links_costs(struct qsc_topo *t, uint64_t now_ms, uint64_t timeout_ms,
		     struct qsc_link_cost lc[QSC_LINKS_MAX]);

/* --- paths (qsc_path.c) ----------------------------------------------------------------------- */

struct qsc_path {
	uint8_t n;                     /* nodes on the path, 0: no path */
	uint8_t node[QSC_NODES_MAX];   /* node[0] the source, node[n-1] the destination */
};

/* Best path from src to every node: least cost, sum over links of 1 / max(stored_bits, 1);
 * equal cost (relative 1e-9): fewer hops. Access nodes relay for nobody. out[src].n = 1. */
void qsc_path_from(const struct qsc_topo *t, const struct qsc_link_cost *lc, int src,
		   struct qsc_path out[QSC_NODES_MAX]);
/* The path's cost and bottleneck (smallest stored_bits); -1 if a link on it is down. */
double qsc_path_cost(const struct qsc_topo *t, const struct qsc_link_cost *lc,
		     const struct qsc_path *p, uint64_t *bottleneck);

/* The routes table: a path per (src, dst), kept until it breaks or a path costs markedly less. */
#define QSC_SWITCH_GAIN 0.8  /* switch to a working path only when new cost < 0.8 x current */

struct qsc_routes {
	uint64_t version;        /* +1 whenever any route changes */
	struct qsc_path path[QSC_NODES_MAX][QSC_NODES_MAX];
};

/* Recompute every route from the link costs; log each change. Returns how many changed. */
unsigned qsc_routes_update(struct qsc_routes *r, const struct qsc_topo *t,
			   const struct qsc_link_cost *lc);
/* "N1 N2 N3" into buf. */
const char *qsc_path_text(const struct qsc_topo *t, const struct qsc_path *p, char *buf,
			  size_t cap);

/* --- the daemon (qscd.c, qsc_api.c) ---------------------------------------------------------- */

struct https_server;

struct qsc {
	pthread_mutex_t lock;        /* topo, routes: HTTPS threads and the timer */
	struct qsc_topo topo;
	struct qsc_routes *routes;
	uint64_t timeout_ms;         /* a report is fresh this long */
	uint64_t started_ms;
	const char *name;            /* the controller's name in status answers */
	struct https_server *httpd;
};

/* Link views and routes at now_ms; caller holds q->lock. */
void qsc_refresh(struct qsc *q, uint64_t now_ms);

struct qsc_api_config {
	const char *listen, *cert, *key, *ca;
	unsigned max_connections;
};
int qsc_api_start(struct qsc *q, const struct qsc_api_config *cfg);
void qsc_api_stop(struct qsc *q);

#endif
