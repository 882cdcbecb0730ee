/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "csum.h"
#include "esp.h"
#include "gso.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

/* Walk IPv6 extension headers to the upper-layer header. */
static int ip6_upper(const uint8_t *pkt, size_t len, uint8_t *proto, size_t *off, bool *frag)
{
	uint8_t nh = pkt[6];
	size_t o = 40;
	int i;

	*frag = false;
	for (i = 0; i < 8; i++) {
		switch (nh) {
		case 0: case 43: case 60:                 /* hop-by-hop, routing, destination */
			if (o + 8 > len)
				return -1;
			nh = pkt[o];
			o += 8 + pkt[o + 1] * 8;
			break;
		case 44:                                  /* fragment */
			if (o + 8 > len)
				return -1;
			if ((iq_get16(pkt + o + 2) & 0xfff8) != 0)
				*frag = true;                     /* not the first fragment: no L4 header */
			nh = pkt[o];
			o += 8;
			break;
		default:
			if (o > len)
				return -1;
			*proto = nh;
			*off = o;
			return 0;
		}
	}
	return -1;
}

int iq_flow_parse(const uint8_t *pkt, size_t len, struct iq_flow *f)
{
	size_t off;
	bool nofirst = false;

	memset(f, 0, sizeof(*f));
	if (len < 1)
		return -1;
	switch (pkt[0] >> 4) {
	case 4: {
		size_t ihl = (pkt[0] & 15) * 4;
		if (len < 20 || ihl < 20 || ihl > len)
			return -1;
		f->family = AF_INET;
		f->src = pkt + 12;
		f->dst = pkt + 16;
		f->proto = pkt[9];
		off = ihl;
		nofirst = (iq_get16(pkt + 6) & 0x1fff) != 0;
		break;
	}
	case 6:
		if (len < 40)
			return -1;
		f->family = AF_INET6;
		f->src = pkt + 8;
		f->dst = pkt + 24;
		if (ip6_upper(pkt, len, &f->proto, &off, &nofirst))
			return -1;
		break;
	default:
		return -1;
	}
	if (nofirst)
		return 0;
	switch (f->proto) {
	case IPPROTO_TCP: case IPPROTO_UDP: case IPPROTO_SCTP: case IPPROTO_UDPLITE:
		if (off + 4 <= len) {
			f->sport = iq_get16(pkt + off);
			f->dport = iq_get16(pkt + off + 2);
			f->has_ports = true;
		}
		break;
	case IPPROTO_ICMP: case IPPROTO_ICMPV6:
		/* RFC 4301 4.4.1.3: type and code in the port selectors */
		if (off + 2 <= len) {
			f->sport = f->dport = iq_get16(pkt + off);
			f->has_ports = true;
		}
		break;
	}
	return 0;
}

int iq_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset)
{
	uint16_t c;

	if ((size_t)csum_start + csum_offset + 2 > len)
		return -1;
	c = ~iq_csum_fold(iq_csum_add(0, pkt + csum_start, len - csum_start));
	if (c == 0 && csum_offset == 6)       /* UDP: 0 means "no checksum" */
		c = 0xffff;
	memcpy(pkt + csum_start + csum_offset, &c, 2);
	return 0;
}

