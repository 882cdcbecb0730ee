/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

int rpk_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_error err = { 0 };
	struct qki_rpk_advice a;
	uint32_t spi;
	enum qki_dir dir;
	char pr[32], kr[32];
	int r;

	if ((r = qkictl_usage(argc, argv, argc == 3, "SPI in|out",
				"Shows the rpk (packets per quantum key) the SA's datapath uses and the inputs of\n"
				"its control loop: the SA's packet rate, its fair share of the key supply and the\n"
				"window keys it holds ahead; packets beyond rpk and key shortages.\n")) >= 0)
		return r;
	if (qkictl_parse_sa(argv[1], argv[2], &spi, &dir))
		return 1;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_rpk_advice(c, spi, dir, &a, &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	if (a.rpk)
		printf("SA %08x/%s: rpk %u in use by the datapath (qkid.conf bounds [%u, %u])\n", spi,
		       argv[2], a.rpk, a.rpk_min, a.rpk_max);
	else
		printf("SA %08x/%s: no rpk reported (an inbound SA, or no report yet)\n", spi, argv[2]);
	printf("  packet rate %s/s, fair share %s keys/s, datapath buffer %u/%u, qkid buffer %u/%u\n",
	       qkictl_rate(a.pkt_rate_milli, pr, sizeof(pr)),
	       qkictl_rate(a.key_rate_milli, kr, sizeof(kr)), a.dp_level, a.dp_capacity, a.level,
	       a.capacity);
	printf("  packets beyond rpk %llu, key shortages %llu\n", (unsigned long long)a.beyond_rpk,
	       (unsigned long long)a.episodes);
	return 0;
}
