/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * microbench: CPU cost of the datapath's building blocks, single thread, no I/O. Used by
 * scripts/bench datapath to state what a window switch costs independent of the noise of a
 * shared machine. Prints key=value lines (nanoseconds).
 */
#include <stdio.h>
#include <string.h>
#include <time.h>


#include "esp.h"
#include "replay.h"
#include "rotation.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const uint8_t child[20] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18,
								   19, 20 };

static void keys(struct iq_rot *r, uint32_t from, uint32_t to)
{
	uint8_t k[16];
	uint32_t e;

	for (e = from; e <= to; e++) {
		memset(k, e, sizeof(k));
		iq_rot_store(r, e, k);
	}
}

/* ns per packet through iq_rot_tx + iq_rot_rx/rx_ok with a window every rpk packets (keys in
 * place, as the helper would have delivered them) */
static double rot_path(uint32_t rpk, int n)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = rpk, .rpk_max = rpk, .lookahead = 64 };
	struct iq_rot tx, rx;
	uint32_t epoch = 0, top = 0;
	double t, sum = 0;
	int i;

	iq_rot_init(&tx, &cfg, 0x100, false, child, 20, 1024);
	iq_rot_init(&rx, &cfg, 0x100, true, child, 20, 1024);
	keys(&tx, 0, 63);
	keys(&rx, 0, 63);
	t = now();
	for (i = 0; i < n; i++) {
		struct iq_aead *a = iq_rot_tx(&tx, &epoch);
		struct iq_aead *b = iq_rot_rx(&rx, epoch);
		if (!a || !b)
			break;
		iq_rot_rx_ok(&rx, epoch);
		if (epoch + 32 > top) {            /* refill like the helper (not timed separately) */
			keys(&tx, top + 1, epoch + 63);
			keys(&rx, top + 1, epoch + 63);
			top = epoch + 63;
		}
	}
	sum = now() - t;
	iq_rot_free(&tx);
	iq_rot_free(&rx);
	return sum / n * 1e9;
}

int main(void)
{
	uint8_t pkt[2048], iv[8] = { 0 }, nh, key[36] = { 9 }, out[32], q[32] = { 7 };
	struct iq_aead e, d;
	struct iq_hkdf kdf;
	int n = 400000, i;
	size_t len = 0;
	double t, seal, open_, hkdf, base, r100, r1024, r1;

	iq_aead_init(&e, true, key, 16, key + 16);
	iq_aead_init(&d, false, key, 16, key + 16);
	memset(pkt + IQ_ESP_OFF, 0x45, 1400);
	t = now();
	for (i = 0; i < n; i++) {
		iv[7] = i;
		len = iq_esp_seal(&e, pkt, 1400, 4, 0x100, i + 1, false, iv);
	}
	seal = (now() - t) / n * 1e9;
	{
		static uint8_t ref[2048];
		memcpy(ref, pkt, len);
		t = now();
		for (i = 0; i < n; i++) {
			memcpy(pkt, ref, len);
			iq_esp_open(&d, pkt, len, n, false, &nh);
		}
		open_ = (now() - t) / n * 1e9;
	}
	iq_hkdf_init(&kdf);
	iq_hkdf_salt(&kdf, key, 20);
	t = now();
	for (i = 0; i < n / 20; i++) {
		q[0] = i;
		iq_hkdf_window_key(&kdf, 0x100, i, q, 32, out, 16);
	}
	hkdf = (now() - t) / (n / 20) * 1e9;
	base = rot_path(1u << 30, n);      /* no switch at all */
	r1024 = rot_path(1024, n);
	r100 = rot_path(100, n);
	r1 = rot_path(1, n / 4);
	printf("seal_1400_ns=%.0f\nopen_1400_ns=%.0f\nhkdf_ns=%.0f\n", seal, open_, hkdf);
	printf("rot_path_ns_per_packet_no_switch=%.1f\nrot_path_ns_per_packet_rpk1024=%.1f\n"
		   "rot_path_ns_per_packet_rpk100=%.1f\n", base, r1024, r100);
	/* both ends of one window switch: sender switch + receiver switch (+ re-keys, wipes) */
	printf("window_switch_ns=%.0f\n", (r1 - base));
	iq_aead_free(&e);
	iq_aead_free(&d);
	iq_hkdf_free(&kdf);
	return 0;
}
