/* SPDX-License-Identifier: GPL-2.0-or-later */
/* sad.c - SA database (inbound hash by SPI, list of all) and security policy database. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "dp.h"

bool iq_addr_equal(const iq_addr_t *a, const iq_addr_t *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return false;
	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == b->in4.sin_addr.s_addr;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->in6.sin6_addr, &b->in6.sin6_addr, 16);
	return false;
}

socklen_t iq_addr_len(const iq_addr_t *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

struct iq_sa *iq_sad_in(struct iq_dp *dp, uint32_t spi)
{
	struct iq_sa *sa = dp->in_hash[(spi ^ (spi >> 8) ^ (spi >> 16)) & (IQ_HASH - 1)];

	while (sa && sa->spi != spi)
		sa = sa->hnext;
	return sa;
}

struct iq_sa *iq_sad_find(struct iq_dp *dp, const struct iq_sa_id *id)
{
	struct iq_sa *sa;

	for (sa = dp->sas; sa; sa = sa->next)
		if (sa->spi == id->spi && iq_addr_equal(&sa->dst, &id->dst))
			return sa;
	return NULL;
}

struct iq_sa *iq_sad_by_uid(struct iq_dp *dp, uint64_t uid)
{
	struct iq_sa *sa = dp->uid_hash[uid & (IQ_HASH - 1)];

	while (sa && sa->uid != uid)
		sa = sa->unext;
	return sa;
}

void iq_sad_link(struct iq_dp *dp, struct iq_sa *sa)
{
	sa->uid = ++dp->next_uid;
	sa->next = dp->sas;
	dp->sas = sa;
	sa->unext = dp->uid_hash[sa->uid & (IQ_HASH - 1)];
	dp->uid_hash[sa->uid & (IQ_HASH - 1)] = sa;
	if (sa->inbound) {
		struct iq_sa **h = &dp->in_hash[(sa->spi ^ (sa->spi >> 8) ^ (sa->spi >> 16)) &
										(IQ_HASH - 1)];
		sa->hnext = *h;
		*h = sa;
	}
	dp->sa_gen++;
}

void iq_sad_unlink(struct iq_dp *dp, struct iq_sa *sa)
{
	struct iq_sa **p;

	for (p = &dp->sas; *p; p = &(*p)->next)
		if (*p == sa) {
			*p = sa->next;
			break;
		}
	for (p = &dp->uid_hash[sa->uid & (IQ_HASH - 1)]; *p; p = &(*p)->unext)
		if (*p == sa) {
			*p = sa->unext;
			break;
		}
	if (sa->inbound) {
		for (p = &dp->in_hash[(sa->spi ^ (sa->spi >> 8) ^ (sa->spi >> 16)) & (IQ_HASH - 1)];
			 *p; p = &(*p)->hnext)
			if (*p == sa) {
				*p = sa->hnext;
				break;
			}
	}
	sa->next = sa->hnext = sa->unext = NULL;
	dp->sa_gen++;
}

struct iq_sa *iq_sad_flush(struct iq_dp *dp)
{
	struct iq_sa *sa, *head = NULL, **tail = &head;

	while ((sa = dp->sas)) {
		iq_sad_unlink(dp, sa);
		*tail = sa;
		tail = &sa->next;
	}
	return head;
}

struct iq_sa *iq_sa_prepare(const struct iq_sa_cfg *cfg, iq_err_t *err)
{
	struct iq_sa *sa;
	size_t klen;
	uint32_t window;
	int ret;

	if (cfg->enc_alg != IQ_ENC_AES_GCM_16) {
		iq_seterr(err, "SA %08x: unsupported encryption algorithm %u (only AES-GCM-16)",
				  cfg->spi, cfg->enc_alg);
		return NULL;
	}
	if (!cfg->enc_key || (cfg->enc_key_len != 20 && cfg->enc_key_len != 36)) {
		iq_seterr(err, "SA %08x: AES-GCM key must be 16 or 32 bytes plus a 4-byte salt, got %zu",
				  cfg->spi, cfg->enc_key_len);
		return NULL;
	}
	if (cfg->spi < 256) {
		iq_seterr(err, "SA: SPI %u is reserved", cfg->spi);
		return NULL;
	}
	if ((cfg->src.sa.sa_family != AF_INET && cfg->src.sa.sa_family != AF_INET6) ||
		cfg->src.sa.sa_family != cfg->dst.sa.sa_family) {
		iq_seterr(err, "SA %08x: source and destination must be IPv4 or IPv6 of one family",
				  cfg->spi);
		return NULL;
	}
	if (!cfg->inbound && cfg->dst.in4.sin_port == 0) {
		iq_seterr(err, "SA %08x: outbound SA needs a UDP destination port", cfg->spi);
		return NULL;
	}
	sa = calloc(1, sizeof(*sa));
	if (!sa) {
		iq_seterr(err, "out of memory");
		return NULL;
	}
	klen = cfg->enc_key_len - 4;
	sa->spi = cfg->spi;
	sa->reqid = cfg->reqid;
	sa->inbound = cfg->inbound;
	sa->esn = cfg->esn;
	sa->src = cfg->src;
	sa->dst = cfg->dst;
	sa->sock = cfg->dst.sa.sa_family == AF_INET6 ? 1 : 0;
	sa->mark_value = cfg->mark_value;
	sa->mark_mask = cfg->mark_mask;
	sa->lt = cfg->lifetime;
	if (cfg->peer)
		snprintf(sa->peer, sizeof(sa->peer), "%s", cfg->peer);
	memcpy(sa->child_key, cfg->enc_key, cfg->enc_key_len);
	sa->child_key_len = cfg->enc_key_len;

	ret = iq_aead_init(&sa->aead, !cfg->inbound, cfg->enc_key, klen, cfg->enc_key + klen);
	if (ret) {
		iq_seterr(err, "SA %08x: cipher setup failed (%d)", cfg->spi, ret);
		goto fail;
	}
	window = cfg->replay_window;
	if (window && window < IQ_REPLAY_MIN)
		window = IQ_REPLAY_MIN;
	if (window > IQ_REPLAY_MAX)
		window = IQ_REPLAY_MAX;
	if (cfg->inbound && iq_replay_init(&sa->replay, window)) {
		iq_seterr(err, "out of memory");
		goto fail;
	}
	if (cfg->rotation.enabled) {
		ret = iq_rot_init(&sa->rot, &cfg->rotation, cfg->spi, cfg->inbound, cfg->enc_key,
						  cfg->enc_key_len, sa->replay.window);
		if (ret) {
			iq_seterr(err, "SA %08x: bad rotation settings (rpk_min %u, rpk_max %u)",
					  cfg->spi, cfg->rotation.rpk_min, cfg->rotation.rpk_max);
			goto fail;
		}
		sa->rot_dirty = true;
	}
	return sa;
fail:
	iq_sa_free(sa);
	return NULL;
}

void iq_sa_free(struct iq_sa *sa)
{
	if (!sa)
		return;
	iq_aead_free(&sa->aead);
	iq_replay_free(&sa->replay);
	if (sa->rot.enabled)
		iq_rot_free(&sa->rot);
	OPENSSL_cleanse(sa, sizeof(*sa));
	free(sa);
}

void iq_sa_free_list(struct iq_sa *sa)
{
	struct iq_sa *next;

	for (; sa; sa = next) {
		next = sa->next;
		iq_sa_free(sa);
	}
}

void iq_sa_fill_stats(const struct iq_sa *sa, struct iq_sa_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->bytes = sa->bytes;
	st->packets = sa->packets;
	st->last_use = sa->last_use;
	st->replay_drops = sa->replay_drops;
	st->auth_drops = sa->auth_drops;
	st->policy_drops = sa->policy_drops;
	st->pad_drops = sa->pad_drops;
	if (sa->rot.enabled) {
		st->epoch = sa->rot.epoch;
		st->rpk = sa->inbound ? 0 : sa->rot.rpk;
		st->keys_ready = iq_rot_keys_ready(&sa->rot);
		st->windows = sa->rot.windows;
		st->reuse_packets = sa->rot.reuse_packets;
		st->stall_drops = sa->rot.stall_drops;
		st->nokey_drops = sa->rot.nokey_drops;
		st->epoch_drops = sa->rot.epoch_drops;
		st->peeks = sa->rot.peeks;
		st->jumps = sa->rot.jumps;
		st->key_requests = sa->rot.key_requests;
		st->key_failures = sa->rot.key_failures;
		st->pps = sa->pps;
		st->key_rate_milli = sa->econ.key_rate_milli;
		st->share_milli = sa->econ.share_milli;
		st->episodes = sa->econ.episodes;
		st->level_target = sa->inbound ? 0 : (uint32_t)sa->econ.ctl.target;
	}
}

/* ---- policies ---- */

