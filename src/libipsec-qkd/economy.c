/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * economy.c - the key economy of rotating SAs, on the loop thread every 100 ms: the SA's packet
 * rate, its buffer of window keys and the keys arriving, one step of the rpk control loop of an
 * outbound SA (rpkctl.h: the datapath owns rpk), key shortages (an episode of the exhaustion
 * policy acting, logged once when it starts and once when it is over, and counted), an
 * rpk_trace sample, and once a second the report to the key provider, whose answer (the SA's
 * fair share of the key supply) comes back through keys.c.
 */
#include <math.h>
#include <stdio.h>

#include "economy.h"
#include "keys.h"

static const char *exhaust_name(const struct iq_rot *r)
{
	return r->exhaust == IQ_EXHAUST_STALL ? "stall" : "reuse";
}

/* A shortage: packets went beyond rpk or were dropped for want of the next window key. */
static void shortage(struct iq_dp *dp, struct iq_sa *sa)
{
	struct iq_sa_econ *e = &sa->econ;
	struct iq_rot *r = &sa->rot;
	uint64_t mark = r->reuse_packets + r->stall_drops;

	if (mark != e->short_mark) {
		e->short_mark = mark;
		e->short_last_ms = dp->now_ms;
		if (!e->short_on) {
			e->short_on = true;
			e->short_since_ms = dp->now_ms;
			e->short_beyond0 = r->reuse_packets;
			e->short_stall0 = r->stall_drops;
			e->episodes++;
			if (e->ctl.saturated)
				iq_log(dp, IQ_LOG_ERROR, "SA %08x out: key shortage: the QKD key supply "
					   "cannot keep up even at rpk_max %u (fair share %.1f keys/s, %.1f "
					   "arriving, %.0f packets/s); exhaust = %s holds until keys arrive "
					   "(shortage %llu)", sa->spi, r->rpk_max, e->share_milli / 1000.0,
					   e->arrivals, e->ctl.pps, exhaust_name(r),
					   (unsigned long long)e->episodes);
			else
				iq_log(dp, IQ_LOG_ERROR, "SA %08x out: key shortage: the next window key "
					   "was not there in time (rpk %u of at most %u, %u keys ahead, fair share "
					   "%.1f keys/s, %.0f packets/s); exhaust = %s holds until keys arrive "
					   "(shortage %llu)", sa->spi, r->rpk, r->rpk_max, iq_rot_keys_ready(r),
					   e->share_milli / 1000.0, e->ctl.pps, exhaust_name(r),
					   (unsigned long long)e->episodes);
		}
		return;
	}
	if (e->short_on && dp->now_ms - e->short_last_ms >= IQ_SHORTAGE_QUIET_MS) {
		e->short_on = false;
		iq_log(dp, IQ_LOG_ERROR, "SA %08x out: key shortage %llu over after %.1f s: %llu "
			   "packets sent beyond rpk, %llu dropped for want of a key; rpk %u",
			   sa->spi, (unsigned long long)e->episodes,
			   (e->short_last_ms - e->short_since_ms) / 1000.0,
			   (unsigned long long)(r->reuse_packets - e->short_beyond0),
			   (unsigned long long)(r->stall_drops - e->short_stall0), r->rpk);
	}
}

static void trace(struct iq_dp *dp, struct iq_sa *sa)
{
	const struct iq_rot *r = &sa->rot;
	struct iq_rpk_sample s = {
		.t_ms = dp->now_ms,
		.spi = sa->spi,
		.inbound = sa->inbound,
		.packets = sa->packets,
		.rpk = sa->inbound ? 0 : r->rpk,
		.level = iq_rot_keys_ready(r),
		.target = sa->inbound ? 0 : (uint32_t)sa->econ.ctl.target,
		.keys_stored = r->keys_stored,
		.windows = r->windows,
		.beyond_rpk = r->reuse_packets,
		.stall_drops = r->stall_drops,
		.nokey_drops = r->nokey_drops,
		.share_milli = sa->econ.share_milli,
		.pps_milli = sa->econ.pps_milli,
	};

	dp->cfg.rpk_trace(dp->cfg.user, &s);
}

