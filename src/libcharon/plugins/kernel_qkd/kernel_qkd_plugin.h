/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd kernel_qkd
 * @ingroup cplugins
 *
 * @defgroup kernel_qkd_plugin kernel_qkd_plugin
 * @{ @ingroup kernel_qkd
 */

#ifndef KERNEL_QKD_PLUGIN_H_
#define KERNEL_QKD_PLUGIN_H_

#include <plugins/plugin.h>

typedef struct kernel_qkd_plugin_t kernel_qkd_plugin_t;

/**
 * Plugin making the userspace ESP datapath libipsec-qkd charon's IPsec backend (kernel_ipsec_t)
 * and its IKE socket (socket_t): the datapath owns the NAT-T port, ESP and IKE share it.
 */
struct kernel_qkd_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	plugin_t plugin;
};

#endif /** KERNEL_QKD_PLUGIN_H_ @}*/