static int addr_cmp(const uint8_t *a, const uint8_t *b, size_t len)
{
	return memcmp(a, b, len);
}

static bool ts_match(const struct iq_ts *ts, int family, const uint8_t *addr, uint8_t proto,
					 bool has_ports, uint16_t port)
{
	size_t alen = family == AF_INET ? 4 : 16;

	if (ts->family != family)
		return false;
	if (addr_cmp(addr, ts->from, alen) < 0 || addr_cmp(addr, ts->to, alen) > 0)
		return false;
	if (ts->proto && ts->proto != proto)
		return false;
	if (ts->port_from == 0 && ts->port_to == 0xffff)
		return true;
	/* a port restriction cannot match a packet without ports (non-first fragments) */
	return has_ports && port >= ts->port_from && port <= ts->port_to;
}

static bool pol_match(const struct iq_policy *p, const struct iq_flow *f)
{
	return ts_match(&p->cfg.src, f->family, f->src, f->proto, f->has_ports, f->sport) &&
		   ts_match(&p->cfg.dst, f->family, f->dst, f->proto, f->has_ports, f->dport);
}

struct iq_policy *iq_spd_out(struct iq_dp *dp, const struct iq_flow *f)
{
	struct iq_policy *p;

	for (p = dp->pol[IQ_DIR_OUT]; p; p = p->next)
		if (pol_match(p, f))
			return p;
	return NULL;
}

