/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keys.c - window keys of rotating SAs, between the loop and the key provider helper: prefetch
 * (ask for the windows an SA will need before it needs them), delivery into the SA's key ring,
 * and the SA's open / rate advice / close notices. Runs on the loop thread.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dp.h"
#include "keys.h"

static void kp_fill(struct iq_kp_req *rq, enum iq_kp_type type, const struct iq_sa *sa)
{
	memset(rq, 0, sizeof(*rq));
	rq->type = type;
	rq->uid = sa->uid;
	rq->sa.spi = sa->spi;
	rq->sa.inbound = sa->inbound;
	rq->sa.rpk_min = sa->rot.rpk_min;
	rq->sa.rpk_max = sa->rot.rpk_max;
	snprintf(rq->peer, sizeof(rq->peer), "%s", sa->peer);
}

/* Post a KP_GET or KP_PEEK for window keys [first, first + count), with the CHILD_SA key
 * material the helper derives them with; false when the request ring is full. */
static bool post_window_keys(struct iq_dp *dp, struct iq_sa *sa, enum iq_kp_type type,
							 uint32_t first, uint32_t count)
{
	struct iq_kp_req rq;
	bool posted;

	kp_fill(&rq, type, sa);
	rq.first = first;
	rq.count = count;
	memcpy(rq.salt, sa->rot.hkdf_salt, sa->rot.hkdf_salt_len);
	rq.salt_len = sa->rot.hkdf_salt_len;
	rq.key_len = sa->rot.key_len;
	if (type == KP_GET)
		rq.have_end = first + iq_rot_held(&sa->rot, first);
	posted = iq_kp_post(dp->kp, &rq);
	OPENSSL_cleanse(rq.salt, sizeof(rq.salt));
	return posted;
}

void iq_keys_prefetch(struct iq_dp *dp)
{
	struct iq_sa *sa;

	if (!dp->kp)
		return;
	dp->keys_check = false;
	for (sa = dp->sas; sa; sa = sa->next) {
		uint32_t first, count;

		if (!sa->rot.enabled)
			continue;
		/* catching up (rotation.h): a look at the provider's keys, nothing released. If
		 * the ring is full, the far packets that keep coming make the next one. */
		count = iq_rot_peek(&sa->rot, dp->now_ms, &first);
		if (count)
			post_window_keys(dp, sa, KP_PEEK, first, count);
		count = iq_rot_want(&sa->rot, dp->now_ms, &first);
		if (!count)
			continue;
		if (!post_window_keys(dp, sa, KP_GET, first, count)) {
			/* ring full: ask again on the next round */
			sa->rot.requested_end = first;
			sa->rot.key_requests--;
			dp->keys_check = true;
		}
	}
}

/* A KP_GET answer: window keys from d->epoch, or why they are not there. */
static void take_window_keys(struct iq_dp *dp, struct iq_sa *sa, const struct iq_kp_done *d)
{
	if (d->status == 0) {
		dp->st.keys_delivered++;
		if (d->key_len == sa->rot.key_len)
			iq_rot_store(&sa->rot, d->epoch, d->key);
		return;
	}
	if (d->partial) {
		iq_rot_failed(&sa->rot, d->epoch, d->count, dp->now_ms, true);
		return;
	}
	dp->st.key_failures++;
	iq_rot_failed(&sa->rot, d->epoch, d->count, dp->now_ms, false);
	/* nothing arrived when keys were asked for: the supply stopped (a KME outage shows here
	 * first); the rpk loop takes it as its measured arrivals at once (economy.c) */
	sa->econ.arrivals = 0;
	if (sa->rot.key_failures == 1 || sa->rot.key_failures % 100 == 0)
		iq_log(dp, IQ_LOG_ERROR, "SA %08x %s: window keys from %u not available "
			   "(%s; %llu failures)", sa->spi, sa->inbound ? "in" : "out",
			   d->epoch, d->msg, (unsigned long long)sa->rot.key_failures);
	/* The provider lost these epochs for good (qkid restarted and wiped them):
	 * no retry brings them back, so ask for a rekey, which starts the SA
	 * afresh at epoch 0 of new SPIs. Until then the exhaustion policy holds. */
	if (d->status == -ESTALE && !sa->soft_fired && dp->cfg.expire) {
		sa->soft_fired = true;
		iq_log(dp, IQ_LOG_ERROR, "SA %08x %s: window keys are gone at the key "
			   "provider; asking for a rekey of the SA", sa->spi,
			   sa->inbound ? "in" : "out");
		dp->cfg.expire(dp->cfg.user, sa->reqid, sa->spi, &sa->dst, false);
	}
}

