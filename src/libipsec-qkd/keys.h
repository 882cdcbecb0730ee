/* SPDX-License-Identifier: GPL-2.0-or-later */
/* keys.h - window keys of rotating SAs: prefetch and delivery (loop thread only). */
#ifndef IQ_KEYS_H
#define IQ_KEYS_H

#include "dp.h"

/* ask the provider for the windows each rotating SA will need next */
void iq_keys_prefetch(struct iq_dp *dp);
/* store what the provider delivered; ack: its eventfd woke the loop */
void iq_keys_take(struct iq_dp *dp, bool ack);
/* within a batch: prefetch if a window moved, take what arrived */
void iq_keys_between_packets(struct iq_dp *dp);
/* tell the provider an SA was installed / is gone / its counters (rotating SAs only) */
void iq_keys_open(struct iq_dp *dp, struct iq_sa *sa);
void iq_keys_close(struct iq_dp *dp, struct iq_sa *sa);
void iq_keys_report(struct iq_dp *dp, struct iq_sa *sa);

#endif
