/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd.c - qkd-kmsd main: configuration, the QKD link thread, the HTTPS server, signals.
 *
 * Signals are blocked in every thread and taken synchronously here: SIGTERM/SIGINT stop,
 * SIGUSR1 toggles the simulated outage.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	struct kmsd_config cfg;
	struct kmsd_kme kme;
	sigset_t set;
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

	memset(&kme, 0, sizeof(kme));
	kme.cfg = &cfg;
	kme.is_link_master = cfg.link_mode == KMSD_LINK_LISTEN;
	kme.rate_bps = kmsd_config_effective_rate(&cfg);
	kme.min_key_size = cfg.min_key_size;
	kme.max_key_size = cfg.max_key_size;
	kme.max_key_per_request = cfg.max_key_per_request;
	if (kmsd_store_init(&kme.store, cfg.key_size, cfg.max_key_count) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "cannot allocate the key store");
		kmsd_config_free(&cfg);
		return 1;
	}
	if (kmsd_link_start(&kme.link, &kme) < 0)
		goto out;
	if (kmsd_api_start(&kme) < 0)
		goto out;
	ipseq_log(IPSEQ_LOG_INFO, "%s serving ETSI GS QKD 014 on https://%s; QKD link %s %s (%s)",
		  cfg.kme_id, cfg.listen, kme.is_link_master ? "master listening on" : "slave to",
		  cfg.link_address, kme.is_link_master ? "generates keys" : "receives keys");
	if (kme.is_link_master)
		ipseq_log(IPSEQ_LOG_INFO, "secret key rate %.1f bit/s%s", kme.rate_bps,
			  cfg.key_rate > 0 ? "" : " (fibre model)");

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGUSR1) {
			int now = !atomic_load(&kme.outage);
			atomic_store(&kme.outage, now);
			ipseq_log(IPSEQ_LOG_WARN, "simulated outage %s",
				  now ? "ON: answering 503" : "OFF");
			continue;
		}
		if (sig == SIGHUP)
			continue;
		ipseq_log(IPSEQ_LOG_INFO, "signal %d: stopping", sig);
		break;
	}
	ret = 0;
out:
	kmsd_api_stop(&kme);
	kmsd_link_stop(&kme.link);
	kmsd_store_destroy(&kme.store);
	kmsd_config_free(&cfg);
	return ret;
}
