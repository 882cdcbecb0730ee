/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A main() for the libFuzzer entry points of every harness when libFuzzer is not there (gcc,
 * make check). Each harness defines LLVMFuzzerTestOneInput and its built-in seeds (fuzz_seeds).
 *
 *   fuzz_X FILE|DIR...  run each file (every regular file of a directory) once: a corpus or a
 *                       crash reproducer
 *   fuzz_X              replay the harness's corpus, $FUZZ_CORPUS/<harness>/ when FUZZ_CORPUS is
 *                       set (make check sets it to the folder's fuzz/corpus), then the built-in
 *                       seeds plus a fixed number of deterministic mutations (FUZZ_ITERATIONS,
 *                       default 20000)
 *
 * The same harness sources build with clang -fsanitize=fuzzer for real fuzzing (scripts/fuzz).
 */
#include <dirent.h>
#include <libgen.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const fuzz_seeds[];
extern const size_t fuzz_seed_count;

#define INPUT_MAX (1 << 17)

static int unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (s[0] && s[1] && n < cap) {
		unsigned v;
		if (s[0] == ' ') {
			s++;
			continue;
		}
		if (sscanf(s, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return (int)n;
}

/* Run one file; returns -1 if it cannot be read. */
static int run_file(const char *path, uint8_t *buf)
{
	FILE *f = fopen(path, "rb");
	size_t n;

	if (!f) {
		perror(path);
		return -1;
	}
	n = fread(buf, 1, INPUT_MAX, f);
	fclose(f);
	LLVMFuzzerTestOneInput(buf, n);
	return 0;
}

/* Run a file, or every regular file of a directory; returns the number of inputs, -1 on error. */
static long run_path(const char *path, uint8_t *buf)
{
	struct stat st;
	struct dirent *de;
	char file[4096];
	long count = 0;
	DIR *d;

	if (stat(path, &st) != 0) {
		perror(path);
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return run_file(path, buf) == 0 ? 1 : -1;
	d = opendir(path);
	if (!d) {
		perror(path);
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(file, sizeof(file), "%s/%s", path, de->d_name);
		if (stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
			if (run_file(file, buf) != 0) {
				closedir(d);
				return -1;
			}
			count++;
		}
	}
	closedir(d);
	return count;
}

int main(int argc, char **argv)
{
	static uint8_t buf[INPUT_MAX];
	unsigned seed = 0x9e3779b9;
	const char *env = getenv("FUZZ_ITERATIONS"), *corpus = getenv("FUZZ_CORPUS");
	long iterations = env ? atol(env) : 20000, replayed = 0;

	if (argc > 1) {
		for (int i = 1; i < argc; i++)
			if (run_path(argv[i], buf) < 0)
				return 1;
		return 0;
	}
	if (corpus && *corpus) {
		char dir[4096];
		snprintf(dir, sizeof(dir), "%s/%s", corpus, basename(argv[0]));
		replayed = run_path(dir, buf);
		if (replayed < 0) {
			fprintf(stderr, "corpus %s missing: every harness keeps one in the repository\n",
				dir);
			return 1;
		}
	}
	for (long it = 0; it < iterations; it++) {
		const char *s = fuzz_seeds[(size_t)it % fuzz_seed_count];
		int n = s[0] == '=' ? (int)strlen(s + 1) : unhex(s, buf, sizeof(buf));
		if (s[0] == '=')
			memcpy(buf, s + 1, (size_t)n);
		/* a few random byte flips, truncations and extensions per run */
		for (int m = 0; it && m < 1 + rand_r(&seed) % 4; m++) {
			int what = rand_r(&seed) % 4;
			if (what == 0 && n)
				buf[rand_r(&seed) % n] ^= (uint8_t)(1 << (rand_r(&seed) % 8));
			else if (what == 1 && n)
				buf[rand_r(&seed) % n] = (uint8_t)rand_r(&seed);
			else if (what == 2 && n)
				n = rand_r(&seed) % n;
			else if (n < (int)sizeof(buf) - 8)
				for (int k = 0; k < 4; k++)
					buf[n++] = (uint8_t)rand_r(&seed);
		}
		LLVMFuzzerTestOneInput(buf, (size_t)n);
	}
	printf("%ld corpus inputs and %ld mutated seeds, no crash\n", replayed, iterations);
	return 0;
}
