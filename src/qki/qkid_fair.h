/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_fair.h - the fair-share refill policy for per-SA key buffers (IPSeQ's QKI scheme).
 *
 * Every registered SA gets a buffer of the same capacity. Keys from the pool are handed out one
 * at a time by qkid_fair_pick():
 *  - only SAs whose buffer is below capacity take part;
 *  - among them, an SA may be picked only while it has received at most `slack` keys more than
 *    the least-served SA that also wants keys (virtual time = keys received): this is what keeps
 *    a burst on one SA from starving the others - once the bursting SA is `slack` ahead, the
 *    others are served first, so under scarcity every SA gets an equal share of the supply and
 *    an SA that needs less than that share gets all it needs (max-min fairness);
 *  - within that set, refills go first to the buffer that runs dry soonest (level / drain rate),
 *    i.e. to the buffers draining fastest; ties go to the higher drain rate.
 * An SA that was idle does not bank credit without bound: its need is at most its capacity.
 */
#ifndef QKID_FAIR_H
#define QKID_FAIR_H

#include <stddef.h>
#include <stdint.h>

struct qkid_fair {
	uint32_t level;         /* keys in the buffer */
	uint32_t capacity;      /* buffer size (equal for all SAs of a peer) */
	double drain_rate;      /* keys/s consumed, EWMA */
	uint64_t vtime;         /* keys received since registration (virtual time) */
};

/* Equal buffer size for n SAs sharing `total` keys, within [min, max]. */
uint32_t qkid_fair_capacity(uint32_t total, size_t n, uint32_t min, uint32_t max);

/* New SAs start at the virtual time of the least-served SA, so joining late is no advantage
 * and no handicap. */
uint64_t qkid_fair_join_vtime(struct qkid_fair *const *sas, size_t n);

/* Index of the SA that gets the next key, or -1 if every buffer is full. The caller then does
 * level++ and vtime++ on it. */
long qkid_fair_pick(struct qkid_fair *const *sas, size_t n, uint64_t slack);

/*
 * Max-min fair shares of a supply (keys/s) among n SAs that could use demand[i] keys/s each
 * (water-filling): an SA that wants less than an equal part gets what it wants, the rest is
 * split evenly among the others; what no SA wants is split evenly among all, so every share is
 * at least the SA's demand when the supply covers all demands. share[i] out, sum = supply.
 */
void qkid_fair_shares(const double *demand, size_t n, double supply, double *share);

/* Jain's fairness index of x[0..n-1]: (sum x)^2 / (n * sum x^2), 1 = perfectly even. */
double qkid_jain_index(const double *x, size_t n);

#endif
