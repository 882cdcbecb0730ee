/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_supply.h - the master's measure of its KME's key supply: the SA shares' input.
 *
 * qkid fetches only what its pool and the SA buffers lack, so its intake says what the SAs use,
 * not what the QKD link makes. The KME tells the rest: once a second qkid asks it for its status
 * (ETSI GS QKD 014 "Get status"), and between two answers the keys the link made available to us
 * are the keys qkid took plus the change of the KME's stored_key_count. That is a measurement, at
 * the KME, of the supply in both directions: a slower link shows within two status answers
 * although the KME still has stored keys, a faster one likewise, without waiting for a 503.
 *
 * Where it cannot measure, it says so and qkid keeps its older rules (qkid_peer.c, rates()):
 * - a full store: the KME pauses generation (or discards keys), so stored_key_count no longer
 *   grows with the link; the supply is then at least what is stored, and every SA may have its
 *   demand (qkid_sa_shares), which drains the store below full and makes it measurable again;
 * - for QKID_SUPPLY_LIMITED_HOLD_MS after a second in which the KME could not give what qkid
 *   asked (503, an outage), that second's intake is the supply: the stored count is then near 0
 *   and says nothing, and for a relayed key (metro) a later hop, not the first link whose store
 *   the status shows, may be the limit. But no more than the measured supply: in the second
 *   that emptied a store, the intake is the store, not the link.
 */
#ifndef QKID_SUPPLY_H
#define QKID_SUPPLY_H

#include <stdint.h>

#define QKID_SUPPLY_PROBE_MS 1000       /* one status request a second */
#define QKID_SUPPLY_STALE_MS 3500       /* a generation figure older than this is not used */
#define QKID_SUPPLY_LIMITED_HOLD_MS 5000
#define QKID_SUPPLY_MIN_SPAN_MS 500     /* shorter spans between answers: too few keys to tell */

struct qkid_supply {
	int64_t probe_next;     /* when the next status request is due */
	/* the last status answer */
	int sampled;
	int64_t t;
	double stored;          /* stored_key_count in qkid's keys (its key size, not the KME's) */
	uint64_t keys_in;       /* qkid's intake counter at that answer */
	int full;               /* stored within a fetch of max_key_count: generation may pause */
	/* the measurement */
	double gen;             /* keys/s the link made available to us */
	int64_t gen_t;          /* when gen was last measured; 0: never */
	int64_t limited_t;      /* the end of the last second the KME was short; 0: never */
	uint64_t samples, unusable;
};

/* Start: the first status request QKID_SUPPLY_PROBE_MS after now. */
void qkid_supply_init(struct qkid_supply *s, int64_t now);
/* 1 if a status request is due (master only; the caller checks the role and the KME state). */
int qkid_supply_probe_due(const struct qkid_supply *s, int64_t now);
void qkid_supply_probe_sent(struct qkid_supply *s, int64_t now);
/* A status answer at now: stored and max in blocks of kme_bits, keys_in qkid's intake counter
 * (keys of key_bits). A count that makes no sense (stored above max, a key size of 0) ends the
 * current measurement: the next answer starts a new one. */
void qkid_supply_status(struct qkid_supply *s, int64_t now, uint64_t keys_in, unsigned stored,
			unsigned max, unsigned kme_bits, unsigned key_bits, unsigned batch);
/* The supply estimate for the rate sample ending at now: limited (the KME was short in it) and
 * in (that sample's intake, keys/s) as qkid_peer.c's rates() has them, old its current
 * estimate. */
double qkid_supply_estimate(struct qkid_supply *s, double old, double in, int limited,
			    int64_t now);
/* 1 while the last measurement of the supply is fresh enough to use (QKID_SUPPLY_STALE_MS) */
int qkid_supply_measured(const struct qkid_supply *s, int64_t now);
/* 1 while the last answer showed a full store (generation may be paused: not measurable). */
int qkid_supply_store_full(const struct qkid_supply *s, int64_t now);

#endif
