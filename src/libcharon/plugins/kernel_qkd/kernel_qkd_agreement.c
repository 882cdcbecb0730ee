/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "kernel_qkd_agreement.h"

#include <daemon.h>
#include <collections/hashtable.h>
#include <threading/mutex.h>

typedef struct private_kernel_qkd_agreement_t private_kernel_qkd_agreement_t;

/**
 * Private data of the agreement listener.
 */
struct private_kernel_qkd_agreement_t {

	/**
	 * Public interface.
	 */
	kernel_qkd_agreement_t public;

	/**
	 * Rotation settings per peer (not owned).
	 */
	kernel_qkd_peers_t *peers;

	/**
	 * Unique ids of IKE_SAs whose peer announced rotation (key and value: the id).
	 */
	hashtable_t *announced;

	/**
	 * Guards announced: listeners run on many threads.
	 */
	mutex_t *mutex;
};

/**
 * Whether we rotate with the peer of an IKE_SA (ESP goes to the IKE peer's address).
 */
static bool we_rotate(private_kernel_qkd_agreement_t *this, ike_sa_t *ike_sa)
{
	struct iq_rotation rotation;
	host_t *other = ike_sa->get_other_host(ike_sa);

	return other && this->peers->lookup(this->peers, other, &rotation) &&
		   this->peers->override(this->peers, kernel_qkd_connection_name(ike_sa), &rotation) &&
		   rotation.enabled;
}

/**
 * Note whether the peer of an IKE_SA announced rotation.
 */
static void note(private_kernel_qkd_agreement_t *this, ike_sa_t *ike_sa, bool rotates)
{
	uintptr_t id = ike_sa->get_unique_id(ike_sa);

	this->mutex->lock(this->mutex);
	if (rotates)
	{
		this->announced->put(this->announced, (void*)id, (void*)id);
	}
	else
	{
		this->announced->remove(this->announced, (void*)id);
	}
	this->mutex->unlock(this->mutex);
}

METHOD(listener_t, message, bool,
	private_kernel_qkd_agreement_t *this, ike_sa_t *ike_sa, message_t *message,
	bool incoming, bool plain)
{
	exchange_type_t type = message->get_exchange_type(message);

	/* only plaintext messages that negotiate SAs; an IKE rekey carries the notify harmlessly */
	if (!plain || (type != IKE_AUTH && type != CREATE_CHILD_SA) ||
		!message->get_payload(message, PLV2_SECURITY_ASSOCIATION))
	{
		return TRUE;
	}
	if (incoming)
	{
		note(this, ike_sa,
			 message->get_notify(message, KERNEL_QKD_ROTATION_NOTIFY) != NULL);
	}
	else if (we_rotate(this, ike_sa))
	{
		message->add_notify(message, FALSE, KERNEL_QKD_ROTATION_NOTIFY,
							chunk_from_chars(0x01));
	}
	return TRUE;
}

METHOD(listener_t, ike_state_change, bool,
	private_kernel_qkd_agreement_t *this, ike_sa_t *ike_sa, ike_sa_state_t state)
{
	if (state == IKE_DESTROYING)
	{
		note(this, ike_sa, FALSE);
	}
	return TRUE;
}

METHOD(kernel_qkd_agreement_t, peer_rotates, bool,
	private_kernel_qkd_agreement_t *this, ike_sa_t *ike_sa)
{
	uintptr_t id;
	bool found;

	if (!ike_sa)
	{
		return FALSE;
	}
	id = ike_sa->get_unique_id(ike_sa);
	this->mutex->lock(this->mutex);
	found = this->announced->get(this->announced, (void*)id) != NULL;
	this->mutex->unlock(this->mutex);
	return found;
}

METHOD(kernel_qkd_agreement_t, destroy, void,
	private_kernel_qkd_agreement_t *this)
{
	this->announced->destroy(this->announced);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
kernel_qkd_agreement_t *kernel_qkd_agreement_create(kernel_qkd_peers_t *peers)
{
	private_kernel_qkd_agreement_t *this;

	INIT(this,
		.public = {
			.listener = {
				.message = _message,
				.ike_state_change = _ike_state_change,
			},
			.peer_rotates = _peer_rotates,
			.destroy = _destroy,
		},
		.peers = peers,
		.announced = hashtable_create(hashtable_hash_ptr, hashtable_equals_ptr, 8),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	return &this->public;
}
