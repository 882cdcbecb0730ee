/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_peers kernel_qkd_peers
 * @{ @ingroup kernel_qkd
 *
 * Which SAs rotate their ESP key per window of sequence numbers, and with which parameters.
 *
 * Rotation is decided per peer gateway: charon.plugins.kernel-qkd.peers.<name> names a qkid peer
 * (the same name as in qkid.conf and charon.plugins.qkd.peers) and matches SAs by the remote
 * outer address. Settings under charon.plugins.kernel-qkd.rotation are the defaults of every
 * peer section. An SA with an address no peer section matches never rotates: plain RFC 4106 ESP.
 *
 * A swanctl connection may override its peer's settings: charon.plugins.kernel-qkd.connections.
 * <connection name> takes the same keys as a peer section (rotation, rpk_min, rpk_max, exhaust,
 * lookahead), with the peer's settings as defaults. So two connections to one peer gateway can
 * differ, e.g. replication traffic rotating and management traffic not.
 */

#ifndef KERNEL_QKD_PEERS_H_
#define KERNEL_QKD_PEERS_H_

#include <networking/host.h>
#include <sa/ike_sa.h>

#include <ipsec_qkd.h>

typedef struct kernel_qkd_peers_t kernel_qkd_peers_t;

/**
 * Rotation settings per peer gateway.
 */
struct kernel_qkd_peers_t {

	/**
	 * Rotation parameters for an SA with the given remote outer address.
	 *
	 * @param remote		remote address of the SA (destination of outbound SAs, source of
	 *						inbound SAs)
	 * @param rotation		set to the peer's settings (enabled = FALSE if none matches)
	 * @return				qkid peer name (owned by the table), NULL if no peer matches
	 */
	const char *(*lookup)(kernel_qkd_peers_t *this, host_t *remote,
						  struct iq_rotation *rotation);

	/**
	 * Apply the settings of a swanctl connection over a peer's (or the defaults).
	 *
	 * @param connection	name of the connection (peer_cfg), NULL for none
	 * @param rotation		the peer's settings, replaced by the connection's where it has some
	 * @return				FALSE if the connection's section is invalid (logged)
	 */
	bool (*override)(kernel_qkd_peers_t *this, const char *connection,
					 struct iq_rotation *rotation);

	/**
	 * Whether any peer or connection has rotation enabled (a key provider is needed).
	 *
	 * @return				TRUE if at least one peer rotates
	 */
	bool (*any_rotation)(kernel_qkd_peers_t *this);

	/**
	 * Destroy the table.
	 */
	void (*destroy)(kernel_qkd_peers_t *this);
};

/**
 * Parse the exhaustion policy setting.
 *
 * @param value			"reuse" or "stall"
 * @param exhaust		result
 * @return				TRUE if valid
 */
bool kernel_qkd_parse_exhaust(const char *value, enum iq_exhaust *exhaust);

/**
 * Name of the swanctl connection (peer_cfg) of an IKE_SA, the key of its connections section.
 *
 * @param ike_sa		IKE_SA, NULL for none
 * @return				connection name (owned by the config), NULL if none
 */
const char *kernel_qkd_connection_name(ike_sa_t *ike_sa);

/**
 * Load the table from charon.plugins.kernel-qkd.{rotation,peers}.
 */
kernel_qkd_peers_t *kernel_qkd_peers_create();

#endif /** KERNEL_QKD_PEERS_H_ @}*/
