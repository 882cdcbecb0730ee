/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_ike.c - IKE keys for the local charon. The initiator takes a key at once: the master from
 * its pool (announced as IKE_MASTER), the slave from its stash (IKE_SLAVE keys the master filled
 * ahead). The responder asks by key_ID; a slave fetches a key_ID the master has not announced yet
 * on demand. Every key handed out is buried: asking again gets KEY_USED.
 */
#include <stdio.h>
#include <string.h>

#include "qkid.h"
#include "qkid_ike.h"
#include "qkid_log.h"

/* IKE keys the peer's charon may still ask for (the peer initiated with them). An IKE exchange
 * claims its key within seconds; beyond this many unclaimed keys the oldest are abandoned
 * (wiped), so a peer that initiates without ever completing cannot fill our key memory. */
#define IKE_PEER_MAX 1024

void qkid_ike_peer_add(struct qkid_peer *p, struct qkey *k)
{
	qkey_list_append(&p->ike_peer, k);
	while (p->ike_peer.n > IKE_PEER_MAX) {
		struct qkey *old = p->ike_peer.head;
		if (p->drops_ike++ % 1000 == 0)
			log_warn("peer %s: more than %d IKE keys never claimed by the peer's "
				 "handshakes; wiping the oldest (%s)", p->conf->name, IKE_PEER_MAX,
				 old->id);
		old->unacked = 0;
		qkid_key_bury(p, old);
	}
}

static int copy_out(struct qkid_peer *p, struct qkey *k, size_t size, uint8_t *key)
{
	memcpy(key, k->bytes, size);
	p->keys_out++;
	return QKI_OK;
}

int qkid_ike_new(struct qkid_peer *p, size_t size, uint8_t *key, char *key_id, const char **msg)
{
	struct qkey *k;
	if (size == 0 || size > p->key_len) {
		*msg = "size must be 1..key_size bytes";
		return QKI_ERR_INVALID;
	}
	if (p->role == QKI_ROLE_MASTER) {
		k = qkid_pool_take(p);
		if (!k) {
			*msg = p->kme_state == QKI_KME_BACKOFF ? "pool empty, KME failing" : NULL;
			return QKID_AGAIN;
		}
		k->use = QKP_USE_IKE_MASTER;
		k->unacked = 1;
		strcpy(key_id, k->id);
		copy_out(p, k, size, key);
		/* the announcement is queued before the reply and flushed first */
		qkid_out_assign(p, k);
		qkid_key_bury(p, k);
		log_info("peer %s: IKE key %s handed out (initiator)", p->conf->name, key_id);
		return QKI_OK;
	}
	k = p->ike_own.head;
	if (!k) {
		int64_t now = qkid_now_ms();
		if (!qkid_link_up(p)) {
			*msg = "IKE key stash empty and the master qkid is not connected";
			return QKI_ERR_PEER_DOWN;
		}
		/* parked requests retry often; remind the master at most every NEED_INTERVAL */
		if (now - p->ike_need_t > QKID_NEED_INTERVAL_MS) {
			p->need_ike = 1;
			p->ike_need_t = now;
		}
		return QKID_AGAIN;
	}
	strcpy(key_id, k->id);
	copy_out(p, k, size, key);
	qkid_key_bury(p, k);
	p->need_ike = 1;
	log_info("peer %s: IKE key %s handed out (initiator)", p->conf->name, key_id);
	return QKI_OK;
}

int qkid_ike_get(struct qkid_peer *p, const char *key_id_in, size_t size, uint8_t *key,
		 const char **msg)
{
	char key_id[ETSI014_KEY_ID_LEN + 1];
	struct qkey *k;
	int want_use = p->role == QKI_ROLE_MASTER ? QKP_USE_IKE_SLAVE : QKP_USE_IKE_MASTER;

	if (size == 0 || size > p->key_len) {
		*msg = "size must be 1..key_size bytes";
		return QKI_ERR_INVALID;
	}
	/* One form, lower case, as every key_ID is kept: an upper-case copy of a used key_ID is
	 * that key_ID (KEY_USED), not an unknown one to fetch on demand. */
	if (!etsi014_key_id_canonical(key_id_in, key_id)) {
		*msg = "key_ID is not a UUID";
		return QKI_ERR_INVALID;
	}
	k = qkid_key_find(p, key_id);
	if (!k) {
		if (p->role == QKI_ROLE_MASTER) {
			*msg = "key_ID was not handed to the peer by this qkid";
			return QKI_ERR_UNKNOWN_KEY;
		}
		/* the announcement may still be on its way: ask our KME directly */
		k = qkid_key_new(p, key_id);
		if (!k)
			return QKI_ERR_INTERNAL;
		k->on_demand = 1;
		k->state = QK_ANNOUNCED;
		k->fetch_single = 1;
		/* at the head: a waiting IKE responder goes before bulk SA fetches */
		qkey_list_append(&p->fetchq, k);
		if (p->fetchq.head != k) {
			qkey_list_remove(k);
			k->list = &p->fetchq;
			k->next = p->fetchq.head;
			k->prev = NULL;
			p->fetchq.head->prev = k;
			p->fetchq.head = k;
			p->fetchq.n++;
		}
		log_debug("peer %s: key_ID %s not announced yet, fetching on demand", p->conf->name,
			  key_id);
		return QKID_AGAIN;
	}
	if (k->state == QK_USED) {
		*msg = k->failed ? "key_ID unknown to the KME" : "key_ID already used";
		return k->failed ? QKI_ERR_UNKNOWN_KEY : QKI_ERR_KEY_USED;
	}
	if (k->use == want_use || (k->on_demand && !k->use)) {
		if (k->state == QK_ANNOUNCED || k->state == QK_FETCHING)
			return QKID_AGAIN;
		if (k->state == QK_READY || (k->state == QK_PENDING && k->bytes)) {
			copy_out(p, k, size, key);
			qkid_key_bury(p, k);
			log_info("peer %s: IKE key %s handed out (responder)", p->conf->name, key_id);
			return QKI_OK;
		}
	}
	if (k->state == QK_POOL) {
		*msg = "key_ID was not handed to the peer by this qkid";
		return QKI_ERR_UNKNOWN_KEY;
	}
	*msg = "key_ID is assigned to another use";
	log_warn("peer %s: refused key_ID %s: assigned to another use", p->conf->name, key_id);
	return QKI_ERR_KEY_USED;
}
