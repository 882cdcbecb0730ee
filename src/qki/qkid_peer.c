/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_peer.c - one peer gateway's state over time: set up and torn down with the daemon, and
 * its periodic work (rates, expiry of idle SAs and unclaimed IKE keys, refills and fetches).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkid.h"
#include "qkid_log.h"

int qkid_peer_init(struct qkid *d, struct qkid_peer *p, const struct qkid_peer_conf *c,
		   char *err, size_t errlen)
{
	struct etsi014_client_config kc = {
		.kme_url = c->kme_url, .cert_file = c->kme_cert, .key_file = c->kme_key,
		.ca_file = c->kme_ca, .connect_timeout_ms = c->kme_connect_timeout_ms,
		.total_timeout_ms = c->kme_timeout_ms,
	};
	char msg[256];

	memset(p, 0, sizeof(*p));
	p->d = d;
	p->conf = c;
	p->role = c->role;
	p->key_len = c->key_size_bits / 8;
	p->retry_ms = 200;
	p->batch = c->batch;
	p->kme_state = QKI_KME_UNKNOWN;
	p->backoff_ms = d->conf->kme_backoff_min_ms;
	p->t_rate = qkid_now_ms();
	qkid_supply_init(&p->supply, p->t_rate);
	qkid_random(p->boot, sizeof(p->boot));
	p->kme = qkid_kme_start(&kc, d->notify_wr, msg, sizeof(msg));
	if (!p->kme) {
		snprintf(err, errlen, "peer %s: %s", c->name, msg);
		return -1;
	}
	log_info("peer %s: %s (local SAE %s, peer SAE %s), KME %s", c->name,
		 p->role == QKI_ROLE_MASTER ? "master" : "slave", c->local_sae, c->peer_sae,
		 c->kme_url);
	return 0;
}

void qkid_peer_destroy(struct qkid_peer *p)
{
	qkid_kme_stop(p->kme);
	qkid_link_free(p->link);
	qkid_link_free(p->candidate);
	while (p->sas)
		qkid_sa_destroy(p->sas);
	for (size_t b = 0; b < QKID_MAP_BUCKETS; b++)
		while (p->map[b])
			qkid_key_free(p, p->map[b]);
	free(p->out_assign.e);
	free(p->out_ack.e);
	free(p->out_need.e);
	free(p->out_stale.e);
}

/* The slave takes what the master assigns: it is short of keys when an SA's buffer is below
 * its capacity. (The master is short when its KME could not give what it asked for: 503, "not
 * enough key material", or an outage; kme_failed marks that.) */
static int slave_short(struct qkid_peer *p)
{
	return p->role == QKI_ROLE_SLAVE && qkid_sa_deficit(p) > 0;
}

static void rates(struct qkid_peer *p, int64_t now)
{
	double dt = (now - p->t_rate) / 1000.0, in;
	if (!p->supply_limited && slave_short(p))
		p->supply_limited = 1;
	if (dt < 1)
		return;
	/* The supply estimate (the SA shares' input, qkid_supply.h): the intake of the last second
	 * in which the KME could not give what was asked (not smoothed: an average over the end of
	 * a KME backlog kept it about twice too high for seconds, measured); else, at the master,
	 * what the KME's stored key count shows the link made available; else only a rise of the
	 * intake counts (the intake is what the SAs use, not what the QKD link makes: measured, it
	 * pulled the share down to the SA's own use). */
	in = (p->keys_in - p->last_in) / dt;
	p->rate_in = qkid_supply_estimate(&p->supply, p->rate_in, in, p->supply_limited, now);
	/* known from a short second, or from a fresh measurement at the KME */
	p->supply_known |= p->supply_limited || qkid_supply_measured(&p->supply, now);
	p->supply_limited = 0;
	p->rate_out = qkid_ewma(p->rate_out, (p->keys_out - p->last_out) / dt);
	p->last_in = p->keys_in;
	p->last_out = p->keys_out;
	p->t_rate = now;
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
		qkid_sa_rates(sa, now, dt);
	qkid_sa_shares(p);
}

static void expire(struct qkid_peer *p, int64_t now)
{
	const struct qkid_conf *c = p->d->conf;
	int64_t life = (int64_t)c->ike_key_lifetime_s * 1000;
	for (struct qkid_sa *sa = p->sas, *nx; sa; sa = nx) {
		nx = sa->next;
		if (!sa->registered && now - sa->idle_since > (int64_t)c->sa_orphan_timeout_s * 1000) {
			log_info("peer %s: SA %08x/%s idle for %us: removed", p->conf->name, sa->spi,
				 sa->dir == QKI_DIR_IN ? "in" : "out", c->sa_orphan_timeout_s);
			qkid_sa_destroy(sa);
		}
	}
	while (p->ike_own.head && now - p->ike_own.head->t > life)
		qkid_key_bury(p, p->ike_own.head);
	for (struct qkey *k = p->ike_peer.head, *nx; k; k = nx) {
		nx = k->next;
		if (now - k->t > life && !k->unacked)
			qkid_key_bury(p, k);
	}
}

void qkid_peer_tick(struct qkid_peer *p, int64_t now)
{
	qkid_link_tick(p, now);
	rates(p, now);
	expire(p, now);
	qkid_peer_work(p, now);
}

void qkid_peer_work(struct qkid_peer *p, int64_t now)
{
	qkid_sync_work(p, now);
	qkid_fetch_schedule(p, now);
}
