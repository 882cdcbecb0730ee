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

#include <crypto/key_exchange.h>

/**
 * Private-use transform ID of the hybrid X25519 + QKD key exchange (IDs up to 1040 are taken by
 * strongSwan's own private methods).
 */
#define QKD_X25519 1051

/** Proposal keyword of QKD_X25519, for swanctl proposals and esp_proposals */
#define QKD_X25519_KEYWORD "x25519qkd"

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
 * Create a hybrid X25519 + QKD key exchange (a ke_constructor_t).
 *
 * The initiator draws a fresh (qkey, key_ID) from qkid and sends KEi = 0x02 || X25519_i || key_ID;
 * the responder resolves key_ID through qkid and answers KEr = 0x02 || X25519_r || confirm, where
 * confirm is qkd_derive_confirm() (16 bytes), so a peer with another key fails in IKE_SA_INIT
 * instead of at IKE_AUTH. Shared secret: qkd_derive_ke_secret(). The leading byte is the
 * derivation version (QKD_WIRE_VERSION); a peer of another version is refused with a log line
 * that says so.
 *
 * @param method	QKD_X25519
 * @return			key exchange, NULL for another method
 */
key_exchange_t *qkd_ke_create(key_exchange_method_t method, ...);

#endif /** QKD_KE_H_ @}*/
