/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_sync.c - how two qkids end up with the same key for the same use, and never use a key
 * twice.
 *
 * The master fetches keys with enc_keys into its pool and assigns each to exactly one use: an
 * IKE key for its own charon (IKE_MASTER), a key for the slave's stash of IKE keys (IKE_SLAVE),
 * or one epoch of one SA (SA). Every assignment is announced to the slave (ASSIGN); the slave
 * fetches the key with dec_keys and acknowledges (ACK). Rules that keep both sides in step:
 *
 *  - The master hands an SA epoch key to its datapath only after the slave acknowledged it, so a
 *    key the slave could not get (KME forgot it, or it was already consumed as an IKE key) is
 *    simply reassigned: the master buries it and assigns a fresh key to the same epoch.
 *  - IKE_MASTER keys go to charon at once (latency matters); the slave's charon may ask for the
 *    key_ID before the announcement arrives, so the slave fetches unknown key_IDs on demand. If
 *    an on-demand key later turns out to be assigned to something else, the slave answers
 *    CONFLICT and the master, which never handed that key out, reassigns.
 *  - Every key_ID handed out becomes a tombstone: asking for it again gets KEY_USED.
 *  - An SA has a floor: missing epochs below it are dead on both sides (after a restart, a flush
 *    or a skip), and a STALE message moves the peer's floor too, so nobody waits for them.
 *  - A restart is seen as a changed BOOT id in the handshake; the survivor then drops all SA
 *    keys of that peer (the restarted side lost its copies) and both continue at fresh epochs.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "qkid.h"
#include "qkid_ike.h"
#include "qkid_log.h"
#include "qkid_rpk.h"

#define FETCH_TRIES_MAX 5

/* ---- peer lifecycle ------------------------------------------------------------------------- */

int qkid_peer_init(struct qkid *d, struct qkid_peer *p, const struct qkid_peer_conf *c,
		   char *err, size_t errlen)
{
	struct etsi014_client_config kc = {
		.kme_url = c->kme_url, .cert_file = c->kme_cert, .key_file = c->kme_key,
		.ca_file = c->kme_ca, .connect_timeout_ms = c->kme_connect_timeout_ms,
		.total_timeout_ms = c->kme_timeout_ms,
	};
	char msg[256];

	memset(p, 0, sizeof(*p));
	p->d = d;
	p->conf = c;
	p->role = c->role;
	p->key_len = c->key_size_bits / 8;
	p->retry_ms = 200;
	p->batch = c->batch;
	p->kme_state = QKI_KME_UNKNOWN;
	p->backoff_ms = d->conf->kme_backoff_min_ms;
	p->t_rate = qkid_now_ms();
	qkid_random(p->boot, sizeof(p->boot));
	p->kme = qkid_kme_start(&kc, d->notify_wr, msg, sizeof(msg));
	if (!p->kme) {
		snprintf(err, errlen, "peer %s: %s", c->name, msg);
		return -1;
	}
	log_info("peer %s: %s (local SAE %s, peer SAE %s), KME %s", c->name,
		 p->role == QKI_ROLE_MASTER ? "master" : "slave", c->local_sae, c->peer_sae,
		 c->kme_url);
	return 0;
}

void qkid_peer_destroy(struct qkid_peer *p)
{
	qkid_kme_stop(p->kme);
	qkid_link_free(p->link);
	qkid_link_free(p->candidate);
	while (p->sas)
		qkid_sa_destroy(p->sas);
	for (size_t b = 0; b < QKID_MAP_BUCKETS; b++)
		while (p->map[b])
			qkid_key_free(p, p->map[b]);
	free(p->out_assign.e);
	free(p->out_ack.e);
	free(p->out_need.e);
	free(p->out_stale.e);
}

/* ---- KME ------------------------------------------------------------------------------------ */