/* One step of the rpk loop (rpkctl.h) with the SA's measured inputs: the offered packet rate
 * (sent and dropped for want of a key: a stalled SA still wants its packets sent) over the
 * last ~100 ms (five steps), or over the last step when that is higher (a burst counts at
 * once), the keys arriving (filtered), the share, the buffer level. */
static void control(struct iq_dp *dp, struct iq_sa *sa)
{
	struct iq_sa_econ *e = &sa->econ;
	struct iq_rot *r = &sa->rot;
	unsigned old = (e->rate_i + 1) % IQ_ECON_RATE_SLOTS, prev = e->rate_i;
	uint64_t offered = sa->packets + r->stall_drops;
	double dt = (dp->now_ms - e->ctl_ms) / 1000.0, span;
	struct iq_rpkctl_in in = {
		.dt = dt,
		.share = e->share_milli / 1000.0,
		.level = iq_rot_keys_ready(r),
		.held_max = e->provider_capacity,
	};

	if (!e->ctl.rpk_max) {
		iq_rpkctl_init(&e->ctl, r->rpk_min, r->rpk_max, r->lookahead);
		e->ctl_stored = r->keys_stored;
	}
	e->ctl_ms = dp->now_ms;
	e->rate_i = old;
	span = (dp->now_ms - e->rate_at_ms[old]) / 1000.0;
	if (e->rate_at_ms[old] && span > 0)
		in.pps = (offered - e->rate_pkts[old]) / span;
	if (e->rate_at_ms[prev] && dt > 0)
		in.pps = fmax(in.pps, (offered - e->rate_pkts[prev]) / dt);
	e->rate_at_ms[old] = dp->now_ms;
	e->rate_pkts[old] = offered;
	if (!(dt > 0) || dt > 1 || !e->share_known)
		return;                 /* the first step, the loop was idle (measure first), or no
								 * share yet (the test provider has none: rpk stays) */
	if (e->arrivals == 0 && !e->ctl.pps)
		e->arrivals = in.share;     /* no measurement yet: assume the share arrives */
	e->arrivals += ((r->keys_stored - e->ctl_stored) / dt - e->arrivals) *
				   fmin(1, dt / IQ_ARRIVALS_TAU);
	e->ctl_stored = r->keys_stored;
	in.arrivals = e->arrivals;
	e->pps_milli = (uint64_t)(in.pps * 1000);
	r->rpk = iq_rpkctl_step(&e->ctl, &in);
}

void iq_economy_control(struct iq_dp *dp)
{
	struct iq_sa *sa;

	dp->last_econ_ms = dp->now_ms;
	for (sa = dp->sas; sa; sa = sa->next)
		if (sa->rot.enabled && !sa->inbound)
			control(dp, sa);
}

void iq_economy_tick(struct iq_dp *dp, struct iq_sa *sa, bool report)
{
	struct iq_sa_econ *e = &sa->econ;
	uint64_t dt = dp->now_ms - e->tick_ms;

	if (!sa->rot.enabled)
		return;
	if (sa->inbound && e->tick_ms && dt)  /* outbound: the loop measures it (control) */
		e->pps_milli = (sa->packets - e->tick_packets) * 1000000 / dt;
	e->tick_ms = dp->now_ms;
	e->tick_packets = sa->packets;
	if (!sa->inbound)
		shortage(dp, sa);
	if (dp->cfg.rpk_trace)
		trace(dp, sa);
	if (report) {
		e->key_rate_milli = (sa->rot.windows - e->rate_windows) * 1000;
		e->rate_windows = sa->rot.windows;
		iq_keys_report(dp, sa);
	}
}
