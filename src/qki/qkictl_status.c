/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "qkictl.h"

void qkictl_print_peer(const struct qki_peer_status *p);
void qkictl_print_sas(const struct qki_status *st);

void qkictl_print_peer(const struct qki_peer_status *p)
{
	char in[32], out[32];
	printf("peer: %s\n", p->name);
	printf("  role: %s (local SAE %s, peer SAE %s)\n", qkictl_role(p->role), p->local_sae,
	       p->peer_sae);
	printf("  peer qkid link: %s\n", qkictl_link(p->link));
	printf("  KME: %s", qkictl_kme(p->kme));
	if (p->backoff_ms)
		printf(" (retry in %u ms)", p->backoff_ms);
	printf(", errors %llu\n", (unsigned long long)p->errors);
	if (p->role == QKI_ROLE_MASTER)
		printf("  pool: %u of %u unassigned keys (%u-byte)\n", p->pool_level,
		       p->pool_capacity, p->key_size);
	else
		printf("  fetch queue: %u keys announced, not yet fetched (%u-byte keys)\n",
		       p->pool_level, p->key_size);
	printf("  IKE keys ready: %u\n", p->ike_level);
	printf("  keys in: %llu (key supply %s/s), out: %llu (%s/s)\n", (unsigned long long)p->keys_in,
	       qkictl_rate(p->rate_in_milli, in, sizeof(in)), (unsigned long long)p->keys_out,
	       qkictl_rate(p->rate_out_milli, out, sizeof(out)));
	printf("  peer messages dropped: %llu, resyncs: %llu\n", (unsigned long long)p->drops,
	       (unsigned long long)p->resyncs);
	if (p->last_error[0])
		printf("  last error: %s\n", p->last_error);
}

void qkictl_print_sas(const struct qki_status *st)
{
	char pr[32], dr[32], sh[32];
	if (!st->n_sas)
		return;
	/* STARVED stays last (scripts read it as the last field) */
	printf("%-8s %-3s %-12s %9s %9s %10s %10s %10s %8s %12s %10s %7s %10s %9s %8s\n", "SPI",
	       "DIR", "PEER", "LEVEL", "NEXT-EP", "KEYS-OUT", "KEYS/S", "PKTS/S", "RPK", "PACKETS",
	       "SHARE/S", "BUFFER", "BEYOND-RPK", "SHORTAGES", "STARVED");
	for (size_t i = 0; i < st->n_sas; i++) {
		const struct qki_sa_status *s = &st->sas[i];
		char level[24], buf[24];
		snprintf(level, sizeof(level), "%u/%u", s->level, s->capacity);
		if (s->dp_capacity)
			snprintf(buf, sizeof(buf), "%u/%u", s->dp_level, s->dp_capacity);
		else
			snprintf(buf, sizeof(buf), "-");
		printf("%08x %-3s %-12s %9s %9u %10llu %10s %10s %8u %12llu %10s %7s %10llu %9llu "
		       "%8llu\n", s->spi, qkictl_dir(s->dir), s->peer, level, s->next_epoch,
		       (unsigned long long)s->keys_out,
		       qkictl_rate(s->drain_rate_milli, dr, sizeof(dr)),
		       qkictl_rate(s->pkt_rate_milli, pr, sizeof(pr)), s->dp_rpk ? s->dp_rpk : s->rpk,
		       (unsigned long long)s->packets, qkictl_rate(s->share_milli, sh, sizeof(sh)), buf,
		       (unsigned long long)s->beyond_rpk, (unsigned long long)s->episodes,
		       (unsigned long long)s->starved);
	}
}

int status_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_status *st = NULL;
	struct qki_error err = { 0 };
	const char *peer = NULL;
	int r;

	if ((r = qkictl_usage(argc, argv, argc <= 2, "[PEER]",
				"Shows every peer (or one): role, peer link, KME state, key pool, key rates in\n"
				"and out, IKE keys ready, dropped peer messages, and every SA: buffer level,\n"
				"next epoch, keys handed out, drain rate, packet rate, rpk, fair share, the\n"
				"datapath's key buffer, packets beyond rpk, key shortages, starvation.\n")) >= 0)
		return r;
	if (argc == 2)
		peer = argv[1];
	c = qkictl_connect();
	if (!c)
		return 1;
	r = qki_status(c, peer, &st, &err);
	qki_client_close(c);
	if (r) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		return 1;
	}
	printf("qkid %s, up %llus, rpk bounds [%u, %u], %zu peer(s), %zu SA(s)\n", st->version,
	       (unsigned long long)st->uptime_s, st->rpk_min, st->rpk_max, st->n_peers, st->n_sas);
	if (st->keys_slots)
		printf("key memory: %u of %u keys in use\n", st->keys_held, st->keys_slots);
	for (size_t i = 0; i < st->n_peers; i++) {
		printf("\n");
		qkictl_print_peer(&st->peers[i]);
	}
	if (st->n_sas)
		printf("\n");
	qkictl_print_sas(st);
	qki_status_free(st);
	return 0;
}
