/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_fetch.c - what a peer asks its KME for, and what becomes of the answers. The master keeps
 * its pool filled with enc_keys (pool target, IKE reserve, and what the SA buffers lack); the
 * slave fetches the announced key_IDs with dec_keys in batches, a key_ID alone once a batch with
 * it failed. Failing KMEs are backed off (doubling, bounded) and probed while idle.
 */
#include <stdio.h>
#include <string.h>

#include "qkid.h"
#include "qkid_fetch.h"
#include "qkid_log.h"

#define FETCH_TRIES_MAX 5

static void kme_failed(struct qkid_peer *p, const struct qkid_kme_result *r, int64_t now)
{
	const struct qkid_conf *c = p->d->conf;
	p->kme_errors++;
	p->kme_fail_streak++;
	if (r->type != QKID_KME_STATUS)
		p->supply_limited = 1;  /* the KME could not give what was asked: the intake is
					 * the supply */
	p->kme_state = QKI_KME_BACKOFF;
	snprintf(p->last_error, sizeof(p->last_error), "KME %s: %s%s%s",
		 r->type == QKID_KME_ENC ? "enc_keys" : r->type == QKID_KME_DEC ? "dec_keys" :
		 "status", etsi014_strerror(r->code),
		 r->err.message[0] ? ": " : "", r->err.message);
	p->backoff_ms = p->backoff_ms * 2 > c->kme_backoff_max_ms ? c->kme_backoff_max_ms
								   : p->backoff_ms * 2;
	p->kme_next = now + p->backoff_ms;
	if (p->kme_errors < 5 || p->kme_errors % 50 == 0)
		log_warn("peer %s: %s (error %llu, retry in %u ms)", p->conf->name, p->last_error,
			 (unsigned long long)p->kme_errors, p->backoff_ms);
}

/*
 * How long the QKD link takes to make n keys, within [QKID_PACE_MIN_MS, QKID_PACE_MAX_MS]: at
 * the supply measured at the KME (independent of how fast qkid fetches), else at the estimate
 * from the intake; kme_backoff_min while neither is known.
 */
static unsigned pace_ms(const struct qkid_peer *p, unsigned n, int64_t now)
{
	double rate = qkid_supply_measured(&p->supply, now) ? p->supply.gen :
		      p->supply_known ? p->rate_in : 0, ms;
	if (!(rate > 0))
		return p->d->conf->kme_backoff_min_ms;
	ms = 1000.0 * n / rate;
	return ms < QKID_PACE_MIN_MS ? QKID_PACE_MIN_MS : ms > QKID_PACE_MAX_MS ? QKID_PACE_MAX_MS
										: (unsigned)ms;
}

/* the master's KME answered an enc_keys request "not enough key material" (503, kme_short())
 * within the last QKID_SHORT_HOLD_MS: the QKD link's rate is the limit, and the fetches are
 * paced by it */
static int supply_short(const struct qkid_peer *p, int64_t now)
{
	return p->short_t && now - p->short_t < QKID_SHORT_HOLD_MS;
}

/*
 * 503 to enc_keys at the master when more than one key was asked for: the KME holds fewer keys
 * than asked, which is what a QKD link used at its full rate looks like, not a failing KME. No
 * back-off state: ask for half as many once the link has made them. (A fixed 100 ms back-off
 * here turned the intake at 391 keys/s into lumps of ~40 keys 110 ms apart, more than an SA's
 * reserve of 32 window keys: the SA's buffer ran dry about once a second and packets went out
 * beyond rpk; measured with bench keys at 0 km, 2026-12-03. It also logged "KME answers again"
 * up to 9 times a second.) A 503 to a single key is a failure (kme_failed).
 */
static void kme_short(struct qkid_peer *p, int64_t now)
{
	if (!p->short_t || now - p->short_t >= QKID_SHORT_LOG_QUIET_MS)
		log_info("peer %s: the KME holds fewer keys than asked for: fetching at the QKD "
			 "link's rate (%.0f keys/s)", p->conf->name, p->rate_in);
	p->short_t = now;
	p->supply_limited = 1;  /* the intake is the supply */
	p->batch = p->batch / 2;
	p->kme_next = now + pace_ms(p, p->batch, now);
}

