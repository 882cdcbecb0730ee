/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: the datapath's TUN offloads (gso.c) on buffers, no TUN or socket.
 * Input byte 0 picks the direction:
 *   even  TX: a virtio_net_hdr (the next 10 bytes) and the packet a TUN read returned;
 *         iq_seg_begin, then every segment written into a buffer of exactly iq_seg_len bytes
 *   odd   RX: decrypted inner packets (u16 big-endian length, bytes; each in a buffer with the
 *         IQ_VNET_LEN bytes of headroom iq_gro_offer may overwrite) offered to the coalescer;
 *         bit 1 also coalesces UDP. Every frame it writes goes back through iq_seg_begin, as the
 *         kernel would parse it.
 * A segment longer than announced, or a coalesced frame without its vnet header, aborts.
 */
#include <stdlib.h>
#include <string.h>

#include "../gso.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void segment(const struct virtio_net_hdr *vh, const uint8_t *pkt, size_t len)
{
	struct iq_seg s;
	uint8_t *out;
	uint32_t i;
	int n;

	n = iq_seg_begin(&s, vh, pkt, len);
	for (i = 0; n > 0 && i < (uint32_t)n; i++) {
		size_t want = iq_seg_len(&s, i);

		out = malloc(want ? want : 1);
		if (!out)
			return;
		if (iq_seg_write(&s, i, out) != want)
			abort();
		free(out);
	}
}

static void check_frame(void *user, uint8_t *frame, size_t len)
{
	struct virtio_net_hdr vh;

	(void)user;
	if (len < (size_t)IQ_VNET_LEN)
		abort();
	memcpy(&vh, frame, sizeof(vh));
	segment(&vh, frame + IQ_VNET_LEN, len - IQ_VNET_LEN);
}

static void coalesce(const uint8_t *data, size_t size, bool udp)
{
	struct iq_gro g;
	size_t off = 0;

	if (iq_gro_init(&g, true, check_frame, NULL) != 0)
		return;
	g.udp = udp;
	while (off + 2 <= size) {
		size_t len = (size_t)data[off] << 8 | data[off + 1];
		uint8_t *buf;

		off += 2;
		if (len > size - off)
			len = size - off;
		buf = malloc(IQ_VNET_LEN + len + 1);
		if (!buf)
			break;
		memcpy(buf + IQ_VNET_LEN, data + off, len);
		iq_gro_offer(&g, buf + IQ_VNET_LEN, len);
		free(buf);
		off += len;
	}
	iq_gro_flush(&g);
	iq_gro_free(&g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtio_net_hdr vh;
	uint8_t *pkt;

	if (size < 1)
		return 0;
	if (data[0] & 1) {
		coalesce(data + 1, size - 1, data[0] & 2);
		return 0;
	}
	if (size < 1 + sizeof(vh))
		return 0;
	memcpy(&vh, data + 1, sizeof(vh));
	/* an exact-size copy, so a read past the packet is caught */
	size -= 1 + sizeof(vh);
	pkt = malloc(size ? size : 1);
	if (!pkt)
		return 0;
	memcpy(pkt, data + 1 + sizeof(vh), size);
	segment(data[0] & 2 ? NULL : &vh, pkt, size);
	free(pkt);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer), hex: a TSO super-packet (IPv4,
 * IPv6) and two TCP and two UDP segments that continue each other. */
const char *const fuzz_seeds[] = {
	"00010128001400140010004500005a000140004006b699c0000201c00002029c40145100000001000000015018ffff000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
	"01003c4500003c000140004006b6b7c0000201c00002029c40145100000001000000015018ffff000000006161616161616161616161616161616161616161003c4500003c000140004006b6b7c0000201c00002029c40145100000015000000015018ffff000000006262626262626262626262626262626262626262",
	"03003045000030000140004011b6b8c0000201c00002029c401451001c00006161616161616161616161616161616161616161003045000030000140004011b6b8c0000201c00002029c401451001c00006262626262626262626262626262626262626262",
	"0001043c001400280010006000000000460640fd000000000000000000000000000001fd0000000000000000000000000000029c40145100000001000000015018ffff000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
