/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_creds.h"
#include "qkd_derive.h"

#include <daemon.h>
#include <collections/hashtable.h>
#include <threading/mutex.h>

typedef struct private_qkd_creds_t private_qkd_creds_t;

/**
 * Private data of the credential set.
 */
struct private_qkd_creds_t {

	/**
	 * Public interface.
	 */
	qkd_creds_t public;

	/**
	 * qkid connection
	 */
	qkd_qki_t *qki;

	/**
	 * QKD peers
	 */
	qkd_peers_t *peers;

	/**
	 * Budget of keys spent on unauthenticated IKE_SAs
	 */
	qkd_budget_t *budget;

	/**
	 * PPK length in bytes
	 */
	size_t key_size;

	/**
	 * IKE_SA unique ID => sa_keys_t
	 */
	hashtable_t *sas;

	/**
	 * Protects sas
	 */
	mutex_t *mutex;
};

/**
 * Quantum AUTH-phase keys of one IKE_SA. qkey2 itself is wiped as soon as its two sub-keys are
 * derived; they are wiped once the IKE_SA is established (see wipe_keys).
 */
typedef struct {
	/** IKE_SA unique ID (hashtable key) */
	u_int unique_id;
	/** the PPK, derived from qkey2 */
	chunk_t ppk;
	/** QPSK, derived from qkey2 and the peer's base PSK (empty without a base PSK) */
	chunk_t qpsk;
	/** qkey2's key_ID */
	char key_id[QKD_KEY_ID_LEN + 1];
	/** drawn by us as initiator (else resolved as responder) */
	bool initiator;
	/** the IKE_SA got a quantum PPK (stays set after the keys are wiped) */
	bool had_ppk;
} sa_keys_t;

static void sa_keys_wipe(sa_keys_t *keys)
{
	chunk_clear(&keys->ppk);
	chunk_clear(&keys->qpsk);
}

static void sa_keys_destroy(sa_keys_t *keys)
{
	sa_keys_wipe(keys);
	free(keys);
}

/**
 * Derive the PPK and QPSK of an IKE_SA from qkey2, which is wiped
 */
static bool derive_keys(sa_keys_t *keys, chunk_t *qkey2, qkd_peer_t *peer)
{
	bool ok;

	ok = qkd_derive_ppk(*qkey2, &keys->ppk) &&
		 (!peer->psk.len || qkd_derive_qpsk(*qkey2, peer->psk, &keys->qpsk));
	chunk_clear(qkey2);
	if (!ok)
	{
		DBG1(DBG_IKE, "qkd: cannot derive PPK and QPSK for peer '%s' (HMAC-SHA256 missing?)",
			 peer->name);
		sa_keys_wipe(keys);
		return FALSE;
	}
	keys->had_ppk = TRUE;
	return TRUE;
}

static u_int hash_id(const void *key)
{
	return chunk_hash(chunk_create((u_char*)key, sizeof(u_int)));
}

static bool equals_id(const void *a, const void *b)
{
	return *(const u_int*)a == *(const u_int*)b;
}

/**
 * Store the keys of an IKE_SA, replacing older ones. Returns a copy of the PPK.
 */
static chunk_t store(private_qkd_creds_t *this, sa_keys_t *keys)
{
	sa_keys_t *old;
	chunk_t copy = chunk_clone(keys->ppk);

	this->mutex->lock(this->mutex);
	old = this->sas->put(this->sas, &keys->unique_id, keys);
	this->mutex->unlock(this->mutex);
	if (old)
	{
		sa_keys_destroy(old);
	}
	return copy;
}

/**
 * A copy of the PPK an IKE_SA already holds, or chunk_empty
 */
static chunk_t lookup_ppk(private_qkd_creds_t *this, u_int unique_id, char *key_id)
{
	sa_keys_t *keys;
	chunk_t ppk = chunk_empty;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	if (keys && (!key_id || streq(keys->key_id, key_id)))
	{
		ppk = chunk_clone(keys->ppk);
	}
	this->mutex->unlock(this->mutex);
	return ppk;
}

