/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_agreement kernel_qkd_agreement
 * @{ @ingroup kernel_qkd
 *
 * Both gateways rotate the ESP keys of a CHILD_SA, or neither does.
 *
 * A gateway that rotates cannot talk to one that does not: every packet fails authentication.
 * So each gateway announces rotation in the IKE messages that create CHILD_SAs (IKE_AUTH and
 * CREATE_CHILD_SA with an SA payload), with a private-use status notify that stock IKEv2
 * implementations ignore (RFC 7296 3.10.1: unrecognized status types MUST be ignored), and an SA is
 * installed only if both sides agree. A disagreement refuses the CHILD_SA with a log line that
 * names the setting, instead of an SA that silently drops all traffic.
 */

#ifndef KERNEL_QKD_AGREEMENT_H_
#define KERNEL_QKD_AGREEMENT_H_

#include "kernel_qkd_peers.h"

#include <bus/listeners/listener.h>
#include <sa/ike_sa.h>

/**
 * Private-use status notify (RFC 7296: 40960..65535) "this gateway rotates the ESP keys of the
 * CHILD_SAs negotiated in this message". Data: one version byte, 1.
 */
#define KERNEL_QKD_ROTATION_NOTIFY 47481

typedef struct kernel_qkd_agreement_t kernel_qkd_agreement_t;

/**
 * Announces local rotation to peers and notes theirs.
 */
struct kernel_qkd_agreement_t {

	/**
	 * Implements listener_t (register with charon->bus).
	 */
	listener_t listener;

	/**
	 * Whether the peer of an IKE_SA announced rotation in its latest message that negotiated
	 * CHILD_SAs. Asked while the SAs of such an exchange are installed.
	 *
	 * @param ike_sa		the IKE_SA (of the calling thread), NULL for none
	 * @return				TRUE if the peer rotates
	 */
	bool (*peer_rotates)(kernel_qkd_agreement_t *this, ike_sa_t *ike_sa);

	/**
	 * Destroy (unregister from the bus first).
	 */
	void (*destroy)(kernel_qkd_agreement_t *this);
};

/**
 * Create the agreement listener.
 *
 * @param peers			rotation settings per peer (not owned, must outlive this)
 */
kernel_qkd_agreement_t *kernel_qkd_agreement_create(kernel_qkd_peers_t *peers);

#endif /** KERNEL_QKD_AGREEMENT_H_ @}*/
