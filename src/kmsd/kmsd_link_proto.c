/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_link_proto.c - the KME-to-KME protocol: what each side does with a message from its peer.
 *
 * The link master owns allocation: it answers ALLOC_REQ from its own store and announces blocks
 * it hands to its own SAEs with RESERVE. The slave never changes its ring on its own: KEYS,
 * ALLOC_REP and RESERVE name exactly the blocks to append or remove, so a block ID the slave does
 * not hold at the head means the mirrors diverged, and the link is dropped (both sides flush).
 *
 * Relay messages (RELAY, RELAY_ACK, RELAY_ALLOC, RELAY_GRANT; link version 2) are parsed and
 * handled by kmsd_relay.c; the same rule holds there: only the master takes blocks off its store.
 *
 * Input is the link's receive buffer, output goes to its send queue and pending table: no socket
 * and no TLS here, so the protocol is unit tested on buffers (tests/test_kmsd.c).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "ipseq_util.h"
#include "kmsd_link_codec.h"

/* Master: a master SAE at the slave KME wants keys. Choose blocks, reserve for our slave SAE. */
static int on_alloc_req(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_store *s = &k->store;
	char master[ETSI014_ID_MAX + 1], slave[ETSI014_ID_MAX + 1], what[512];
	uint32_t req = kmsd_r_u32(r);
	unsigned number = kmsd_r_u16(r), size = kmsd_r_u32(r);
	uint16_t status = 0;
	struct kmsd_wbuf w = {0};
	uint8_t *ids = NULL, *bytes = NULL;
	size_t bpk = 0, need = 0, i;
	int rc = 0;

	kmsd_r_str(r, master);
	kmsd_r_str(r, slave);
	if (r->err || number == 0 || number > KMSD_PER_REQUEST_MAX || size == 0 || size % 8 ||
	    size > ETSI014_KEY_BITS_MAX) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed ALLOC_REQ");
		return -1;
	}
	if (!kmsd_config_is_local_sae(k->cfg, slave) || !kmsd_config_is_peer_sae(k->cfg, master))
		status = KMSD_LINK_UNAUTHORIZED;

	pthread_mutex_lock(&s->lock);
	bpk = kmsd_blocks_per_key(s, size);
	need = number * bpk;
	if (!status && s->count < need)
		status = KMSD_LINK_UNAVAILABLE;
	if (!status) {
		ids = malloc(need * 16);
		bytes = malloc(need * s->block_bytes);
		if (!ids || !bytes || kmsd_store_pop(s, need, NULL, ids, bytes) < 0)
			status = KMSD_LINK_UNAVAILABLE;
	}
	if (!status) {
		for (i = 0; i < number; i++)
			kmsd_store_reserve(s, ids + i * bpk * 16, master, slave,
					   bytes + i * bpk * s->block_bytes, size / 8,
					   k->cfg->reservation_lifetime);
		snprintf(what, sizeof(what), "reserved %u key(s) of %u bits for %s (master %s at %s)",
			 number, size, slave, master, k->cfg->peer_kme_id);
		kmsd_log_ids(IPSEQ_LOG_INFO, what, ids, number, bpk * 16);
	} else {
		ipseq_log(IPSEQ_LOG_INFO,
			  "peer asks %u key(s) of %u bits for %s -> %s: refused (%u)", number, size,
			  master, slave, status);
	}
	kmsd_w_u32(&w, req);
	kmsd_w_u16(&w, status);
	kmsd_w_u16(&w, (uint16_t)number);
	kmsd_w_u32(&w, size);
	kmsd_w_u16(&w, (uint16_t)bpk);
	if (!status)
		kmsd_w_bytes(&w, ids, need * 16);
	if (w.err || kmsd_link_send(l, KMSD_MSG_ALLOC_REP, w.p, w.len) < 0)
		rc = -1;
	pthread_mutex_unlock(&s->lock);
	if (bytes) {
		ipseq_wipe(bytes, need * s->block_bytes);
		free(bytes);
	}
	free(ids);
	kmsd_w_free(&w);
	return rc;
}

