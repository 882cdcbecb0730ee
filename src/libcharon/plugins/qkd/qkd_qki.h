/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_qki qkd_qki
 * @{ @ingroup qkd
 */

#ifndef QKD_QKI_H_
#define QKD_QKI_H_

#include <library.h>

/** Length of a key_ID on the wire (a canonical UUID) */
#define QKD_KEY_ID_LEN 36

typedef struct qkd_qki_t qkd_qki_t;

/**
 * The plugin's connection to qkid, the only source of quantum keys.
 *
 * Calls block the calling charon thread for at most the configured timeout; they must never be
 * made from a bus hook (all listeners share one mutex). Each call runs on a connection of its
 * own (idle ones are reused, a few are kept open), so no thread waits for another's call; a
 * connection that failed is closed.
 */
struct qkd_qki_t {

	/**
	 * Draw a fresh key shared with a peer (IKE initiator side).
	 *
	 * @param peer		qkid peer name
	 * @param size		key length in bytes
	 * @param key		allocated key on success, to be cleared with chunk_clear()
	 * @param key_id	key_ID, QKD_KEY_ID_LEN characters plus NUL
	 * @return			TRUE on success (failures are logged)
	 */
	bool (*get_new_key)(qkd_qki_t *this, char *peer, size_t size, chunk_t *key,
						char key_id[QKD_KEY_ID_LEN + 1]);

	/**
	 * Resolve the key the peer drew under key_id (IKE responder side). qkid answers each key_ID
	 * only once, so a replayed message cannot draw a key again.
	 *
	 * @param peer		qkid peer name
	 * @param key_id	key_ID received from the peer (asked for in lower case)
	 * @param size		key length in bytes
	 * @param key		allocated key on success, to be cleared with chunk_clear()
	 * @return			TRUE on success (failures are logged)
	 */
	bool (*get_key_by_id)(qkd_qki_t *this, char *peer, char *key_id, size_t size,
						  chunk_t *key);

	/**
	 * Close the connection and free.
	 */
	void (*destroy)(qkd_qki_t *this);
};

/**
 * Create the qkid connection (connects lazily).
 *
 * @param socket		path of qkid's unix socket
 * @param timeout_ms	bound of every call
 */
qkd_qki_t *qkd_qki_create(char *socket, int timeout_ms);

/**
 * Whether a string is a UUID (hex digits of either case), the form of ETSI 014 key_IDs.
 */
bool qkd_key_id_valid(const char *id, size_t len);

/**
 * Bring a key_ID to the one form qkid keeps and compares, lower case (in place).
 */
void qkd_key_id_lower(char *id);

#endif /** QKD_QKI_H_ @}*/
