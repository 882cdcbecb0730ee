/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qkid_replay.h"

void qkid_replay_reset(struct qkid_replay *w)
{
	w->last = 0;
}

enum qkid_seq_verdict qkid_replay_check(const struct qkid_replay *w, uint64_t seq)
{
	if (seq == 0 || seq <= w->last)
		return QKID_SEQ_OLD;
	if (seq != w->last + 1)
		return QKID_SEQ_GAP;
	return QKID_SEQ_NEXT;
}

void qkid_replay_update(struct qkid_replay *w, uint64_t seq)
{
	w->last = seq;
}
