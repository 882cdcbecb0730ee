/* SPDX-License-Identifier: GPL-2.0-or-later */
/* csum.c - Internet checksum, 64-bit accumulation (works on any alignment). */
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "csum.h"

uint64_t iq_csum_add(uint64_t sum, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint64_t acc = 0;
	uint32_t w;

	/* 32-bit words into a 64-bit accumulator: no carry handling needed in the loop
	 * (2^32 words before overflow). Works in network byte order throughout: the ones'
	 * complement sum is byte-order independent as long as we fold at the end. */
	while (len >= 32) {
		uint32_t a[8];
		memcpy(a, p, 32);
		acc += (uint64_t)a[0] + a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7];
		p += 32;
		len -= 32;
	}
	while (len >= 4) {
		memcpy(&w, p, 4);
		acc += w;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		uint16_t h;
		memcpy(&h, p, 2);
		acc += h;
		p += 2;
		len -= 2;
	}
	if (len) {
		uint8_t last[2] = { p[0], 0 };
		uint16_t h;
		memcpy(&h, last, 2);
		acc += h;
	}
	/* add with end-around carry into sum */
	sum += acc;
	if (sum < acc)
		sum++;
	return sum;
}

uint64_t iq_csum_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
						uint32_t l4len)
{
	uint64_t sum = 0;
	size_t alen = family == AF_INET ? 4 : 16;
	uint8_t tail[8];

	sum = iq_csum_add(sum, src, alen);
	sum = iq_csum_add(sum, dst, alen);
	if (family == AF_INET) {
		/* zero, proto, 16-bit length */
		tail[0] = 0;
		tail[1] = proto;
		tail[2] = l4len >> 8;
		tail[3] = l4len & 0xff;
		return iq_csum_add(sum, tail, 4);
	}
	/* 32-bit length, 3 zero bytes, next header */
	tail[0] = l4len >> 24;
	tail[1] = (l4len >> 16) & 0xff;
	tail[2] = (l4len >> 8) & 0xff;
	tail[3] = l4len & 0xff;
	tail[4] = tail[5] = tail[6] = 0;
	tail[7] = proto;
	return iq_csum_add(sum, tail, 8);
}

uint16_t iq_csum_ip4(const uint8_t *iph, size_t ihl)
{
	uint64_t sum;
	uint16_t zero = 0;

	sum = iq_csum_add(0, iph, 10);
	sum = iq_csum_add(sum, &zero, 2);
	sum = iq_csum_add(sum, iph + 12, ihl - 12);
	return (uint16_t)~iq_csum_fold(sum);
}