int iq_seg_begin(struct iq_seg *s, const struct virtio_net_hdr *vh, const uint8_t *pkt,
				 size_t len)
{
	uint8_t type;
	size_t hdr;

	memset(s, 0, sizeof(*s));
	s->pkt = pkt;
	s->len = len;
	if (len < 20)
		return -1;
	switch (pkt[0] >> 4) {
	case 4:
		if ((size_t)(pkt[0] & 15) * 4 < 20 || iq_get16(pkt + 2) > len || iq_get16(pkt + 2) < 20)
			return -1;
		s->len = len = iq_get16(pkt + 2);  /* drop link padding, if any */
		s->family = AF_INET;
		break;
	case 6:
		if (len < 40 || (size_t)iq_get16(pkt + 4) + 40 > len)
			return -1;
		s->len = len = (size_t)iq_get16(pkt + 4) + 40;
		s->family = AF_INET6;
		break;
	default:
		return -1;
	}
	s->nseg = 1;
	if (!vh)
		return 1;
	type = vh->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;
	if (type == VIRTIO_NET_HDR_GSO_NONE) {
		if (vh->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
			if ((size_t)vh->csum_start + vh->csum_offset + 2 > len)
				return -1;
			s->needs_csum = true;
			s->csum_start = vh->csum_start;
			s->csum_offset = vh->csum_offset;
		}
		return 1;
	}
	/* a GSO super-packet: find the L4 header ourselves, trust nothing but gso_size */
	if (s->family == AF_INET) {
		size_t ihl = (pkt[0] & 15) * 4;
		if (iq_get16(pkt + 6) & 0x3fff)       /* MF or fragment offset */
			return -1;
		s->l4proto = pkt[9];
		s->l4off = ihl;
	} else {
		size_t off;
		bool frag;
		if (ip6_upper(pkt, len, &s->l4proto, &off, &frag) || frag)
			return -1;
		s->l4off = off;
	}
	if ((type == VIRTIO_NET_HDR_GSO_TCPV4 && s->family != AF_INET) ||
		(type == VIRTIO_NET_HDR_GSO_TCPV6 && s->family != AF_INET6))
		return -1;
	if (type == VIRTIO_NET_HDR_GSO_TCPV4 || type == VIRTIO_NET_HDR_GSO_TCPV6) {
		if (s->l4proto != IPPROTO_TCP || (size_t)s->l4off + 20 > len)
			return -1;
		s->l4hlen = (pkt[s->l4off + 12] >> 4) * 4;
		if (s->l4hlen < 20)
			return -1;
	} else if (type == VIRTIO_NET_HDR_GSO_UDP_L4) {
		if (s->l4proto != IPPROTO_UDP)
			return -1;
		s->l4hlen = 8;
	} else {
		return -1;
	}
	hdr = (size_t)s->l4off + s->l4hlen;
	if (hdr > len || vh->gso_size == 0)
		return -1;
	s->gso_size = vh->gso_size;
	s->payload = len - hdr;
	if (s->payload == 0) {
		/* nothing to cut; just complete the checksum */
		s->gso_size = 0;
		s->needs_csum = true;
		s->csum_start = s->l4off;
		s->csum_offset = s->l4proto == IPPROTO_TCP ? 16 : 6;
		return 1;
	}
	s->nseg = (s->payload + s->gso_size - 1) / s->gso_size;
	return s->nseg;
}

size_t iq_seg_len(const struct iq_seg *s, uint32_t i)
{
	size_t rest;

	if (!s->gso_size)
		return s->len;
	rest = s->payload - (size_t)i * s->gso_size;
	return (size_t)s->l4off + s->l4hlen + (rest < s->gso_size ? rest : s->gso_size);
}

