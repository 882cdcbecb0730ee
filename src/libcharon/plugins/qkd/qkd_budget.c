/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_budget.h"

#include <daemon.h>
#include <collections/linked_list.h>
#include <threading/mutex.h>

typedef struct private_qkd_budget_t private_qkd_budget_t;

/**
 * Private data of the budget.
 */
struct private_qkd_budget_t {

	/**
	 * Public interface.
	 */
	qkd_budget_t public;

	/**
	 * Keys per peer, 0 for no limit
	 */
	u_int keys;

	/**
	 * Seconds a charge counts
	 */
	u_int window;

	/**
	 * charge_t, oldest first
	 */
	linked_list_t *charges;

	/**
	 * episode_t of peers whose budget ran out
	 */
	linked_list_t *episodes;

	/**
	 * Protects the lists
	 */
	mutex_t *mutex;
};

/**
 * One key spent for an unauthenticated IKE_SA.
 */
typedef struct {
	char *peer;
	u_int unique_id;
	time_t at;
} charge_t;

/**
 * A peer whose budget is used up: refusals since.
 */
typedef struct {
	char *peer;
	u_int refused;
} episode_t;

/**
 * Drop charges older than the window. Call with the mutex held.
 */
static void expire(private_qkd_budget_t *this, time_t now)
{
	charge_t *charge;

	while (this->charges->get_first(this->charges, (void**)&charge) == SUCCESS &&
		   charge->at + this->window <= now)
	{
		this->charges->remove_first(this->charges, (void**)&charge);
		free(charge);
	}
}

/**
 * Charges of a peer. Call with the mutex held.
 */
static u_int count(private_qkd_budget_t *this, char *peer)
{
	enumerator_t *enumerator;
	charge_t *charge;
	u_int n = 0;

	enumerator = this->charges->create_enumerator(this->charges);
	while (enumerator->enumerate(enumerator, &charge))
	{
		n += streq(charge->peer, peer);
	}
	enumerator->destroy(enumerator);
	return n;
}

/**
 * The episode of a peer, NULL if its budget did not run out. Call with the mutex held.
 */
static episode_t *find_episode(private_qkd_budget_t *this, char *peer, bool remove)
{
	enumerator_t *enumerator;
	episode_t *episode, *found = NULL;

	enumerator = this->episodes->create_enumerator(this->episodes);
	while (enumerator->enumerate(enumerator, &episode))
	{
		if (streq(episode->peer, peer))
		{
			if (remove)
			{
				this->episodes->remove_at(this->episodes, enumerator);
			}
			found = episode;
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

METHOD(qkd_budget_t, charge, bool,
	private_qkd_budget_t *this, char *peer, u_int unique_id)
{
	episode_t *episode;
	charge_t *charge;
	u_int spent;

	if (!this->keys)
	{
		return TRUE;
	}
	this->mutex->lock(this->mutex);
	expire(this, time_monotonic(NULL));
	spent = count(this, peer);
	if (spent >= this->keys)
	{
		episode = find_episode(this, peer, FALSE);
		if (!episode)
		{
			INIT(episode,
				.peer = peer,
			);
			this->episodes->insert_last(this->episodes, episode);
			DBG1(DBG_IKE, "qkd: peer '%s' has spent %u quantum keys within %u s on IKE_SAs "
				 "that did not authenticate (spoofed or replayed IKE_SA_INITs?); refusing its "
				 "QKD key exchanges until one authenticates or the keys age out "
				 "(charon.plugins.qkd.unauthenticated_keys = %u)", peer, spent, this->window,
				 this->keys);
		}
		episode->refused++;
		DBG2(DBG_IKE, "qkd: QKD key exchange of peer '%s' refused: unauthenticated key "
			 "budget used up (%u refused so far)", peer, episode->refused);
		this->mutex->unlock(this->mutex);
		return FALSE;
	}
	episode = find_episode(this, peer, TRUE);
	if (episode)
	{
		DBG1(DBG_IKE, "qkd: peer '%s' may spend quantum keys on unauthenticated IKE_SAs "
			 "again; %u key exchanges were refused meanwhile", peer, episode->refused);
		free(episode);
	}
	INIT(charge,
		.peer = peer,
		.unique_id = unique_id,
		.at = time_monotonic(NULL),
	);
	this->charges->insert_last(this->charges, charge);
	this->mutex->unlock(this->mutex);
	return TRUE;
}

/**
 * Remove the charges of an IKE_SA, all or only the newest. Call with the mutex held.
 */
static void remove_charges(private_qkd_budget_t *this, u_int unique_id, bool all)
{
	enumerator_t *enumerator;
	charge_t *charge, *last = NULL;

	enumerator = this->charges->create_enumerator(this->charges);
	while (enumerator->enumerate(enumerator, &charge))
	{
		if (charge->unique_id != unique_id)
		{
			continue;
		}
		if (all)
		{
			this->charges->remove_at(this->charges, enumerator);
			free(charge);
		}
		else
		{
			last = charge;
		}
	}
	enumerator->destroy(enumerator);
	if (last)
	{
		this->charges->remove(this->charges, last, NULL);
		free(last);
	}
}

METHOD(qkd_budget_t, refund, void,
	private_qkd_budget_t *this, u_int unique_id)
{
	this->mutex->lock(this->mutex);
	remove_charges(this, unique_id, FALSE);
	this->mutex->unlock(this->mutex);
}

METHOD(qkd_budget_t, authenticated, void,
	private_qkd_budget_t *this, u_int unique_id)
{
	this->mutex->lock(this->mutex);
	remove_charges(this, unique_id, TRUE);
	this->mutex->unlock(this->mutex);
}

METHOD(qkd_budget_t, spent, u_int,
	private_qkd_budget_t *this, char *peer)
{
	u_int n;

	this->mutex->lock(this->mutex);
	expire(this, time_monotonic(NULL));
	n = count(this, peer);
	this->mutex->unlock(this->mutex);
	return n;
}

METHOD(qkd_budget_t, destroy, void,
	private_qkd_budget_t *this)
{
	this->charges->destroy_function(this->charges, free);
	this->episodes->destroy_function(this->episodes, free);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
bool qkd_budget_applies(ike_sa_t *ike_sa)
{
	if (!ike_sa)
	{
		return FALSE;
	}
	switch (ike_sa->get_state(ike_sa))
	{
		case IKE_CREATED:
		case IKE_CONNECTING:
			return TRUE;
		default:
			return FALSE;
	}
}

/*
 * Described in header
 */
qkd_budget_t *qkd_budget_create(u_int keys, u_int window)
{
	private_qkd_budget_t *this;

	INIT(this,
		.public = {
			.charge = _charge,
			.refund = _refund,
			.authenticated = _authenticated,
			.spent = _spent,
			.destroy = _destroy,
		},
		.keys = keys,
		.window = window ?: 1,
		.charges = linked_list_create(),
		.episodes = linked_list_create(),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	return &this->public;
}