/**
 * A copy of the QPSK an IKE_SA holds, or chunk_empty
 */
static chunk_t lookup_qpsk(private_qkd_creds_t *this, u_int unique_id)
{
	sa_keys_t *keys;
	chunk_t qpsk = chunk_empty;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	if (keys)
	{
		qpsk = chunk_clone(keys->qpsk);
	}
	this->mutex->unlock(this->mutex);
	return qpsk;
}

/**
 * Initiator: draw qkey2 for the placeholder PPK_ID (once per IKE_SA)
 */
static chunk_t draw_ppk(private_qkd_creds_t *this, ike_sa_t *ike_sa, qkd_peer_t *peer)
{
	u_int unique_id = ike_sa->get_unique_id(ike_sa);
	sa_keys_t *keys;
	chunk_t ppk, qkey2;

	ppk = lookup_ppk(this, unique_id, NULL);
	if (ppk.len)
	{
		return ppk;
	}
	INIT(keys,
		.unique_id = unique_id,
		.initiator = TRUE,
	);
	if (!this->qki->get_new_key(this->qki, peer->name, this->key_size, &qkey2,
								keys->key_id))
	{
		DBG1(DBG_IKE, "qkd: no quantum PPK for IKE_SA with peer '%s'", peer->name);
		free(keys);
		return chunk_empty;
	}
	if (!derive_keys(keys, &qkey2, peer))
	{
		free(keys);
		return chunk_empty;
	}
	DBG1(DBG_IKE, "qkd: PPK for peer '%s' is quantum key %s", peer->name, keys->key_id);
	return store(this, keys);
}

/**
 * Responder: resolve the key_ID the initiator sent as PPK_ID
 */
static chunk_t resolve_ppk(private_qkd_creds_t *this, ike_sa_t *ike_sa, qkd_peer_t *peer,
						   chunk_t id)
{
	u_int unique_id = ike_sa->get_unique_id(ike_sa);
	sa_keys_t *keys;
	chunk_t ppk, qkey2;

	if (!qkd_key_id_valid(id.ptr, id.len))
	{
		DBG1(DBG_IKE, "qkd: PPK_ID from peer '%s' is not a QKD key_ID", peer->name);
		return chunk_empty;
	}
	INIT(keys,
		.unique_id = unique_id,
	);
	memcpy(keys->key_id, id.ptr, QKD_KEY_ID_LEN);
	ppk = lookup_ppk(this, unique_id, keys->key_id);
	if (ppk.len)
	{
		free(keys);
		return ppk;
	}
	/* IKE_AUTH is not verified yet: resolving the PPK spends a key for an unauthenticated
	 * IKE_SA */
	if (qkd_budget_applies(ike_sa) &&
		!this->budget->charge(this->budget, peer->name, unique_id))
	{
		free(keys);
		return chunk_empty;
	}
	if (!this->qki->get_key_by_id(this->qki, peer->name, keys->key_id, this->key_size,
								  &qkey2))
	{
		if (qkd_budget_applies(ike_sa))
		{
			this->budget->refund(this->budget, unique_id);
		}
		free(keys);
		return chunk_empty;
	}
	if (!derive_keys(keys, &qkey2, peer))
	{
		free(keys);
		return chunk_empty;
	}
	DBG1(DBG_IKE, "qkd: PPK from peer '%s' is quantum key %s", peer->name, keys->key_id);
	return store(this, keys);
}

/**
 * Responder: resolve the key_ID noted from the received PPK_IDENTITY
 */
