/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rpkctl.h - the rpk control loop of an outbound rotating SA (the datapath owns rpk).
 *
 * Plant: the SA's buffer of window keys B (keys held ahead of the current window, at most the
 * lookahead C). Keys arrive at the SA's fair share s of the QKD supply (keys/s); the SA uses
 * r / rpk keys/s at packet rate r. So dB/dt = s - r / rpk, an integrator whose input the loop
 * sets through rpk.
 *
 * Inputs, all measured: r over the last 100 ms (by the datapath, updated every step); s, qkid's
 * max-min fair share of its measured key rate (once a second), or the keys measured arriving
 * when they are fewer while the buffer is below its target (then keys arrive as fast as the
 * provider has them, and after a drop of the supply, e.g. a KME answering 503 or the end of a
 * backlog the KME stored, that is the fresher figure; measured, it was the one that mattered:
 * docs/key-economy.md; keys arrive in lumps of a KME fetch, so shortfalls under 25 % are noise);
 * B, the datapath's key ring, every step. The loop runs once the provider reported a share
 * (qkid does; the test provider has no supply to share, and rpk stays rpk_min).
 *
 * Law, every step of dt = 20 ms, with e = B - B* (keys above the target level B*):
 *   use  = s + kp * e + I,      I += ki * e * dt   (PI on the buffer, s as feed-forward)
 *   kp   = min(KP, KP_REL * s / B*),  ki = KI * (kp / KP)^2
 *   rpk  = r_f / use,           clamped to [rpk_min, rpk_max]
 * where r_f follows a rise of r at once and a fall with a 0.5 s time constant.
 *
 * Why it does not oscillate: with the feed-forward the loop only corrects the error of s; the
 * closed loop dB/dt = -kp e - ki \int e has poles at x^2 + kp x + ki = 0, real for kp^2 >= 4 ki
 * (kp^2 / ki = KP^2 / KI = 6.7 at every supply: poles at -0.18 kp and -0.82 kp, no overshoot;
 * at 20 km, 155 keys/s, kp = 2.4/s: time constants 0.5 s and 2.3 s). Sampled every 20 ms with
 * one step of delay, kp * dt <= 0.08 < 1/4 keeps the discrete poles real as well. The buffer
 * is shallow in time (64 keys are 0.4 s at 155 keys/s, 0.16 s at 391), hence the 20 ms step.
 * At a low supply kp shrinks (keys arrive in lumps of a KME fetch of 16; with the full KP their
 * sawtooth in B would swing rpk by most of s): the loop is slower there, where B* is seconds of
 * use anyway. The integrator stops while the output is held (rpk bound, rate limit) against
 * the error's push (no wind-up) and corrects at most a quarter of s (a backlog the KME stored
 * while the buffer was full is spent faster, but not so much faster that its end empties the
 * buffer). A positive integral is forgotten as soon as the buffer is below its target: it
 * says keys come faster than s, the buffer says they no longer do (unwound at ki instead, the
 * end of a store at 391 keys/s emptied the 0.1 s reserve: bench keys at 0 km, 2026-12-03;
 * test_rpkctl's test_store_end: lowest level 5 keys before, 23 after). rpk may rise at once
 * (protects the buffer) but falls at most to IQ_RPK_FALL per 100 ms (spending faster is never
 * urgent), and a change under IQ_RPK_HYST of the rpk in force is not applied (rpk is fixed per
 * window; smaller moves are noise).
 *
 * Idle (no packet for IQ_RPK_IDLE): the next burst's rate is unknown, so rpk goes to rpk_max
 * and the loop starts afresh (r_f, I at 0); when packets come, the loop lowers rpk at the fall
 * limit above, and the sender ends a window early once rpk is below the packets it holds
 * (rotation.c), so a long window at rpk_max does not outlast the first steps. Before, an idle
 * or new SA stayed at the rpk its falling rate gave, down to rpk_min, and a burst spent the
 * whole buffer before the first step saw it: a new SA at 80 km (10 keys/s) spent its 47 keys
 * within 15 ms at rpk 16, and 36 800 packets went beyond rpk while the link refilled the buffer
 * (bench keys, 2026-12-03).
 *
 * Target: B* = C / 2, where C is the lookahead or, if fewer, the keys the provider lets the SA
 * hold (qkid gives each of n active SAs its part of sa_buffer_total, and counts the keys it
 * handed out until they are released): a target the buffer cannot reach would read as a
 * supply that stopped (no keys arrive because none fit; measured with 5 SAs on one peer, qkid
 * holding 25 per SA under a target of 32: four of them sat at rpk_max). 32 keys at the
 * default lookahead 64: a doubling of the packet rate for
 * B* / s seconds (0.2 s at 20 km fibre, 155 keys/s) finds keys while the loop raises rpk. It
 * costs no keys in steady state (use = s there); the SA leaves at most B* unused keys when it
 * ends, and keys arrive no later for the receiver, which then never waits for the key the
 * sender uses (the sender keeps B* windows of margin).
 */
#ifndef IQ_RPKCTL_H
#define IQ_RPKCTL_H

#include <stdbool.h>
#include <stdint.h>

#define IQ_RPK_KP 4.0           /* 1/s: keys/s of use per key of buffer error, at most */
#define IQ_RPK_KP_REL 0.5       /* and at most this fraction of s at an error of B* */
#define IQ_RPK_KI 2.4           /* 1/s^2 */
#define IQ_RPK_IMAX 0.25        /* the integrator corrects at most this fraction of s */
#define IQ_RPK_ARRIVALS 0.75    /* arrivals below this fraction of the share: the supply fell */
#define IQ_RPK_ARRIVALS_MIN 50  /* keys/s: below, a KME fetch (16 keys) hides a drop for ~1 s */
#define IQ_RPK_TAU_DOWN 0.5     /* s: time constant of a falling packet rate */
#define IQ_RPK_FALL 0.8         /* rpk falls at most to this fraction per 100 ms */
#define IQ_RPK_HYST (1.0 / 32)  /* relative change below which rpk stays */
#define IQ_RPK_IDLE 0.5         /* s without a packet: idle, rpk goes to rpk_max */

struct iq_rpkctl {
	uint32_t rpk_min, rpk_max, capacity;
	double target;          /* B*, keys */
	double pps;             /* r_f, packets/s */
	double integ;           /* I, keys/s */
	uint32_t rpk;           /* in force */
	double idle;            /* s without a packet */
	bool saturated;         /* the last step wanted more than rpk_max: the supply cannot
							 * cover the packet rate even at rpk_max */
};

struct iq_rpkctl_in {
	double dt;              /* s since the last step */
	double pps;             /* packets/s over that time */
	double share;           /* keys/s: the provider's fair share of the supply (0: none,
							 * e.g. its KME is down: rpk goes to rpk_max) */
	double arrivals;        /* keys/s measured arriving (filtered) */
	double level;           /* keys held ahead */
	uint32_t held_max;      /* the most keys the provider lets the SA hold ahead, when fewer
							 * than the capacity (qkid's part of its buffer for the SA;
							 * 0: the capacity) */
};

void iq_rpkctl_init(struct iq_rpkctl *c, uint32_t rpk_min, uint32_t rpk_max, uint32_t capacity);
/* one step: returns the rpk for the windows that start from now on */
uint32_t iq_rpkctl_step(struct iq_rpkctl *c, const struct iq_rpkctl_in *in);

#endif
