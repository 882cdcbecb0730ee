/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_save_keys kernel_qkd_save_keys
 * @{ @ingroup kernel_qkd
 *
 * TEST ONLY: writes the CHILD_SA keys and the quantum window keys to a directory
 * (charon.plugins.kernel-qkd.save_keys), so that an independent decryptor can check a capture
 * against the documented derivation (docs/derivations.md). Modelled on strongSwan's save-keys
 * plugin. Off unless configured; loudly logged when on.
 */

#ifndef KERNEL_QKD_SAVE_KEYS_H_
#define KERNEL_QKD_SAVE_KEYS_H_

#include <kernel/kernel_ipsec.h>

#include <ipsec_qkd.h>

typedef struct kernel_qkd_save_keys_t kernel_qkd_save_keys_t;

/**
 * Key export for tests.
 */
struct kernel_qkd_save_keys_t {

	/**
	 * Append an SA's SPI, direction, addresses and CHILD_SA key material (AES key || salt).
	 *
	 * @param id		SA as given to add_sa
	 * @param data		its data as given to add_sa
	 * @param rotating	whether the SA rotates window keys
	 */
	void (*save_sa)(kernel_qkd_save_keys_t *this, kernel_ipsec_sa_id_t *id,
					kernel_ipsec_add_sa_t *data, bool rotating);

	/**
	 * Hook the export of quantum window keys into a key provider.
	 *
	 * @param keys		provider of the datapath; the hook must outlive it
	 */
	void (*hook)(kernel_qkd_save_keys_t *this, struct iq_key_provider *keys);

	/**
	 * Destroy a kernel_qkd_save_keys_t (after the datapath that calls the hook).
	 */
	void (*destroy)(kernel_qkd_save_keys_t *this);
};

/**
 * Create the export if charon.plugins.kernel-qkd.save_keys names a directory.
 *
 * @return			export, NULL if off (the default) or unusable (logged)
 */
kernel_qkd_save_keys_t *kernel_qkd_save_keys_create();

#endif /** KERNEL_QKD_SAVE_KEYS_H_ @}*/