static chunk_t resolve_noted_ppk(private_qkd_creds_t *this, ike_sa_t *ike_sa, qkd_peer_t *peer)
{
	u_int unique_id = ike_sa->get_unique_id(ike_sa);
	char key_id[QKD_KEY_ID_LEN + 1] = "";
	sa_keys_t *keys;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	if (keys)
	{
		memcpy(key_id, keys->key_id, sizeof(key_id));
	}
	this->mutex->unlock(this->mutex);
	if (!key_id[0])
	{
		DBG1(DBG_IKE, "qkd: peer '%s' sent no QKD key_ID as PPK_ID", peer->name);
		return chunk_empty;
	}
	return resolve_ppk(this, ike_sa, peer, chunk_create(key_id, QKD_KEY_ID_LEN));
}

/**
 * Enumerator over one shared key, matching both identities perfectly: the key is bound to the
 * IKE_SA, not to identities, and must win over anything less specific.
 */
typedef struct {
	/** implements enumerator_t */
	enumerator_t public;
	/** the key, owned */
	shared_key_t *key;
	/** enumerated already */
	bool done;
} shared_enumerator_t;

METHOD(enumerator_t, shared_enumerate, bool,
	shared_enumerator_t *this, va_list args)
{
	shared_key_t **key;
	id_match_t *me, *other;

	VA_ARGS_VGET(args, key, me, other);
	if (this->done)
	{
		return FALSE;
	}
	*key = this->key;
	if (me)
	{
		*me = ID_MATCH_PERFECT;
	}
	if (other)
	{
		*other = ID_MATCH_PERFECT;
	}
	this->done = TRUE;
	return TRUE;
}

METHOD(enumerator_t, shared_enumerator_destroy, void,
	shared_enumerator_t *this)
{
	this->key->destroy(this->key);
	free(this);
}

static enumerator_t *shared_enumerator_create(shared_key_t *key)
{
	shared_enumerator_t *this;

	INIT(this,
		.public = {
			.enumerate = enumerator_enumerate_default,
			.venumerate = _shared_enumerate,
			.destroy = _shared_enumerator_destroy,
		},
		.key = key,
	);
	return &this->public;
}

METHOD(credential_set_t, create_shared_enumerator, enumerator_t*,
	private_qkd_creds_t *this, shared_key_type_t type,
	identification_t *me, identification_t *other)
{
	ike_sa_t *ike_sa;
	qkd_peer_t *peer;
	shared_key_t *key = NULL;
	chunk_t ppk, secret, id;

	ike_sa = charon->bus->get_sa(charon->bus);
	peer = this->peers->find(this->peers, ike_sa);
	if (!peer)
	{
		return enumerator_create_empty();
	}
	switch (type)
	{
		case SHARED_PPK:
			if (!me)
			{	/* a responder asks whether it can offer USE_PPK at all */
				key = shared_key_create(SHARED_PPK, chunk_empty);
				break;
			}
			id = me->get_encoding(me);
			if (!chunk_equals(id, chunk_from_str(QKD_PPK_PLACEHOLDER)))
			{	/* a responder without ppk_id gets the key_ID itself */
				ppk = resolve_ppk(this, ike_sa, peer, id);
			}
			else if (ike_sa->get_id(ike_sa)->is_initiator(ike_sa->get_id(ike_sa)))
			{
				ppk = draw_ppk(this, ike_sa, peer);
			}
			else
			{	/* responder with ppk_id = placeholder: the listener noted the key_ID */
				ppk = resolve_noted_ppk(this, ike_sa, peer);
			}
			if (ppk.len)
			{
				key = shared_key_create(SHARED_PPK, ppk);
			}
			break;
		case SHARED_IKE:
		case SHARED_ANY:
			if (!peer->psk.len)
			{
				break;
			}
			secret = lookup_qpsk(this, ike_sa->get_unique_id(ike_sa));
			if (!secret.len)
			{
				DBG1(DBG_IKE, "qkd: no quantum key for QPSK with peer '%s' (did the peer use "
					 "a QKD PPK?)", peer->name);
				break;
			}
			key = shared_key_create(SHARED_IKE, secret);
			break;
		default:
			break;
	}
	if (!key)
	{
		return enumerator_create_empty();
	}
	/* the enumerator owns the key; shared_key_t wipes it on destroy */
	return shared_enumerator_create(key);
}

