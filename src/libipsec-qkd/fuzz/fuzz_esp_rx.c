/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: the datapath's ESP receive path (rx.c's rx_esp: SA look-up,
 * anti-replay, rotation epoch, AES-GCM open, inner packet checks, inbound policy, coalescing)
 * on a minimal struct iq_dp without sockets or TUN: one inbound SA with a known key
 * (SPI 0x1000, AES-128-GCM), an inbound policy for 192.0.2.0/24 and fd00::/8, and a GRO that
 * writes nowhere. rx.c is included here: rx_esp is static.
 *
 * Input byte 0: bit 0 key rotation (window keys of epochs 0..16 delivered), bit 1 ESN. Then
 * records: u8 kind, u16 big-endian length, that many bytes.
 *   kind even  the bytes are a UDP payload of ESP as the wire brought it
 *   kind odd   the bytes are u32 seq, u32 epoch, u8 next header, the inner packet: sealed here
 *              with the sender's key of that epoch, so the fuzzer also reaches the code after
 *              authentication
 */
#include "../rx.c"

#include <arpa/inet.h>
#include <stdlib.h>

#include "../rotation.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SPI 0x1000u
#define EPOCHS 16

static const uint8_t child_key[20] = { /* AES-128 key || salt */
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99,
	0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0xca, 0xfe, 0xba, 0xbe };

static void qkey(uint32_t epoch, uint8_t k[32])
{
	for (int i = 0; i < 32; i++)
		k[i] = (uint8_t)(epoch * 31 + i * 7 + 3);
}

static void no_write(void *user, uint8_t *frame, size_t len)
{
	(void)user;
	(void)frame;
	(void)len;
}

static void add_policy(struct iq_dp *dp, int family, const char *from, const char *to)
{
	struct iq_policy_cfg pc = { .dir = IQ_DIR_IN, .reqid = 1 };
	struct iq_policy *spare = calloc(1, sizeof(*spare));

	if (!spare)
		return;
	pc.src.family = pc.dst.family = family;
	inet_pton(family, from, pc.src.from);
	inet_pton(family, to, pc.src.to);
	pc.dst = pc.src;
	pc.src.port_to = pc.dst.port_to = 65535;
	iq_spd_add(dp, &pc, &spare);
	free(spare);
}

/* The sender's side of one packet: seal inner at epoch e with sequence number seq. */
static void seal_and_receive(struct iq_dp *dp, bool rot, bool esn, const uint8_t *rec,
			     size_t len)
{
	struct iq_aead tx;
	uint8_t wkey[16], q[32], iv[IQ_ESP_IV], *esp;
	uint32_t seq, epoch;
	size_t inner, elen;

	if (len < 9)
		return;
	seq = iq_get32(rec);
	epoch = iq_get32(rec + 4);
	inner = len - 9;
	if (rot) {
		qkey(epoch, q);
		if (iq_rot_derive(child_key, sizeof(child_key), SPI, epoch, q, 32, wkey, 16))
			return;
	} else {
		memcpy(wkey, child_key, 16);
	}
	if (iq_aead_init(&tx, true, wkey, 16, child_key + 16))
		return;
	elen = iq_esp_len(inner);
	esp = malloc(elen);
	if (esp) {
		memcpy(esp + IQ_ESP_OFF, rec + 9, inner);
		iq_put32(iv, rot ? epoch : 0);
		iq_put32(iv + 4, seq);
		elen = iq_esp_seal(&tx, esp, inner, rec[8], SPI, seq, esn, iv);
		if (elen)
			rx_esp(dp, esp, elen);
		free(esp);
	}
	iq_aead_free(&tx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct iq_sa_cfg cfg = {
		.spi = SPI, .reqid = 1, .inbound = true, .replay_window = 1024,
		.enc_alg = IQ_ENC_AES_GCM_16, .enc_key = child_key, .enc_key_len = sizeof(child_key),
		.rotation = { .rpk_min = 4, .rpk_max = 4, .lookahead = EPOCHS },
	};
	struct iq_dp *dp;
	struct iq_sa *sa;
	iq_err_t err;
	size_t off = 1;
	bool rot, esn;

	if (size < 1)
		return 0;
	rot = data[0] & 1;
	esn = data[0] & 2;
	cfg.rotation.enabled = rot;
	cfg.esn = esn;
	cfg.src.in4.sin_family = cfg.dst.in4.sin_family = AF_INET;
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return 0;
	if (iq_gro_init(&dp->gro, true, no_write, NULL) != 0) {
		free(dp);
		return 0;
	}
	sa = iq_sa_prepare(&cfg, &err);
	if (!sa)
		abort(); /* the fixed SA must install */
	iq_sad_link(dp, sa);
	if (rot)
		for (uint32_t e = 0; e <= EPOCHS; e++) {
			uint8_t q[32];
			qkey(e, q);
			iq_rot_deliver(&sa->rot, e, q, 32);
		}
	add_policy(dp, AF_INET, "192.0.2.0", "192.0.2.255");
	add_policy(dp, AF_INET6, "fd00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff");

	while (off + 3 <= size) {
		uint8_t kind = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];
		uint8_t *pkt;

		off += 3;
		if (len > size - off)
			len = size - off;
		if (kind & 1) {
			seal_and_receive(dp, rot, esn, data + off, len);
		} else if ((pkt = malloc(len ? len : 1))) {
			/* an exact-size copy: a read past the datagram is caught */
			memcpy(pkt, data + off, len);
			rx_esp(dp, pkt, len);
			free(pkt);
		}
		off += len;
	}
	iq_gro_flush(&dp->gro);
	iq_gro_free(&dp->gro);
	iq_policy_free_list(dp->pol[IQ_DIR_IN]);
	iq_sa_free(sa);
	free(dp);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer), hex: a valid ESP packet without and
 * with rotation (epoch 0), and two records the harness seals (ESN and rotation; IPv6). */
const char *const fuzz_seeds[] = {
	"00000054000010000000000100000000000000017b2688c4575cc3cb5daa9ae42cb5c6f883204755c74d4f4e48bf72cc931243649923d389487d61f907774bf4a95a1eefe5a4d49b32918433fc5f5857f3547d3a5c41a6c8",
	"01000054000010000000000100000000000000011568ea073c9cc3b3ba7843931625fe7989298a8f933eefeaedb22b21684ccd41fe21351c413e4c96cd16efea561726ac3e0e3873dde1f082c73a6bb4339d4495436e91f9",
	"0301002d00000001000000010445000024000140004011b6c4c0000201c00002029c401451001000006262626262626262",
	"0001004d00000007000000002960000000001c0640fd000000000000000000000000000001fd0000000000000000000000000000029c40145100000003000000015018ffff000000006363636363636363",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