size_t iq_seg_write(const struct iq_seg *s, uint32_t i, uint8_t *out)
{
	size_t hdr, seglen, total, l4len;
	const uint8_t *src, *dst;
	uint64_t sum;
	uint16_t c;

	if (!s->gso_size) {
		memcpy(out, s->pkt, s->len);
		if (s->needs_csum)
			iq_csum_complete(out, s->len, s->csum_start, s->csum_offset);
		return s->len;
	}
	hdr = (size_t)s->l4off + s->l4hlen;
	total = iq_seg_len(s, i);
	seglen = total - hdr;
	memcpy(out, s->pkt, hdr);
	memcpy(out + hdr, s->pkt + hdr + (size_t)i * s->gso_size, seglen);

	if (s->family == AF_INET) {
		size_t ihl = (out[0] & 15) * 4;
		iq_put16(out + 2, total);
		iq_put16(out + 4, iq_get16(s->pkt + 4) + i);  /* IP ID increments per segment */
		out[10] = out[11] = 0;
		c = iq_csum_ip4(out, ihl);
		memcpy(out + 10, &c, 2);
		src = out + 12;
		dst = out + 16;
	} else {
		iq_put16(out + 4, total - 40);
		src = out + 8;
		dst = out + 24;
	}
	l4len = total - s->l4off;
	if (s->l4proto == IPPROTO_TCP) {
		uint8_t *th = out + s->l4off;
		iq_put32(th + 4, iq_get32(th + 4) + (uint32_t)(i * s->gso_size));
		if (i + 1 < s->nseg)
			th[13] &= ~(TCP_FIN | TCP_PSH);
		if (i > 0)
			th[13] &= ~TCP_CWR;
		th[16] = th[17] = 0;
		sum = iq_csum_pseudo(s->family, src, dst, IPPROTO_TCP, l4len);
		c = ~iq_csum_fold(iq_csum_add(sum, th, l4len));
		memcpy(th + 16, &c, 2);
	} else {
		uint8_t *uh = out + s->l4off;
		iq_put16(uh + 4, l4len);
		uh[6] = uh[7] = 0;
		sum = iq_csum_pseudo(s->family, src, dst, IPPROTO_UDP, l4len);
		c = ~iq_csum_fold(iq_csum_add(sum, uh, l4len));
		if (c == 0)
			c = 0xffff;
		memcpy(uh + 6, &c, 2);
	}
	return total;
}

/* ---- coalescing ---- */

int iq_gro_init(struct iq_gro *g, bool enabled, iq_frame_writer write, void *user)
{
	int i;

	memset(g, 0, sizeof(*g));
	g->enabled = enabled;
	g->write = write;
	g->user = user;
	if (!enabled)
		return 0;
	for (i = 0; i < IQ_GRO_ITEMS; i++) {
		g->items[i].buf = malloc(IQ_GRO_BUF);
		if (!g->items[i].buf) {
			iq_gro_free(g);
			return -ENOMEM;
		}
	}
	return 0;
}

void iq_gro_free(struct iq_gro *g)
{
	int i;

	for (i = 0; i < IQ_GRO_ITEMS; i++)
		free(g->items[i].buf);
	memset(g, 0, sizeof(*g));
}

static void write_plain(struct iq_gro *g, uint8_t *pkt, size_t len)
{
	uint8_t *frame = pkt - IQ_VNET_LEN;

	memset(frame, 0, IQ_VNET_LEN);
	g->frames++;
	g->segments++;
	g->write(g->user, frame, len + IQ_VNET_LEN);
}

static void item_flush(struct iq_gro *g, struct iq_gro_item *it)
{
	struct virtio_net_hdr vh;
	uint8_t *pkt = it->buf + IQ_VNET_LEN;
	size_t alen = it->family == AF_INET ? 4 : 16;
	uint16_t c;

	if (!it->used)
		return;
	memset(&vh, 0, sizeof(vh));
	if (it->segs > 1) {
		bool udp = it->proto == IPPROTO_UDP;
		uint16_t csum_off = udp ? 6 : 16;

		if (it->family == AF_INET) {
			iq_put16(pkt + 2, it->len);
			pkt[10] = pkt[11] = 0;
			c = iq_csum_ip4(pkt, it->iphlen);
			memcpy(pkt + 10, &c, 2);
			vh.gso_type = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : VIRTIO_NET_HDR_GSO_TCPV4;
		} else {
			iq_put16(pkt + 4, it->len - 40);
			vh.gso_type = udp ? VIRTIO_NET_HDR_GSO_UDP_L4 : VIRTIO_NET_HDR_GSO_TCPV6;
		}
		/* UDP: the header describes the whole super-packet; the kernel fixes each segment */
		if (udp)
			iq_put16(pkt + it->iphlen + 4, it->len - it->iphlen);
		/* partial checksum: the kernel (or whoever consumes the skb) completes it */
		c = iq_csum_fold(iq_csum_pseudo(it->family, it->addrs, it->addrs + alen, it->proto,
										it->len - it->iphlen));
		memcpy(pkt + it->iphlen + csum_off, &c, 2);
		vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh.hdr_len = it->iphlen + it->tcphlen;
		vh.gso_size = it->gso_size;
		vh.csum_start = it->iphlen;
		vh.csum_offset = csum_off;
		g->superframes++;
	}
	memcpy(it->buf, &vh, IQ_VNET_LEN);
	g->frames++;
	g->segments += it->segs;
	g->write(g->user, it->buf, it->len + IQ_VNET_LEN);
	it->used = false;
}