static void kme_ok(struct qkid_peer *p)
{
	if (p->kme_state == QKI_KME_BACKOFF)
		log_info("peer %s: KME answers again", p->conf->name);
	p->kme_state = QKI_KME_OK;
	p->kme_fail_streak = 0;
	p->backoff_ms = p->d->conf->kme_backoff_min_ms;
	p->kme_next = 0;
	if (p->batch < p->conf->batch)
		p->batch++;
}

static void enc_done(struct qkid_peer *p, struct qkid_kme_result *r)
{
	struct etsi014_key_container *kc = r->keys;
	for (size_t i = 0; i < kc->count; i++) {
		struct qkey *k;
		if (kc->keys[i].len != p->key_len) {
			log_err("peer %s: KME gave a key of %zu bytes, want %u; dropped",
				p->conf->name, kc->keys[i].len, p->key_len);
			continue;
		}
		k = qkid_key_new(p, kc->keys[i].key_id);
		if (!k) {
			log_err("peer %s: KME repeated key_ID %s; dropped (never used twice)",
				p->conf->name, kc->keys[i].key_id);
			continue;
		}
		if (qkid_key_set_bytes(p->d, k, kc->keys[i].key, kc->keys[i].len)) {
			log_err("peer %s: key memory full (max_keys); key %s dropped",
				p->conf->name, k->id);
			qkid_key_free(p, k);
			continue;
		}
		k->state = QK_POOL;
		qkey_list_append(&p->pool, k);
		p->keys_in++;
	}
	log_debug("peer %s: enc_keys: %zu keys in %ld ms, pool %zu", p->conf->name, kc->count,
		  r->elapsed_ms, p->pool.n);
}

static void fetched(struct qkid_peer *p, struct qkey *k)
{
	struct qkid_sa *sa;
	qkey_list_remove(k);
	k->state = QK_READY;
	k->t = qkid_now_ms();
	p->keys_in++;
	if (k->doomed) {
		/* dropped while it was being fetched (resync); fetched only to free the KME */
		qkid_key_bury(p, k);
		if (k->use)
			qkid_out_ack(p, k->id, QKP_ACK_OK);
		return;
	}
	if (k->on_demand && !k->use) {
		qkid_ike_peer_add(p, k);
		return;         /* acknowledged when (if) its announcement arrives */
	}
	switch (k->use) {
	case QKP_USE_IKE_SLAVE:
		if (p->ike_asked)
			p->ike_asked--;
		qkey_list_append(&p->ike_own, k);
		break;
	case QKP_USE_IKE_MASTER:
		qkid_ike_peer_add(p, k);
		break;
	case QKP_USE_SA:
		sa = qkid_sa_by_wire(p, k->spi, k->rx);
		if (!sa)
			sa = qkid_sa_create(p, k->spi, k->rx);
		if (!sa || k->epoch < sa->floor || qkid_sa_key(sa, k->epoch)) {
			/* dead epoch, or the epoch got another key meanwhile: do not keep it */
			qkid_key_bury(p, k);
			qkid_out_ack(p, k->id, QKP_ACK_OK);
			return;
		}
		qkey_list_insert_epoch(&sa->keys, k);
		if (k->epoch + 1 > sa->next_assign)
			sa->next_assign = k->epoch + 1;
		/* Nobody here uses this SA (yet): keep the newest epochs only. The master assigns
		 * at most one buffer ahead of its datapath, so epochs more than two buffers below
		 * the newest are passed on its side; this bounds the memory of unclaimed SAs. */
		if (!sa->registered && sa->next_assign > 2 * qkid_sa_capacity(p) &&
		    sa->keys.head->epoch < sa->next_assign - 2 * qkid_sa_capacity(p))
			qkid_sa_set_floor(sa, sa->next_assign - 2 * qkid_sa_capacity(p));
		break;
	}
	qkid_out_ack(p, k->id, QKP_ACK_OK);
}

