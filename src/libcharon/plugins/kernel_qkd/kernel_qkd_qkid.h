/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_qkid kernel_qkd_qkid
 * @{ @ingroup kernel_qkd
 *
 * Window keys of rotating SAs from qkid: libipsec-qkd's qkid provider (keyprov_qki.c: SA_REGISTER,
 * SA_KEYS, SA_REPORT over src/qki/qki_client.h), with SA registrations reported in charon's log.
 *
 * The datapath calls the provider only from its key helper thread (never from the packet loop,
 * never from a charon thread), so blocking on qkid stalls no packet and no IKE exchange.
 */

#ifndef KERNEL_QKD_QKID_H_
#define KERNEL_QKD_QKID_H_

#include <ipsec_qkd.h>

/**
 * Create a qkid-backed key provider. It connects lazily (on the first SA), so charon starts
 * even while qkid is not running; failures show up as key failures of the rotating SAs.
 *
 * @param socket		qkid's unix socket
 * @param timeout_ms	bound of every call to qkid
 * @param wait_ms		how long qkid may hold a key request open when no key is ready
 * @return				provider (owned by the datapath once passed in iq_dp_cfg), NULL on
 *						allocation failure
 */
struct iq_key_provider *kernel_qkd_qkid_provider_create(const char *socket, int timeout_ms,
														int wait_ms);

#endif /** KERNEL_QKD_QKID_H_ @}*/
