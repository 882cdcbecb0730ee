/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

int version_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_error err = { 0 };
	char v[QKI_TEXT_MAX];
	int r;

	if ((r = qkictl_usage(argc, argv, argc == 1, "",
				"Shows qkid's version and the local API protocol version.\n")) >= 0)
		return r;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_version(c, v, sizeof(v), &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	printf("qkid %s, local API protocol %d\n", v, QKI_PROTO_VERSION);
	return 0;
}