void iq_gro_flush(struct iq_gro *g)
{
	int i;

	for (i = 0; i < IQ_GRO_ITEMS; i++)
		item_flush(g, &g->items[i]);
}

/* A TCP segment or UDP datagram that may be coalesced: describe it, or return false. */
struct tcp_seg {
	int family;
	uint8_t proto;
	size_t iphlen, tcphlen, payload;   /* tcphlen: L4 header length (8 for UDP) */
	const uint8_t *ip, *tcp;           /* tcp: the L4 header */
	uint32_t seq;
	uint8_t flags;
};

static bool tcp_candidate(const struct iq_gro *g, const uint8_t *pkt, size_t len,
						  struct tcp_seg *t)
{
	switch (pkt[0] >> 4) {
	case 4:
		if (len < 28 || (pkt[0] & 15) != 5 || iq_get16(pkt + 2) != len ||
			(iq_get16(pkt + 6) & 0x3fff))
			return false;
		t->family = AF_INET;
		t->iphlen = 20;
		t->proto = pkt[9];
		break;
	case 6:
		if (len < 48 || (size_t)iq_get16(pkt + 4) + 40 != len)
			return false;
		t->family = AF_INET6;
		t->iphlen = 40;
		t->proto = pkt[6];
		break;
	default:
		return false;
	}
	t->ip = pkt;
	t->tcp = pkt + t->iphlen;
	if (t->proto == IPPROTO_UDP) {
		if (!g->udp || t->iphlen + 8 >= len || iq_get16(t->tcp + 4) != len - t->iphlen)
			return false;
		t->tcphlen = 8;
		t->payload = len - t->iphlen - 8;
		t->flags = 0;
		t->seq = 0;
		return true;
	}
	if (t->proto != IPPROTO_TCP || t->iphlen + 20 > len)
		return false;
	t->tcphlen = (t->tcp[12] >> 4) * 4;
	if (t->tcphlen < 20 || t->iphlen + t->tcphlen >= len)
		return false;               /* no payload: pure ACKs are not coalesced */
	t->payload = len - t->iphlen - t->tcphlen;
	t->flags = t->tcp[13];
	if ((t->flags & ~TCP_PSH) != TCP_ACK)
		return false;               /* SYN, FIN, RST, URG, ECE, CWR go as they are */
	t->seq = iq_get32(t->tcp + 4);
	return true;
}

static bool same_flow(const struct iq_gro_item *it, const struct tcp_seg *t)
{
	size_t alen = t->family == AF_INET ? 4 : 16;
	const uint8_t *a = t->family == AF_INET ? t->ip + 12 : t->ip + 8;

	return it->used && it->family == t->family && it->proto == t->proto &&
		   !memcmp(it->addrs, a, 2 * alen) &&
		   it->sport == iq_get16(t->tcp) && it->dport == iq_get16(t->tcp + 2);
}

