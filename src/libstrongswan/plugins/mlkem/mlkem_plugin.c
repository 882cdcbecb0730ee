/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "mlkem_plugin.h"
#include "mlkem_ke.h"
#include "qkd_abi.h"

#include <library.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

typedef struct private_mlkem_plugin_t private_mlkem_plugin_t;

/**
 * Private data of the mlkem plugin.
 */
struct private_mlkem_plugin_t {

	/**
	 * Implements plugin interface.
	 */
	mlkem_plugin_t public;
};

METHOD(plugin_t, get_name, char*,
	private_mlkem_plugin_t *this)
{
	return "mlkem";
}

METHOD(plugin_t, get_features, int,
	private_mlkem_plugin_t *this, plugin_feature_t *features[])
{
	/* OpenSSL does all of it (its own DRBG included): no strongSwan dependencies */
	static plugin_feature_t f[] = {
		PLUGIN_REGISTER(KE, mlkem_ke_create),
			PLUGIN_PROVIDE(KE, ML_KEM_512),
			PLUGIN_PROVIDE(KE, ML_KEM_768),
			PLUGIN_PROVIDE(KE, ML_KEM_1024),
	};
	*features = f;
	return countof(f);
}

METHOD(plugin_t, destroy, void,
	private_mlkem_plugin_t *this)
{
	free(this);
}

/**
 * Whether the libcrypto we run with implements every ML-KEM parameter set (OpenSSL 3.5 or
 * later, and no provider configuration that leaves them out).
 */
static bool openssl_has_mlkem(void)
{
	key_exchange_method_t methods[] = { ML_KEM_512, ML_KEM_768, ML_KEM_1024 };
	EVP_KEM *kem;
	int i;

	for (i = 0; i < countof(methods); i++)
	{
		kem = EVP_KEM_fetch(NULL, mlkem_params_get(methods[i])->name, NULL);
		if (!kem)
		{
			DBG1(DBG_LIB, "mlkem plugin refuses to load: %s has no %s (ML-KEM needs OpenSSL "
				 "3.5 or later)", OpenSSL_version(OPENSSL_VERSION),
				 mlkem_params_get(methods[i])->name);
			return FALSE;
		}
		EVP_KEM_free(kem);
	}
	return TRUE;
}

/*
 * Described in header
 */
plugin_t *mlkem_plugin_create()
{
	private_mlkem_plugin_t *this;

	if (!qkd_abi_check_running("mlkem") || !openssl_has_mlkem())
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
	DBG1(DBG_LIB, "mlkem plugin: ML_KEM_512, ML_KEM_768 and ML_KEM_1024 from %s",
		 OpenSSL_version(OPENSSL_VERSION));
	return &this->public.plugin;
}
