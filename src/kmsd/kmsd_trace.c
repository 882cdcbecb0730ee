/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_trace.c - TEST BUILD ONLY (-DKMSD_TEST_BUFFER_TRACE, the qkd-kmsd-trace program of make
 * check): a hex line for every buffer the relay handles, appended to the file named by the
 * environment variable KMSD_BUFFER_TRACE, so a test can prove that no relay node ever holds a
 * relayed key in clear. It writes key material to a file by design: never in the normal build
 * (kmsd.h makes kmsd_trace a no-op there, and this file is not part of qkd-kmsd).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#ifdef KMSD_TEST_BUFFER_TRACE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "etsi014_codec.h"

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;

void kmsd_trace(struct kmsd_node *n, const char *what, const uint8_t *key_id, const uint8_t *buf,
		size_t len)
{
	const char *path = getenv("KMSD_BUFFER_TRACE");
	char id[ETSI014_KEY_ID_LEN + 1] = "-";
	FILE *f;
	size_t i;
	int fd;

	if (!path || !buf)
		return;
	if (key_id)
		etsi014_uuid_format(key_id, id);
	pthread_mutex_lock(&trace_lock);
	fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "a") : NULL;
	if (f) {
		fprintf(f, "%s %s %s ", n ? n->cfg->kme_id : "-", what, id);
		for (i = 0; i < len; i++)
			fprintf(f, "%02x", buf[i]);
		fputc('\n', f);
		fclose(f);
	} else if (fd >= 0) {
		close(fd);
	}
	pthread_mutex_unlock(&trace_lock);
}
#endif
