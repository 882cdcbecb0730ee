/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_sa.c - the per-SA key buffers: one list of keys by epoch per SA and receiving side, its
 * cursor (the lowest epoch anybody may still want) and floor (missing epochs below it never
 * come), and what the local datapath does with an SA: register, take the keys of epochs, report
 * traffic, flush.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkid.h"
#include "qkid_log.h"
#include "qkid_sa.h"

#define RELEASE_REPORT_MS 250
#define ACTIVE_WINDOW_MS 10000  /* an SA known only from the peer counts this long after use */

static uint8_t rx_of(int role, uint8_t dir)
{
	/* the side that receives on the SA: us if inbound, the other one if outbound */
	int other = role == QKI_ROLE_MASTER ? QKI_ROLE_SLAVE : QKI_ROLE_MASTER;
	return dir == QKI_DIR_IN ? (uint8_t)role : (uint8_t)other;
}

static uint8_t dir_of(int role, uint8_t rx)
{
	return rx == role ? QKI_DIR_IN : QKI_DIR_OUT;
}

struct qkid_sa *qkid_sa_by_wire(struct qkid_peer *p, uint32_t spi, uint8_t rx)
{
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
		if (sa->spi == spi && sa->rx == rx)
			return sa;
	return NULL;
}

int qkid_sa_active(const struct qkid_sa *sa, int64_t now)
{
	return sa->registered || now - sa->idle_since < ACTIVE_WINDOW_MS;
}

size_t qkid_sa_n_active(const struct qkid_peer *p)
{
	int64_t now = qkid_now_ms();
	size_t n = 0;
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next)
		n += qkid_sa_active(sa, now);
	return n;
}

uint32_t qkid_sa_capacity(const struct qkid_peer *p)
{
	return qkid_fair_capacity(p->conf->sa_buffer_total, qkid_sa_n_active(p), p->conf->sa_buffer_min,
				  p->conf->sa_buffer_max);
}

struct qkid_sa *qkid_sa_create(struct qkid_peer *p, uint32_t spi, uint8_t rx)
{
	struct qkid_sa *sa = calloc(1, sizeof(*sa));
	struct qkid_fair *all[1024];
	size_t n = 0;
	if (!sa)
		return NULL;
	for (struct qkid_sa *s = p->sas; s && n < 1024; s = s->next)
		all[n++] = &s->fair;
	sa->peer = p;
	sa->spi = spi;
	sa->rx = rx;
	sa->dir = dir_of(p->role, rx);
	sa->fair.vtime = qkid_fair_join_vtime(all, n);
	sa->t_rate = qkid_now_ms();
	sa->idle_since = sa->t_rate;    /* implicit until a local datapath registers it */
	sa->next = p->sas;
	p->sas = sa;
	p->n_sas++;
	return sa;
}

void qkid_sa_destroy(struct qkid_sa *sa)
{
	struct qkid_peer *p = sa->peer;
	struct qkid_sa **pp = &p->sas;
	while (sa->keys.head)
		qkid_key_bury(p, sa->keys.head);
	while (*pp && *pp != sa)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = sa->next;
		p->n_sas--;
	}
	free(sa);
}

/* The lowest epoch anybody on this SA may still want from the buffer. */
uint32_t qkid_sa_cursor(const struct qkid_sa *sa)
{
	uint32_t c = sa->release > sa->floor ? sa->release : sa->floor;
	if (sa->peer->role == QKI_ROLE_MASTER && sa->remote > c)
		c = sa->remote;
	return c;
}

void qkid_sa_account(struct qkid_sa *sa)
{
	uint32_t c = qkid_sa_cursor(sa);
	if (c > sa->last_cursor) {
		sa->consumed += c - sa->last_cursor;
		sa->last_cursor = c;
	}
}

uint32_t qkid_sa_level(const struct qkid_sa *sa)
{
	uint32_t c = qkid_sa_cursor(sa), n = 0;
	for (struct qkey *k = sa->keys.tail; k && k->epoch >= c; k = k->prev)
		n++;
	return n;
}

