/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_listener qkd_listener
 * @{ @ingroup qkd
 */

#ifndef QKD_LISTENER_H_
#define QKD_LISTENER_H_

#include "qkd_creds.h"
#include "qkd_peers.h"

#include <bus/listeners/listener.h>

typedef struct qkd_listener_t qkd_listener_t;

/**
 * Bus listener of the qkd plugin. It does no I/O (all listeners run under one global mutex):
 * it puts the PPK's key_ID on the wire in place of the placeholder PPK_ID, refuses IKE_SAs with
 * QKD-required peers that lack the QKD key exchange or the quantum PPK, and wipes an IKE_SA's
 * quantum keys when it goes away.
 */
struct qkd_listener_t {

	/**
	 * Implements listener_t.
	 */
	listener_t listener;

	/**
	 * Destroy.
	 */
	void (*destroy)(qkd_listener_t *this);
};

/**
 * Create the listener.
 */
qkd_listener_t *qkd_listener_create(qkd_creds_t *creds, qkd_peers_t *peers,
									 qkd_budget_t *budget);

#endif /** QKD_LISTENER_H_ @}*/
