/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_supply.c - the master's measure of its KME's key supply from the KME's own stored key
 * count (why, and where it cannot measure: qkid_supply.h). Pure: the caller passes the clock.
 */
#include "qkid.h"
#include "qkid_supply.h"

void qkid_supply_init(struct qkid_supply *s, int64_t now)
{
	*s = (struct qkid_supply){ .probe_next = now + QKID_SUPPLY_PROBE_MS };
}

int qkid_supply_probe_due(const struct qkid_supply *s, int64_t now)
{
	return now >= s->probe_next;
}

void qkid_supply_probe_sent(struct qkid_supply *s, int64_t now)
{
	s->probe_next = now + QKID_SUPPLY_PROBE_MS;
}

void qkid_supply_status(struct qkid_supply *s, int64_t now, uint64_t keys_in, unsigned stored,
			unsigned max, unsigned kme_bits, unsigned key_bits, unsigned batch)
{
	double st, mx, g;
	int full;

	if (!kme_bits || !key_bits || !max || stored > max) {
		s->sampled = 0;
		s->unusable++;
		return;
	}
	st = (double)stored * kme_bits / key_bits;
	mx = (double)max * kme_bits / key_bits;
	full = st + batch >= mx;
	/* made available = taken + stored more; a span that starts or ends at a full store says
	 * nothing (generation may have paused), and a fall beyond what we took means another
	 * consumer of the same store (a shared link): the last figure stays */
	if (s->sampled && !s->full && !full && now - s->t >= QKID_SUPPLY_MIN_SPAN_MS) {
		g = ((double)(keys_in - s->keys_in) + st - s->stored) * 1000.0 / (double)(now - s->t);
		if (g >= 0) {
			s->gen = s->gen_t ? qkid_ewma(s->gen, g) : g;
			s->gen_t = now;
			s->samples++;
		} else {
			s->unusable++;
		}
	}
	s->sampled = 1;
	s->t = now;
	s->stored = st;
	s->keys_in = keys_in;
	s->full = full;
}

int qkid_supply_measured(const struct qkid_supply *s, int64_t now)
{
	return s->gen_t && now - s->gen_t <= QKID_SUPPLY_STALE_MS;
}

double qkid_supply_estimate(struct qkid_supply *s, double old, double in, int limited,
			    int64_t now)
{
	if (limited) {
		/* a second the KME was short: its intake is the supply, unless qkid emptied a
		 * store in it (at 0 km the end of an idle store read 2359 and 3941 keys/s where
		 * the link made 391, the SA's rpk fell to match and its buffer ran dry; bench keys,
		 * 2026-12-03): no more than the link made, if that is measured */
		s->limited_t = now;
		return qkid_supply_measured(s, now) && s->gen < in ? s->gen : in;
	}
	if (qkid_supply_measured(s, now) &&
	    (!s->limited_t || now - s->limited_t >= QKID_SUPPLY_LIMITED_HOLD_MS))
		return s->gen;          /* measured at the KME */
	/* no measurement: the intake is what the SAs use, so only a rise says something */
	return in > old ? qkid_ewma(old, in) : old;
}

int qkid_supply_store_full(const struct qkid_supply *s, int64_t now)
{
	return s->sampled && s->full && now - s->t <= QKID_SUPPLY_STALE_MS;
}
