/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_ke.h"
#include "qkd_derive.h"
#include "qkd_abi.h"

#include <daemon.h>

/**
 * Where quantum keys come from; set once by the plugin, read by every key exchange. A
 * ke_constructor_t has no user data, hence this module-level context.
 */
static struct {
	qkd_qki_t *qki;
	qkd_peers_t *peers;
	qkd_budget_t *budget;
	size_t key_size;
} ctx;

typedef struct private_qkd_ke_t private_qkd_ke_t;

/**
 * Private data of a hybrid key exchange.
 */
struct private_qkd_ke_t {

	/**
	 * Public interface.
	 */
	key_exchange_t public;

	/**
	 * QKD_X25519 or QKD_ADDITIONAL
	 */
	key_exchange_method_t method;

	/**
	 * X25519 part of QKD_X25519, created on first use (not in the constructor: the crypto
	 * factory holds its lock there); NULL for QKD_ADDITIONAL
	 */
	key_exchange_t *x25519;

	/**
	 * Quantum key
	 */
	chunk_t qkey;

	/**
	 * Its key_ID
	 */
	char key_id[QKD_KEY_ID_LEN + 1];

	/**
	 * Our KE data once built
	 */
	chunk_t mine;

	/**
	 * Initiator's KE data (as responder: received; as initiator: ours)
	 */
	chunk_t kei;

	/**
	 * Peer name, for logs
	 */
	char peer[64];

	/**
	 * We built KEi (the initiator of this key exchange)
	 */
	bool initiator;

	/**
	 * KEr was applied (as initiator): KEi is final
	 */
	bool answered;
};

/*
 * Described in header
 */
void qkd_ke_set_context(qkd_qki_t *qki, qkd_peers_t *peers, qkd_budget_t *budget,
						size_t key_size)
{
	ctx.qki = qki;
	ctx.peers = peers;
	ctx.budget = budget;
	ctx.key_size = key_size;
}

/**
 * The QKD peer of the IKE_SA this thread works on
 */
static qkd_peer_t *find_peer(private_qkd_ke_t *this)
{
	ike_sa_t *ike_sa = charon->bus->get_sa(charon->bus);
	qkd_peer_t *peer;

	if (!ctx.qki)
	{
		DBG1(DBG_IKE, "qkd: key exchange without the qkd plugin's qkid connection");
		return NULL;
	}
	peer = ctx.peers->find(ctx.peers, ike_sa);
	if (!peer)
	{
		DBG1(DBG_IKE, "qkd: %H is no QKD peer (see charon.plugins.qkd.peers); QKD key "
			 "exchange refused", ike_sa ? ike_sa->get_other_host(ike_sa) : NULL);
		return NULL;
	}
	snprintf(this->peer, sizeof(this->peer), "%s", peer->name);
	return peer;
}

/**
 * Whether this is the hybrid method (with X25519)
 */
static bool hybrid(private_qkd_ke_t *this)
{
	return this->method == QKD_X25519;
}

/**
 * Length of the X25519 public value in our KE data (none for QKD_ADDITIONAL)
 */
static size_t pub_len(private_qkd_ke_t *this)
{
	return hybrid(this) ? QKD_X25519_LEN : 0;
}

/**
 * Proposal keyword of this method, for logs
 */
static char *keyword(private_qkd_ke_t *this)
{
	return hybrid(this) ? QKD_X25519_KEYWORD : QKD_ADDITIONAL_KEYWORD;
}

/**
 * The X25519 part of QKD_X25519; nothing to do for QKD_ADDITIONAL
 */
static bool create_x25519(private_qkd_ke_t *this)
{
	if (!hybrid(this))
	{
		return TRUE;
	}
	if (!this->x25519)
	{
		this->x25519 = lib->crypto->create_ke(lib->crypto, CURVE_25519);
		if (!this->x25519)
		{
			DBG1(DBG_IKE, "qkd: X25519 not available (load the openssl or curve25519 plugin)");
		}
	}
	return this->x25519 != NULL;
}

/**
 * Initiator: draw the key and build KEi
 */