bool iq_spd_in_ok(struct iq_dp *dp, const struct iq_sa *sa, const struct iq_flow *f)
{
	struct iq_policy *p;

	for (p = dp->pol[IQ_DIR_IN]; p; p = p->next)
		if (p->cfg.reqid == sa->reqid && pol_match(p, f))
			return true;
	return false;
}

struct iq_sa *iq_policy_sa(struct iq_dp *dp, struct iq_policy *p)
{
	struct iq_sa *sa, *best = NULL;

	if (p->sa_gen == dp->sa_gen)
		return p->sa;
	/* the SA charon bound to the policy carries the traffic: charon 5.9.8 shares an explicitly
	 * requested reqid without matching selectors (kernel_interface.c alloc_reqid), so after a
	 * DPD restart two CHILD_SAs of different selectors can hold one reqid (found by
	 * scripts/soak). Without a bound SA (not installed yet, or gone), the newest outbound SA
	 * of the reqid does, as after a rekey. */
	for (sa = dp->sas; sa; sa = sa->next) {
		if (sa->inbound || sa->reqid != p->cfg.reqid)
			continue;
		if (p->cfg.spi && sa->spi == p->cfg.spi) {
			best = sa;
			break;
		}
		if (!best || sa->uid > best->uid)
			best = sa;
	}
	p->sa = best;
	p->sa_gen = dp->sa_gen;
	return best;
}

static bool ts_equal(const struct iq_ts *a, const struct iq_ts *b)
{
	return a->family == b->family && a->proto == b->proto && !memcmp(a->from, b->from, 16) &&
		   !memcmp(a->to, b->to, 16) && a->port_from == b->port_from &&
		   a->port_to == b->port_to;
}

static struct iq_policy **spd_lookup(struct iq_dp *dp, const struct iq_policy_cfg *cfg)
{
	struct iq_policy **p;

	for (p = &dp->pol[cfg->dir]; *p; p = &(*p)->next)
		if (ts_equal(&(*p)->cfg.src, &cfg->src) && ts_equal(&(*p)->cfg.dst, &cfg->dst))
			return p;
	return NULL;
}

int iq_spd_add(struct iq_dp *dp, const struct iq_policy_cfg *cfg, struct iq_policy **spare)
{
	struct iq_policy **p = spd_lookup(dp, cfg), *n;

	if (p) {
		/* same selectors again (CHILD_SA rekey, or a second CHILD_SA): count it and let the
		 * latest reqid/priority win, like charon expects from a kernel backend */
		(*p)->refs++;
		(*p)->cfg.reqid = cfg->reqid;
		(*p)->cfg.priority = cfg->priority;
		if (cfg->spi)
			(*p)->cfg.spi = cfg->spi;
		(*p)->sa_gen = 0;
		return 0;
	}
	n = *spare;
	*spare = NULL;
	memset(n, 0, sizeof(*n));
	n->cfg = *cfg;
	n->refs = 1;
	for (p = &dp->pol[cfg->dir]; *p && (*p)->cfg.priority <= cfg->priority; p = &(*p)->next)
		;
	n->next = *p;
	*p = n;
	return 0;
}

int iq_spd_del(struct iq_dp *dp, const struct iq_policy_cfg *cfg, struct iq_policy **freed)
{
	struct iq_policy **p = spd_lookup(dp, cfg), *x;

	if (!p)
		return -ENOENT;
	x = *p;
	if (--x->refs > 0)
		return 0;
	*p = x->next;
	x->next = *freed;
	*freed = x;
	return 0;
}

struct iq_policy *iq_spd_flush(struct iq_dp *dp)
{
	struct iq_policy *p, *list = NULL;
	int d;

	for (d = 0; d < 2; d++) {
		while ((p = dp->pol[d])) {
			dp->pol[d] = p->next;
			p->next = list;
			list = p;
		}
	}
	return list;
}

void iq_policy_free_list(struct iq_policy *p)
{
	struct iq_policy *next;

	for (; p; p = next) {
		next = p->next;
		free(p);
	}
}