static void fetch_failed(struct qkid_peer *p, struct qkey *k, uint8_t status)
{
	log_warn("peer %s: key_ID %s: %s", p->conf->name, k->id,
		 status == QKP_ACK_UNKNOWN ? "unknown to the KME" : "could not be fetched");
	if (k->use)
		qkid_out_ack(p, k->id, status);
	if (k->use == QKP_USE_IKE_SLAVE && p->ike_asked)
		p->ike_asked--;
	qkid_key_bury(p, k);
	k->failed = 1;
}

static void dec_done(struct qkid_peer *p, struct qkid_kme_result *r, int ok)
{
	for (size_t i = 0; i < r->n_ids; i++) {
		struct qkey *k = qkid_key_find(p, r->ids[i]);
		struct etsi014_key *ek = NULL;
		if (!k || k->state != QK_FETCHING)
			continue;       /* dropped meanwhile (resync, flush) */
		if (ok) {
			for (size_t j = 0; j < r->keys->count; j++)
				if (!strcmp(r->keys->keys[j].key_id, k->id))
					ek = &r->keys->keys[j];
			if (!ek || ek->len != p->key_len ||
			    qkid_key_set_bytes(p->d, k, ek->key, ek->len)) {
				k->state = QK_ANNOUNCED;
				k->fetch_single = 1;
				if (++k->fetch_tries >= FETCH_TRIES_MAX)
					fetch_failed(p, k, QKP_ACK_FAILED);
				continue;
			}
			fetched(p, k);
		} else if (r->code == ETSI014_ERR_HTTP_400 && r->n_ids == 1) {
			fetch_failed(p, k, QKP_ACK_UNKNOWN);
		} else {
			k->state = QK_ANNOUNCED;
			if (r->code == ETSI014_ERR_HTTP_400)
				k->fetch_single = 1;    /* find the bad one(s) of the batch */
			else if (++k->fetch_tries >= FETCH_TRIES_MAX)
				fetch_failed(p, k, QKP_ACK_FAILED);
		}
	}
	if (ok)
		log_debug("peer %s: dec_keys: %zu keys in %ld ms", p->conf->name, r->n_ids,
			  r->elapsed_ms);
}

/* A KME that cannot be reached, or does not answer in time, is failing whatever was asked; an
 * HTTP error or an odd body to a status request only means the supply cannot be read. */
static int kme_unreachable(enum etsi014_error_code code)
{
	return code == ETSI014_ERR_TRANSPORT || code == ETSI014_ERR_TIMEOUT ||
	       code == ETSI014_ERR_TLS;
}

/* The once-a-second status of a healthy KME (qkid_supply.h). An error answer here is no
 * shortage and no reason for back-off (a KME that does not answer at all is: kme_unreachable):
 * the supply is then estimated from the intake. */
static void supply_status_done(struct qkid_peer *p, const struct qkid_kme_result *r, int64_t now)
{
	struct qkid_supply *s = &p->supply;
	const struct etsi014_status *st = &r->status;

	if (r->code != ETSI014_OK) {
		s->sampled = 0;
		qkid_supply_probe_sent(s, now);  /* a fetch goes before the next probe */
		if (s->unusable++ % 100 == 0)
			log_warn("peer %s: KME status: %s%s%s; the key supply is estimated from what qkid "
				 "fetches until it answers (%llu failed)", p->conf->name,
				 etsi014_strerror(r->code), r->err.message[0] ? ": " : "", r->err.message,
				 (unsigned long long)s->unusable);
		return;
	}
	qkid_supply_status(s, now, p->keys_in, st->stored_key_count, st->max_key_count,
			   st->key_size, p->conf->key_size_bits, p->batch);
	log_debug("peer %s: KME status: %u of %u keys stored, supply %.1f keys/s", p->conf->name,
		  st->stored_key_count, st->max_key_count, s->gen);
}

