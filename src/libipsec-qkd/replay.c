/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "replay.h"

int iq_replay_init(struct iq_replay *r, uint32_t window)
{
	uint32_t need, n = 2;

	memset(r, 0, sizeof(*r));
	if (window == 0)
		return 0;
	need = (window + 63) / 64 + 1;
	while (n < need)
		n <<= 1;
	r->bits = calloc(n, sizeof(uint64_t));
	if (!r->bits)
		return -ENOMEM;
	r->nwords = n;
	r->window = (n - 1) * 64;
	return 0;
}

void iq_replay_free(struct iq_replay *r)
{
	free(r->bits);
	memset(r, 0, sizeof(*r));
}

static uint64_t esn_infer(const struct iq_replay *r, uint32_t seq_lo)
{
	uint32_t th = r->top >> 32, tl = (uint32_t)r->top;
	uint32_t w = r->window ? r->window : (1u << 31); /* no window: accept half the space */

	if (tl >= w - 1) {
		if (seq_lo >= tl - w + 1)
			return ((uint64_t)th << 32) | seq_lo;
		return ((uint64_t)(th + 1) << 32) | seq_lo;
	}
	if (seq_lo >= tl - w + 1 /* wraps below zero */ && th > 0)
		return ((uint64_t)(th - 1) << 32) | seq_lo;
	return ((uint64_t)th << 32) | seq_lo;
}

enum iq_replay_verdict iq_replay_check(const struct iq_replay *r, uint32_t seq_lo, bool esn,
									   uint64_t *seq)
{
	uint64_t s = esn ? esn_infer(r, seq_lo) : seq_lo;
	uint64_t bit;

	*seq = s;
	if (s == 0)
		return IQ_REPLAY_ZERO;
	if (r->window == 0 || s > r->top)
		return IQ_REPLAY_OK;
	if (r->top - s >= r->window)
		return IQ_REPLAY_OLD;
	bit = s & ((uint64_t)r->nwords * 64 - 1);
	if (r->bits[bit >> 6] & (1ull << (bit & 63)))
		return IQ_REPLAY_SEEN;
	return IQ_REPLAY_OK;
}

void iq_replay_update(struct iq_replay *r, uint64_t s)
{
	uint64_t bit, mask = (uint64_t)r->nwords * 64 - 1;

	if (r->window == 0) {
		if (s > r->top)
			r->top = s;
		return;
	}
	if (s > r->top) {
		uint64_t old_word = r->top >> 6, new_word = s >> 6, diff = new_word - old_word;
		uint32_t i;

		if (diff > r->nwords)
			diff = r->nwords;
		/* clear the words the window moved into (they hold bits of sequence numbers that
		 * are now older than the window) */
		for (i = 1; i <= diff; i++)
			r->bits[(old_word + i) & (r->nwords - 1)] = 0;
		r->top = s;
	}
	bit = s & mask;
	r->bits[bit >> 6] |= 1ull << (bit & 63);
}
