/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup mlkem mlkem
 * @ingroup plugins
 *
 * @defgroup mlkem_plugin mlkem_plugin
 * @{ @ingroup mlkem
 *
 * ML-KEM-512/768/1024 key exchanges from OpenSSL 3.5's libcrypto, for Debian 13's strongSwan
 * 6.0, whose packages know the methods but ship no implementation.
 */

#ifndef MLKEM_PLUGIN_H_
#define MLKEM_PLUGIN_H_

#include <plugins/plugin.h>

typedef struct mlkem_plugin_t mlkem_plugin_t;

/**
 * Plugin providing ML-KEM key exchange methods through OpenSSL.
 */
struct mlkem_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	plugin_t plugin;
};

#endif /** MLKEM_PLUGIN_H_ @}*/
