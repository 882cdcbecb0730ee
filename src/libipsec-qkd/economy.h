/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * economy.h - the key economy of rotating SAs (loop thread only): every 100 ms measure each
 * SA's packet rate and key buffer, notice key shortages (the exhaustion policy acting) and
 * log each once, sample for rpk_trace; once a second report the SA to the key provider.
 */
#ifndef IQ_ECONOMY_H
#define IQ_ECONOMY_H

#include "dp.h"

#define IQ_ECON_TICK_MS 100      /* shortages, trace, report (once a second) */
#define IQ_ECON_CTL_MS 20        /* the rpk loop's step */
/* a shortage episode ends after this long without a packet beyond rpk or a stall drop */
#define IQ_SHORTAGE_QUIET_MS 2000
/* s: time constant of the measured key arrival rate */
#define IQ_ARRIVALS_TAU 0.5

/* every IQ_ECON_TICK_MS for every SA; report: the second is full, tell the provider */
void iq_economy_tick(struct iq_dp *dp, struct iq_sa *sa, bool report);
/* every IQ_ECON_CTL_MS: one step of the rpk loop of every outbound rotating SA */
void iq_economy_control(struct iq_dp *dp);

#endif
