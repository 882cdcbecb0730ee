/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_listener.h"
#include "qkd_ke.h"

#include <daemon.h>
#include <encoding/payloads/notify_payload.h>
#include <encoding/payloads/sa_payload.h>

/** PPK_ID type of RFC 8784 that strongSwan sends */
#define PPK_ID_FIXED 2

typedef struct private_qkd_listener_t private_qkd_listener_t;

/**
 * Private data of the listener.
 */
struct private_qkd_listener_t {

	/**
	 * Public interface.
	 */
	qkd_listener_t public;

	/**
	 * Credential set holding the IKE_SAs' PPKs
	 */
	qkd_creds_t *creds;

	/**
	 * QKD peers
	 */
	qkd_peers_t *peers;

	/**
	 * Budget of keys spent on unauthenticated IKE_SAs
	 */
	qkd_budget_t *budget;
};

/**
 * Replace the placeholder PPK_ID in an outgoing IKE_AUTH request by the drawn key's key_ID.
 */
static void rewrite_ppk_id(private_qkd_listener_t *this, ike_sa_t *ike_sa, message_t *message)
{
	char key_id[QKD_KEY_ID_LEN + 1];
	notify_payload_t *notify;
	u_char placeholder[1 + sizeof(QKD_PPK_PLACEHOLDER) - 1] = { PPK_ID_FIXED };
	u_char data[1 + QKD_KEY_ID_LEN] = { PPK_ID_FIXED };

	notify = message->get_notify(message, PPK_IDENTITY);
	if (!notify)
	{
		return;
	}
	memcpy(placeholder + 1, QKD_PPK_PLACEHOLDER, sizeof(QKD_PPK_PLACEHOLDER) - 1);
	if (!chunk_equals(notify->get_notification_data(notify),
					  chunk_from_thing(placeholder)))
	{
		return;
	}
	if (!this->creds->get_ppk_id(this->creds, ike_sa->get_unique_id(ike_sa), key_id))
	{
		DBG1(DBG_IKE, "qkd: PPK_ID '%s' in IKE_AUTH but no quantum key drawn for it",
			 QKD_PPK_PLACEHOLDER);
		return;
	}
	memcpy(data + 1, key_id, QKD_KEY_ID_LEN);
	notify->set_notification_data(notify, chunk_from_thing(data));
	DBG2(DBG_IKE, "qkd: PPK_IDENTITY carries key_ID %s", key_id);
}

/**
 * Note the key_ID in an incoming IKE_AUTH request's PPK_IDENTITY and show charon the placeholder
 * instead, so both ends can configure ppk_id = qkd (a responder checks the received PPK_ID
 * against its own ppk_id).
 */
static void note_ppk_id(private_qkd_listener_t *this, ike_sa_t *ike_sa, message_t *message)
{
	notify_payload_t *notify;
	chunk_t data;
	u_char placeholder[1 + sizeof(QKD_PPK_PLACEHOLDER) - 1] = { PPK_ID_FIXED };

	notify = message->get_notify(message, PPK_IDENTITY);
	if (!notify || !this->peers->find(this->peers, ike_sa))
	{
		return;
	}
	data = notify->get_notification_data(notify);
	if (data.len != 1 + QKD_KEY_ID_LEN || data.ptr[0] != PPK_ID_FIXED ||
		!qkd_key_id_valid(data.ptr + 1, QKD_KEY_ID_LEN))
	{
		return;
	}
	this->creds->note_peer_ppk_id(this->creds, ike_sa->get_unique_id(ike_sa), data.ptr + 1);
	memcpy(placeholder + 1, QKD_PPK_PLACEHOLDER, sizeof(QKD_PPK_PLACEHOLDER) - 1);
	notify->set_notification_data(notify, chunk_from_thing(placeholder));
}

/**
 * Whether a proposal (offered or selected) has a QKD key exchange: x25519qkd, or on strongSwan 6
 * qkd as an additional key exchange
 */
static bool qkd_ke_in_proposal(proposal_t *proposal)
{
#if QKD_STRONGSWAN_6
	transform_type_t type;

	for (type = ADDITIONAL_KEY_EXCHANGE_1; type <= ADDITIONAL_KEY_EXCHANGE_7; type++)
	{
		if (proposal->has_transform(proposal, type, QKD_ADDITIONAL))
		{
			return TRUE;
		}
	}
#endif
	return proposal->has_transform(proposal, KEY_EXCHANGE_METHOD, QKD_X25519);
}

/**
 * Tell the operator why a QKD-required peer that proposes no QKD key exchange gets refused
 * (charon itself only says that no proposal matched).
 */
