/* SPDX-License-Identifier: GPL-2.0-or-later */
/* TSO/USO segmentation and TCP coalescing: round trips, checksums, flags, GRO rules, fuzz. */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "csum.h"
#include "esp.h"
#include "gso.h"

#define MAXF 64
static struct { uint8_t b[IQ_GRO_BUF]; size_t len; } frames[MAXF];
static int nframes;

static void capture(void *user, uint8_t *frame, size_t len)
{
	ck_assert_int_lt(nframes, MAXF);
	ck_assert_uint_le(len, IQ_GRO_BUF);
	memcpy(frames[nframes].b, frame, len);
	frames[nframes].len = len;
	nframes++;
}

static const uint8_t a4s[4] = { 192, 0, 2, 10 }, a4d[4] = { 192, 0, 2, 130 };
static const uint8_t a6s[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 };
static const uint8_t a6d[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x1, 0x30 };

/* IPv4 or IPv6 + TCP (12 bytes of options) or UDP; returns the packet length */
static size_t build(uint8_t *p, int family, uint8_t proto, size_t payload, uint32_t seq,
					uint8_t flags, uint16_t sport)
{
	size_t iph = family == AF_INET ? 20 : 40, l4 = proto == IPPROTO_TCP ? 32 : 8, i;
	size_t len = iph + l4 + payload;
	uint8_t *t = p + iph;

	memset(p, 0, iph + l4);
	if (family == AF_INET) {
		p[0] = 0x45;
		iq_put16(p + 2, len);
		iq_put16(p + 4, 0x1234);
		p[6] = 0x40;
		p[8] = 64;
		p[9] = proto;
		memcpy(p + 12, a4s, 4);
		memcpy(p + 16, a4d, 4);
		uint16_t c = iq_csum_ip4(p, 20);
		memcpy(p + 10, &c, 2);
	} else {
		p[0] = 0x60;
		iq_put16(p + 4, len - 40);
		p[6] = proto;
		p[7] = 64;
		memcpy(p + 8, a6s, 16);
		memcpy(p + 24, a6d, 16);
	}
	iq_put16(t, sport);
	iq_put16(t + 2, 5201);
	if (proto == IPPROTO_TCP) {
		iq_put32(t + 4, seq);
		iq_put32(t + 8, 777);
		t[12] = 8 << 4;
		t[13] = flags;
		iq_put16(t + 14, 500);
		t[20] = 1; t[21] = 1; t[22] = 8; t[23] = 10;     /* NOP NOP TS */
		iq_put32(t + 24, 1111);
		iq_put32(t + 28, 2222);
	} else {
		iq_put16(t + 4, l4 + payload);
	}
	for (i = 0; i < payload; i++)
		t[l4 + i] = (uint8_t)((seq + i) * 7 + (i >> 8));
	return len;
}

/* the L4 checksum of a complete packet verifies */
static bool l4_ok(const uint8_t *p, size_t len)
{
	int fam = (p[0] >> 4) == 4 ? AF_INET : AF_INET6;
	size_t iph = fam == AF_INET ? 20 : 40;
	const uint8_t *s = fam == AF_INET ? p + 12 : p + 8, *d = fam == AF_INET ? p + 16 : p + 24;
	uint8_t proto = fam == AF_INET ? p[9] : p[6];
	uint64_t sum = iq_csum_pseudo(fam, s, d, proto, len - iph);

	return iq_csum_fold(iq_csum_add(sum, p + iph, len - iph)) == 0xffff;
}

static bool ip4_ok(const uint8_t *p)
{
	return iq_csum_fold(iq_csum_add(0, p, 20)) == 0xffff;
}


