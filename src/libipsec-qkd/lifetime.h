/* SPDX-License-Identifier: GPL-2.0-or-later */
/* lifetime.h - SA lifetimes and packet rates (loop thread only). */
#ifndef IQ_LIFETIME_H
#define IQ_LIFETIME_H

#include "dp.h"

/* expire SAs past a lifetime (expire callback: soft, then hard and deleted); once a second,
 * measure each SA's packet rate; every call, the key economy of rotating SAs (economy.h) */
void iq_lifetime_check(struct iq_dp *dp);

/* the hard packet or byte limit is reached: the SA may not carry another packet */
static inline bool iq_sa_hard_limit(const struct iq_sa *sa)
{
	return (sa->lt.hard_packets && sa->packets >= sa->lt.hard_packets) ||
		   (sa->lt.hard_bytes && sa->bytes >= sa->lt.hard_bytes);
}

#endif
