/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_replay.h - sliding anti-replay window for peer-channel sequence numbers.
 *
 * Sequence numbers start at 1 per session (0 is never valid). A number is accepted once, and only
 * if it is above the highest accepted minus the window. TCP delivers in order, so in practice
 * every accepted number is the highest so far; the window keeps the check independent of that.
 */
#ifndef QKID_REPLAY_H
#define QKID_REPLAY_H

#include <stdint.h>

#define QKID_REPLAY_WINDOW 64

struct qkid_replay {
	uint64_t top;           /* highest accepted, 0 = none yet */
	uint64_t seen;          /* bit i: top - i was accepted */
};

void qkid_replay_reset(struct qkid_replay *w);
/* 1 if seq may be accepted (not seen, not too old, not 0), else 0. Does not record it. */
int qkid_replay_check(const struct qkid_replay *w, uint64_t seq);
/* Record seq as accepted (call only after the message authenticated). */
void qkid_replay_update(struct qkid_replay *w, uint64_t seq);

#endif
