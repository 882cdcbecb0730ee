/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_peers qkd_peers
 * @{ @ingroup qkd
 */

#ifndef QKD_PEERS_H_
#define QKD_PEERS_H_

#include <sa/ike_sa.h>

typedef struct qkd_peer_t qkd_peer_t;
typedef struct qkd_peers_t qkd_peers_t;

/**
 * A peer gateway we share quantum keys with, from charon.plugins.qkd.peers.<name>.
 */
struct qkd_peer_t {

	/** qkid peer name (the section name) */
	char *name;

	/** remote IKE identity, NULL to match by address only */
	identification_t *id;

	/** remote addresses (host_t*) */
	linked_list_t *addrs;

	/** base PSK for QPSK (qkd_derive_qpsk); chunk_empty if not configured */
	chunk_t psk;

	/** QKD required: IKE_SAs with this peer without QKD key exchange and PPK are refused */
	bool required;
};

/**
 * The table of QKD peers.
 */
struct qkd_peers_t {

	/**
	 * Find the QKD peer of an IKE_SA: by the remote identity of its config if it has one, else
	 * by its remote address (a responder knows only that during IKE_SA_INIT).
	 *
	 * @param ike_sa	IKE_SA, NULL for none
	 * @return			peer, NULL if the IKE_SA is not with a QKD peer
	 */
	qkd_peer_t *(*find)(qkd_peers_t *this, ike_sa_t *ike_sa);

	/**
	 * Number of configured peers.
	 */
	int (*count)(qkd_peers_t *this);

	/**
	 * Destroy the table, wiping the PSKs.
	 */
	void (*destroy)(qkd_peers_t *this);
};

/**
 * Load the peer table from strongswan.conf (charon.plugins.qkd.peers).
 */
qkd_peers_t *qkd_peers_create();

/**
 * Read a base PSK from a file only root can read.
 *
 * The file holds one secret: "0x<hex>", "0s<base64>" or the literal text; trailing white space
 * is ignored. A file readable by group or others is refused.
 *
 * @param path		file name
 * @param psk		allocated PSK on success
 * @return			TRUE on success (failures are logged)
 */
bool qkd_psk_load(char *path, chunk_t *psk);

/**
 * Whether QKD is required for an IKE_SA with a peer: charon.plugins.qkd.connections.<name>.required
 * of the IKE_SA's swanctl connection if set, else the peer's required setting. A responder knows
 * the connection only from IKE_AUTH on; before that the peer's setting applies.
 *
 * @param peer		the IKE_SA's QKD peer
 * @param ike_sa	IKE_SA, NULL for none
 * @return			TRUE if the IKE_SA must use the QKD key exchange and a quantum PPK
 */
bool qkd_peer_required(qkd_peer_t *peer, ike_sa_t *ike_sa);

#endif /** QKD_PEERS_H_ @}*/
