/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup kernel_qkd_socket kernel_qkd_socket
 * @{ @ingroup kernel_qkd
 */

#ifndef KERNEL_QKD_SOCKET_H_
#define KERNEL_QKD_SOCKET_H_

#include <network/socket.h>

typedef struct kernel_qkd_socket_t kernel_qkd_socket_t;

/**
 * charon's IKE socket with the datapath: port 500 on UDP sockets of its own, the NAT-T port
 * through the datapath, which owns that port because ESP arrives there too.
 *
 * IKE datagrams on the NAT-T port arrive from the datapath's loop thread (marker removed) into a
 * bounded queue; receive() hands them to charon's receiver with the non-ESP marker restored,
 * since charon's receiver strips it itself. send() removes the marker charon's sender added and
 * sends through the datapath, which adds it again.
 */
struct kernel_qkd_socket_t {

	/**
	 * Implements socket_t
	 */
	socket_t socket;
};

/**
 * Create the socket on the datapath registered as KERNEL_QKD_DATAPATH.
 *
 * @return			socket, NULL on failure
 */
kernel_qkd_socket_t *kernel_qkd_socket_create();

#endif /** KERNEL_QKD_SOCKET_H_ @}*/
