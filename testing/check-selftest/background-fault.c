// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A deliberately faulty daemon for scripts/check's self-test
 * (testing/tests/03-check-sanitize-background.sh), never part of the build: the self-test
 * compiles it with the sanitizers into a directory of its own.
 *
 * background-fault PIDFILE fault|clean
 *
 * It goes into the background as our daemons do (the parent writes the child's pid and returns
 * 0 at once), then, a second later, reads a heap block after freeing it ("fault") or before
 * ("clean"). The read changes nothing the caller can see: only AddressSanitizer, which writes a
 * report into its log_path and aborts the daemon, tells the two apart.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	volatile char *block;
	volatile char seen;
	FILE *f;
	pid_t pid;
	int fault;

	if (argc != 3 || (strcmp(argv[2], "fault") && strcmp(argv[2], "clean"))) {
		fprintf(stderr, "usage: %s PIDFILE fault|clean\n", argv[0]);
		return 2;
	}
	fault = strcmp(argv[2], "fault") == 0;
	pid = fork();
	if (pid < 0) {
		perror("fork");
		return 1;
	}
	if (pid > 0) {
		f = fopen(argv[1], "w");
		if (!f || fprintf(f, "%d\n", (int)pid) < 0 || fclose(f)) {
			perror(argv[1]);
			return 1;
		}
		return 0;
	}
	setsid();
	sleep(1);	/* the fault comes after the start returned, as a daemon's would */
	block = malloc(16);
	if (!block)
		return 1;
	block[0] = 1;
	if (fault) {
		free((void *)block);
		seen = block[0];
	} else {
		seen = block[0];
		free((void *)block);
	}
	(void)seen;
	return 0;
}
