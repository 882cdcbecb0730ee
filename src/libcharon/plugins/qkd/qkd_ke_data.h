/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_ke_data qkd_ke_data
 * @{ @ingroup qkd
 */

#ifndef QKD_KE_DATA_H_
#define QKD_KE_DATA_H_

#include "qkd_qki.h"

#include <utils/chunk.h>

/** X25519 public value length */
#define QKD_X25519_LEN 32

/** Length of the key confirmation in KEr */
#define QKD_CONFIRM_LEN 16

/** KEi: version (QKD_WIRE_VERSION) || X25519 public value || key_ID */
#define QKD_KEI_LEN (1 + QKD_X25519_LEN + QKD_KEY_ID_LEN)

/** KEr: version || X25519 public value || key confirmation */
#define QKD_KER_LEN (1 + QKD_X25519_LEN + QKD_CONFIRM_LEN)

/** KEi of the additional QKD key exchange (qkd): version || key_ID */
#define QKD_ADD_KEI_LEN (1 + QKD_KEY_ID_LEN)

/** KEr of qkd: version || key confirmation */
#define QKD_ADD_KER_LEN (1 + QKD_CONFIRM_LEN)

/** KE data lengths of version 1 (IPSeQ before key separation; it had no version byte) */
#define QKD_KEI_LEN_V1 (QKD_KEI_LEN - 1)
#define QKD_KER_LEN_V1 (QKD_KER_LEN - 1)

/**
 * What parsing KE data found.
 */
typedef enum {
	/** well-formed */
	QKD_KE_DATA_OK,
	/** the length of version 1: a peer without key separation */
	QKD_KE_DATA_V1,
	/** another length */
	QKD_KE_DATA_LENGTH,
	/** the right length, but the leading byte is another derivation version */
	QKD_KE_DATA_VERSION,
	/** KEi whose key_ID is not one (36 characters, 8-4-4-4-12 hex digits) */
	QKD_KE_DATA_KEY_ID,
} qkd_ke_data_t;

/**
 * Parse the initiator's KE data, version || X25519 public value || key_ID (x25519qkd) or
 * version || key_ID (qkd), as received.
 *
 * @param value		KE data of the peer
 * @param pub_len	QKD_X25519_LEN for x25519qkd, 0 for qkd
 * @param pub		X25519 public value, pointing into value (on QKD_KE_DATA_OK; empty for qkd)
 * @param key_id	key_ID, NUL-terminated (on QKD_KE_DATA_OK)
 * @return			QKD_KE_DATA_OK, or what is wrong with value
 */
qkd_ke_data_t qkd_ke_data_parse_kei(chunk_t value, size_t pub_len, chunk_t *pub,
									char key_id[QKD_KEY_ID_LEN + 1]);

/**
 * Parse the responder's KE data, version || X25519 public value || key confirmation (x25519qkd)
 * or version || key confirmation (qkd).
 *
 * @param value		KE data of the peer
 * @param pub_len	QKD_X25519_LEN for x25519qkd, 0 for qkd
 * @param pub		X25519 public value, pointing into value (on QKD_KE_DATA_OK; empty for qkd)
 * @param confirm	key confirmation, QKD_CONFIRM_LEN bytes in value (on QKD_KE_DATA_OK)
 * @return			QKD_KE_DATA_OK, or what is wrong with value
 */
qkd_ke_data_t qkd_ke_data_parse_ker(chunk_t value, size_t pub_len, chunk_t *pub,
									chunk_t *confirm);

#endif /** QKD_KE_DATA_H_ @}*/
