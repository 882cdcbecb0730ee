/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_creds qkd_creds
 * @{ @ingroup qkd
 */

#ifndef QKD_CREDS_H_
#define QKD_CREDS_H_

#include "qkd_qki.h"
#include "qkd_peers.h"
#include "qkd_budget.h"

#include <credentials/credential_set.h>

/** PPK_ID an initiator's swanctl.conf names (ppk_id) to get a quantum PPK */
#define QKD_PPK_PLACEHOLDER "qkd"

typedef struct qkd_creds_t qkd_creds_t;

/**
 * Credential set for IPSeQ's AUTH phase.
 *
 * SHARED_PPK: the initiator's placeholder PPK_ID draws a fresh quantum key qkey2 from qkid (its
 * key_ID replaces the placeholder on the wire, see qkd_listener); the responder resolves the
 * received key_ID through qkid. The PPK charon gets is qkd_derive_ppk(qkey2). SHARED_IKE: QPSK =
 * qkd_derive_qpsk(qkey2, base PSK) for IKE_SAs that hold a qkey2, so a peer without the quantum
 * key, or with only the plain PSK, fails AUTH. qkey2 is wiped once both are derived, and they
 * once the IKE_SA is established (wipe_keys).
 */
struct qkd_creds_t {

	/**
	 * Implements credential_set_t.
	 */
	credential_set_t set;

	/**
	 * The key_ID of the PPK this IKE_SA drew as initiator.
	 *
	 * @param unique_id		IKE_SA unique ID
	 * @param key_id		filled with the key_ID
	 * @return				TRUE if the IKE_SA drew one
	 */
	bool (*get_ppk_id)(qkd_creds_t *this, u_int unique_id, char key_id[QKD_KEY_ID_LEN + 1]);

	/**
	 * Note the key_ID a peer sent as PPK_ID (responder), before charon looks the PPK up under
	 * the placeholder PPK_ID both ends may configure.
	 *
	 * @param unique_id		IKE_SA unique ID
	 * @param key_id		key_ID received, QKD_KEY_ID_LEN characters
	 */
	void (*note_peer_ppk_id)(qkd_creds_t *this, u_int unique_id, char *key_id);

	/**
	 * Whether an IKE_SA holds a quantum PPK.
	 */
	bool (*has_ppk)(qkd_creds_t *this, u_int unique_id);

	/**
	 * Wipe the PPK and QPSK of an IKE_SA that no longer needs them (its SK_d, SK_pi, SK_pr
	 * are derived and both AUTH payloads are done); has_ppk() still answers for it.
	 *
	 * @return				TRUE if there was key material to wipe
	 */
	bool (*wipe_keys)(qkd_creds_t *this, u_int unique_id);

	/**
	 * Whether an IKE_SA still holds PPK or QPSK key material (for tests and logs).
	 */
	bool (*holds_keys)(qkd_creds_t *this, u_int unique_id);

	/**
	 * Wipe and forget the keys of an IKE_SA.
	 */
	void (*forget)(qkd_creds_t *this, u_int unique_id);

	/**
	 * Destroy, wiping all keys.
	 */
	void (*destroy)(qkd_creds_t *this);
};

/**
 * Create the credential set.
 *
 * @param qki			qkid connection
 * @param peers			peer table
 * @param budget		budget of keys spent on unauthenticated IKE_SAs
 * @param key_size		PPK length in bytes
 */
qkd_creds_t *qkd_creds_create(qkd_qki_t *qki, qkd_peers_t *peers, qkd_budget_t *budget,
							  size_t key_size);

#endif /** QKD_CREDS_H_ @}*/