METHOD(qkd_creds_t, get_ppk_id, bool,
	private_qkd_creds_t *this, u_int unique_id, char key_id[QKD_KEY_ID_LEN + 1])
{
	sa_keys_t *keys;
	bool found = FALSE;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	if (keys && keys->initiator)
	{
		memcpy(key_id, keys->key_id, QKD_KEY_ID_LEN + 1);
		found = TRUE;
	}
	this->mutex->unlock(this->mutex);
	return found;
}

METHOD(qkd_creds_t, note_peer_ppk_id, void,
	private_qkd_creds_t *this, u_int unique_id, char *key_id)
{
	sa_keys_t *keys;

	INIT(keys,
		.unique_id = unique_id,
	);
	memcpy(keys->key_id, key_id, QKD_KEY_ID_LEN);
	this->mutex->lock(this->mutex);
	keys = this->sas->put(this->sas, &keys->unique_id, keys);
	this->mutex->unlock(this->mutex);
	if (keys)
	{
		sa_keys_destroy(keys);
	}
}

METHOD(qkd_creds_t, has_ppk, bool,
	private_qkd_creds_t *this, u_int unique_id)
{
	sa_keys_t *keys;
	bool found;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	found = keys && keys->had_ppk;
	this->mutex->unlock(this->mutex);
	return found;
}

METHOD(qkd_creds_t, wipe_keys, bool,
	private_qkd_creds_t *this, u_int unique_id)
{
	sa_keys_t *keys;
	bool wiped = FALSE;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	if (keys && (keys->ppk.len || keys->qpsk.len))
	{
		sa_keys_wipe(keys);
		wiped = TRUE;
	}
	this->mutex->unlock(this->mutex);
	return wiped;
}

METHOD(qkd_creds_t, holds_keys, bool,
	private_qkd_creds_t *this, u_int unique_id)
{
	sa_keys_t *keys;
	bool held;

	this->mutex->lock(this->mutex);
	keys = this->sas->get(this->sas, &unique_id);
	held = keys && (keys->ppk.len || keys->qpsk.len);
	this->mutex->unlock(this->mutex);
	return held;
}

METHOD(qkd_creds_t, forget, void,
	private_qkd_creds_t *this, u_int unique_id)
{
	sa_keys_t *keys;

	this->mutex->lock(this->mutex);
	keys = this->sas->remove(this->sas, &unique_id);
	this->mutex->unlock(this->mutex);
	if (keys)
	{
		sa_keys_destroy(keys);
	}
}

METHOD(qkd_creds_t, destroy, void,
	private_qkd_creds_t *this)
{
	this->sas->destroy_function(this->sas, (void*)sa_keys_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
qkd_creds_t *qkd_creds_create(qkd_qki_t *qki, qkd_peers_t *peers, qkd_budget_t *budget,
							  size_t key_size)
{
	private_qkd_creds_t *this;

	INIT(this,
		.public = {
			.set = {
				.create_shared_enumerator = _create_shared_enumerator,
				.create_private_enumerator = (void*)return_null,
				.create_cert_enumerator = (void*)return_null,
				.create_cdp_enumerator = (void*)return_null,
				.cache_cert = (void*)nop,
			},
			.get_ppk_id = _get_ppk_id,
			.note_peer_ppk_id = _note_peer_ppk_id,
			.has_ppk = _has_ppk,
			.wipe_keys = _wipe_keys,
			.holds_keys = _holds_keys,
			.forget = _forget,
			.destroy = _destroy,
		},
		.qki = qki,
		.peers = peers,
		.budget = budget,
		.key_size = key_size,
		.sas = hashtable_create(hash_id, equals_id, 8),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	return &this->public;
}