struct qkey *qkid_sa_key(struct qkid_sa *sa, uint32_t epoch)
{
	for (struct qkey *k = sa->keys.head; k; k = k->next)
		if (k->epoch == epoch)
			return k;
		else if (k->epoch > epoch)
			break;
	return NULL;
}

/* Bury every key of the SA below `below` (released or dead). */
void qkid_sa_drop_below(struct qkid_sa *sa, uint32_t below)
{
	while (sa->keys.head && sa->keys.head->epoch < below)
		qkid_key_bury(sa->peer, sa->keys.head);
}

/* Declare every epoch below floor dead here (keys wiped). */
void qkid_sa_set_floor(struct qkid_sa *sa, uint32_t floor)
{
	if (floor <= sa->floor)
		return;
	sa->floor = floor;
	if (sa->next_assign < floor)
		sa->next_assign = floor;
	qkid_sa_drop_below(sa, floor);
	sa->peer->d->generation++;
}

/* Operator flush or peer restart: drop every buffered key; continue at fresh epochs. */
unsigned qkid_sa_wipe(struct qkid_sa *sa)
{
	unsigned n = 0;
	uint32_t top = sa->next_assign;
	for (struct qkey *k = sa->keys.head; k; k = k->next)
		if (k->epoch + 1 > top)
			top = k->epoch + 1;
	/* Announced keys still being fetched die as well: they are fetched anyway (so the
	 * KME can free them) and dropped on arrival, since their epochs fall below the floor. */
	for (struct qkey *k = sa->peer->fetchq.head; k; k = k->next)
		if (k->use == QKP_USE_SA && k->spi == sa->spi && k->rx == sa->rx &&
		    k->epoch + 1 > top)
			top = k->epoch + 1;
	n += (unsigned)sa->keys.n;
	qkid_sa_set_floor(sa, top);
	while (sa->keys.head)
		qkid_key_bury(sa->peer, sa->keys.head);
	sa->peer->d->generation++;
	return n;
}

unsigned qkid_sa_deficit(struct qkid_peer *p)
{
	unsigned total = 0;
	size_t n = qkid_sa_n_active(p);
	uint32_t cap = qkid_fair_capacity(p->conf->sa_buffer_total, n, p->conf->sa_buffer_min,
					  p->conf->sa_buffer_max);
	int64_t now = qkid_now_ms();
	for (struct qkid_sa *sa = p->sas; sa; sa = sa->next) {
		uint32_t level;
		if (!qkid_sa_active(sa, now))
			continue;
		level = qkid_sa_level(sa);
		if (level < cap)
			total += cap - level;
	}
	return total;
}

/* First epoch at or above the cursor without a key, below next_assign; else next_assign. */
uint32_t qkid_sa_hole(struct qkid_sa *sa)
{
	uint32_t want = qkid_sa_cursor(sa);
	for (struct qkey *k = sa->keys.head; k; k = k->next) {
		if (k->epoch < want)
			continue;
		if (k->epoch > want)
			break;
		want = k->epoch + 1;
	}
	return want;
}

struct qkid_sa *qkid_sa_find(struct qkid *d, uint32_t spi, uint8_t dir)
{
	for (size_t i = 0; i < d->n_peers; i++)
		for (struct qkid_sa *sa = d->peers[i].sas; sa; sa = sa->next)
			if (sa->spi == spi && sa->dir == dir)
				return sa;
	return NULL;
}

