/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_ipsec kernel_qkd_ipsec
 * @{ @ingroup kernel_qkd
 */

#ifndef KERNEL_QKD_IPSEC_H_
#define KERNEL_QKD_IPSEC_H_

#include <library.h>
#include <kernel/kernel_ipsec.h>

typedef struct kernel_qkd_ipsec_t kernel_qkd_ipsec_t;

/**
 * charon's IPsec backend on the libipsec-qkd datapath: SAs and policies go into the datapath,
 * routes for the remote traffic selectors point to its TUN device (via kernel-net).
 */
struct kernel_qkd_ipsec_t {

	/**
	 * Implements kernel_ipsec_t interface
	 */
	kernel_ipsec_t interface;
};

/**
 * Create the backend on the datapath registered as KERNEL_QKD_DATAPATH.
 *
 * @return			instance, NULL if the datapath is missing
 */
kernel_qkd_ipsec_t *kernel_qkd_ipsec_create();

#endif /** KERNEL_QKD_IPSEC_H_ @}*/
