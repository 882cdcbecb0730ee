/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Known-answer inputs for libipsec-qkd's window key K_e (rotation.c): prints inputs and
 * iq_rot_derive()'s output as "name hex" lines for kat.py to recompute with python3-cryptography.
 */
#include <stdio.h>
#include <stdlib.h>

#include "rotation.h"

static void print(const char *name, const uint8_t *p, size_t len)
{
	printf("%s ", name);
	for (size_t i = 0; i < len; i++)
		printf("%02x", p[i]);
	printf("\n");
}

int main(void)
{
	/* one AES-256-GCM CHILD_SA key (32 + 4 bytes salt) and one AES-128-GCM one (16 + 4) */
	static const size_t salt_lens[] = { 36, 20 }, key_lens[] = { 32, 16 };
	uint8_t salt[36], qkey[32], k[32];
	uint32_t spi = 0xc1a55e01, epoch = 0x00010203;

	for (size_t i = 0; i < sizeof(salt); i++)
		salt[i] = (uint8_t)(0xa0 + i);
	for (size_t i = 0; i < sizeof(qkey); i++)
		qkey[i] = (uint8_t)(0x10 + 3 * i);
	print("we_qkey", qkey, sizeof(qkey));
	print("we_spi", (uint8_t[]){ spi >> 24, spi >> 16, spi >> 8, spi }, 4);
	print("we_epoch", (uint8_t[]){ epoch >> 24, epoch >> 16, epoch >> 8, epoch }, 4);
	for (size_t v = 0; v < 2; v++) {
		char name[32];
		if (iq_rot_derive(salt, salt_lens[v], spi, epoch, qkey, sizeof(qkey), k,
				  key_lens[v])) {
			fprintf(stderr, "kat_window_key: HKDF failed\n");
			return EXIT_FAILURE;
		}
		snprintf(name, sizeof(name), "we_salt_%zu", v);
		print(name, salt, salt_lens[v]);
		snprintf(name, sizeof(name), "we_key_%zu", v);
		print(name, k, key_lens[v]);
	}
	return EXIT_SUCCESS;
}