int qkid_sa_register(struct qkid_peer *p, uint32_t spi, uint8_t dir, struct qkid_conn *owner,
		     struct qkid_sa **out)
{
	struct qkid_sa *sa = qkid_sa_find(p->d, spi, dir);
	/* an SA belongs to the connection that registered it until that connection closes */
	if (sa && sa->registered && sa->owner != owner)
		return QKI_ERR_EXISTS;
	if (sa && sa->peer != p) {
		if (sa->registered)
			return QKI_ERR_EXISTS;
		qkid_sa_destroy(sa);
		sa = NULL;
	}
	if (!sa)
		sa = qkid_sa_create(p, spi, rx_of(p->role, dir));
	if (!sa)
		return QKI_ERR_INTERNAL;
	if (!sa->registered)
		log_info("peer %s: SA %08x/%s registered", p->conf->name, spi,
			 dir == QKI_DIR_IN ? "in" : "out");
	sa->registered = 1;
	sa->owner = owner;
	sa->idle_since = 0;
	if (p->role == QKI_ROLE_SLAVE) {
		qkid_out_need(p, sa, qkid_sa_cursor(sa), 0);  /* tell the master the SA exists */
	}
	*out = sa;
	return QKI_OK;
}

void qkid_sa_unregister(struct qkid_sa *sa)
{
	log_info("peer %s: SA %08x/%s unregistered", sa->peer->conf->name, sa->spi,
		 sa->dir == QKI_DIR_IN ? "in" : "out");
	qkid_sa_destroy(sa);
}

void qkid_conn_gone(struct qkid *d, struct qkid_conn *c)
{
	int64_t now = qkid_now_ms();
	for (size_t i = 0; i < d->n_peers; i++)
		for (struct qkid_sa *sa = d->peers[i].sas; sa; sa = sa->next)
			if (sa->owner == c) {
				sa->owner = NULL;
				sa->registered = 0;
				sa->idle_since = now;
			}
}

int qkid_sa_keys(struct qkid_sa *sa, uint32_t first, uint32_t count, int peek,
		 struct qki_msg *m, uint32_t *n_out, uint32_t *next_epoch, const char **msg)
{
	struct qkid_peer *p = sa->peer;
	int master = p->role == QKI_ROLE_MASTER;
	int64_t now = qkid_now_ms();
	uint32_t n = 0;

	if (!peek && first > sa->release) {
		sa->release = first;
		qkid_sa_drop_below(sa, first);
		qkid_sa_account(sa);
		if (!master && now - sa->need_t > RELEASE_REPORT_MS) {
			qkid_out_need(p, sa, first, 0);
			sa->need_t = now;
			sa->need_epoch = first;
		}
	}
	for (struct qkey *k = qkid_sa_key(sa, first); k && n < count; k = k->next) {
		size_t mark;
		if (k->epoch != first + n || k->state != QK_READY || !k->bytes)
			break;
		mark = qki_msg_nest_begin(m, QKI_A_EPOCH_KEY);
		qki_msg_put_u32(m, QKI_A_EPOCH, k->epoch);
		qki_msg_put_str(m, QKI_A_KEY_ID, k->id);
		qki_msg_put(m, QKI_A_KEY, k->bytes, k->len);
		qki_msg_nest_end(m, mark);
		if (!k->handed && !peek) {
			k->handed = 1;
			sa->keys_out++;
			p->keys_out++;
		}
		n++;
	}
	*next_epoch = first + n;
	*n_out = n;
	if (n)
		return QKI_OK;
	if (first < sa->floor) {
		uint32_t next = sa->floor;
		for (struct qkey *k = sa->keys.head; k; k = k->next)
			if (k->epoch >= first && k->state == QK_READY) {
				next = k->epoch;
				break;
			}
		*next_epoch = next;
		*msg = "epoch no longer available";
		return QKI_ERR_STALE;
	}
	if (peek)
		return QKID_AGAIN;      /* a look only: no jump, nothing asked of the peer */
	if (master) {
		if (first >= sa->next_assign) {
			/* the datapath jumped ahead: epochs in between will never be used */
			qkid_sa_set_floor(sa, first);
			sa->next_assign = first;
		}
		if (!qkid_link_up(p) && !qkid_sa_key(sa, first))
			*msg = "peer qkid not connected";
	} else {
		int announced = 0;
		for (struct qkey *k = p->fetchq.head; k && !announced; k = k->next)
			announced = k->use == QKP_USE_SA && k->spi == sa->spi && k->rx == sa->rx &&
				    k->epoch == first;
		if (!announced && (sa->need_epoch != first || now - sa->need_t > QKID_NEED_INTERVAL_MS)) {
			qkid_out_need(p, sa, first, count);
			sa->need_epoch = first;
			sa->need_t = now;
		}
		if (!qkid_link_up(p))
			*msg = "peer qkid not connected";
	}
	return QKID_AGAIN;
}

