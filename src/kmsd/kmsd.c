/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd.c - qkd-kmsd main: configuration, the node (one QKD link thread per link, the HTTPS
 * server, the path controller client), signals.
 *
 * Signals are blocked in every thread and taken synchronously here: SIGTERM/SIGINT stop,
 * SIGUSR1 toggles the simulated outage, SIGHUP applies changed key rates (reload()).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

static void log_link(const struct kmsd_kme *k, int metro)
{
	const struct kmsd_config *c = k->cfg;

	if (metro)
		ipseq_log(IPSEQ_LOG_INFO, "link %s to %s: %s %s, %s", k->name, c->peer_kme_id,
			  k->is_link_master ? "master listening on" : "slave to", c->link_address,
			  k->is_link_master ? "generates keys" : "receives keys");
	else
		ipseq_log(IPSEQ_LOG_INFO, "QKD link %s %s (%s)",
			  k->is_link_master ? "master listening on" : "slave to", c->link_address,
			  k->is_link_master ? "generates keys" : "receives keys");
	if (k->is_link_master)
		ipseq_log(IPSEQ_LOG_INFO, "%s%ssecret key rate %.1f bit/s%s", metro ? k->name : "",
			  metro ? ": " : "", k->rate_bps, c->key_rate > 0 ? "" : " (fibre model)");
}

/* SIGHUP: read the settings again, file and flags as at start, and apply what may change while
 * keys flow: each link's secret key rate (key_rate or the fibre model). An experiment can so step
 * a QKD link's supply without the outage and the flushed stores of a restart. Other changes need
 * a restart, and the log says so. */
static void reload(struct kmsd_node *n, int argc, char **argv)
{
	struct kmsd_config c;
	unsigned i, changed = 0;

	if (kmsd_config_load(&c, argc, argv) != 0) {
		ipseq_log(IPSEQ_LOG_ERR, "SIGHUP: the configuration does not load; nothing changed");
		kmsd_config_free(&c);
		return;
	}
	if ((c.n_links ? c.n_links : 1) != n->n_links) {
		ipseq_log(IPSEQ_LOG_ERR, "SIGHUP: the links changed (%u, running %u); only key rates "
			  "change at run time: restart for the rest", c.n_links ? c.n_links : 1,
			  n->n_links);
		kmsd_config_free(&c);
		return;
	}
	for (i = 0; i < n->n_links; i++) {
		struct kmsd_kme *k = &n->links[i];
		const struct kmsd_config *lc = c.n_links ? c.links[i].cfg : &c;
		double old = atomic_load(&k->rate_bps), rate = kmsd_config_effective_rate(lc);

		if (strcmp(lc->peer_kme_id, k->cfg->peer_kme_id) != 0) {
			ipseq_log(IPSEQ_LOG_ERR, "SIGHUP: link %s now names peer %s, running with %s: "
				  "only key rates change at run time; not applied", k->name,
				  lc->peer_kme_id, k->cfg->peer_kme_id);
			continue;
		}
		if (rate == old)
			continue;
		atomic_store(&k->rate_bps, rate);
		changed++;
		ipseq_log(IPSEQ_LOG_WARN, "SIGHUP: link %s to %s: secret key rate %.1f -> %.1f bit/s%s%s",
			  k->name, lc->peer_kme_id, old, rate,
			  lc->key_rate > 0 ? "" : " (fibre model)",
			  k->is_link_master ? "" : " (the link master's rate is the one used)");
	}
	if (!changed)
		ipseq_log(IPSEQ_LOG_INFO, "SIGHUP: configuration read again; no key rate changed");
	kmsd_config_free(&c);
}

/* Relay forward threads end once the links are down (their waits complete); give them a
 * bounded time before the stores they use go away. */
static void wait_forwards(struct kmsd_node *n)
{
	int i;

	for (i = 0; i < 100 && atomic_load(&n->forwards) > 0; i++)
		usleep(50000);
}

int main(int argc, char **argv)
{
	struct kmsd_config cfg;
	struct kmsd_node node;
	sigset_t set;
	unsigned i, started = 0;
	int rc, sig, ret = 1;

	rc = kmsd_config_load(&cfg, argc, argv);
	if (rc != 0) {
		kmsd_config_free(&cfg);
		return rc > 0 ? 0 : 2;
	}
	ipseq_log_open("qkd-kmsd", cfg.log_level, 0);

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	curl_global_init(CURL_GLOBAL_DEFAULT);

	if (kmsd_node_init(&node, &cfg) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "cannot allocate the key stores");
		goto out;
	}
	for (started = 0; started < node.n_links; started++)
		if (kmsd_link_start(&node.links[started].link, &node.links[started]) < 0)
			break;
	if (started < node.n_links) {
		started++; /* kmsd_link_start set it up, in part: stop frees that part */
		goto out;
	}
	if (kmsd_api_start(&node) < 0)
		goto out;
	if (node.metro && kmsd_routes_start(&node) < 0)
		goto out;
	ipseq_log(IPSEQ_LOG_INFO, "%s serving ETSI GS QKD 014 on https://%s%s", cfg.kme_id,
		  cfg.listen, node.metro ? " as a metro KMS node" : "");
	for (i = 0; i < node.n_links; i++)
		log_link(&node.links[i], node.metro);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			int now = !atomic_load(&node.outage);
			atomic_store(&node.outage, now);
			ipseq_log(IPSEQ_LOG_WARN, "simulated outage %s",
				  now ? "ON: answering 503" : "OFF");
			continue;
		}
		if (sig == SIGHUP) {
			reload(&node, argc, argv);
			continue;
		}
		ipseq_log(IPSEQ_LOG_INFO, "signal %d: stopping", sig);
		break;
	}
	ret = 0;
out:
	kmsd_api_stop(&node);
	kmsd_routes_stop(&node);
	for (i = 0; i < started; i++)
		kmsd_link_halt(&node.links[i].link);
	wait_forwards(&node);
	for (i = 0; i < started; i++)
		kmsd_link_stop(&node.links[i].link);
	kmsd_node_destroy(&node);
	kmsd_config_free(&cfg);
	curl_global_cleanup();
	return ret;
}