void qkid_peer_kme_done(struct qkid_peer *p)
{
	struct qkid_kme_result *r = qkid_kme_collect(p->kme);
	int64_t now = qkid_now_ms();
	if (!r)
		return;
	if (r->type == QKID_KME_STATUS && p->kme_state != QKI_KME_BACKOFF &&
	    !kme_unreachable(r->code)) {
		supply_status_done(p, r, now);
	} else if (r->code == ETSI014_OK) {
		kme_ok(p);
		if (r->type == QKID_KME_ENC) {
			enc_done(p, r);
			/* at the link's rate, the next batch once the link has made it, counted
			 * from when this one was asked for (now less its round trip, so the round
			 * trip does not slow the intake below the supply): asked for at once, it
			 * would find the store just emptied, a 503 per batch */
			if (supply_short(p, now))
				p->kme_next = now - r->elapsed_ms + pace_ms(p, p->batch, now);
		}
		else if (r->type == QKID_KME_DEC)
			dec_done(p, r, 1);
	} else {
		/* a 400 on dec_keys names bad key_IDs, not a sick KME */
		if (r->type == QKID_KME_DEC && r->code == ETSI014_ERR_HTTP_400)
			kme_ok(p);
		else if (r->type == QKID_KME_ENC && r->code == ETSI014_ERR_HTTP_503 &&
			 p->batch > 1 && p->kme_state != QKI_KME_BACKOFF)
			kme_short(p, now);
		else
			kme_failed(p, r, now);
		if (r->type == QKID_KME_DEC)
			dec_done(p, r, 0);
	}
	qkid_kme_result_free(r);
	p->d->generation++;
}

/* Submit the next fetch if there is one; returns 1 if a job was submitted. */
static int kme_work(struct qkid_peer *p, int64_t now)
{
	struct qkid *d = p->d;
	(void)now;
	if (p->role == QKI_ROLE_MASTER) {
		unsigned want = p->conf->pool_target + p->conf->ike_reserve + qkid_sa_deficit(p);
		unsigned n;
		size_t room = d->arena.n_free > 64 ? d->arena.n_free - 64 : 0;
		if (p->pool.n >= want)
			return 0;
		n = want - (unsigned)p->pool.n;
		if (n > p->batch)
			n = p->batch;
		if (n > room)
			n = (unsigned)room;
		return n && !qkid_kme_submit_enc(p->kme, p->conf->peer_sae, n,
						p->conf->key_size_bits);
	} else {
		const char *ids[QKID_KME_IDS_MAX];
		struct qkey *batch[QKID_KME_IDS_MAX];
		size_t n = 0, max = p->batch < QKID_KME_IDS_MAX ? p->batch : QKID_KME_IDS_MAX;
		if (d->arena.n_free < max + 8)
			return 0;
		for (struct qkey *k = p->fetchq.head; k && n < max; k = k->next) {
			if (k->state != QK_ANNOUNCED)
				continue;
			if (k->fetch_single) {
				if (n)
					continue;
				batch[n] = k;
				ids[n++] = k->id;
				break;
			}
			batch[n] = k;
			ids[n++] = k->id;
		}
		if (!n)
			return 0;
		if (qkid_kme_submit_dec(p->kme, p->conf->peer_sae, ids, n, p->conf->key_size_bits))
			return 0;
		for (size_t i = 0; i < n; i++)
			batch[i]->state = QK_FETCHING;
		return 1;
	}
}

void qkid_fetch_schedule(struct qkid_peer *p, int64_t now)
{
	if (now < p->kme_next || qkid_kme_busy(p->kme))
		return;
	/* the master asks a healthy KME for its status once a second, before any fetch: under
	 * load there is always a fetch to do */
	if (p->role == QKI_ROLE_MASTER && p->kme_state != QKI_KME_BACKOFF &&
	    qkid_supply_probe_due(&p->supply, now)) {
		if (qkid_kme_submit_status(p->kme, p->conf->peer_sae) == 0)
			qkid_supply_probe_sent(&p->supply, now);
		return;
	}
	if (kme_work(p, now) == 0 && p->kme_state == QKI_KME_BACKOFF) {
		/* nothing to fetch, but the KME is marked failing: probe it, so the state shown
		 * to the operator (and the fail-fast of local requests) clears by itself */
		qkid_kme_submit_status(p->kme, p->conf->peer_sae);
		p->kme_next = now + p->backoff_ms;
	}
}
