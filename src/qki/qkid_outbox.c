/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_outbox.c - peer messages waiting to be sent: the key agreement logic queues ASSIGN, ACK,
 * NEED and STALE entries while it handles an event; qkid_peer_flush() encodes them, up to 512
 * entries a message, after the event. Nothing is queued across a link loss: ASSIGNs are resent
 * from the key state on reconnect and NEEDs are asked again.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qkid.h"
#include "qkid_outbox.h"

static void outbox_add(struct qkp_outbox *o, const struct qkp_entry *e)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 64;
		struct qkp_entry *n = realloc(o->e, cap * sizeof(*n));
		if (!n)
			return;         /* lost entries are recovered by resend on the next session */
		o->e = n;
		o->cap = cap;
	}
	o->e[o->n++] = *e;
}

void qkid_out_assign(struct qkid_peer *p, const struct qkey *k)
{
	struct qkp_entry e = { .use = k->use, .spi = k->spi, .rx = k->rx, .epoch = k->epoch };
	strcpy(e.id, k->id);
	outbox_add(&p->out_assign, &e);
}

void qkid_out_ack(struct qkid_peer *p, const char *id, uint8_t status)
{
	struct qkp_entry e = { .status = status };
	snprintf(e.id, sizeof(e.id), "%s", id);
	outbox_add(&p->out_ack, &e);
}

void qkid_out_stale(struct qkid_peer *p, const struct qkid_sa *sa)
{
	struct qkp_entry e = { .spi = sa->spi, .rx = sa->rx, .epoch = sa->floor };
	outbox_add(&p->out_stale, &e);
}

void qkid_out_need(struct qkid_peer *p, const struct qkid_sa *sa, uint32_t epoch, uint32_t count)
{
	struct qkp_entry e = { .spi = sa->spi, .rx = sa->rx, .epoch = epoch, .count = count };
	outbox_add(&p->out_need, &e);
}

static void flush_box(struct qkid_peer *p, struct qkp_outbox *o, uint8_t type)
{
	size_t i = 0;
	if (!o->n)
		return;
	if (!qkid_link_up(p)) {
		/* resent after reconnect from the key state (ASSIGN) or asked again (NEED) */
		o->n = 0;
		return;
	}
	while (i < o->n) {
		struct qki_msg m;
		size_t start = i;
		qkid_link_begin(p, &m, type);
		for (; i < o->n && i - start < 512; i++) {
			const struct qkp_entry *e = &o->e[i];
			size_t mark = qki_msg_nest_begin(&m, QKP_A_ENTRY);
			if (e->id[0])
				qki_msg_put_str(&m, QKP_A_KEY_ID, e->id);
			switch (type) {
			case QKP_ASSIGN:
				qki_msg_put_u8(&m, QKP_A_USE, e->use);
				if (e->use == QKP_USE_SA) {
					qki_msg_put_u32(&m, QKP_A_SPI, e->spi);
					qki_msg_put_u8(&m, QKP_A_RX, e->rx);
					qki_msg_put_u32(&m, QKP_A_EPOCH, e->epoch);
				}
				break;
			case QKP_ACK:
				qki_msg_put_u8(&m, QKP_A_STATUS, e->status);
				break;
			case QKP_NEED:
				qki_msg_put_u32(&m, QKP_A_COUNT, e->count);
				/* fall through */
			case QKP_STALE:
				qki_msg_put_u32(&m, QKP_A_SPI, e->spi);
				qki_msg_put_u8(&m, QKP_A_RX, e->rx);
				qki_msg_put_u32(&m, QKP_A_EPOCH, e->epoch);
				break;
			}
			qki_msg_nest_end(&m, mark);
		}
		if (type == QKP_NEED && i == o->n && p->need_ike) {
			uint32_t level = (uint32_t)p->ike_own.n + p->ike_asked;
			qki_msg_put_u32(&m, QKP_A_IKE_LEVEL, level);
			p->need_ike = 0;
		}
		if (qkid_link_send(p, &m))
			break;
	}
	o->n = 0;
}

void qkid_peer_flush(struct qkid_peer *p)
{
	if (p->role == QKI_ROLE_SLAVE && p->need_ike && !p->out_need.n && qkid_link_up(p)) {
		struct qki_msg m;
		qkid_link_begin(p, &m, QKP_NEED);
		qki_msg_put_u32(&m, QKP_A_IKE_LEVEL, (uint32_t)p->ike_own.n + p->ike_asked);
		p->need_ike = 0;
		qkid_link_send(p, &m);
	}
	flush_box(p, &p->out_assign, QKP_ASSIGN);
	flush_box(p, &p->out_ack, QKP_ACK);
	flush_box(p, &p->out_need, QKP_NEED);
	flush_box(p, &p->out_stale, QKP_STALE);
}