static bool build_kei(private_qkd_ke_t *this)
{
	qkd_peer_t *peer;
	chunk_t pub = chunk_empty;

	peer = find_peer(this);
	if (!peer || !create_x25519(this))
	{
		return FALSE;
	}
	if (!ctx.qki->get_new_key(ctx.qki, peer->name, ctx.key_size, &this->qkey, this->key_id))
	{
		DBG1(DBG_IKE, "qkd: no quantum key for the key exchange (%s) with peer '%s'",
			 keyword(this), peer->name);
		return FALSE;
	}
	if (this->x25519 && !this->x25519->get_public_key(this->x25519, &pub))
	{
		return FALSE;
	}
	this->mine = chunk_cat("cmc", chunk_from_chars(QKD_WIRE_VERSION), pub,
						   chunk_create(this->key_id, QKD_KEY_ID_LEN));
	this->kei = chunk_clone(this->mine);
	this->initiator = TRUE;
	DBG1(DBG_IKE, "qkd: key exchange with peer '%s' uses quantum key %s (%s)", peer->name,
		 this->key_id, keyword(this));
	return TRUE;
}

/**
 * Label of the key confirmation's sub-key
 */
static char *confirm_label(private_qkd_ke_t *this)
{
	return hybrid(this) ? QKD_LABEL_CONFIRM : QKD_LABEL_ADD_CONFIRM;
}

/**
 * Responder: build KEr after KEi was applied
 */
static bool build_ker(private_qkd_ke_t *this)
{
	u_char confirm[QKD_CONFIRM_LEN];
	chunk_t pub = chunk_empty;

	if (this->x25519 && !this->x25519->get_public_key(this->x25519, &pub))
	{
		return FALSE;
	}
	if (!qkd_derive_confirm(this->qkey, confirm_label(this), this->kei, pub, confirm,
							sizeof(confirm)))
	{
		chunk_free(&pub);
		return FALSE;
	}
	this->mine = chunk_cat("cmc", chunk_from_chars(QKD_WIRE_VERSION), pub,
						   chunk_create(confirm, sizeof(confirm)));
	return TRUE;
}

/**
 * Initiator, asked for KEi again before any KEr came: charon builds the request anew after a
 * COOKIE notify (and keeps the key exchange object). The responder drew the quantum key of the
 * first request already (its half-open IKE_SA holds it), so the same key_ID again would be
 * refused as used, and the answer, NO_PROPOSAL_CHOSEN, is final for charon. Each request
 * therefore names a fresh quantum key; the first one is wiped here (and by the responder's
 * half-open IKE_SA when it expires). Retransmissions resend the encoded message and never
 * get here: ke_payload builds KE data once per message.
 */
static bool rebuild_kei(private_qkd_ke_t *this)
{
	char old[QKD_KEY_ID_LEN + 1];

	memcpy(old, this->key_id, sizeof(old));
	chunk_clear(&this->qkey);
	chunk_free(&this->mine);
	chunk_free(&this->kei);
	if (!build_kei(this))
	{
		return FALSE;
	}
	DBG1(DBG_IKE, "qkd: the key exchange request with peer '%s' is sent anew (a COOKIE "
		 "retry): quantum key %s replaces %s, which the peer has drawn already", this->peer,
		 this->key_id, old);
	return TRUE;
}

METHOD(key_exchange_t, get_public_key, bool,
	private_qkd_ke_t *this, chunk_t *value)
{
	if (this->mine.len && this->initiator && !this->answered)
	{
		if (!rebuild_kei(this))
		{
			return FALSE;
		}
	}
	else if (!this->mine.len)
	{
		if (this->qkey.len ? !build_ker(this) : !build_kei(this))
		{
			return FALSE;
		}
	}
	*value = chunk_clone(this->mine);
	return TRUE;
}

/**
 * Log why KE data of the peer is refused; what is KEi ("data") or KEr ("reply")
 */
