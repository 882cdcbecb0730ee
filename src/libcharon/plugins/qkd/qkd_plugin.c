/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_plugin.h"
#include "qkd_abi.h"
#include "qkd_creds.h"
#include "qkd_ke.h"
#include "qkd_listener.h"
#include "qkd_peers.h"
#include "qkd_qki.h"

#include <daemon.h>

/** Default qkid socket */
#define QKD_DEFAULT_SOCKET "/run/qkid/qkid.sock"

typedef struct private_qkd_plugin_t private_qkd_plugin_t;

/**
 * Private data of the qkd plugin.
 */
struct private_qkd_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	qkd_plugin_t public;

	/**
	 * Connection to qkid
	 */
	qkd_qki_t *qki;

	/**
	 * QKD peers
	 */
	qkd_peers_t *peers;

	/**
	 * Budget of keys spent on unauthenticated IKE_SAs
	 */
	qkd_budget_t *budget;

	/**
	 * PPK / QPSK credentials
	 */
	qkd_creds_t *creds;

	/**
	 * Bus listener
	 */
	qkd_listener_t *listener;
};

METHOD(plugin_t, get_name, char*,
	private_qkd_plugin_t *this)
{
	return "qkd";
}

#if QKD_STRONGSWAN_6
/**
 * The keywords ke1_qkd ... ke7_qkd. Not "qkd" itself: strongSwan 6's parser would make the
 * keN_ forms of it, but would accept it as the first key exchange too, and alone it would be no
 * hybrid; so "...-qkd" fails to load as an unknown algorithm.
 */
static void register_additional_tokens(void)
{
	char name[16];
	int n;

	for (n = 1; n <= ADDITIONAL_KEY_EXCHANGE_7 - ADDITIONAL_KEY_EXCHANGE_1 + 1; n++)
	{
		snprintf(name, sizeof(name), "ke%d_%s", n, QKD_ADDITIONAL_KEYWORD);
		lib->proposal->register_token(lib->proposal, name,
									  ADDITIONAL_KEY_EXCHANGE_1 + n - 1, QKD_ADDITIONAL, 0);
	}
}
#endif

/**
 * Set up (and tear down) qkid connection, peers, credentials and listener.
 */
static bool plugin_cb(private_qkd_plugin_t *this,
					  plugin_feature_t *feature, bool reg, void *cb_data)
{
	char *socket;
	int timeout, key_size, unauth_keys, unauth_window;

	if (reg)
	{
		socket = lib->settings->get_str(lib->settings, "%s.plugins.qkd.socket",
										QKD_DEFAULT_SOCKET, lib->ns);
		timeout = lib->settings->get_int(lib->settings, "%s.plugins.qkd.timeout", 3000,
										 lib->ns);
		key_size = lib->settings->get_int(lib->settings, "%s.plugins.qkd.key_size", 32,
										  lib->ns);
		if (key_size < 16 || key_size > 64)
		{
			DBG1(DBG_CFG, "qkd: key_size %d out of range 16..64, using 32", key_size);
			key_size = 32;
		}
		unauth_keys = lib->settings->get_int(lib->settings,
								"%s.plugins.qkd.unauthenticated_keys", 8, lib->ns);
		unauth_window = lib->settings->get_time(lib->settings,
								"%s.plugins.qkd.unauthenticated_window", 300, lib->ns);
		if (unauth_keys < 0 || unauth_window <= 0)
		{
			DBG1(DBG_CFG, "qkd: unauthenticated_keys %d / unauthenticated_window %d s out of "
				 "range, using 8 keys per 300 s", unauth_keys, unauth_window);
			unauth_keys = 8;
			unauth_window = 300;
		}
		this->qki = qkd_qki_create(socket, timeout);
		this->peers = qkd_peers_create();
		this->budget = qkd_budget_create(unauth_keys, unauth_window);
		this->creds = qkd_creds_create(this->qki, this->peers, this->budget, key_size);
		this->listener = qkd_listener_create(this->creds, this->peers, this->budget);
		qkd_ke_set_context(this->qki, this->peers, this->budget, key_size);
		lib->proposal->register_token(lib->proposal, QKD_X25519_KEYWORD,
									  KEY_EXCHANGE_METHOD, QKD_X25519, 0);
#if QKD_STRONGSWAN_6
		register_additional_tokens();
#endif
		lib->credmgr->add_set(lib->credmgr, &this->creds->set);
		charon->bus->add_listener(charon->bus, &this->listener->listener);
		DBG1(DBG_CFG, "qkd plugin %s loaded (built %s against strongSwan %s headers): "
			 "qkid at %s, %d-bit quantum keys, %d QKD peer(s), key exchange '%s' = %d%s, "
			 "at most %d keys per peer on unauthenticated IKE_SAs within %d s",
			 IPSEQ_VERSION, IPSEQ_BUILD_DATE, VERSION, socket, key_size * 8,
			 this->peers->count(this->peers), QKD_X25519_KEYWORD, QKD_X25519,
#if QKD_STRONGSWAN_6
			 ", additional key exchange 'ke1_qkd'..'ke7_qkd' = 1052",
#else
			 "",
#endif
			 unauth_keys, unauth_window);
	}
	else
	{
		charon->bus->remove_listener(charon->bus, &this->listener->listener);
		lib->credmgr->remove_set(lib->credmgr, &this->creds->set);
		qkd_ke_set_context(NULL, NULL, NULL, 0);
		this->listener->destroy(this->listener);
		this->creds->destroy(this->creds);
		this->budget->destroy(this->budget);
		this->peers->destroy(this->peers);
		this->qki->destroy(this->qki);
	}
	return TRUE;
}

METHOD(plugin_t, get_features, int,
	private_qkd_plugin_t *this, plugin_feature_t *features[])
{
	static plugin_feature_t f[] = {
		PLUGIN_CALLBACK((plugin_feature_callback_t)plugin_cb, NULL),
			PLUGIN_PROVIDE(CUSTOM, "qkd"),
				PLUGIN_DEPENDS(PRF, PRF_HMAC_SHA2_256),
		PLUGIN_REGISTER(KE, qkd_ke_create),
			PLUGIN_PROVIDE(KE, QKD_X25519),
				PLUGIN_DEPENDS(KE, CURVE_25519),
				PLUGIN_DEPENDS(PRF, PRF_HMAC_SHA2_256),
				PLUGIN_DEPENDS(CUSTOM, "qkd"),
#if QKD_STRONGSWAN_6
		PLUGIN_REGISTER(KE, qkd_ke_create),
			PLUGIN_PROVIDE(KE, QKD_ADDITIONAL),
				PLUGIN_DEPENDS(PRF, PRF_HMAC_SHA2_256),
				PLUGIN_DEPENDS(CUSTOM, "qkd"),
#endif
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

	if (!qkd_abi_check_running("qkd"))
	{
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
