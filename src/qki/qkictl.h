/* SPDX-License-Identifier: GPL-2.0-or-later */
/* qkictl.h - shared bits of the qkictl subcommands (one *_main per file, like wireguard-tools). */
#ifndef QKICTL_H
#define QKICTL_H

#include <stdint.h>
#include <stdio.h>

#include "qki_client.h"

extern const char *PROG_NAME;

/* Socket path from -s or $QKID_SOCKET or the default; connects or prints why and returns NULL. */
struct qki_client *qkictl_connect(void);
void qkictl_set_socket(const char *path);
/* "12.345" from a x1000 fixed-point rate */
const char *qkictl_rate(uint64_t milli, char *buf, size_t size);
const char *qkictl_role(uint8_t role);
const char *qkictl_link(uint8_t link);
const char *qkictl_kme(uint8_t kme);
const char *qkictl_dir(uint8_t dir);
int qkictl_parse_sa(const char *spi, const char *dir, uint32_t *spi_out, enum qki_dir *dir_out);
int qkictl_help_requested(int argc, char *argv[]);
/* The usage of a subcommand: "Usage: qkictl CMD ARGS" and TEXT, on stdout for --help, on stderr
 * when the arguments are wrong (args_ok = 0). Returns -1 to go on, else the exit status. */
int qkictl_usage(int argc, char *argv[], int args_ok, const char *args, const char *text);

int status_main(int argc, char *argv[]);
int sas_main(int argc, char *argv[]);
int peers_main(int argc, char *argv[]);
int flush_main(int argc, char *argv[]);
int resync_main(int argc, char *argv[]);
int rpk_main(int argc, char *argv[]);
int version_main(int argc, char *argv[]);

#endif
