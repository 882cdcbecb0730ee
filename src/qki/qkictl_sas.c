/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

void qkictl_print_sas(const struct qki_status *st);

int sas_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_status *st = NULL;
	struct qki_error err = { 0 };
	int r;

	if ((r = qkictl_usage(argc, argv, argc <= 2, "[PEER]",
				"One line per SA: SPI, direction, peer, buffer level/capacity, next epoch,\n"
				"keys handed out, keys/s used, packets/s, rpk in use, packets, fair share, the\n"
				"datapath's key buffer, packets beyond rpk, key shortages, starvation\n"
				"(key requests that found the buffer empty).\n")) >= 0)
		return r;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_status(c, argc == 2 ? argv[1] : NULL, &st, &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	if (!st->n_sas)
		printf("no SAs\n");
	qkictl_print_sas(st);
	qki_status_free(st);
	return 0;
}