void qkid_sa_report(struct qkid_sa *sa, const struct qki_attrs *a)
{
	uint64_t packets = 0, bytes = 0;

	qki_attr_u64(a, QKI_A_PACKETS, &packets);
	qki_attr_u64(a, QKI_A_BYTES, &bytes);
	if (packets < sa->packets)      /* counters restarted (datapath restart) */
		sa->last_packets = 0;
	sa->packets = packets;
	sa->bytes = bytes;
	/* optional: a datapath that does not report them leaves them 0 */
	sa->dp_rpk = sa->dp_level = sa->dp_capacity = 0;
	qki_attr_u32(a, QKI_A_DP_RPK, &sa->dp_rpk);
	qki_attr_u32(a, QKI_A_DP_LEVEL, &sa->dp_level);
	qki_attr_u32(a, QKI_A_DP_CAPACITY, &sa->dp_capacity);
	qki_attr_u64(a, QKI_A_WINDOWS, &sa->windows);
	qki_attr_u64(a, QKI_A_BEYOND_RPK, &sa->beyond_rpk);
	qki_attr_u64(a, QKI_A_STALL_DROPS, &sa->stall_drops);
	qki_attr_u64(a, QKI_A_EPISODES, &sa->episodes);
}

void qkid_sa_shares(struct qkid_peer *p)
{
	double demand[1024], share[1024], supply = p->rate_in, total = 0;
	struct qkid_sa *sas[1024];
	uint32_t lo = p->d->conf->rpk_min ? p->d->conf->rpk_min : 1;
	int64_t now = qkid_now_ms();
	size_t n = 0;

	/* an SA can use at most one key every rpk_min packets */
	for (struct qkid_sa *sa = p->sas; sa && n < 1024; sa = sa->next) {
		sa->share = 0;
		if (!qkid_sa_active(sa, now))
			continue;
		sas[n] = sa;
		demand[n] = sa->pkt_rate / lo;
		total += demand[n++];
	}
	/* until the supply has once been measured at the KME or the KME has once been short of
	 * keys, the intake only says what the SAs used: the supply is at least that, and every SA
	 * may have what it can use (when that is more than the KME has, it answers 503 and the
	 * supply is known from then on). Likewise while the
	 * KME's store is full: it has more than the link's rate to give, and taking it makes the
	 * supply measurable again (qkid_supply.h) */
	if ((!p->supply_known || qkid_supply_store_full(&p->supply, now)) && total > supply)
		supply = total;
	qkid_fair_shares(demand, n, supply, share);
	for (size_t i = 0; i < n; i++)
		sas[i]->share = share[i];
}

unsigned qkid_sa_flush(struct qkid_sa *sa)
{
	unsigned n = qkid_sa_wipe(sa);
	log_warn("peer %s: SA %08x/%s flushed by operator: %u keys wiped, next epoch %u",
		 sa->peer->conf->name, sa->spi, sa->dir == QKI_DIR_IN ? "in" : "out", n, sa->floor);
	qkid_out_stale(sa->peer, sa);
	return n;
}

/* Once a second: drain and packet rates (EWMA over dt seconds). */
void qkid_sa_rates(struct qkid_sa *sa, int64_t now, double dt)
{
	qkid_sa_account(sa);
	sa->drain_rate = qkid_ewma(sa->drain_rate, (sa->consumed - sa->last_consumed) / dt);
	sa->pkt_rate = qkid_ewma(sa->pkt_rate, (sa->packets - sa->last_packets) / dt);
	sa->last_consumed = sa->consumed;
	sa->last_packets = sa->packets;
	sa->t_rate = now;
}