/* A KP_REPORT answer: the SA's fair share of the key supply, the rpk loop's feed-forward
 * (economy.c). The loop owns rpk. */
static void take_report(struct iq_sa *sa, const struct iq_kp_done *d)
{
	if (d->status == 0) {
		sa->econ.share_milli = d->ans.share_milli;
		sa->econ.provider_capacity = d->ans.capacity;
		sa->econ.share_known = true;
	}
}

void iq_keys_take(struct iq_dp *dp, bool ack)
{
	struct iq_kp_done d;

	if (ack)
		iq_kp_ack(dp->kp);
	while (iq_kp_take(dp->kp, &d)) {
		struct iq_sa *sa = iq_sad_by_uid(dp, d.uid);

		if (!sa || !sa->rot.enabled) {
			OPENSSL_cleanse(&d, sizeof(d));
			continue;
		}
		switch (d.type) {
		case KP_GET:
			take_window_keys(dp, sa, &d);
			break;
		case KP_PEEK:
			/* candidates only: the window moves when a packet authenticates under one */
			if (d.status == 0 && d.key_len == sa->rot.key_len)
				iq_rot_store_peeked(&sa->rot, d.epoch, d.key);
			break;
		case KP_REPORT:
			take_report(sa, &d);
			break;
		case KP_OPEN:
			iq_log(dp, IQ_LOG_ERROR, "SA %08x: key provider refused the SA: %s", sa->spi,
				   d.msg);
			break;
		default:
			break;
		}
		OPENSSL_cleanse(&d, sizeof(d));
	}
}

/* A drain can run through dozens of windows (64 TUN reads of up to 48 segments each): ask for
 * keys as soon as a window moves and take what arrived, without leaving the batch. Both are
 * cheap when there is nothing to do (a flag, one atomic load). */
void iq_keys_between_packets(struct iq_dp *dp)
{
	if (!dp->kp)
		return;
	if (dp->keys_check)
		iq_keys_prefetch(dp);
	iq_keys_take(dp, false);
}

/* an SA notice without payload (KP_OPEN, KP_CLOSE) */
static void notify(struct iq_dp *dp, struct iq_sa *sa, enum iq_kp_type type)
{
	if (dp->kp && sa->rot.enabled) {
		struct iq_kp_req rq;
		kp_fill(&rq, type, sa);
		iq_kp_post(dp->kp, &rq);
	}
}

void iq_keys_open(struct iq_dp *dp, struct iq_sa *sa)
{
	notify(dp, sa, KP_OPEN);
}

void iq_keys_close(struct iq_dp *dp, struct iq_sa *sa)
{
	notify(dp, sa, KP_CLOSE);
}

void iq_keys_report(struct iq_dp *dp, struct iq_sa *sa)
{
	if (dp->kp && sa->rot.enabled) {
		struct iq_kp_req rq;
		kp_fill(&rq, KP_REPORT, sa);
		rq.sa.packets = sa->packets;
		rq.sa.bytes = sa->bytes;
		rq.sa.rpk = sa->inbound ? 0 : sa->rot.rpk;
		rq.sa.level = iq_rot_keys_ready(&sa->rot);
		rq.sa.capacity = sa->rot.lookahead;
		rq.sa.windows = sa->rot.windows;
		rq.sa.beyond_rpk = sa->rot.reuse_packets;
		rq.sa.stall_drops = sa->rot.stall_drops;
		rq.sa.episodes = sa->econ.episodes;
		iq_kp_post(dp->kp, &rq);
	}
}