static void kme_failed(struct qkid_peer *p, const struct qkid_kme_result *r, int64_t now)
{
	const struct qkid_conf *c = p->d->conf;
	p->kme_errors++;
	p->kme_fail_streak++;
	p->kme_state = QKI_KME_BACKOFF;
	snprintf(p->last_error, sizeof(p->last_error), "KME %s: %s%s%s",
		 r->type == QKID_KME_ENC ? "enc_keys" : r->type == QKID_KME_DEC ? "dec_keys" :
		 "status", etsi014_strerror(r->code),
		 r->err.message[0] ? ": " : "", r->err.message);
	/* 503 at the master means "not enough key yet": ask for fewer, sooner */
	if (r->type == QKID_KME_ENC && r->code == ETSI014_ERR_HTTP_503 && p->batch > 1) {
		p->batch = p->batch / 2;
		p->backoff_ms = c->kme_backoff_min_ms;
	} else {
		p->backoff_ms = p->backoff_ms * 2 > c->kme_backoff_max_ms ? c->kme_backoff_max_ms
									   : p->backoff_ms * 2;
	}
	p->kme_next = now + p->backoff_ms;
	if (p->kme_errors < 5 || p->kme_errors % 50 == 0)
		log_warn("peer %s: %s (error %llu, retry in %u ms)", p->conf->name, p->last_error,
			 (unsigned long long)p->kme_errors, p->backoff_ms);
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

void qkid_peer_kme_done(struct qkid_peer *p)
{
	struct qkid_kme_result *r = qkid_kme_collect(p->kme);
	int64_t now = qkid_now_ms();
	if (!r)
		return;
	if (r->code == ETSI014_OK) {
		kme_ok(p);
		if (r->type == QKID_KME_ENC)
			enc_done(p, r);
		else if (r->type == QKID_KME_DEC)
			dec_done(p, r, 1);
	} else {
		/* a 400 on dec_keys names bad key_IDs, not a sick KME */
		if (r->type == QKID_KME_DEC && r->code == ETSI014_ERR_HTTP_400)
			kme_ok(p);
		else
			kme_failed(p, r, now);
		if (r->type == QKID_KME_DEC)
			dec_done(p, r, 0);
	}
	qkid_kme_result_free(r);
	p->d->generation++;
}

static int kme_work(struct qkid_peer *p, int64_t now);

static void kme_schedule(struct qkid_peer *p, int64_t now)
{
	if (now < p->kme_next || qkid_kme_busy(p->kme))
		return;
	if (kme_work(p, now) == 0 && p->kme_state == QKI_KME_BACKOFF) {
		/* nothing to fetch, but the KME is marked failing: probe it, so the state shown
		 * to the operator (and the fail-fast of local requests) clears by itself */
		qkid_kme_submit_status(p->kme, p->conf->peer_sae);
		p->kme_next = now + p->backoff_ms;
	}
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

/* ---- master: assignments -------------------------------------------------------------------- */

static void assign_sa(struct qkid_peer *p, struct qkid_sa *sa, struct qkey *k)
{
	uint32_t e = qkid_sa_hole(sa);
	if (e >= sa->next_assign)
		sa->next_assign = e + 1;
	k->use = QKP_USE_SA;
	k->spi = sa->spi;
	k->rx = sa->rx;
	k->epoch = e;
	k->state = QK_PENDING;
	k->unacked = 1;
	k->t = qkid_now_ms();
	qkey_list_insert_epoch(&sa->keys, k);
	sa->refills++;
	qkid_out_assign(p, k);
}

static void master_refill(struct qkid_peer *p)
{
	struct qkid_fair *fair[1024];
	struct qkid_sa *sas[1024];
	size_t n = 0;
	uint32_t cap;

	if (!qkid_link_up(p) || p->pool.n <= p->conf->ike_reserve)
		return;
	cap = qkid_fair_capacity(p->conf->sa_buffer_total, qkid_sa_n_active(p), p->conf->sa_buffer_min,
				 p->conf->sa_buffer_max);
	int64_t now = qkid_now_ms();
	for (struct qkid_sa *sa = p->sas; sa && n < 1024; sa = sa->next) {
		if (!qkid_sa_active(sa, now))
			continue;
		sa->fair.level = qkid_sa_level(sa);
		sa->fair.capacity = cap;
		sa->fair.drain_rate = sa->drain_rate;
		fair[n] = &sa->fair;
		sas[n++] = sa;
	}
	while (p->pool.n > p->conf->ike_reserve) {
		long i = qkid_fair_pick(fair, n, p->conf->fair_slack);
		if (i < 0)
			break;
		assign_sa(p, sas[i], qkid_pool_take(p));
		fair[i]->level++;
		fair[i]->vtime++;
	}
}

static void master_stash(struct qkid_peer *p)
{
	unsigned pending = 0, want;
	if (!qkid_link_up(p))
		return;
	for (struct qkey *k = p->ike_peer.head; k; k = k->next)
		pending += k->use == QKP_USE_IKE_SLAVE && k->unacked;
	if (p->peer_ike_level + pending >= p->conf->ike_stash)
		return;
	want = p->conf->ike_stash - p->peer_ike_level - pending;
	while (want-- && p->pool.n) {
		struct qkey *k = qkid_pool_take(p);
		k->use = QKP_USE_IKE_SLAVE;
		k->state = QK_PENDING;
		k->unacked = 1;
		k->t = qkid_now_ms();
		qkid_out_assign(p, k);
		qkid_ike_peer_add(p, k);
	}
}

/* ---- peer messages -------------------------------------------------------------------------- */

struct entry_view {
	struct qki_attr a[QKP_A_MAX];
	char id[QKI_KEY_ID_MAX];
	uint8_t use, rx, status;
	uint32_t spi, epoch, count;
};

static int entry_parse(const uint8_t *v, uint16_t l, struct entry_view *e)
{
	memset(e, 0, sizeof(*e));
	if (qki_tlv_parse(qkp_rules, QKP_A_MAX, v, l, e->a, NULL))
		return -1;
	if (e->a[QKP_A_KEY_ID].present) {
		memcpy(e->id, e->a[QKP_A_KEY_ID].val, e->a[QKP_A_KEY_ID].len);
		e->id[e->a[QKP_A_KEY_ID].len] = 0;
	}
	if (e->a[QKP_A_USE].present) e->use = e->a[QKP_A_USE].val[0];
	if (e->a[QKP_A_RX].present) e->rx = e->a[QKP_A_RX].val[0];
	if (e->a[QKP_A_STATUS].present) e->status = e->a[QKP_A_STATUS].val[0];
	if (e->a[QKP_A_SPI].present) e->spi = qki_get32(e->a[QKP_A_SPI].val);
	if (e->a[QKP_A_EPOCH].present) e->epoch = qki_get32(e->a[QKP_A_EPOCH].val);
	if (e->a[QKP_A_COUNT].present) e->count = qki_get32(e->a[QKP_A_COUNT].val);
	return 0;
}

static int same_assignment(const struct qkey *k, const struct entry_view *e)
{
	if (k->use != e->use)
		return 0;
	return k->use != QKP_USE_SA || (k->spi == e->spi && k->rx == e->rx && k->epoch == e->epoch);
}

static void slave_on_assign(struct qkid_peer *p, const struct entry_view *e)
{
	struct qkey *k;
	struct qkid_sa *sa = NULL;

	if (!e->id[0] || e->use < QKP_USE_IKE_MASTER || e->use > QKP_USE_SA ||
	    (e->use == QKP_USE_SA && e->rx != QKI_ROLE_MASTER && e->rx != QKI_ROLE_SLAVE)) {
		p->drops++;
		log_warn("peer %s: invalid ASSIGN entry ignored", p->conf->name);
		return;
	}
	k = qkid_key_find(p, e->id);
	if (k) {
		if (k->on_demand && !k->use && e->use == QKP_USE_IKE_MASTER) {
			/* we resolved it for our charon before the announcement: consistent */
			k->use = QKP_USE_IKE_MASTER;
			if (k->state == QK_READY || k->state == QK_USED)
				qkid_out_ack(p, k->id, k->failed ? QKP_ACK_UNKNOWN : QKP_ACK_OK);
			return;
		}
		if (same_assignment(k, e)) {
			if (k->state == QK_READY || (k->state == QK_USED && !k->failed))
				qkid_out_ack(p, k->id, QKP_ACK_OK);      /* a resend after reconnect */
			else if (k->state == QK_USED)
				qkid_out_ack(p, k->id, QKP_ACK_UNKNOWN);
			return;         /* still being fetched: ACK follows */
		}
		log_warn("peer %s: key_ID %s assigned to another use than it already has here; "
			 "refused", p->conf->name, e->id);
		qkid_out_ack(p, e->id, QKP_ACK_CONFLICT);
		return;
	}
	if (e->use == QKP_USE_SA) {
		sa = qkid_sa_by_wire(p, e->spi, e->rx);
		if (!sa)
			sa = qkid_sa_create(p, e->spi, e->rx);
		if (!sa)
			return;
		if (e->epoch + 1 > sa->next_assign)
			sa->next_assign = e->epoch + 1;
	}
	k = qkid_key_new(p, e->id);
	if (!k)
		return;
	k->use = e->use;
	k->spi = e->spi;
	k->rx = e->rx;
	k->epoch = e->epoch;
	k->state = QK_ANNOUNCED;
	qkey_list_append(&p->fetchq, k);
}

static void master_reassign(struct qkid_peer *p, struct qkey *k)
{
	struct qkid_sa *sa = qkid_sa_by_wire(p, k->spi, k->rx);
	uint32_t epoch = k->epoch;
	qkid_key_bury(p, k);
	if (!sa || epoch < qkid_sa_cursor(sa))
		return;
	/* the epoch is a hole now; master_refill fills holes first */
	log_info("peer %s: SA %08x epoch %u gets a new key", p->conf->name, sa->spi, epoch);
}

static void master_on_ack(struct qkid_peer *p, const struct entry_view *e)
{
	struct qkey *k = qkid_key_find(p, e->id);
	if (!k || !k->unacked)
		return;         /* duplicate */
	k->unacked = 0;
	if (e->status == QKP_ACK_OK) {
		if (k->state == QK_PENDING) {
			k->state = QK_READY;
			if (k->use == QKP_USE_IKE_SLAVE)
				p->peer_ike_level++;
		}
		p->d->generation++;
		return;
	}
	log_warn("peer %s: slave could not take key_ID %s (%s)", p->conf->name, k->id,
		 e->status == QKP_ACK_UNKNOWN ? "unknown to its KME" :
		 e->status == QKP_ACK_CONFLICT ? "already used there" : "fetch failed");
	if (k->state == QK_USED)
		return;         /* an IKE_MASTER key: our charon has it; the peer will fail */
	if (k->use == QKP_USE_SA)
		master_reassign(p, k);
	else
		qkid_key_bury(p, k);
}

static void master_on_need(struct qkid_peer *p, const struct entry_view *e)
{
	struct qkid_sa *sa;
	if (e->rx != QKI_ROLE_MASTER && e->rx != QKI_ROLE_SLAVE)
		return;
	sa = qkid_sa_by_wire(p, e->spi, e->rx);
	if (!sa)
		sa = qkid_sa_create(p, e->spi, e->rx);
	if (!sa)
		return;
	if (!sa->registered)
		sa->idle_since = qkid_now_ms();   /* implicit SA: alive while the slave uses it */
	if (e->epoch < sa->floor && !qkid_sa_key(sa, e->epoch)) {
		qkid_out_stale(p, sa);
		return;
	}
	if (e->epoch > sa->next_assign)
		qkid_sa_set_floor(sa, e->epoch);     /* the slave jumped: epochs between are dead */
	if (e->epoch > sa->remote)
		sa->remote = e->epoch;
	/* nobody here uses this SA: what the slave released is gone for good */
	if (!sa->registered)
		qkid_sa_set_floor(sa, sa->remote);
	qkid_sa_account(sa);
	/* resend what the slave lacks and we have */
	for (uint32_t i = 0; i < e->count && i < QKI_EPOCH_BATCH_MAX; i++) {
		struct qkey *k = qkid_sa_key(sa, e->epoch + i);
		if (k)
			qkid_out_assign(p, k);
	}
}

static void slave_on_stale(struct qkid_peer *p, const struct entry_view *e)
{
	struct qkid_sa *sa = qkid_sa_by_wire(p, e->spi, e->rx);
	if (!sa)
		sa = qkid_sa_create(p, e->spi, e->rx);
	if (sa && e->epoch > sa->floor) {
		log_info("peer %s: SA %08x: epochs below %u are dead", p->conf->name, sa->spi,
			 e->epoch);
		qkid_sa_set_floor(sa, e->epoch);
	}
}

void qkid_peer_on_message(struct qkid_peer *p, const struct qkp_hdr *h, const uint8_t *payload)
{
	struct qki_attr a[QKP_A_MAX];
	struct qki_iter it;
	struct entry_view e;
	uint16_t t, l;
	const uint8_t *v;
	const char *why = NULL;
	int master = p->role == QKI_ROLE_MASTER;

	if (qki_tlv_parse(qkp_rules, QKP_A_MAX, payload, h->length, a, &why)) {
		p->drops++;
		log_warn("peer %s: malformed %s message (%s), dropped", p->conf->name,
			 qkp_type_name(h->type), why);
		return;
	}
	if ((master && h->type != QKP_ACK && h->type != QKP_NEED && h->type != QKP_STALE) ||
	    (!master && h->type != QKP_ASSIGN && h->type != QKP_STALE)) {
		p->drops++;
		log_warn("peer %s: unexpected %s message, dropped", p->conf->name,
			 qkp_type_name(h->type));
		return;
	}
	if (master && h->type == QKP_NEED && a[QKP_A_IKE_LEVEL].present)
		p->peer_ike_level = qki_get32(a[QKP_A_IKE_LEVEL].val);
	qki_iter_init(&it, payload, h->length);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		if (t != QKP_A_ENTRY)
			continue;
		if (entry_parse(v, l, &e)) {
			p->drops++;
			continue;
		}
		switch (h->type) {
		case QKP_ASSIGN: slave_on_assign(p, &e); break;
		case QKP_ACK:    master_on_ack(p, &e); break;
		case QKP_NEED:   master_on_need(p, &e); break;
		case QKP_STALE:
			if (master) {
				/* the slave flushed an SA: follow */
				struct qkid_sa *sa = qkid_sa_by_wire(p, e.spi, e.rx);
				if (sa)
					qkid_sa_set_floor(sa, e.epoch);
			} else {
				slave_on_stale(p, &e);
			}
			break;
		}
	}
	p->d->generation++;
}

/* ---- sessions ------------------------------------------------------------------------------- */

static void wipe_all(struct qkid_peer *p)
{
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
		qkid_sa_wipe(sa);
	while (p->ike_own.head)
		qkid_key_bury(p, p->ike_own.head);
	for (struct qkey *k = p->ike_peer.head, *nx; k; k = nx) {
		nx = k->next;
		if (k->use == QKP_USE_IKE_SLAVE)
			qkid_key_bury(p, k);
	}
	for (struct qkey *k = p->fetchq.head; k; k = k->next)
		if (k->use == QKP_USE_IKE_SLAVE)
			k->doomed = 1;
	p->ike_asked = 0;
	p->peer_ike_level = 0;
}

static void on_ready_entries(struct qkid_peer *p, const uint8_t *payload, size_t len);

void qkid_peer_on_up(struct qkid_peer *p, int peer_restarted, const struct qki_attr *ready,
		     const uint8_t *payload, size_t len)
{
	if (peer_restarted) {
		p->resyncs++;
		log_warn("peer %s: peer qkid restarted: dropping every SA key of this peer, "
			 "SAs continue at fresh epochs", p->conf->name);
		wipe_all(p);
	}
	if (p->role == QKI_ROLE_SLAVE) {
		p->ike_asked = 0;
		p->need_ike = 1;
		for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
			sa->need_t = 0;
		return;
	}
	/* master: READY carries the slave's view */
	if (ready && ready[QKP_A_IKE_LEVEL].present)
		p->peer_ike_level = qki_get32(ready[QKP_A_IKE_LEVEL].val);
	if (payload)
		on_ready_entries(p, payload, len);
	if (peer_restarted)
		for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
			qkid_out_stale(p, sa);
	/* resend every assignment the slave has not acknowledged */
	for (size_t b = 0; b < QKID_MAP_BUCKETS; b++)
		for (struct qkey *k = p->map[b]; k; k = k->hnext)
			if (k->unacked)
				qkid_out_assign(p, k);
}

static void on_ready_entries(struct qkid_peer *p, const uint8_t *payload, size_t len)
{
	struct qki_iter it;
	struct entry_view e;
	uint16_t t, l;
	const uint8_t *v;
	qki_iter_init(&it, payload, len);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		struct qkid_sa *sa;
		if (t != QKP_A_ENTRY || entry_parse(v, l, &e) ||
		    (e.rx != QKI_ROLE_MASTER && e.rx != QKI_ROLE_SLAVE))
			continue;
		sa = qkid_sa_by_wire(p, e.spi, e.rx);
		if (!sa)
			sa = qkid_sa_create(p, e.spi, e.rx);
		if (!sa)
			continue;
		/* epochs the slave already knows were assigned: if we do not hold them (we
		 * restarted), they are dead for us */
		if (e.epoch > sa->next_assign) {
			sa->next_assign = e.epoch;
			qkid_sa_set_floor(sa, e.epoch);
		}
	}
}

