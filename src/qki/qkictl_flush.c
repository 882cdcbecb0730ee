/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

int flush_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_error err = { 0 };
	uint32_t spi;
	enum qki_dir dir;
	unsigned wiped = 0;
	int r;

	if ((r = qkictl_usage(argc, argv, argc == 3, "SPI in|out",
				"Wipes every buffered key of the SA on this gateway and tells the peer qkid to\n"
				"do the same; the SA continues at fresh epochs with fresh keys. Use it when an\n"
				"SA's keys are suspected to be out of step (decryption failures at a window).\n")) >= 0)
		return r;
	if (qkictl_parse_sa(argv[1], argv[2], &spi, &dir))
		return 1;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_sa_flush(c, spi, dir, &wiped, &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	printf("SA %08x/%s: %u keys wiped\n", spi, argv[2], wiped);
	return 0;
}
