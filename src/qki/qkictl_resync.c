/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "qkictl.h"

int resync_main(int argc, char *argv[])
{
	struct qki_client *c;
	struct qki_error err = { 0 };
	int r;

	if ((r = qkictl_usage(argc, argv, argc == 2, "PEER",
				"Wipes every key assigned with PEER (SA buffers, IKE stash), starts a new peer\n"
				"session under a new incarnation id so the peer's qkid does the same, and lets\n"
				"all SAs continue at fresh epochs. Keys are never reused by a resync.\n")) >= 0)
		return r;
	if (!(c = qkictl_connect()))
		return 1;
	if (qki_peer_resync(c, argv[1], &err)) {
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
		qki_client_close(c);
		return 1;
	}
	qki_client_close(c);
	printf("peer %s: resync started\n", argv[1]);
	return 0;
}