static void log_refused(private_qkd_ke_t *this, qkd_ke_data_t status, chunk_t value, size_t len,
						char *what)
{
	ike_sa_t *ike_sa = charon->bus->get_sa(charon->bus);
	host_t *other = ike_sa ? ike_sa->get_other_host(ike_sa) : NULL;

	switch (status)
	{
		case QKD_KE_DATA_V1:
			DBG1(DBG_IKE, "qkd: QKD key exchange %s from %H is of version 1 (%zu bytes, an "
				 "IPSeQ without key separation), this gateway speaks version %d only: version "
				 "mismatch, update the peer; refused", what, other, value.len, QKD_WIRE_VERSION);
			break;
		case QKD_KE_DATA_LENGTH:
			DBG1(DBG_IKE, "qkd: QKD key exchange %s of %zu bytes from %H, expected %zu; "
				 "refused (%s)", what, value.len, other, len, keyword(this));
			break;
		case QKD_KE_DATA_VERSION:
			DBG1(DBG_IKE, "qkd: QKD key exchange %s from %H is of version %u, this gateway "
				 "speaks version %d only: version mismatch; refused", what, other, value.ptr[0],
				 QKD_WIRE_VERSION);
			break;
		case QKD_KE_DATA_KEY_ID:
			DBG1(DBG_IKE, "qkd: QKD key exchange %s carries no valid key_ID; refused (%s)",
				 what, keyword(this));
			break;
		case QKD_KE_DATA_OK:
			break;
	}
}

/**
 * Responder: apply KEi = version || [X25519_i] || key_ID
 */
static bool apply_kei(private_qkd_ke_t *this, chunk_t value)
{
	ike_sa_t *ike_sa = charon->bus->get_sa(charon->bus);
	qkd_ke_data_t status;
	qkd_peer_t *peer;
	chunk_t pub;
	bool charged = FALSE;

	status = qkd_ke_data_parse_kei(value, pub_len(this), &pub, this->key_id);
	if (status != QKD_KE_DATA_OK)
	{
		log_refused(this, status, value, 1 + pub_len(this) + QKD_KEY_ID_LEN, "data");
		return FALSE;
	}
	peer = find_peer(this);
	if (!peer || !create_x25519(this))
	{
		return FALSE;
	}
	if (ctx.budget && qkd_budget_applies(ike_sa))
	{	/* nothing about this IKE_SA_INIT is authenticated, yet resolving spends the key */
		if (!ctx.budget->charge(ctx.budget, peer->name, ike_sa->get_unique_id(ike_sa)))
		{
			return FALSE;
		}
		charged = TRUE;
	}
	if (!ctx.qki->get_key_by_id(ctx.qki, peer->name, this->key_id, ctx.key_size, &this->qkey))
	{
		if (charged)
		{
			ctx.budget->refund(ctx.budget, ike_sa->get_unique_id(ike_sa));
		}
		DBG1(DBG_IKE, "qkd: peer '%s' proposed quantum key %s, which we cannot obtain; "
			 "key exchange (%s) refused", peer->name, this->key_id, keyword(this));
		return FALSE;
	}
	if (this->x25519 && !this->x25519->set_public_key(this->x25519, pub))
	{
		DBG1(DBG_IKE, "qkd: invalid X25519 public value from peer '%s'", peer->name);
		return FALSE;
	}
	this->kei = chunk_clone(value);
	DBG1(DBG_IKE, "qkd: key exchange with peer '%s' uses quantum key %s (%s)", peer->name,
		 this->key_id, keyword(this));
	return TRUE;
}

/**
 * Initiator: apply KEr = version || [X25519_r] || confirm and verify the confirmation
 */