/* iq_csum_add against a plain RFC 1071 reference: all lengths, odd offsets, chained calls */
static uint16_t ref_csum(const uint8_t *p, size_t len)
{
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

START_TEST(test_csum_reference)
{
	static uint8_t buf[3000];
	size_t len, off, i;

	srand(3);
	for (i = 0; i < sizeof(buf); i++)
		buf[i] = rand();
	memset(buf + 100, 0xff, 600);          /* long runs of ones exercise the carries */
	for (len = 0; len < 1600; len += (len < 80 ? 1 : 37)) {
		for (off = 0; off < 3; off++) {
			uint16_t ours = iq_csum_fold(iq_csum_add(0, buf + off, len)), net;
			uint16_t ref = ref_csum(buf + off, len);
			uint8_t b[2] = { ref >> 8, ref & 0xff };
			memcpy(&net, b, 2);
			ck_assert_uint_eq(ours, net);
			/* chaining at an even split gives the same sum */
			if (len >= 10) {
				uint64_t s = iq_csum_add(iq_csum_add(0, buf + off, 10), buf + off + 10, len - 10);
				ck_assert_uint_eq(iq_csum_fold(s), net);
			}
		}
	}
}
END_TEST

START_TEST(test_tso_roundtrip)
{
	int family = _i ? AF_INET6 : AF_INET;
	size_t iph = family == AF_INET ? 20 : 40, hdr = iph + 32;
	static uint8_t super[70000], seg[40][IQ_VNET_LEN + 2000], resegd[2000];
	struct virtio_net_hdr vh = { 0 };
	struct iq_seg s, s2;
	struct iq_gro g;
	size_t len = build(super, family, IPPROTO_TCP, 10000, 1000000, 0x18 /* ACK|PSH */, 40000);
	int n, i;

	vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
	vh.gso_type = family == AF_INET ? VIRTIO_NET_HDR_GSO_TCPV4 : VIRTIO_NET_HDR_GSO_TCPV6;
	vh.gso_size = 1448;
	vh.hdr_len = hdr;
	vh.csum_start = iph;
	vh.csum_offset = 16;
	n = iq_seg_begin(&s, &vh, super, len);
	ck_assert_int_eq(n, 7);
	for (i = 0; i < n; i++) {
		uint8_t *p = seg[i] + IQ_VNET_LEN;
		size_t l = iq_seg_write(&s, i, p), pl = i < 6 ? 1448 : 10000 - 6 * 1448;
		ck_assert_uint_eq(l, iq_seg_len(&s, i));
		ck_assert_uint_eq(l, hdr + pl);
		if (family == AF_INET) {
			ck_assert_uint_eq(iq_get16(p + 2), l);
			ck_assert_uint_eq(iq_get16(p + 4), 0x1234 + i);
			ck_assert(ip4_ok(p));
		} else {
			ck_assert_uint_eq(iq_get16(p + 4), l - 40);
		}
		ck_assert_uint_eq(iq_get32(p + iph + 4), 1000000 + i * 1448);
		ck_assert_uint_eq(p[iph + 13], i == n - 1 ? 0x18 : 0x10);  /* PSH on the last only */
		ck_assert(l4_ok(p, l));
		ck_assert_mem_eq(p + hdr, super + hdr + i * 1448, pl);
	}
	/* coalesce the segments back into one super-packet */
	nframes = 0;
	ck_assert_int_eq(iq_gro_init(&g, true, capture, NULL), 0);
	for (i = 0; i < n; i++)
		iq_gro_offer(&g, seg[i] + IQ_VNET_LEN, iq_seg_len(&s, i));
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 1);
	{
		struct virtio_net_hdr out;
		uint8_t *p = frames[0].b + IQ_VNET_LEN;
		size_t alen = family == AF_INET ? 4 : 16;
		uint16_t psum;

		memcpy(&out, frames[0].b, IQ_VNET_LEN);
		ck_assert_uint_eq(frames[0].len - IQ_VNET_LEN, len);
		ck_assert_uint_eq(out.gso_type, vh.gso_type);
		ck_assert_uint_eq(out.gso_size, 1448);
		ck_assert_uint_eq(out.hdr_len, hdr);
		ck_assert_uint_eq(out.csum_start, iph);
		ck_assert_uint_eq(out.csum_offset, 16);
		ck_assert_uint_eq(out.flags, VIRTIO_NET_HDR_F_NEEDS_CSUM);
		if (family == AF_INET)
			ck_assert(ip4_ok(p));
		ck_assert_uint_eq(p[iph + 13], 0x18);
		ck_assert_mem_eq(p + hdr, super + hdr, 10000);
		/* partial checksum = folded pseudo header over the total L4 length */
		psum = iq_csum_fold(iq_csum_pseudo(family, family == AF_INET ? p + 12 : p + 8,
										   (family == AF_INET ? p + 12 : p + 8) + alen,
										   IPPROTO_TCP, len - iph));
		ck_assert_mem_eq(p + iph + 16, &psum, 2);
		/* and segmenting what we coalesced gives the same packets again */
		ck_assert_int_eq(iq_seg_begin(&s2, &out, p, frames[0].len - IQ_VNET_LEN), 7);
		for (i = 0; i < 7; i++) {
			size_t l = iq_seg_write(&s2, i, resegd);
			ck_assert_uint_eq(l, iq_seg_len(&s, i));
			ck_assert_mem_eq(resegd, seg[i] + IQ_VNET_LEN, l);
		}
	}
	ck_assert_uint_eq(g.superframes, 1);
	ck_assert_uint_eq(g.segments, 7);
	iq_gro_free(&g);
}
END_TEST

