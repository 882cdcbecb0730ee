/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qscd.c - qkd-qscd, the Quantum Security Controller: options, the topology, the HTTPS API and
 * a timer that marks links down when their reports stop and re-routes around them. Runs until
 * SIGINT or SIGTERM.
 */
#include "ipseq_config.h"
#include "qsc.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ipseq_log.h"
#include "ipseq_util.h"

#define TICK_MS 250

struct options {
	const char *topology, *listen, *cert, *key, *ca, *name;
	unsigned long timeout_ms, max_connections;
	int log_level, use_syslog, check_only;
};

static void usage(FILE *f)
{
	fprintf(f,
		"usage: qkd-qscd --topology FILE --cert PEM --key PEM --ca PEM [options]\n"
		"       qkd-qscd --topology FILE --check\n"
		"\n"
		"The Quantum Security Controller of a metro QKD network: nodes report their links'\n"
		"key levels; the controller answers each node's relay paths (qkd-qscd(8)).\n"
		"\n"
		"  --topology FILE       nodes and links (qkd-qscd(8), TOPOLOGY FILE)\n"
		"  --check               parse the topology, print it, exit (0: valid)\n"
		"  --listen ADDR:PORT    HTTPS address (default 127.0.0.1:8450; [v6]:port)\n"
		"  --cert PEM, --key PEM the controller's certificate and key (CN QSC by default)\n"
		"  --ca PEM              CA of the nodes' and operators' client certificates\n"
		"  --name NAME           the controller's name in status answers (default QSC)\n"
		"  --report-timeout MS   a link whose reports stop this long is down (default 3000)\n"
		"  --max-connections N   concurrent HTTPS connections (default 64)\n"
		"  --log-level LEVEL     err, warn, info (default) or debug\n"
		"  --syslog              log to syslog instead of stderr\n"
		"  --help, --version\n");
}

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		return -1;
	*out = v;
	return 0;
}

static int parse_level(const char *s)
{
	static const char *const names[] = {"err", "warn", "info", "debug"};
	int i;

	for (i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{"topology", required_argument, NULL, 't'},
		{"check", no_argument, NULL, 'C'},
		{"listen", required_argument, NULL, 'l'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"ca", required_argument, NULL, 'a'},
		{"name", required_argument, NULL, 'n'},
		{"report-timeout", required_argument, NULL, 'T'},
		{"max-connections", required_argument, NULL, 'm'},
		{"log-level", required_argument, NULL, 'L'},
		{"syslog", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c;

	*o = (struct options){.listen = "127.0.0.1:8450", .name = "QSC", .timeout_ms = 3000,
			      .max_connections = 64, .log_level = IPSEQ_LOG_INFO};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (c) {
		case 't': o->topology = optarg; break;
		case 'C': o->check_only = 1; break;
		case 'l': o->listen = optarg; break;
		case 'c': o->cert = optarg; break;
		case 'k': o->key = optarg; break;
		case 'a': o->ca = optarg; break;
		case 'n': o->name = optarg; break;
		case 'S': o->use_syslog = 1; break;
		case 'T':
			if (parse_ulong(optarg, 100, 3600000, &o->timeout_ms) < 0) {
				fprintf(stderr, "qkd-qscd: --report-timeout: '%s' is not "
					"100..3600000 ms\n", optarg);
				return -1;
			}
			break;
		case 'm':
			if (parse_ulong(optarg, 1, 1024, &o->max_connections) < 0) {
				fprintf(stderr, "qkd-qscd: --max-connections: '%s' is not 1..1024\n",
					optarg);
				return -1;
			}
			break;
		case 'L':
			o->log_level = parse_level(optarg);
			if (o->log_level < 0) {
				fprintf(stderr, "qkd-qscd: --log-level: '%s' is not err, warn, "
					"info or debug\n", optarg);
				return -1;
			}
			break;
		case 'h': usage(stdout); exit(0);
		case 'V': printf("qkd-qscd %s\n", PACKAGE_VERSION); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qkd-qscd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (!o->topology) {
		fprintf(stderr, "qkd-qscd: --topology FILE is required\n");
		return -1;
	}
	if (!o->check_only && (!o->cert || !o->key || !o->ca)) {
		fprintf(stderr, "qkd-qscd: --cert, --key and --ca are required\n");
		return -1;
	}
	return 0;
}

static void print_topology(const struct qsc_topo *t)
{
	size_t i;

	for (i = 0; i < t->n_nodes; i++)
		printf("node %s %s\n", t->nodes[i].name,
		       t->nodes[i].role == QSC_ACCESS ? "access" : "backbone");
	for (i = 0; i < t->n_links; i++)
		printf("link %s %s %s\n", t->links[i].name, t->nodes[t->links[i].end[0]].name,
		       t->nodes[t->links[i].end[1]].name);
}

void qsc_refresh(struct qsc *q, uint64_t now_ms)
{
	struct qsc_link_cost lc[QSC_LINKS_MAX];
	unsigned changed;

	qsc_links_costs(&q->topo, now_ms, q->timeout_ms, lc);
	changed = qsc_routes_update(q->routes, &q->topo, lc);
	if (changed)
		ipseq_log(IPSEQ_LOG_INFO, "routes version %llu: %u route(s) changed",
			  (unsigned long long)q->routes->version, changed);
}

static void qsc_free(struct qsc *q)
{
	if (!q)
		return;
	free(q->routes);
	free(q);
}

int main(int argc, char **argv)
{
	struct options o;
	struct qsc *q;
	struct qsc_api_config api;
	char err[512];
	sigset_t set;
	struct timespec tick = {.tv_sec = 0, .tv_nsec = TICK_MS * 1000000L};
	int sig, rc = 1;

	if (parse_options(argc, argv, &o) < 0)
		return 2;
	q = calloc(1, sizeof(*q));
	if (!q || !(q->routes = calloc(1, sizeof(*q->routes)))) {
		fprintf(stderr, "qkd-qscd: out of memory\n");
		goto out;
	}
	if (qsc_topo_load(o.topology, &q->topo, err, sizeof(err)) < 0) {
		fprintf(stderr, "qkd-qscd: %s\n", err);
		goto out;
	}
	if (o.check_only) {
		print_topology(&q->topo);
		rc = 0;
		goto out;
	}
	ipseq_log_open("qkd-qscd", o.log_level, o.use_syslog);
	q->timeout_ms = o.timeout_ms;
	q->started_ms = ipseq_now_ms();
	q->name = o.name;
	pthread_mutex_init(&q->lock, NULL);

	/* SIGINT and SIGTERM stop the daemon; the HTTPS threads inherit the mask */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	api = (struct qsc_api_config){.listen = o.listen, .cert = o.cert, .key = o.key,
				      .ca = o.ca, .max_connections = (unsigned)o.max_connections};
	if (qsc_api_start(q, &api) < 0) {
		pthread_mutex_destroy(&q->lock);
		goto out;
	}
	ipseq_log(IPSEQ_LOG_INFO,
		  "%s: %zu nodes, %zu links from %s; listening on %s; a link is down after "
		  "%lu ms without reports", o.name, q->topo.n_nodes, q->topo.n_links, o.topology, o.listen, o.timeout_ms);
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		pthread_mutex_lock(&q->lock);
		qsc_refresh(q, ipseq_now_ms());
		pthread_mutex_unlock(&q->lock);
	}
	ipseq_log(IPSEQ_LOG_INFO, "stopping (signal %d)", sig);
	/* the HTTPS threads use q until they are joined */
	qsc_api_stop(q);
	pthread_mutex_destroy(&q->lock);
	rc = 0;
out:
	qsc_free(q);
	return rc;
}
