/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lifetime.c - SA lifetimes (soft: ask charon for a rekey; hard: delete the SA) and the packet
 * rate per second that rotating SAs report to the key provider. Runs on the loop thread every
 * 100 ms.
 */
#include "dp.h"
#include "economy.h"
#include "keys.h"
#include "lifetime.h"

void iq_lifetime_check(struct iq_dp *dp)
{
	bool rate = dp->now_ms - dp->last_rate_ms >= 1000;
	struct iq_sa *sa, *next;

	dp->last_maint_ms = dp->now_ms;
	if (rate)
		dp->last_rate_ms = dp->now_ms;
	for (sa = dp->sas; sa; sa = next) {
		uint64_t age = (dp->now_ms - sa->installed_ms) / 1000;
		next = sa->next;

		if ((sa->lt.hard_time && age >= sa->lt.hard_time) || iq_sa_hard_limit(sa)) {
			uint32_t reqid = sa->reqid, spi = sa->spi;
			iq_addr_t dst = sa->dst;

			iq_log(dp, IQ_LOG_INFO, "SA %08x hard lifetime reached, deleted", spi);
			/* both limits passed within one period: charon still expects the soft one */
			if (!sa->soft_fired && dp->cfg.expire &&
				(sa->lt.soft_time || sa->lt.soft_packets || sa->lt.soft_bytes))
				dp->cfg.expire(dp->cfg.user, reqid, spi, &dst, false);
			iq_sad_unlink(dp, sa);
			iq_keys_close(dp, sa);
			iq_sa_free(sa);
			if (dp->cfg.expire)
				dp->cfg.expire(dp->cfg.user, reqid, spi, &dst, true);
			continue;
		}
		if (!sa->soft_fired && sa->rot.rekey_due && dp->cfg.expire) {
			/* the epoch space ends (rotation.h): a new SA starts at epoch 0 */
			sa->soft_fired = true;
			iq_log(dp, IQ_LOG_ERROR, "SA %08x out: window %u, the epoch space ends at %u; "
				   "asking for a rekey of the SA", sa->spi, sa->rot.epoch, IQ_EPOCH_LIMIT);
			dp->cfg.expire(dp->cfg.user, sa->reqid, sa->spi, &sa->dst, false);
		}
		if (!sa->soft_fired &&
			((sa->lt.soft_time && age >= sa->lt.soft_time) ||
			 (sa->lt.soft_packets && sa->packets >= sa->lt.soft_packets) ||
			 (sa->lt.soft_bytes && sa->bytes >= sa->lt.soft_bytes))) {
			sa->soft_fired = true;
			if (dp->cfg.expire)
				dp->cfg.expire(dp->cfg.user, sa->reqid, sa->spi, &sa->dst, false);
		}
		if (rate) {
			sa->pps = sa->packets - sa->rate_packets;
			sa->rate_packets = sa->packets;
		}
		iq_economy_tick(dp, sa, rate);
	}
}
