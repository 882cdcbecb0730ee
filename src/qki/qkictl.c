/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkictl - look at and steer qkid, the QKI middleware. Structure as wireguard-tools' wg: a table
 * of subcommands, each in its own file with its own *_main, every one answers --help.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkictl.h"

const char *PROG_NAME = "qkictl";
static const char *socket_path;

static const struct {
	const char *name;
	int (*main)(int argc, char *argv[]);
	const char *description;
} subcommands[] = {
	{ "status", status_main, "Shows peers, key pools, key rates, SA buffers, rpk and errors" },
	{ "peers", peers_main, "Lists the peers with their link and KME state" },
	{ "sas", sas_main, "Lists the registered SAs with their buffer levels and rates" },
	{ "rpk", rpk_main, "Shows the rpk advice for one SA and how it was reached" },
	{ "flush", flush_main, "Wipes the buffered keys of one SA (it continues at fresh epochs)" },
	{ "resync", resync_main, "Drops all keys shared with a peer and resynchronises from scratch" },
	{ "version", version_main, "Shows the daemon's version and protocol" },
};

static void show_usage(FILE *f)
{
	fprintf(f, "Usage: %s [-s SOCKET] <cmd> [<args>]\n\n", PROG_NAME);
	fprintf(f, "Talks to qkid over its local socket (default %s, or $QKID_SOCKET).\n",
		QKI_DEFAULT_SOCKET);
	fprintf(f, "Available subcommands:\n");
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		fprintf(f, "  %s: %s\n", subcommands[i].name, subcommands[i].description);
	fprintf(f, "You may pass `--help' to any of these subcommands to view usage.\n");
}

void qkictl_set_socket(const char *path)
{
	socket_path = path;
}

struct qki_client *qkictl_connect(void)
{
	struct qki_error err = { 0 };
	const char *path = socket_path ? socket_path : getenv("QKID_SOCKET");
	struct qki_client *c = qki_client_connect(path, 5000, &err);
	if (!c)
		fprintf(stderr, "%s: %s\n", PROG_NAME, err.message);
	return c;
}

int qkictl_help_requested(int argc, char *argv[])
{
	return argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
			    !strcmp(argv[1], "help"));
}

int qkictl_usage(int argc, char *argv[], int args_ok, const char *args, const char *text)
{
	int help = qkictl_help_requested(argc, argv);

	if (args_ok && !help)
		return -1;
	fprintf(help ? stdout : stderr, "Usage: %s %s%s%s\n%s", PROG_NAME, argv[0],
		*args ? " " : "", args, text);
	return !help;
}

const char *qkictl_rate(uint64_t milli, char *buf, size_t size)
{
	snprintf(buf, size, "%llu.%03llu", (unsigned long long)(milli / 1000),
		 (unsigned long long)(milli % 1000));
	return buf;
}

const char *qkictl_role(uint8_t role)
{
	return role == QKI_ROLE_MASTER ? "master" : role == QKI_ROLE_SLAVE ? "slave" : "?";
}

const char *qkictl_link(uint8_t link)
{
	return link == QKI_LINK_UP ? "up" : link == QKI_LINK_CONNECTING ? "connecting" : "down";
}

const char *qkictl_kme(uint8_t kme)
{
	return kme == QKI_KME_OK ? "ok" : kme == QKI_KME_BACKOFF ? "backoff" : "not contacted";
}

const char *qkictl_dir(uint8_t dir)
{
	return dir == QKI_DIR_IN ? "in" : dir == QKI_DIR_OUT ? "out" : "?";
}

int qkictl_parse_sa(const char *spi, const char *dir, uint32_t *spi_out, enum qki_dir *dir_out)
{
	char *end;
	unsigned long v;
	errno = 0;
	v = strtoul(spi, &end, 16);
	if (errno || *end || !*spi || v > UINT32_MAX) {
		fprintf(stderr, "%s: bad SPI '%s' (hex, e.g. c0ffee01)\n", PROG_NAME, spi);
		return -1;
	}
	if (!strcmp(dir, "in"))
		*dir_out = QKI_DIR_IN;
	else if (!strcmp(dir, "out"))
		*dir_out = QKI_DIR_OUT;
	else {
		fprintf(stderr, "%s: direction must be 'in' or 'out', not '%s'\n", PROG_NAME, dir);
		return -1;
	}
	*spi_out = (uint32_t)v;
	return 0;
}

int main(int argc, char *argv[])
{
	PROG_NAME = argv[0] && strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : "qkictl";
	if (argc > 2 && !strcmp(argv[1], "-s")) {
		qkictl_set_socket(argv[2]);
		argc -= 2;
		argv += 2;
	}
	if (argc == 1) {
		static char *new_argv[] = { "status", NULL };
		return status_main(1, new_argv);
	}
	if (!strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		show_usage(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(subcommands) / sizeof(subcommands[0]); i++)
		if (!strcmp(argv[1], subcommands[i].name))
			return subcommands[i].main(argc - 1, argv + 1);
	fprintf(stderr, "Invalid subcommand: `%s'\n", argv[1]);
	show_usage(stderr);
	return 1;
}
