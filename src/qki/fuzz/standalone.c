/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A main() for the libFuzzer entry points when libFuzzer is not there (gcc, make check):
 *   fuzz_X FILE...     run each file once (a corpus or a crash reproducer)
 *   fuzz_X             run built-in seeds and a fixed number of deterministic mutations
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
extern const char *const fuzz_seeds[];
extern const size_t fuzz_seed_count;

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

int main(int argc, char **argv)
{
	static uint8_t buf[1 << 17];
	unsigned seed = 0x9e3779b9;
	long iterations = getenv("FUZZ_ITERATIONS") ? atol(getenv("FUZZ_ITERATIONS")) : 20000;

	if (argc > 1) {
		for (int i = 1; i < argc; i++) {
			FILE *f = fopen(argv[i], "rb");
			size_t n;
			if (!f) {
				perror(argv[i]);
				return 1;
			}
			n = fread(buf, 1, sizeof(buf), f);
			fclose(f);
			LLVMFuzzerTestOneInput(buf, n);
		}
		return 0;
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
	printf("%ld inputs, no crash\n", iterations);
	return 0;
}