START_TEST(test_tso_flags)
{
	static uint8_t super[70000], p[2000];
	struct virtio_net_hdr vh = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
								 .gso_size = 1000 };
	struct iq_seg s;
	size_t len = build(super, AF_INET, IPPROTO_TCP, 3000, 5, 0x80 | 0x10 | 0x08 | 0x01, 1);
	int i;

	ck_assert_int_eq(iq_seg_begin(&s, &vh, super, len), 3);
	for (i = 0; i < 3; i++) {
		iq_seg_write(&s, i, p);
		/* CWR only on the first, FIN and PSH only on the last */
		ck_assert_uint_eq(p[33], i == 0 ? 0x90 : i == 1 ? 0x10 : 0x19);
		ck_assert(l4_ok(p, iq_seg_len(&s, i)));
	}
}
END_TEST

START_TEST(test_uso)
{
	int family = _i ? AF_INET6 : AF_INET;
	size_t iph = family == AF_INET ? 20 : 40;
	static uint8_t super[70000], p[2000];
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
								 .gso_type = VIRTIO_NET_HDR_GSO_UDP_L4, .gso_size = 1200,
								 .csum_start = iph, .csum_offset = 6 };
	struct iq_seg s;
	size_t len = build(super, family, IPPROTO_UDP, 5000, 9, 0, 7000);
	int i;

	ck_assert_int_eq(iq_seg_begin(&s, &vh, super, len), 5);
	for (i = 0; i < 5; i++) {
		size_t l = iq_seg_write(&s, i, p), pl = i < 4 ? 1200 : 200;
		ck_assert_uint_eq(l, iph + 8 + pl);
		ck_assert_uint_eq(iq_get16(p + iph + 4), 8 + pl);
		ck_assert(iq_get16(p + iph + 6) != 0);
		ck_assert(l4_ok(p, l));
		if (family == AF_INET)
			ck_assert(ip4_ok(p));
		ck_assert_mem_eq(p + iph + 8, super + iph + 8 + i * 1200, pl);
	}
}
END_TEST

/* a single packet with a partial checksum (TUN_F_CSUM) is completed */
START_TEST(test_needs_csum)
{
	static uint8_t pkt[2000], out[2000];
	size_t len = build(pkt, AF_INET, IPPROTO_UDP, 333, 1, 0, 53);
	struct virtio_net_hdr vh = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = 20,
								 .csum_offset = 6 };
	uint16_t c = iq_csum_fold(iq_csum_pseudo(AF_INET, pkt + 12, pkt + 16, IPPROTO_UDP,
											 len - 20));
	struct iq_seg s;

	memcpy(pkt + 26, &c, 2);
	ck_assert(!l4_ok(pkt, len));
	ck_assert_int_eq(iq_seg_begin(&s, &vh, pkt, len), 1);
	ck_assert_uint_eq(iq_seg_write(&s, 0, out), len);
	ck_assert(l4_ok(out, len));
	/* bad csum_start */
	vh.csum_start = 1990;
	ck_assert_int_eq(iq_seg_begin(&s, &vh, pkt, len), -1);
}
END_TEST

static size_t seg_into(uint8_t *buf, int family, size_t payload, uint32_t seq, uint8_t flags,
					   uint16_t sport)
{
	return build(buf + IQ_VNET_LEN, family, IPPROTO_TCP, payload, seq, flags, sport);
}

