/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd qkd
 * @ingroup cplugins
 *
 * @defgroup qkd_plugin qkd_plugin
 * @{ @ingroup qkd
 */

#ifndef QKD_PLUGIN_H_
#define QKD_PLUGIN_H_

#include <plugins/plugin.h>

typedef struct qkd_plugin_t qkd_plugin_t;

/**
 * Plugin mixing quantum keys from the QKI (qkid) into IKEv2.
 */
struct qkd_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	plugin_t plugin;
};

#endif /** QKD_PLUGIN_H_ @}*/
