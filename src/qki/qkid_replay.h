/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_replay.h - receive sequence check of the peer link.
 *
 * Sequence numbers start at 1 per session (0 is never valid). The link is one TCP stream, which
 * delivers in order and loses nothing, so the only valid number is the previous one plus one.
 * A lower number is a replay (the message is dropped). A higher one means messages were lost on
 * the way (a dropped ASSIGN, ACK or STALE would leave the two qkids disagreeing about keys), so
 * the caller tears the link down and the handshake starts a session both sides agree on.
 */
#ifndef QKID_REPLAY_H
#define QKID_REPLAY_H

#include <stdint.h>

enum qkid_seq_verdict {
	QKID_SEQ_NEXT = 0,      /* previous + 1: accept */
	QKID_SEQ_OLD,           /* 0 or not above the previous: replay */
	QKID_SEQ_GAP,           /* above previous + 1: messages lost */
};

struct qkid_replay {
	uint64_t last;          /* last accepted, 0 = none yet */
};

void qkid_replay_reset(struct qkid_replay *w);
/* What seq is relative to the last accepted number. Does not record it. */
enum qkid_seq_verdict qkid_replay_check(const struct qkid_replay *w, uint64_t seq);
/* Record seq as accepted (call only for QKID_SEQ_NEXT, after the message authenticated). */
void qkid_replay_update(struct qkid_replay *w, uint64_t seq);

#endif