START_TEST(test_gro_rules)
{
	static uint8_t b[16][IQ_VNET_LEN + 2000];
	size_t l[16];
	struct iq_gro g;
	int i;

	ck_assert_int_eq(iq_gro_init(&g, true, capture, NULL), 0);

	/* two interleaved flows: one super-packet each */
	nframes = 0;
	for (i = 0; i < 6; i++)
		l[i] = seg_into(b[i], AF_INET, 1000, 100 + (i / 2) * 1000, 0x10, i % 2 ? 2 : 1);
	for (i = 0; i < 6; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 2);
	ck_assert_uint_eq(frames[0].len, IQ_VNET_LEN + 52 + 3000);
	ck_assert_uint_eq(frames[1].len, IQ_VNET_LEN + 52 + 3000);

	/* a gap in the sequence starts a new super-packet */
	nframes = 0;
	l[0] = seg_into(b[0], AF_INET, 1000, 0, 0x10, 1);
	l[1] = seg_into(b[1], AF_INET, 1000, 1000, 0x10, 1);
	l[2] = seg_into(b[2], AF_INET, 1000, 3000, 0x10, 1);
	for (i = 0; i < 3; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 2);
	ck_assert_uint_eq(frames[0].len, IQ_VNET_LEN + 52 + 2000);

	/* a short segment ends a super-packet */
	nframes = 0;
	l[0] = seg_into(b[0], AF_INET, 1000, 0, 0x10, 1);
	l[1] = seg_into(b[1], AF_INET, 500, 1000, 0x10, 1);
	l[2] = seg_into(b[2], AF_INET, 1000, 1500, 0x10, 1);
	for (i = 0; i < 3; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 2);
	ck_assert_uint_eq(frames[0].len, IQ_VNET_LEN + 52 + 1500);
	ck_assert_uint_eq(frames[1].len, IQ_VNET_LEN + 52 + 1000);
	/* a lone segment is written as it is: no GSO header, its own checksum */
	ck_assert_uint_eq(frames[1].b[1], VIRTIO_NET_HDR_GSO_NONE);

	/* FIN: what is pending for the flow goes first, the FIN itself unchanged after it */
	nframes = 0;
	l[0] = seg_into(b[0], AF_INET6, 1000, 0, 0x10, 1);
	l[1] = seg_into(b[1], AF_INET6, 1000, 1000, 0x10, 1);
	l[2] = seg_into(b[2], AF_INET6, 10, 2000, 0x11, 1);
	for (i = 0; i < 3; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 2);
	ck_assert_uint_eq(frames[0].len, IQ_VNET_LEN + 72 + 2000);
	ck_assert_uint_eq(frames[1].len, IQ_VNET_LEN + 72 + 10);
	ck_assert_uint_eq(frames[1].b[IQ_VNET_LEN + 40 + 13], 0x11);

	/* a different ACK number does not merge; pure ACKs pass alone */
	nframes = 0;
	l[0] = seg_into(b[0], AF_INET, 1000, 0, 0x10, 1);
	l[1] = seg_into(b[1], AF_INET, 1000, 1000, 0x10, 1);
	iq_put32(b[1] + IQ_VNET_LEN + 28, 778);
	l[2] = seg_into(b[2], AF_INET, 0, 0, 0x10, 9);
	l[3] = seg_into(b[3], AF_INET, 0, 0, 0x10, 9);
	for (i = 0; i < 4; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 4);

	/* more flows than table entries: nothing is lost */
	nframes = 0;
	for (i = 0; i < 12; i++) {
		l[i] = seg_into(b[i], AF_INET, 100, 0, 0x10, 100 + i);
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	}
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 12);
	iq_gro_free(&g);

	/* disabled: every packet alone */
	ck_assert_int_eq(iq_gro_init(&g, false, capture, NULL), 0);
	nframes = 0;
	for (i = 0; i < 3; i++) {
		l[i] = seg_into(b[i], AF_INET, 1000, i * 1000, 0x10, 1);
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	}
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 3);
	iq_gro_free(&g);
}
END_TEST


/* consecutive equal-size UDP datagrams of a flow become one GSO_UDP_L4 frame (when enabled);
 * segmenting that frame gives the datagrams back */