void qkid_peer_fill_ready(struct qkid_peer *p, struct qki_msg *m)
{
	uint32_t ike = (uint32_t)p->ike_own.n;
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next) {
		size_t mark = qki_msg_nest_begin(m, QKP_A_ENTRY);
		qki_msg_put_u32(m, QKP_A_SPI, sa->spi);
		qki_msg_put_u8(m, QKP_A_RX, sa->rx);
		qki_msg_put_u32(m, QKP_A_EPOCH, sa->next_assign);
		qki_msg_nest_end(m, mark);
	}
	for (struct qkey *k = p->fetchq.head; k; k = k->next)
		ike += k->use == QKP_USE_IKE_SLAVE;
	qki_msg_put_u32(m, QKP_A_IKE_LEVEL, ike);
	p->need_ike = 0;
}

void qkid_peer_resync(struct qkid_peer *p)
{
	log_warn("peer %s: resync requested: dropping every key of this peer and starting a new "
		 "session", p->conf->name);
	p->resyncs++;
	wipe_all(p);
	/* unassigned pool keys and unacked IKE keys of ours are fine to keep: they were never
	 * given to the slave's users. A new incarnation id makes the peer drop its side too. */
	qkid_random(p->boot, sizeof(p->boot));
	qkid_link_drop(p, "resync");
	if (p->candidate) {
		qkid_link_free(p->candidate);
		p->candidate = NULL;
	}
	p->t_retry = 0;
}

