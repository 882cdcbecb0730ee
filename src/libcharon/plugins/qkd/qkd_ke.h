/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_ke qkd_ke
 * @{ @ingroup qkd
 */

#ifndef QKD_KE_H_
#define QKD_KE_H_

#include "qkd_qki.h"
#include "qkd_peers.h"
#include "qkd_budget.h"
#include "qkd_ke_data.h"

#include "qkd_abi.h"

#include <crypto/key_exchange.h>

/**
 * Private-use transform ID of the hybrid X25519 + QKD key exchange (IDs up to 1040 are taken by
 * strongSwan's own private methods).
 */
#define QKD_X25519 1051

/** Proposal keyword of QKD_X25519, for swanctl proposals and esp_proposals */
#define QKD_X25519_KEYWORD "x25519qkd"

/**
 * Private-use transform ID of the QKD key exchange alone, for an RFC 9370 additional key exchange
 * after a classical (and post-quantum) one, e.g. x25519-ke1_mlkem768-ke2_qkd. strongSwan 6 only:
 * 5.9.8 has no additional key exchanges, and as the only key exchange it would be no hybrid.
 */
#define QKD_ADDITIONAL 1052

/** Proposal keyword of QKD_ADDITIONAL after "keN_": the plugin registers ke1_qkd ... ke7_qkd only */
#define QKD_ADDITIONAL_KEYWORD "qkd"

/** The QKD key exchanges of this strongSwan, for log lines */
#if QKD_STRONGSWAN_6
#define QKD_KE_KEYWORDS QKD_X25519_KEYWORD " or ke1_" QKD_ADDITIONAL_KEYWORD
#else
#define QKD_KE_KEYWORDS QKD_X25519_KEYWORD
#endif

/**
 * Set what the key exchanges draw quantum keys from (the plugin does this once on load).
 *
 * @param qki		qkid connection, NULL to unset
 * @param peers		peer table
 * @param budget	budget of keys spent on unauthenticated IKE_SAs, NULL for none
 * @param key_size	quantum key length in bytes
 */
void qkd_ke_set_context(qkd_qki_t *qki, qkd_peers_t *peers, qkd_budget_t *budget,
						size_t key_size);

/**
 * Create a QKD key exchange (a ke_constructor_t): the hybrid X25519 + QKD one or the QKD one
 * alone.
 *
 * QKD_X25519:
 *
 * The initiator draws a fresh (qkey, key_ID) from qkid and sends KEi = 0x02 || X25519_i || key_ID;
 * the responder resolves key_ID through qkid and answers KEr = 0x02 || X25519_r || confirm, where
 * confirm is qkd_derive_confirm() (16 bytes), so a peer with another key fails in IKE_SA_INIT
 * instead of at IKE_AUTH. Shared secret: qkd_derive_ke_secret(). The leading byte is the
 * derivation version (QKD_WIRE_VERSION); a peer of another version is refused with a log line
 * that says so.
 *
 * QKD_ADDITIONAL: the same without X25519: KEi = 0x02 || key_ID, KEr = 0x02 || confirm (over KEi
 * alone, with a label of its own), shared secret qkd_derive_subkey(qkey, QKD_LABEL_ADD_SECRET).
 * The quantum key is all of its secret; the classical and post-quantum parts are the proposal's
 * other key exchanges, which charon folds into SKEYSEED before it (RFC 9370).
 *
 * @param method	QKD_X25519 or QKD_ADDITIONAL
 * @return			key exchange, NULL for another method
 */
key_exchange_t *qkd_ke_create(key_exchange_method_t method, ...);

#endif /** QKD_KE_H_ @}*/
