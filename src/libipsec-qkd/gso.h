/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * gso.h - TUN offloads in userspace.
 *
 * TX: a read from a TUN with IFF_VNET_HDR may return a TSO/USO super-packet (virtio_net_hdr
 * gso_type TCPV4/TCPV6/UDP_L4) or a packet whose checksum is left partial (NEEDS_CSUM). The
 * segmenter cuts it into MSS-sized packets with complete headers and checksums, each of which
 * becomes one ESP packet.
 *
 * RX: decrypted TCP segments of one flow that continue each other are coalesced into one
 * super-packet and written to the TUN with a GSO_TCPV4/TCPV6 header, so the kernel (and the
 * receiving host's TCP) handles 64 KiB at a time; consecutive UDP datagrams of one flow with the
 * same size likewise become one GSO_UDP_L4 write (when enabled). Everything else is written as
 * it is, in flow order.
 */
#ifndef IQ_GSO_H
#define IQ_GSO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <linux/virtio_net.h>

/* Debian 12's headers predate these (Linux 6.2) */
#ifndef TUN_F_USO4
#define TUN_F_USO4 0x20
#endif
#ifndef TUN_F_USO6
#define TUN_F_USO6 0x40
#endif
#ifndef VIRTIO_NET_HDR_GSO_UDP_L4
#define VIRTIO_NET_HDR_GSO_UDP_L4 5
#endif

#define IQ_VNET_LEN ((int)sizeof(struct virtio_net_hdr))   /* 10 */
#define IQ_MAX_SEGS 128
#define IQ_GRO_ITEMS 8
#define IQ_GRO_MAX_SEGS 64
#define IQ_GRO_BUF (IQ_VNET_LEN + 65535)

/* ---- TX: segmentation ---- */

struct iq_seg {
	const uint8_t *pkt;      /* IP packet */
	size_t len;
	int family;
	uint8_t l4proto;         /* IPPROTO_TCP/UDP for GSO, else any */
	uint16_t l4off, l4hlen;  /* L4 header offset and length (GSO only) */
	uint16_t gso_size;       /* 0: not GSO */
	size_t payload;          /* bytes after the headers (GSO) */
	uint32_t nseg;
	bool needs_csum;         /* non-GSO packet with a partial checksum */
	uint16_t csum_start, csum_offset;
};

/**
 * Parse a packet read from the TUN (vh may be NULL when the TUN has no vnet header).
 * Returns the number of segments (>= 1) or -1 for a malformed/unsupported packet.
 */
int iq_seg_begin(struct iq_seg *s, const struct virtio_net_hdr *vh, const uint8_t *pkt,
				 size_t len);
/** Length of segment i. */
size_t iq_seg_len(const struct iq_seg *s, uint32_t i);
/** Write segment i (complete headers and checksums) to out; returns its length. */
size_t iq_seg_write(const struct iq_seg *s, uint32_t i, uint8_t *out);

/* ---- RX: coalescing ---- */

typedef void (*iq_frame_writer)(void *user, uint8_t *frame, size_t len);

struct iq_gro_item {
	bool used, closed;
	int family;
	uint8_t proto;            /* IPPROTO_TCP or IPPROTO_UDP */
	uint8_t addrs[32];        /* src, dst (4 or 16 bytes each) */
	uint16_t sport, dport;
	uint16_t iphlen, tcphlen, gso_size;
	uint32_t next_seq, segs;
	uint64_t age;
	size_t len;               /* IP packet length in buf (after the vnet header) */
	uint8_t *buf;             /* IQ_GRO_BUF bytes: vnet header, then the packet */
};

struct iq_gro {
	struct iq_gro_item items[IQ_GRO_ITEMS];
	uint64_t clock;
	bool enabled;
	bool udp;                 /* also coalesce UDP (GSO_UDP_L4 writes, Linux >= 6.2 TUN) */
	iq_frame_writer write;
	void *user;
	uint64_t frames, superframes, segments;   /* counters */
};

int iq_gro_init(struct iq_gro *g, bool enabled, iq_frame_writer write, void *user);
void iq_gro_free(struct iq_gro *g);
/**
 * Offer a decrypted inner IP packet. IQ_VNET_LEN bytes before pkt must be writable (they are
 * overwritten when the packet is written on its own).
 */
void iq_gro_offer(struct iq_gro *g, uint8_t *pkt, size_t len);
/** Write out everything pending (end of a receive batch). */
void iq_gro_flush(struct iq_gro *g);

/* ---- helpers ---- */

/** Complete a partial checksum in place (csum_start/csum_offset semantics). */
int iq_csum_complete(uint8_t *pkt, size_t len, uint16_t csum_start, uint16_t csum_offset);

/** Flow fields of an IP packet for policy lookups; returns -1 if not a parseable IP packet. */
struct iq_flow {
	int family;
	const uint8_t *src, *dst;
	uint8_t proto;
	uint16_t sport, dport;    /* 0 when not present (fragments, other protocols) */
	bool has_ports;
};
int iq_flow_parse(const uint8_t *pkt, size_t len, struct iq_flow *f);

#endif
