/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_budget qkd_budget
 * @{ @ingroup qkd
 */

#ifndef QKD_BUDGET_H_
#define QKD_BUDGET_H_

#include <sa/ike_sa.h>

typedef struct qkd_budget_t qkd_budget_t;

/**
 * Per-peer budget of quantum keys spent on IKE_SAs that have not authenticated yet.
 *
 * A responder resolves the initiator's key_ID during IKE_SA_INIT (and the PPK's during
 * IKE_AUTH), before anything about the peer is authenticated, and a resolved key is gone for
 * good. So anyone who can send IKE_SA_INITs from a peer's address with key_IDs it learnt could
 * burn that peer's keys. Each key spent so counts against the peer's budget until its IKE_SA
 * authenticates (then it is returned) or it ages out of the window; with the budget used up,
 * further key exchanges from the peer are refused before qkid is asked. The first refusal of
 * an episode is logged, and so is its end.
 */
struct qkd_budget_t {

	/**
	 * Count one key about to be spent for an IKE_SA that has not authenticated.
	 *
	 * @param peer		QKD peer name (must stay valid while the budget lives)
	 * @param unique_id	IKE_SA unique ID
	 * @return			FALSE if the peer's budget is used up (refuse, do not ask qkid)
	 */
	bool (*charge)(qkd_budget_t *this, char *peer, u_int unique_id);

	/**
	 * Give back one key charged for an IKE_SA that was not spent after all (qkid refused).
	 */
	void (*refund)(qkd_budget_t *this, u_int unique_id);

	/**
	 * The IKE_SA authenticated: the keys charged for it no longer count.
	 */
	void (*authenticated)(qkd_budget_t *this, u_int unique_id);

	/**
	 * Keys of a peer that count against its budget now.
	 */
	u_int (*spent)(qkd_budget_t *this, char *peer);

	/**
	 * Destroy.
	 */
	void (*destroy)(qkd_budget_t *this);
};

/**
 * Create a budget.
 *
 * @param keys		keys per peer that may be spent on unauthenticated IKE_SAs, 0 for no limit
 * @param window	seconds after which a charged key no longer counts
 */
qkd_budget_t *qkd_budget_create(u_int keys, u_int window);

/**
 * Whether keys spent for an IKE_SA count against the budget: it has not authenticated (a
 * CREATE_CHILD_SA runs under an established IKE_SA and does not count).
 *
 * @param ike_sa	IKE_SA, NULL for none (does not count)
 */
bool qkd_budget_applies(ike_sa_t *ike_sa);

#endif /** QKD_BUDGET_H_ @}*/