static bool apply_ker(private_qkd_ke_t *this, chunk_t value)
{
	u_char confirm[QKD_CONFIRM_LEN];
	qkd_ke_data_t status;
	chunk_t pub, theirs;

	status = qkd_ke_data_parse_ker(value, pub_len(this), &pub, &theirs);
	if (status != QKD_KE_DATA_OK)
	{
		log_refused(this, status, value, 1 + pub_len(this) + QKD_CONFIRM_LEN, "reply");
		return FALSE;
	}
	if (!qkd_derive_confirm(this->qkey, confirm_label(this), this->kei, pub, confirm,
							sizeof(confirm)))
	{
		return FALSE;
	}
	if (!memeq_const(confirm, theirs.ptr, QKD_CONFIRM_LEN))
	{
		DBG1(DBG_IKE, "qkd: key confirmation from peer '%s' failed: it holds another quantum "
			 "key for key_ID %s (QKD keys out of step?)", this->peer, this->key_id);
		return FALSE;
	}
	if (this->x25519 && !this->x25519->set_public_key(this->x25519, pub))
	{
		DBG1(DBG_IKE, "qkd: invalid X25519 public value from peer '%s'", this->peer);
		return FALSE;
	}
	DBG2(DBG_IKE, "qkd: peer '%s' confirmed quantum key %s (%s)", this->peer, this->key_id,
		 keyword(this));
	return TRUE;
}

METHOD(key_exchange_t, set_public_key, bool,
	private_qkd_ke_t *this, chunk_t value)
{
	if (this->mine.len)
	{	/* we sent KEi, this is KEr */
		this->answered = TRUE;
		return apply_ker(this, value);
	}
	if (this->qkey.len)
	{
		DBG1(DBG_IKE, "qkd: second KEi for one key exchange ignored");
		return FALSE;
	}
	return apply_kei(this, value);
}

METHOD(key_exchange_t, get_shared_secret, bool,
	private_qkd_ke_t *this, chunk_t *secret)
{
	chunk_t ss;
	bool ok;

	if (!this->qkey.len)
	{
		return FALSE;
	}
	if (!hybrid(this))
	{	/* the quantum key is all of this key exchange's secret */
		return qkd_derive_subkey(this->qkey, QKD_LABEL_ADD_SECRET, secret);
	}
	if (!this->x25519 || !this->x25519->get_shared_secret(this->x25519, &ss))
	{
		return FALSE;
	}
	ok = qkd_derive_ke_secret(ss, this->qkey, secret);
	chunk_clear(&ss);
	return ok;
}

#if QKD_STRONGSWAN_6
/* strongSwan 6.0 renamed set_private_key to set_seed and added an optional DRBG (for KEMs),
 * which X25519 ignores; it goes to the X25519 part as it came */
METHOD(key_exchange_t, set_seed, bool,
	private_qkd_ke_t *this, chunk_t value, drbg_t *drbg)
{
	/* test vectors only (tests/qkd_kat): a fixed X25519 private key; qkd has none */
	return hybrid(this) && create_x25519(this) &&
		   this->x25519->set_seed(this->x25519, value, drbg);
}
#else
METHOD(key_exchange_t, set_private_key, bool,
	private_qkd_ke_t *this, chunk_t value)
{
	/* test vectors only (tests/qkd_kat): a fixed X25519 private key; qkd has none */
	return hybrid(this) && create_x25519(this) &&
		   this->x25519->set_private_key(this->x25519, value);
}
#endif

METHOD(key_exchange_t, get_method, key_exchange_method_t,
	private_qkd_ke_t *this)
{
	return this->method;
}

METHOD(key_exchange_t, destroy, void,
	private_qkd_ke_t *this)
{
	DESTROY_IF(this->x25519);
	chunk_clear(&this->qkey);
	chunk_free(&this->mine);
	chunk_free(&this->kei);
	free(this);
}

/*
 * Described in header
 */
key_exchange_t *qkd_ke_create(key_exchange_method_t method, ...)
{
	private_qkd_ke_t *this;

	if (method != QKD_X25519 && method != QKD_ADDITIONAL)
	{
		return NULL;
	}
	INIT(this,
		.public = {
			.get_shared_secret = _get_shared_secret,
			.set_public_key = _set_public_key,
			.get_public_key = _get_public_key,
#if QKD_STRONGSWAN_6
			.set_seed = _set_seed,
#else
			.set_private_key = _set_private_key,
#endif
			.get_method = _get_method,
			.destroy = _destroy,
		},
		.method = method,
	);
	return &this->public;
}
