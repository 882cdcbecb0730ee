/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

int peers_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_status *st = NULL;
	struct qki_error err = { 0 };
	char in[32], out[32];
	int r;

	if ((r = qkictl_usage(argc, argv, argc == 1, "",
				"One line per peer: name, role, link, KME state, pool level, IKE keys ready,\n"
				"keys in/out per second, KME errors, dropped peer messages.\n")) >= 0)
		return r;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_status(c, NULL, &st, &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	printf("%-12s %-6s %-10s %-13s %6s %4s %10s %10s %7s %6s\n", "PEER", "ROLE", "LINK", "KME",
	       "POOL", "IKE", "SUPPLY/S", "OUT/S", "ERRORS", "DROPS");
	for (size_t i = 0; i < st->n_peers; i++) {
		const struct qki_peer_status *p = &st->peers[i];
		printf("%-12s %-6s %-10s %-13s %6u %4u %10s %10s %7llu %6llu\n", p->name,
		       qkictl_role(p->role), qkictl_link(p->link), qkictl_kme(p->kme),
		       p->pool_level, p->ike_level, qkictl_rate(p->rate_in_milli, in, sizeof(in)),
		       qkictl_rate(p->rate_out_milli, out, sizeof(out)),
		       (unsigned long long)p->errors, (unsigned long long)p->drops);
	}
	qki_status_free(st);
	return 0;
}