static bool can_append(const struct iq_gro_item *it, const struct tcp_seg *t)
{
	const uint8_t *ip = it->buf + IQ_VNET_LEN, *th = ip + it->iphlen;

	if (it->closed || t->tcphlen != it->tcphlen || t->payload > it->gso_size ||
		it->len + t->payload > 65535 || it->segs >= IQ_GRO_MAX_SEGS)
		return false;
	/* TCP: in sequence, and ack, window and options must match, like Linux GRO */
	if (t->proto == IPPROTO_TCP &&
		(t->seq != it->next_seq || memcmp(th + 8, t->tcp + 8, 4) ||
		 memcmp(th + 14, t->tcp + 14, 2) || memcmp(th + 20, t->tcp + 20, t->tcphlen - 20)))
		return false;
	if (t->family == AF_INET) {
		/* TOS, TTL, DF */
		if (ip[1] != t->ip[1] || ip[8] != t->ip[8] || (ip[6] & 0x40) != (t->ip[6] & 0x40))
			return false;
	} else {
		/* traffic class, flow label, hop limit */
		if (memcmp(ip, t->ip, 4) || ip[7] != t->ip[7])
			return false;
	}
	return true;
}

static void item_start(struct iq_gro *g, struct iq_gro_item *it, const struct tcp_seg *t,
					   size_t len)
{
	size_t alen = t->family == AF_INET ? 4 : 16;

	it->used = true;
	it->closed = (t->flags & TCP_PSH) != 0;
	it->family = t->family;
	it->proto = t->proto;
	memcpy(it->addrs, t->family == AF_INET ? t->ip + 12 : t->ip + 8, 2 * alen);
	it->sport = iq_get16(t->tcp);
	it->dport = iq_get16(t->tcp + 2);
	it->iphlen = t->iphlen;
	it->tcphlen = t->tcphlen;
	it->gso_size = t->payload;
	it->next_seq = t->seq + t->payload;
	it->segs = 1;
	it->age = ++g->clock;
	it->len = len;
	memcpy(it->buf + IQ_VNET_LEN, t->ip, len);
}

void iq_gro_offer(struct iq_gro *g, uint8_t *pkt, size_t len)
{
	struct iq_gro_item *it = NULL, *free_it = NULL, *oldest = NULL;
	struct tcp_seg t;
	int i;

	if (!g->enabled || !tcp_candidate(g, pkt, len, &t)) {
		/* keep per-flow order: a pending item of this flow goes first */
		if (g->enabled && len >= 28) {
			struct iq_flow f;
			if (iq_flow_parse(pkt, len, &f) == 0 && f.has_ports &&
				(f.proto == IPPROTO_TCP || f.proto == IPPROTO_UDP)) {
				for (i = 0; i < IQ_GRO_ITEMS; i++) {
					struct iq_gro_item *x = &g->items[i];
					size_t alen = f.family == AF_INET ? 4 : 16;
					if (x->used && x->family == f.family && x->proto == f.proto &&
						x->sport == f.sport &&
						x->dport == f.dport && !memcmp(x->addrs, f.src, alen) &&
						!memcmp(x->addrs + alen, f.dst, alen))
						item_flush(g, x);
				}
			}
		}
		write_plain(g, pkt, len);
		return;
	}
	for (i = 0; i < IQ_GRO_ITEMS; i++) {
		struct iq_gro_item *x = &g->items[i];
		if (same_flow(x, &t)) {
			it = x;
			break;
		}
		if (!x->used && !free_it)
			free_it = x;
		if (x->used && (!oldest || x->age < oldest->age))
			oldest = x;
	}
	if (it) {
		if (can_append(it, &t)) {
			memcpy(it->buf + IQ_VNET_LEN + it->len, t.tcp + t.tcphlen, t.payload);
			it->len += t.payload;
			it->next_seq += t.payload;
			it->segs++;
			if (t.flags & TCP_PSH) {
				it->buf[IQ_VNET_LEN + it->iphlen + 13] |= TCP_PSH;
				it->closed = true;
			}
			if (t.payload < it->gso_size)
				it->closed = true;
			return;
		}
		item_flush(g, it);
		item_start(g, it, &t, len);
		return;
	}
	if (!free_it) {
		item_flush(g, oldest);
		free_it = oldest;
	}
	item_start(g, free_it, &t, len);
}
