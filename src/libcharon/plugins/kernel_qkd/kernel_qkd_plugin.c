/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "kernel_qkd_plugin.h"
#include "kernel_qkd_datapath.h"
#include "kernel_qkd_ipsec.h"
#include "kernel_qkd_socket.h"

#include <daemon.h>

#include "../qkd/qkd_abi.h"

#ifndef ME
#error "strongSwan headers configured without --enable-mediation (ME): Debian's charon has it"
#endif
/* daemon_t is reached through charon->kernel/socket/receiver: its layout must be Debian's */
_Static_assert(offsetof(daemon_t, mediation_manager) > offsetof(daemon_t, kernel),
			   "daemon_t lacks the mediation members Debian's charon has");

typedef struct private_kernel_qkd_plugin_t private_kernel_qkd_plugin_t;

/**
 * Private data of the kernel-qkd plugin.
 */
struct private_kernel_qkd_plugin_t {

	/**
	 * Implements plugin interface
	 */
	kernel_qkd_plugin_t public;

	/**
	 * The datapath, while the feature is loaded
	 */
	kernel_qkd_datapath_t *datapath;
};

METHOD(plugin_t, get_name, char*,
	private_kernel_qkd_plugin_t *this)
{
	return "kernel-qkd";
}

/**
 * Create (and destroy) the datapath that the backend and the socket share.
 */
static bool datapath_cb(private_kernel_qkd_plugin_t *this,
						plugin_feature_t *feature, bool reg, void *cb_data)
{
	if (reg)
	{
		this->datapath = kernel_qkd_datapath_create();
		if (!this->datapath)
		{
			return FALSE;
		}
		lib->set(lib, KERNEL_QKD_DATAPATH, this->datapath);
		/* virtual IPs go on the TUN device, as with kernel-libipsec */
		lib->settings->set_str(lib->settings, "%s.install_virtual_ip_on",
							   this->datapath->get_tun_name(this->datapath), lib->ns);
	}
	else if (this->datapath)
	{
		lib->set(lib, KERNEL_QKD_DATAPATH, NULL);
		this->datapath->destroy(this->datapath);
		this->datapath = NULL;
	}
	return TRUE;
}

METHOD(plugin_t, get_features, int,
	private_kernel_qkd_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK((plugin_feature_callback_t)datapath_cb, NULL),
			PLUGIN_PROVIDE(CUSTOM, "kernel-qkd-datapath"),
		PLUGIN_CALLBACK(kernel_ipsec_register, kernel_qkd_ipsec_create),
			PLUGIN_PROVIDE(CUSTOM, "kernel-ipsec"),
				PLUGIN_DEPENDS(CUSTOM, "kernel-qkd-datapath"),
		PLUGIN_CALLBACK(socket_register, kernel_qkd_socket_create),
			PLUGIN_PROVIDE(CUSTOM, "socket"),
				PLUGIN_DEPENDS(CUSTOM, "kernel-qkd-datapath"),
				PLUGIN_SDEPEND(CUSTOM, "kernel-ipsec"),
	};
	*features = f;
	return countof(f);
}

METHOD(plugin_t, destroy, void,
	private_kernel_qkd_plugin_t *this)
{
	free(this);
}

/*
 * See header file
 */
plugin_t *kernel_qkd_plugin_create()
{
	private_kernel_qkd_plugin_t *this;

	if (!qkd_abi_check_running("kernel-qkd"))
	{
		return NULL;
	}
	if (!lib->caps->check(lib->caps, CAP_NET_ADMIN))
	{	/* required to create the TUN device */
		DBG1(DBG_KNL, "kernel-qkd plugin requires CAP_NET_ADMIN capability");
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
