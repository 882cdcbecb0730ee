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
				"Shows the rpk (packets per quantum key) qkid advises for the SA and its inputs:\n"
				"the SA's packet rate, its fair share of the key supply and its buffer level.\n")) >= 0)
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
	printf("SA %08x/%s: rpk %u (bounds [%u, %u])\n", spi, argv[2], a.rpk, a.rpk_min, a.rpk_max);
	printf("  packet rate %s/s, key share %s keys/s, buffer %u/%u\n",
	       qkictl_rate(a.pkt_rate_milli, pr, sizeof(pr)),
	       qkictl_rate(a.key_rate_milli, kr, sizeof(kr)), a.level, a.capacity);
	return 0;
}
