/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csum.h - Internet checksum (RFC 1071) helpers for segmentation and coalescing. */
#ifndef IQ_CSUM_H
#define IQ_CSUM_H

#include <stddef.h>
#include <stdint.h>

/** Ones'-complement sum of buf added to sum (not folded). */
uint64_t iq_csum_add(uint64_t sum, const void *buf, size_t len);

/** Fold a sum to 16 bits (not complemented), in network byte order as stored in headers. */
static inline uint16_t iq_csum_fold(uint64_t sum)
{
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/** Pseudo-header sum for TCP/UDP: addresses (4 or 16 bytes each), protocol, L4 length. */
uint64_t iq_csum_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
						uint32_t l4len);

/** IPv4 header checksum (header's csum field must be zero or is ignored). */
uint16_t iq_csum_ip4(const uint8_t *iph, size_t ihl);

#endif
