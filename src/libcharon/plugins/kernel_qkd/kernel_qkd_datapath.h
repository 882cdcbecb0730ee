/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_datapath kernel_qkd_datapath
 * @{ @ingroup kernel_qkd
 *
 * The libipsec-qkd datapath of this charon: TUN device, the NAT-T port's UDP socket(s) and the
 * loop thread, configured from charon.plugins.kernel-qkd. Shared by the kernel_ipsec_t and the
 * socket_t of the plugin (found with lib->get(lib, KERNEL_QKD_DATAPATH)).
 */

#ifndef KERNEL_QKD_DATAPATH_H_
#define KERNEL_QKD_DATAPATH_H_

#include <library.h>
#include <networking/host.h>

#include <ipsec_qkd.h>

#include "kernel_qkd_peers.h"
#include "kernel_qkd_agreement.h"
#include "kernel_qkd_save_keys.h"

/** Name under which the datapath is registered with lib->set() */
#define KERNEL_QKD_DATAPATH "kernel-qkd-datapath"

typedef struct kernel_qkd_datapath_t kernel_qkd_datapath_t;

/**
 * Receives IKE datagrams that arrived on the NAT-T port (non-ESP marker removed). Called from
 * the datapath's loop thread: must not block.
 *
 * @param data		registered data
 * @param src		source address and port
 * @param dst		local address and port
 * @param msg		IKE message without marker
 */
typedef void (*kernel_qkd_ike_handler_t)(void *data, host_t *src, host_t *dst, chunk_t msg);

/**
 * The datapath and its settings.
 */
struct kernel_qkd_datapath_t {

	/**
	 * The libipsec-qkd datapath.
	 */
	iq_dp_t *(*get_dp)(kernel_qkd_datapath_t *this);

	/**
	 * Name of the TUN device routes point to.
	 */
	char *(*get_tun_name)(kernel_qkd_datapath_t *this);

	/**
	 * Local NAT-T port the datapath listens on (IKE and ESP).
	 */
	uint16_t (*get_natt_port)(kernel_qkd_datapath_t *this);

	/**
	 * Whether the datapath also listens on IPv6.
	 */
	bool (*has_ipv6)(kernel_qkd_datapath_t *this);

	/**
	 * Rotation settings per peer.
	 */
	kernel_qkd_peers_t *(*get_peers)(kernel_qkd_datapath_t *this);

	/**
	 * What the peers announced about rotation (a listener on charon's bus while the datapath
	 * exists).
	 */
	kernel_qkd_agreement_t *(*get_agreement)(kernel_qkd_datapath_t *this);

	/**
	 * Test-only key export (charon.plugins.kernel-qkd.save_keys), NULL when off.
	 */
	kernel_qkd_save_keys_t *(*get_save_keys)(kernel_qkd_datapath_t *this);

	/**
	 * Register (or with NULL, unregister) the receiver of IKE datagrams on the NAT-T port.
	 * Without one, such datagrams are dropped.
	 *
	 * @param handler	handler, NULL to unregister
	 * @param data		data passed to handler
	 */
	void (*set_ike_handler)(kernel_qkd_datapath_t *this, kernel_qkd_ike_handler_t handler,
							void *data);

	/**
	 * Stop the loop, wipe all keys, close the TUN device and sockets.
	 */
	void (*destroy)(kernel_qkd_datapath_t *this);
};

/**
 * Convert a host_t to the datapath's address type.
 *
 * @param host		address (and port)
 * @param addr		result
 * @return			TRUE if host is IPv4 or IPv6
 */
bool kernel_qkd_host2addr(host_t *host, iq_addr_t *addr);

/**
 * Convert a datapath address to a host_t.
 *
 * @param addr		address
 * @return			host, NULL if the family is unknown
 */
host_t *kernel_qkd_addr2host(const iq_addr_t *addr);

/**
 * Create the datapath from charon.plugins.kernel-qkd and start its loop.
 *
 * @return			datapath, NULL on failure (logged)
 */
kernel_qkd_datapath_t *kernel_qkd_datapath_create();

#endif /** KERNEL_QKD_DATAPATH_H_ @}*/