START_TEST(test_udp_coalesce)
{
	int family = _i ? AF_INET6 : AF_INET;
	size_t iph = family == AF_INET ? 20 : 40;
	static uint8_t b[8][IQ_VNET_LEN + 2000], out[2000];
	struct virtio_net_hdr vh;
	struct iq_seg s;
	struct iq_gro g;
	size_t l[8];
	int i;

	ck_assert_int_eq(iq_gro_init(&g, true, capture, NULL), 0);
	for (i = 0; i < 5; i++)
		l[i] = build(b[i] + IQ_VNET_LEN, family, IPPROTO_UDP, i < 4 ? 1200 : 700, i, 0, 7000);
	/* without the udp switch every datagram goes alone */
	nframes = 0;
	for (i = 0; i < 5; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 5);

	g.udp = true;
	nframes = 0;
	for (i = 0; i < 5; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 1);
	memcpy(&vh, frames[0].b, IQ_VNET_LEN);
	ck_assert_uint_eq(vh.gso_type, VIRTIO_NET_HDR_GSO_UDP_L4);
	ck_assert_uint_eq(vh.gso_size, 1200);
	ck_assert_uint_eq(vh.csum_start, iph);
	ck_assert_uint_eq(vh.csum_offset, 6);
	ck_assert_uint_eq(iq_get16(frames[0].b + IQ_VNET_LEN + iph + 4), 8 + 4 * 1200 + 700);
	ck_assert_int_eq(iq_seg_begin(&s, &vh, frames[0].b + IQ_VNET_LEN,
								  frames[0].len - IQ_VNET_LEN), 5);
	for (i = 0; i < 5; i++) {
		size_t n = iq_seg_write(&s, i, out);
		ck_assert_uint_eq(n, l[i]);
		ck_assert(l4_ok(out, n));
		ck_assert_mem_eq(out + iph + 8, b[i] + IQ_VNET_LEN + iph + 8, n - iph - 8);
	}
	/* a larger datagram after smaller ones, or another flow, starts a new frame */
	nframes = 0;
	l[0] = build(b[0] + IQ_VNET_LEN, family, IPPROTO_UDP, 500, 0, 0, 7000);
	l[1] = build(b[1] + IQ_VNET_LEN, family, IPPROTO_UDP, 900, 0, 0, 7000);
	l[2] = build(b[2] + IQ_VNET_LEN, family, IPPROTO_UDP, 900, 0, 0, 7001);
	for (i = 0; i < 3; i++)
		iq_gro_offer(&g, b[i] + IQ_VNET_LEN, l[i]);
	iq_gro_flush(&g);
	ck_assert_int_eq(nframes, 3);
	iq_gro_free(&g);
}
END_TEST

/* garbage never crashes and never produces oversized segments */
START_TEST(test_fuzz)
{
	static uint8_t pkt[IQ_VNET_LEN + 3000], out[70000];
	struct iq_gro g;
	int it;

	srand(7);
	ck_assert_int_eq(iq_gro_init(&g, true, capture, NULL), 0);
	for (it = 0; it < 20000; it++) {
		size_t len = rand() % 1600, i;
		struct virtio_net_hdr vh;
		struct iq_flow f;
		struct iq_seg s;
		int n;

		for (i = 0; i < len; i++)
			pkt[IQ_VNET_LEN + i] = rand();
		if (len > 0 && it % 2)
			pkt[IQ_VNET_LEN] = (it % 4 == 1 ? 0x45 : 0x60);
		if (len > 3 && it % 3 == 0) {
			iq_put16(pkt + IQ_VNET_LEN + 2, len);
			iq_put16(pkt + IQ_VNET_LEN + 4, len > 40 ? len - 40 : 0);
		}
		for (i = 0; i < sizeof(vh); i++)
			((uint8_t *)&vh)[i] = rand();
		if (it % 5 == 0)
			vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		iq_flow_parse(pkt + IQ_VNET_LEN, len, &f);
		n = iq_seg_begin(&s, &vh, pkt + IQ_VNET_LEN, len);
		if (n > 0) {
			int k;
			ck_assert_int_le(n, 65536);
			for (k = 0; k < n && k < 50; k++) {
				ck_assert_uint_le(iq_seg_len(&s, k), len);
				iq_seg_write(&s, k, out);
			}
		}
		nframes = 0;
		iq_gro_offer(&g, pkt + IQ_VNET_LEN, len);
		iq_gro_flush(&g);
	}
	iq_gro_free(&g);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("gso");
	TCase *tc = tcase_create("offload");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_csum_reference);
	tcase_add_loop_test(tc, test_tso_roundtrip, 0, 2);
	tcase_add_test(tc, test_tso_flags);
	tcase_add_loop_test(tc, test_uso, 0, 2);
	tcase_add_test(tc, test_needs_csum);
	tcase_add_test(tc, test_gro_rules);
	tcase_add_loop_test(tc, test_udp_coalesce, 0, 2);
	tcase_add_test(tc, test_fuzz);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