static void check_proposals(private_qkd_listener_t *this, ike_sa_t *ike_sa, message_t *message)
{
	sa_payload_t *sa;
	linked_list_t *proposals;
	proposal_t *proposal;
	qkd_peer_t *peer;
	bool qkd = FALSE;

	peer = this->peers->find(this->peers, ike_sa);
	sa = (sa_payload_t*)message->get_payload(message, PLV2_SECURITY_ASSOCIATION);
	if (!peer || !qkd_peer_required(peer, ike_sa) || !sa)
	{
		return;
	}
	proposals = sa->get_proposals(sa);
	while (!qkd && proposals->remove_first(proposals, (void**)&proposal) == SUCCESS)
	{
		qkd = qkd_ke_in_proposal(proposal);
		proposal->destroy(proposal);
	}
	proposals->destroy_offset(proposals, offsetof(proposal_t, destroy));
	if (!qkd)
	{
		DBG1(DBG_IKE, "qkd: peer '%s' at %H proposes no QKD key exchange (%s), but QKD is "
			 "required for it: refusing (is the qkd plugin loaded and configured there?)",
			 peer->name, message->get_source(message), QKD_KE_KEYWORDS);
	}
}

METHOD(listener_t, message, bool,
	private_qkd_listener_t *this, ike_sa_t *ike_sa, message_t *message,
	bool incoming, bool plain)
{
	if (incoming && plain && message->get_request(message) &&
		message->get_exchange_type(message) == IKE_SA_INIT)
	{
		check_proposals(this, ike_sa, message);
	}
	if (plain && message->get_request(message) &&
		message->get_exchange_type(message) == IKE_AUTH)
	{
		if (incoming)
		{
			note_ppk_id(this, ike_sa, message);
		}
		else
		{
			rewrite_ppk_id(this, ike_sa, message);
		}
	}
	return TRUE;
}

/**
 * Whether the IKE_SA negotiated the QKD key exchange
 */
static bool uses_qkd_ke(ike_sa_t *ike_sa)
{
	proposal_t *proposal = ike_sa->get_proposal(ike_sa);

	return proposal && qkd_ke_in_proposal(proposal);
}

METHOD(listener_t, authorize, bool,
	private_qkd_listener_t *this, ike_sa_t *ike_sa, bool final, bool *success)
{
	qkd_peer_t *peer;

	if (!final)
	{
		return TRUE;
	}
	peer = this->peers->find(this->peers, ike_sa);
	if (!peer || !qkd_peer_required(peer, ike_sa))
	{
		return TRUE;
	}
	if (!uses_qkd_ke(ike_sa))
	{
		DBG1(DBG_IKE, "qkd: QKD is required for peer '%s', but the IKE_SA did not negotiate "
			 "the QKD key exchange (%s); refused", peer->name, QKD_KE_KEYWORDS);
		*success = FALSE;
	}
	else if (!this->creds->has_ppk(this->creds, ike_sa->get_unique_id(ike_sa)))
	{
		DBG1(DBG_IKE, "qkd: QKD is required for peer '%s', but the IKE_SA holds no quantum "
			 "PPK (ppk_id = %s, ppk_required = yes); refused", peer->name,
			 QKD_PPK_PLACEHOLDER);
		*success = FALSE;
	}
	return TRUE;
}

METHOD(listener_t, ike_updown, bool,
	private_qkd_listener_t *this, ike_sa_t *ike_sa, bool up)
{
	qkd_peer_t *peer;

	/* established: SK_d, SK_pi, SK_pr are derived with the PPK and both AUTH payloads are
	 * built and verified, so neither PPK nor QPSK is needed any more */
	if (up && this->creds->wipe_keys(this->creds, ike_sa->get_unique_id(ike_sa)))
	{
		peer = this->peers->find(this->peers, ike_sa);
		DBG2(DBG_IKE, "qkd: PPK and QPSK of IKE_SA with peer '%s' wiped (IKE_SA established)",
			 peer ? peer->name : "?");
	}
	return TRUE;
}

METHOD(listener_t, ike_state_change, bool,
	private_qkd_listener_t *this, ike_sa_t *ike_sa, ike_sa_state_t state)
{
	if (state == IKE_ESTABLISHED)
	{	/* authenticated (also a rekeyed IKE_SA): its keys are well spent */
		this->budget->authenticated(this->budget, ike_sa->get_unique_id(ike_sa));
	}
	if (state == IKE_DESTROYING)
	{
		this->creds->forget(this->creds, ike_sa->get_unique_id(ike_sa));
	}
	return TRUE;
}

METHOD(qkd_listener_t, destroy, void,
	private_qkd_listener_t *this)
{
	free(this);
}

/*
 * Described in header
 */
qkd_listener_t *qkd_listener_create(qkd_creds_t *creds, qkd_peers_t *peers,
									 qkd_budget_t *budget)
{
	private_qkd_listener_t *this;

	INIT(this,
		.public = {
			.listener = {
				.message = _message,
				.authorize = _authorize,
				.ike_updown = _ike_updown,
				.ike_state_change = _ike_state_change,
			},
			.destroy = _destroy,
		},
		.creds = creds,
		.peers = peers,
		.budget = budget,
	);
	return &this->public;
}
