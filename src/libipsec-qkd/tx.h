/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tx.h - the transmit path, TUN -> ESP -> UDP (loop thread only). */
#ifndef IQ_TX_H
#define IQ_TX_H

#include "dp.h"

/* read and seal up to a budget of TUN packets, then send the batch */
void iq_tx_drain(struct iq_dp *dp);
/* send what the batch holds; on EAGAIN keep the rest and set dp->tx_blocked */
void iq_tx_flush(struct iq_dp *dp);

#endif
