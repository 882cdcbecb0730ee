/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "qkid_fair.h"

uint32_t qkid_fair_capacity(uint32_t total, size_t n, uint32_t min, uint32_t max)
{
	uint32_t c = n ? (uint32_t)(total / n) : total;
	if (c < min)
		c = min;
	if (max && c > max)
		c = max;
	return c;
}

uint64_t qkid_fair_join_vtime(struct qkid_fair *const *sas, size_t n)
{
	uint64_t v = UINT64_MAX;
	for (size_t i = 0; i < n; i++)
		if (sas[i]->vtime < v)
			v = sas[i]->vtime;
	return n ? v : 0;
}

/* Seconds until the buffer is empty at its current drain rate; an idle SA never runs dry. */
static double time_to_empty(const struct qkid_fair *s)
{
	if (s->level == 0)
		return 0;
	if (s->drain_rate <= 1e-9)
		return 1e18;
	return s->level / s->drain_rate;
}

long qkid_fair_pick(struct qkid_fair *const *sas, size_t n, uint64_t slack)
{
	uint64_t vmin = UINT64_MAX;
	long best = -1;
	double best_tte = 0;

	for (size_t i = 0; i < n; i++)
		if (sas[i]->level < sas[i]->capacity && sas[i]->vtime < vmin)
			vmin = sas[i]->vtime;
	if (vmin == UINT64_MAX)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct qkid_fair *s = sas[i];
		double tte;
		if (s->level >= s->capacity || s->vtime - vmin > slack)
			continue;
		tte = time_to_empty(s);
		if (best < 0 || tte < best_tte ||
		    (tte == best_tte && s->drain_rate > sas[best]->drain_rate)) {
			best = (long)i;
			best_tte = tte;
		}
	}
	return best;
}

void qkid_fair_shares(const double *demand, size_t n, double supply, double *share)
{
	size_t left = n;
	double rest = supply > 0 ? supply : 0;
	int progress = 1;

	for (size_t i = 0; i < n; i++)
		share[i] = -1;          /* not settled yet */
	/* settle every SA whose demand is below an equal part of what is left; repeat, since each
	 * one settled leaves more for the others (at most n rounds) */
	while (left && progress) {
		double part = rest / left;
		progress = 0;
		for (size_t i = 0; i < n; i++) {
			double d = demand[i] > 0 ? demand[i] : 0;
			if (share[i] >= 0 || d > part)
				continue;
			share[i] = d;
			rest -= d;
			left--;
			progress = 1;
		}
	}
	/* the rest: the SAs that want more share it evenly; if none does, every SA gets an even
	 * part of what nobody wants on top of its demand */
	for (size_t i = 0; i < n; i++) {
		if (left)
			share[i] = share[i] < 0 ? rest / left : share[i];
		else if (n)
			share[i] += rest / n;
	}
}

double qkid_jain_index(const double *x, size_t n)
{
	double sum = 0, sq = 0;
	for (size_t i = 0; i < n; i++) {
		sum += x[i];
		sq += x[i] * x[i];
	}
	if (n == 0 || sq == 0)
		return 1;
	return sum * sum / (n * sq);
}