/* ---- periodic work -------------------------------------------------------------------------- */

static void rates(struct qkid_peer *p, int64_t now)
{
	double dt = (now - p->t_rate) / 1000.0;
	if (dt < 1)
		return;
	p->rate_in = qkid_ewma(p->rate_in, (p->keys_in - p->last_in) / dt);
	p->rate_out = qkid_ewma(p->rate_out, (p->keys_out - p->last_out) / dt);
	p->last_in = p->keys_in;
	p->last_out = p->keys_out;
	p->t_rate = now;
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
		qkid_sa_rates(sa, now, dt);
}

static void expire(struct qkid_peer *p, int64_t now)
{
	const struct qkid_conf *c = p->d->conf;
	int64_t life = (int64_t)c->ike_key_lifetime_s * 1000;
	for (struct qkid_sa *sa = p->sas, *nx; sa; sa = nx) {
		nx = sa->next;
		if (!sa->registered && now - sa->idle_since > (int64_t)c->sa_orphan_timeout_s * 1000) {
			log_info("peer %s: SA %08x/%s idle for %us: removed", p->conf->name, sa->spi,
				 sa->dir == QKI_DIR_IN ? "in" : "out", c->sa_orphan_timeout_s);
			qkid_sa_destroy(sa);
		}
	}
	while (p->ike_own.head && now - p->ike_own.head->t > life)
		qkid_key_bury(p, p->ike_own.head);
	for (struct qkey *k = p->ike_peer.head, *nx; k; k = nx) {
		nx = k->next;
		if (now - k->t > life && !k->unacked)
			qkid_key_bury(p, k);
	}
}

void qkid_peer_tick(struct qkid_peer *p, int64_t now)
{
	qkid_link_tick(p, now);
	rates(p, now);
	expire(p, now);
	qkid_peer_work(p, now);
}

void qkid_peer_work(struct qkid_peer *p, int64_t now)
{
	if (p->role == QKI_ROLE_MASTER) {
		master_stash(p);
		master_refill(p);
	} else if (qkid_link_up(p) && p->ike_own.n + p->ike_asked < p->conf->ike_stash &&
		   now - p->ike_need_t > 1000) {
		/* the master fills our stash from what we report; remind it now and then */
		p->need_ike = 1;
		p->ike_need_t = now;
	}
	kme_schedule(p, now);
}

