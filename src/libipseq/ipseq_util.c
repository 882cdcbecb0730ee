/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipseq_util.c - wiping, wiped buffer growth, monotonic milliseconds (see ipseq_util.h). */
#include "ipseq_config.h"
#include "ipseq_util.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

void ipseq_wipe(void *p, size_t n)
{
	/* The volatile function pointer keeps the compiler from proving the store dead. */
	static void *(*const volatile do_memset)(void *, int, size_t) = memset;

	if (p && n)
		do_memset(p, 0, n);
}

void *ipseq_grow_wiped(void *buf, size_t *cap, size_t used, size_t need, size_t first_cap)
{
	size_t c = *cap ? *cap : first_cap;
	void *p;

	if (buf && need <= *cap)
		return buf;
	while (c < need) {
		if (c > SIZE_MAX / 2)
			return NULL;
		c *= 2;
	}
	p = malloc(c);
	if (!p)
		return NULL;
	if (buf) {
		memcpy(p, buf, used);
		ipseq_wipe(buf, *cap);
		free(buf);
	}
	*cap = c;
	return p;
}

uint64_t ipseq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
