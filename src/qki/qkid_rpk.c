/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <math.h>

#include "qkid_rpk.h"

static uint32_t clamp(double v, uint32_t lo, uint32_t hi)
{
	if (!(v >= lo))         /* also catches NaN */
		return lo;
	if (v >= hi)
		return hi;
	return (uint32_t)lround(v);
}

uint32_t qkid_rpk_advise(const struct qkid_rpk_input *in)
{
	uint32_t lo = in->rpk_min ? in->rpk_min : 1;
	uint32_t hi = in->rpk_max >= lo ? in->rpk_max : lo;
	double fill = in->capacity ? (double)in->level / in->capacity : 0;

	if (fill > 1)
		fill = 1;
	if (in->pkt_rate <= 0)
		return lo;
	if (in->key_share <= 0)
		return clamp(lo + (1 - fill) * (double)(hi - lo), lo, hi);
	/* factor 2 at an empty buffer, 1 at half full, 0.5 when full */
	return clamp(in->pkt_rate / in->key_share * exp2(1 - 2 * fill), lo, hi);
}
