/* SPDX-License-Identifier: GPL-2.0-or-later */
/* rx.h - the receive path, UDP -> ESP -> TUN (loop thread only). */
#ifndef IQ_RX_H
#define IQ_RX_H

#include "dp.h"

/* receive and open up to a budget of datagrams from UDP socket s (0: IPv4, 1: IPv6) */
void iq_rx_drain(struct iq_dp *dp, int s);
/* write one (vnet-headed) frame to the TUN: the GRO engine's output */
void iq_rx_tun_write(void *user, uint8_t *frame, size_t len);

#endif
