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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkid.h"
#include "qkid_ike.h"
#include "qkid_log.h"
#include "qkid_sync.h"

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
		if (qkid_sa_hole(sa) >= QKI_EPOCH_LIMIT) {
			/* the SA used up the epoch space: it gets no more keys (its datapath asked
			 * for a rekey long before, see QKI_EPOCH_LIMIT) */
			continue;
		}
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
		if (qkid_sa_hole(sas[i]) >= QKI_EPOCH_LIMIT) {
			fair[i]->level = fair[i]->capacity;     /* full for good: never picked again */
			continue;
		}
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
		char raw[QKI_KEY_ID_MAX];
		memcpy(raw, e->a[QKP_A_KEY_ID].val, e->a[QKP_A_KEY_ID].len);
		raw[e->a[QKP_A_KEY_ID].len] = 0;
		/* key_IDs are compared in one form, lower case; anything but a UUID is malformed */
		if (!etsi014_key_id_canonical(raw, e->id))
			return -1;
	}
	if (e->a[QKP_A_USE].present) e->use = e->a[QKP_A_USE].val[0];
	if (e->a[QKP_A_RX].present) e->rx = e->a[QKP_A_RX].val[0];
	if (e->a[QKP_A_STATUS].present) e->status = e->a[QKP_A_STATUS].val[0];
	if (e->a[QKP_A_SPI].present) e->spi = qki_get32(e->a[QKP_A_SPI].val);
	if (e->a[QKP_A_EPOCH].present) e->epoch = qki_get32(e->a[QKP_A_EPOCH].val);
	if (e->a[QKP_A_COUNT].present) e->count = qki_get32(e->a[QKP_A_COUNT].val);
	return 0;
}

/* An SA epoch from the peer must lie in the epoch space (QKI_EPOCH_LIMIT): beyond it, epoch + 1
 * and epoch + count would wrap, and a floor there would kill every key of the SA. */
static int epoch_ok(struct qkid_peer *p, const char *what, const struct entry_view *e)
{
	if (!e->a[QKP_A_EPOCH].present || e->epoch < QKI_EPOCH_LIMIT)
		return 1;
	p->drops++;
	log_warn("peer %s: %s for SA %08x epoch %u refused: beyond the epoch space (limit %u)",
		 p->conf->name, what, e->spi, e->epoch, QKI_EPOCH_LIMIT);
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
		if (!epoch_ok(p, "ASSIGN", e))
			return;
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
	uint32_t assigned;
	if (e->rx != QKI_ROLE_MASTER && e->rx != QKI_ROLE_SLAVE)
		return;
	if (!epoch_ok(p, "NEED", e))
		return;
	sa = qkid_sa_by_wire(p, e->spi, e->rx);
	/* the slave asks from its datapath's window, which only ever reaches epochs we assigned
	 * (or, after a restart, what READY told us): a NEED far beyond is refused, not a jump */
	assigned = sa ? sa->next_assign : 0;
	if (e->epoch > assigned && e->epoch - assigned > QKI_EPOCH_JUMP_MAX) {
		p->drops++;
		log_warn("peer %s: NEED for SA %08x epoch %u refused: more than %u epochs beyond the "
			 "%u assigned", p->conf->name, e->spi, e->epoch, QKI_EPOCH_JUMP_MAX, assigned);
		return;
	}
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
			if (!epoch_ok(p, "STALE", &e))
				break;
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
		if (!epoch_ok(p, "READY", &e))
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

/* After events: the master fills the slave's IKE stash and the SA buffers; the slave reminds
 * the master of its stash now and then. */
void qkid_sync_work(struct qkid_peer *p, int64_t now)
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
}