/* Slave: the master's answer to our ALLOC_REQ. Remove exactly the named blocks. */
static int on_alloc_rep(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	struct kmsd_store *s = &l->kme->store;
	uint32_t req = kmsd_r_u32(r);
	uint16_t status = kmsd_r_u16(r);
	unsigned number = kmsd_r_u16(r), size = kmsd_r_u32(r), bpk = kmsd_r_u16(r);
	size_t need = (size_t)number * bpk;
	const uint8_t *ids = status ? NULL : kmsd_r_bytes(r, need * 16);
	struct kmsd_link_pending *p;
	uint8_t *scratch = NULL;
	int rc = 0;

	if (r->err || (!status && (need == 0 || bpk != kmsd_blocks_per_key(s, size)))) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed ALLOC_REP");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	pthread_mutex_lock(&l->plock);
	p = kmsd_link_pending_find(l, req);
	if (status) {
		if (p)
			kmsd_link_pending_complete(p, (enum kmsd_link_status)status);
	} else {
		uint8_t *dst;

		if (p && p->nblocks == need) {
			dst = p->bytes;
		} else {
			scratch = malloc(need * s->block_bytes);
			dst = scratch;
		}
		if (!dst || kmsd_store_pop(s, need, ids, NULL, dst) < 0) {
			ipseq_log(IPSEQ_LOG_ERR, "QKD link: stores diverged "
				  "(ALLOC_REP names blocks we do not hold)");
			if (p)
				kmsd_link_pending_complete(p, KMSD_LINK_DESYNC);
			rc = -1;
		} else if (p && dst == p->bytes) {
			memcpy(p->ids, ids, need * 16);
			kmsd_link_pending_complete(p, KMSD_LINK_OK);
		} else if (p) {
			kmsd_link_pending_complete(p, KMSD_LINK_DESYNC);
		}
		/* else: the requester gave up; the blocks are gone on both sides, as they must be */
	}
	pthread_mutex_unlock(&l->plock);
	pthread_mutex_unlock(&s->lock);
	if (scratch) {
		ipseq_wipe(scratch, need * s->block_bytes);
		free(scratch);
	}
	return rc;
}

/* Slave: keys the master handed to a master SAE there; reserve them for our slave SAE. */
static int on_reserve(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_store *s = &k->store;
	char master[ETSI014_ID_MAX + 1], slave[ETSI014_ID_MAX + 1], what[512];
	uint32_t req = kmsd_r_u32(r);
	unsigned number = kmsd_r_u16(r), size = kmsd_r_u32(r), bpk = kmsd_r_u16(r);
	size_t need = (size_t)number * bpk, i;
	const uint8_t *ids;
	uint8_t *bytes = NULL;
	uint16_t status = 0;
	struct kmsd_wbuf w = {0};
	int rc = 0;

	kmsd_r_str(r, master);
	kmsd_r_str(r, slave);
	ids = kmsd_r_bytes(r, need * 16);
	if (r->err || need == 0 || size == 0 || size % 8 || bpk != kmsd_blocks_per_key(s, size)) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed RESERVE");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	bytes = malloc(need * s->block_bytes);
	if (!bytes || kmsd_store_pop(s, need, ids, NULL, bytes) < 0) {
		ipseq_log(IPSEQ_LOG_ERR,
			  "QKD link: stores diverged (RESERVE names blocks we do not hold)");
		rc = -1;
	} else if (!kmsd_config_is_local_sae(k->cfg, slave) ||
		   !kmsd_config_is_peer_sae(k->cfg, master)) {
		/* The blocks are consumed on both sides anyway; the keys just never get served. */
		ipseq_log(IPSEQ_LOG_WARN,
			  "peer reserved keys for %s -> %s, not a registered pair here", master,
			  slave);
		status = KMSD_LINK_UNAUTHORIZED;
	} else {
		for (i = 0; i < number; i++)
			kmsd_store_reserve(s, ids + i * bpk * 16, master, slave,
					   bytes + i * bpk * s->block_bytes, size / 8,
					   k->cfg->reservation_lifetime);
		snprintf(what, sizeof(what), "reserved %u key(s) of %u bits for %s (master %s at %s)",
			 number, size, slave, master, k->cfg->peer_kme_id);
		kmsd_log_ids(IPSEQ_LOG_INFO, what, ids, number, bpk * 16);
	}
	if (rc == 0) {
		kmsd_w_u32(&w, req);
		kmsd_w_u16(&w, status);
		if (w.err || kmsd_link_send(l, KMSD_MSG_RESERVE_ACK, w.p, w.len) < 0)
			rc = -1;
	}
	pthread_mutex_unlock(&s->lock);
	if (bytes) {
		ipseq_wipe(bytes, need * s->block_bytes);
		free(bytes);
	}
	kmsd_w_free(&w);
	return rc;
}

static int on_reserve_ack(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	uint32_t req = kmsd_r_u32(r);
	uint16_t status = kmsd_r_u16(r);
	struct kmsd_link_pending *p;

	if (r->err)
		return -1;
	pthread_mutex_lock(&l->plock);
	p = kmsd_link_pending_find(l, req);
	if (p)
		kmsd_link_pending_complete(p, status ? (enum kmsd_link_status)status : KMSD_LINK_OK);
	pthread_mutex_unlock(&l->plock);
	return 0;
}

