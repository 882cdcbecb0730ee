/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * replay.h - ESP anti-replay window (RFC 4303 3.4.3, Appendix A for ESN) as a ring bitmap
 * (RFC 6479): no shifting, a window advance clears at most the words it passes.
 * Check before decryption, update only after the ICV verified.
 */
#ifndef IQ_REPLAY_H
#define IQ_REPLAY_H

#include <stdbool.h>
#include <stdint.h>

struct iq_replay {
	uint64_t top;        /* highest authenticated sequence number, 0 = none yet */
	uint32_t window;     /* usable window in packets: (nwords - 1) * 64, 0 = disabled */
	uint32_t nwords;     /* power of two */
	uint64_t *bits;      /* nwords words, owned */
};

/** Allocate a window of at least `window` packets (0 = replay checking off). */
int iq_replay_init(struct iq_replay *r, uint32_t window);
void iq_replay_free(struct iq_replay *r);

enum iq_replay_verdict { IQ_REPLAY_OK = 0, IQ_REPLAY_OLD, IQ_REPLAY_SEEN, IQ_REPLAY_ZERO };

/**
 * Reconstruct the full sequence number from the 32 bits on the wire (ESN: RFC 4303 A.2)
 * and check it against the window. Does not modify the window.
 */
enum iq_replay_verdict iq_replay_check(const struct iq_replay *r, uint32_t seq_lo, bool esn,
									   uint64_t *seq);

/** Mark an authenticated sequence number (after iq_replay_check said OK). */
void iq_replay_update(struct iq_replay *r, uint64_t seq);

#endif
