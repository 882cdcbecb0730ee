/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipseq_util.h - helpers every component of the suite needs (libipseq): wiping memory that held
 * key material, growing such a buffer without leaving a copy behind, and a monotonic clock.
 */
#ifndef IPSEQ_UTIL_H
#define IPSEQ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wipe memory in a way the compiler does not remove. p may be NULL. */
void ipseq_wipe(void *p, size_t n);

/* Grow a buffer that may hold key material to at least need bytes (capacity doubling from
 * first_cap): a new allocation takes the used bytes, the old one is wiped and freed (never
 * realloc, which would leave a copy behind). Returns the buffer and updates *cap, or returns
 * NULL and leaves buf and *cap as they were. buf is returned as it is if it is large enough. */
void *ipseq_grow_wiped(void *buf, size_t *cap, size_t used, size_t need, size_t first_cap);

/* Milliseconds on CLOCK_MONOTONIC: for timeouts and lifetimes that must not jump with the wall
 * clock. */
uint64_t ipseq_now_ms(void);

#endif