static int on_keys(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	struct kmsd_store *s = &l->kme->store;
	unsigned n = kmsd_r_u16(r), i;
	int rc = 0;

	if (r->err) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed KEYS");
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	for (i = 0; i < n && rc == 0; i++) {
		const uint8_t *id = kmsd_r_bytes(r, 16), *key = kmsd_r_bytes(r, s->block_bytes);
		if (!id || !key || kmsd_store_push(s, id, key) < 0) {
			ipseq_log(IPSEQ_LOG_ERR, "QKD link: KEYS message does not fit the store");
			rc = -1;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int on_consumed(struct kmsd_link *l, struct kmsd_rbuf *r)
{
	unsigned n = kmsd_r_u16(r);
	const uint8_t *ids = kmsd_r_bytes(r, (size_t)n * 16);
	char what[256];

	if (!ids)
		return -1;
	snprintf(what, sizeof(what), "%s: slave fetched %u key(s)", l->kme->cfg->peer_kme_id, n);
	kmsd_log_ids(IPSEQ_LOG_INFO, what, ids, n, 16);
	return 0;
}

int kmsd_link_process(struct kmsd_link *l)
{
	int master = l->kme->is_link_master;

	while (l->rlen >= 4) {
		uint32_t len = (uint32_t)l->rbuf[0] << 24 | (uint32_t)l->rbuf[1] << 16 |
			       (uint32_t)l->rbuf[2] << 8 | l->rbuf[3];
		struct kmsd_rbuf r;
		int rc;

		if (len == 0 || len > KMSD_LINK_MSG_MAX) {
			ipseq_log(IPSEQ_LOG_WARN, "QKD link: bad message length %u", len);
			return -1;
		}
		if (l->rlen < 4 + (size_t)len)
			return 0;
		r.p = l->rbuf + 5;
		r.len = len - 1;
		r.off = 0;
		r.err = 0;
		switch (l->rbuf[4]) {
		case KMSD_MSG_KEYS: rc = master ? -1 : on_keys(l, &r); break;
		case KMSD_MSG_ALLOC_REQ: rc = master ? on_alloc_req(l, &r) : -1; break;
		case KMSD_MSG_ALLOC_REP: rc = master ? -1 : on_alloc_rep(l, &r); break;
		case KMSD_MSG_RESERVE: rc = master ? -1 : on_reserve(l, &r); break;
		case KMSD_MSG_RESERVE_ACK: rc = master ? on_reserve_ack(l, &r) : -1; break;
		case KMSD_MSG_CONSUMED: rc = on_consumed(l, &r); break;
		/* relay (kmsd_relay.c): either direction; only the master grants blocks */
		case KMSD_MSG_RELAY: rc = kmsd_relay_on_relay(l, r.p, r.len); break;
		case KMSD_MSG_RELAY_ACK: rc = kmsd_relay_on_ack(l, r.p, r.len); break;
		case KMSD_MSG_RELAY_ALLOC: rc = master ? kmsd_relay_on_alloc(l, r.p, r.len) : -1; break;
		case KMSD_MSG_RELAY_GRANT: rc = master ? -1 : kmsd_relay_on_grant(l, r.p, r.len); break;
		default: rc = -1; break;
		}
		if (rc < 0) {
			ipseq_log(IPSEQ_LOG_WARN, "QKD link: cannot handle message type %u",
				  l->rbuf[4]);
			return -1;
		}
		memmove(l->rbuf, l->rbuf + 4 + len, l->rlen - 4 - len);
		l->rlen -= 4 + len;
		ipseq_wipe(l->rbuf + l->rlen, 4 + len);
	}
	return 0;
}

/* --- requests of this side --------------------------------------------------------------------- */

/* Slave: a master SAE here wants number keys of size bits for slave; request req. */
int kmsd_link_send_alloc_req(struct kmsd_link *l, uint32_t req, unsigned number, unsigned size,
			     const char *master, const char *slave)
{
	struct kmsd_wbuf w = {0};
	int rc;

	kmsd_w_u32(&w, req);
	kmsd_w_u16(&w, (uint16_t)number);
	kmsd_w_u32(&w, size);
	kmsd_w_str(&w, master);
	kmsd_w_str(&w, slave);
	rc = w.err ? -1 : kmsd_link_send(l, KMSD_MSG_ALLOC_REQ, w.p, w.len);
	kmsd_w_free(&w);
	return rc;
}

/* Master: the blocks ids (number * bpk of them) were handed to master for slave; request req.
 * Caller holds the store lock it removed them under, so the stream stays in store order. */
int kmsd_link_send_reserve(struct kmsd_link *l, uint32_t req, unsigned number, unsigned size,
			   size_t bpk, const char *master, const char *slave, const uint8_t *ids)
{
	struct kmsd_wbuf w = {0};
	int rc;

	kmsd_w_u32(&w, req);
	kmsd_w_u16(&w, (uint16_t)number);
	kmsd_w_u32(&w, size);
	kmsd_w_u16(&w, (uint16_t)bpk);
	kmsd_w_str(&w, master);
	kmsd_w_str(&w, slave);
	kmsd_w_bytes(&w, ids, (size_t)number * bpk * 16);
	rc = w.err ? -1 : kmsd_link_send(l, KMSD_MSG_RESERVE, w.p, w.len);
	kmsd_w_free(&w);
	return rc;
}
