/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qkid_replay.h"

void qkid_replay_reset(struct qkid_replay *w)
{
	w->top = 0;
	w->seen = 0;
}

int qkid_replay_check(const struct qkid_replay *w, uint64_t seq)
{
	if (seq == 0)
		return 0;
	if (seq > w->top)
		return 1;
	if (w->top - seq >= QKID_REPLAY_WINDOW)
		return 0;
	return !(w->seen >> (w->top - seq) & 1);
}

void qkid_replay_update(struct qkid_replay *w, uint64_t seq)
{
	if (seq > w->top) {
		uint64_t shift = seq - w->top;
		w->seen = shift >= QKID_REPLAY_WINDOW ? 0 : w->seen << shift;
		w->seen |= 1;
		w->top = seq;
	} else if (w->top - seq < QKID_REPLAY_WINDOW) {
		w->seen |= (uint64_t)1 << (w->top - seq);
	}
}
