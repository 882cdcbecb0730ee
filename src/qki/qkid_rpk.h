/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_rpk.h - the rpk advisor: how many packets an SA should protect with one quantum key.
 *
 * Keys are the scarce resource. If an SA sends pkt_rate packets/s and its fair share of the key
 * supply is share keys/s, the rpk that consumes keys exactly as fast as they arrive is
 * pkt_rate / share. The advice scales that by how full the SA's buffer is: a full buffer may be
 * spent faster (down to half that rpk), an empty one must be spent slower (up to twice), so the
 * buffer settles around half full. The result is clamped to [rpk_min, rpk_max].
 * Without a known supply rate the advice moves linearly from rpk_min (full buffer) to rpk_max
 * (empty buffer); an idle SA gets rpk_min (it consumes nothing anyway).
 */
#ifndef QKID_RPK_H
#define QKID_RPK_H

#include <stdint.h>

struct qkid_rpk_input {
	double pkt_rate;        /* packets/s of the SA */
	double key_share;       /* keys/s this SA can expect (0: unknown) */
	uint32_t level, capacity;
	uint32_t rpk_min, rpk_max;
};

uint32_t qkid_rpk_advise(const struct qkid_rpk_input *in);

#endif
