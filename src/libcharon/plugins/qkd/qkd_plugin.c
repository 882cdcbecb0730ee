/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_plugin.h"
#include "qkd_abi.h"

#include <daemon.h>

typedef struct private_qkd_plugin_t private_qkd_plugin_t;

/**
 * Private data of the qkd plugin.
 */
struct private_qkd_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	qkd_plugin_t public;
};

METHOD(plugin_t, get_name, char*,
	private_qkd_plugin_t *this)
{
	return "qkd";
}

/**
 * Announce ourselves once charon registers our features.
 */
static bool plugin_cb(private_qkd_plugin_t *this,
					  plugin_feature_t *feature, bool reg, void *cb_data)
{
	if (reg)
	{
		DBG1(DBG_CFG, "qkd plugin %s loaded (built %s against strongSwan %s headers)",
			 IPSEQ_VERSION, IPSEQ_BUILD_DATE, VERSION);
	}
	return TRUE;
}

METHOD(plugin_t, get_features, int,
	private_qkd_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK((plugin_feature_callback_t)plugin_cb, NULL),
			PLUGIN_PROVIDE(CUSTOM, "qkd"),
	};
	*features = f;
	return countof(f);
}

METHOD(plugin_t, destroy, void,
	private_qkd_plugin_t *this)
{
	free(this);
}

/**
 * Plugin constructor, see plugin_loader.c for the naming convention.
 */
plugin_t *qkd_plugin_create()
{
	private_qkd_plugin_t *this;
	char running[32];

	if (!qkd_abi_check_program("/proc/self/exe", running))
	{
		DBG1(DBG_CFG, "qkd plugin refuses to load: built against strongSwan %s headers, "
			 "but the running charon is %s; rebuild the suite against this charon",
			 VERSION, running[0] ? running : "of unknown version");
		return NULL;
	}

	INIT(this,
		.public = {
			.plugin = {
				.get_name = _get_name,
				.get_features = _get_features,
				.destroy = _destroy,
			},
		},
	);

	return &this->public.plugin;
}
