/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rpkctl.c - the rpk control loop (the law and why: rpkctl.h). Pure: no clock, no I/O. */
#include <math.h>

#include "rpkctl.h"

void iq_rpkctl_init(struct iq_rpkctl *c, uint32_t rpk_min, uint32_t rpk_max, uint32_t capacity)
{
	*c = (struct iq_rpkctl){
		.rpk_min = rpk_min,
		.rpk_max = rpk_max,
		.capacity = capacity,
		.target = capacity / 2.0,
		.rpk = rpk_min,
	};
}

uint32_t iq_rpkctl_step(struct iq_rpkctl *c, const struct iq_rpkctl_in *in)
{
	double e, s = in->share, use, want, got, lo, kp, ki;

	if (!(in->dt > 0) || !(s >= 0))
		return c->rpk;
	/* B* within what the buffer can hold (rpkctl.h) */
	c->target = (in->held_max && in->held_max < c->capacity ? in->held_max : c->capacity) / 2.0;
	e = in->level - c->target;
	/* a positive integral says keys come faster than the share; a buffer below its target
	 * says they do not (any more): forget it at once. It is what spends a store the KME
	 * filled faster than the share, and unwinding it at ki let the end of such a store empty
	 * the buffer at 391 keys/s (0.1 s of reserve; bench keys at 0 km, 2026-12-03) */
	if (e < 0 && c->integ > 0)
		c->integ = 0;
	/* the supply fell and keys arrive slower than the share says: believe the arrivals (the
	 * share is a once-a-second average; lumpy arrivals stay above IQ_RPK_ARRIVALS of it, and
	 * below IQ_RPK_ARRIVALS_MIN too few keys arrive in a time constant to tell) */
	if (s >= IQ_RPK_ARRIVALS_MIN && in->level < c->target && in->arrivals < s * IQ_RPK_ARRIVALS)
		s = fmax(0, in->arrivals);
	/* idle: the next burst may come at any rate; it finds rpk_max (rpkctl.h) */
	c->idle = in->pps >= 1 ? 0 : c->idle + in->dt;
	if (c->idle >= IQ_RPK_IDLE) {
		c->pps = 0;
		c->integ = 0;
		c->rpk = c->rpk_max;
		return c->rpk;
	}
	/* a rise of the packet rate counts at once, a fall slowly: bursts find rpk up already */
	if (in->pps >= c->pps)
		c->pps = in->pps;
	else
		c->pps += (in->pps - c->pps) * fmin(1, in->dt / IQ_RPK_TAU_DOWN);
	if (c->pps < 1)
		return c->rpk;          /* idle: nothing to steer; keep the rpk for the next burst */

	/* the gain: KP, but at a low supply no more than moves use by KP_REL * s when the buffer
	 * is empty or double the target (keys arrive in lumps of a KME fetch, whose sawtooth in
	 * the level must not swing rpk by more than that); KI scaled by the square keeps the
	 * poles' ratio */
	kp = fmin(IQ_RPK_KP, IQ_RPK_KP_REL * s / c->target);
	ki = IQ_RPK_KI * (kp / IQ_RPK_KP) * (kp / IQ_RPK_KP);
	use = s + kp * e + c->integ;
	lo = c->pps / c->rpk_max;   /* the fewest keys/s the SA can use */
	c->saturated = use < lo;
	want = use > 0 ? c->pps / use : c->rpk_max;
	/* bounds, then falling rpk (spending keys faster) at most IQ_RPK_FALL per 100 ms */
	got = fmax(c->rpk_min, fmin(c->rpk_max, want));
	got = fmax(got, c->rpk * pow(IQ_RPK_FALL, in->dt / 0.1));
	/* integrate unless the output is held (bound, rate limit) against the error's push:
	 * no wind-up */
	if (!((e < 0 && got < want) || (e > 0 && got > want)))
		c->integ = fmax(-s * IQ_RPK_IMAX, fmin(s * IQ_RPK_IMAX, c->integ + ki * e * in->dt));
	if (fabs(got - c->rpk) >= c->rpk * IQ_RPK_HYST || got == c->rpk_min || got == c->rpk_max)
		c->rpk = (uint32_t)lround(got);
	return c->rpk;
}
