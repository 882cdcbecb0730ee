/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: the KE payload data of the QKD key exchanges as a peer sends it,
 * through the parsers the plugin's key exchanges use (qkd_ke_data.c): KEi = version || X25519
 * public value || key_ID at the responder, KEr = version || X25519 public value || key
 * confirmation at the initiator (x25519qkd), the same without X25519 for qkd. Input byte 0:
 * bit 0 picks KEr (1) or KEi (0), bit 1 qkd (1) or x25519qkd (0); the rest is the KE data. Besides memory errors, a parse that accepts must give exactly the input's fields: the
 * harness aborts if it accepts another length, another version, a key_ID that is not one, or
 * fields that are not where the format puts them.
 */
#include "../qkd_ke_data.h"
#include "../qkd_derive.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void expect(int ok)
{
	if (!ok)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char key_id[QKD_KEY_ID_LEN + 1];
	chunk_t value, pub, confirm;
	size_t pub_len, kei_len, ker_len;
	uint8_t *copy;
	qkd_ke_data_t status;

	if (size < 1)
		return 0;
	/* a copy of exactly the KE data, so ASan sees any read past it */
	copy = malloc(size - 1 ? size - 1 : 1);
	if (!copy)
		return 0;
	memcpy(copy, data + 1, size - 1);
	value = chunk_create(copy, size - 1);
	pub_len = data[0] & 2 ? 0 : QKD_X25519_LEN;
	kei_len = pub_len ? QKD_KEI_LEN : QKD_ADD_KEI_LEN;
	ker_len = pub_len ? QKD_KER_LEN : QKD_ADD_KER_LEN;
	if (data[0] & 1) {
		status = qkd_ke_data_parse_ker(value, pub_len, &pub, &confirm);
		expect(status < QKD_KE_DATA_KEY_ID); /* KEr has no key_ID */
		/* version 1 was x25519qkd's only */
		expect((status == QKD_KE_DATA_V1) == (pub_len && value.len == QKD_KER_LEN_V1));
		if (status == QKD_KE_DATA_OK) {
			expect(value.len == ker_len && value.ptr[0] == QKD_WIRE_VERSION);
			expect(pub.ptr == value.ptr + 1 && pub.len == pub_len);
			expect(confirm.ptr == value.ptr + 1 + pub_len &&
			       confirm.len == QKD_CONFIRM_LEN);
		}
	} else {
		status = qkd_ke_data_parse_kei(value, pub_len, &pub, key_id);
		expect(status <= QKD_KE_DATA_KEY_ID);
		expect((status == QKD_KE_DATA_V1) == (pub_len && value.len == QKD_KEI_LEN_V1));
		if (status == QKD_KE_DATA_OK) {
			expect(value.len == kei_len && value.ptr[0] == QKD_WIRE_VERSION);
			expect(pub.ptr == value.ptr + 1 && pub.len == pub_len);
			expect(strlen(key_id) == QKD_KEY_ID_LEN &&
			       qkd_key_id_valid(key_id, QKD_KEY_ID_LEN) &&
			       memcmp(key_id, value.ptr + 1 + pub_len, QKD_KEY_ID_LEN) == 0);
		}
	}
	expect(status != QKD_KE_DATA_OK || (value.len && value.ptr[0] == QKD_WIRE_VERSION));
	free(copy);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer), hex: byte 0 (00 KEi, 01 KEr;
 * 02, 03 the same of qkd), then the KE data (version 02). */
const char *const fuzz_seeds[] = {
	/* KEi: version 2, X25519 public value, key_ID 0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0 */
	"00 02 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"
	"30663165326433632d346235612d363937382d383739362d613562346333643265316630",
	/* KEr: version 2, X25519 public value, 16 bytes of key confirmation */
	"01 02 de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	"00112233445566778899aabbccddeeff",
	/* KEi of version 1 (no version byte) */
	"00 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"
	"30663165326433632d346235612d363937382d383739362d613562346333643265316630",
	/* KEi of version 3, and one with a key_ID of the wrong shape */
	"00 03 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"
	"30663165326433632d346235612d363937382d383739362d613562346333643265316630",
	"00 02 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"
	"3066316532643363304b6235612d363937382d383739362d613562346333643265316630",
	/* qkd KEi: version 2, key_ID; qkd KEr: version 2, 16 bytes of key confirmation */
	"02 02 30663165326433632d346235612d363937382d383739362d613562346333643265316630",
	"03 02 00112233445566778899aabbccddeeff",
	/* an x25519qkd KEi where qkd's is expected */
	"02 02 e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"
	"30663165326433632d346235612d363937382d383739362d613562346333643265316630",
	/* empty KE data */
	"01",
	"02",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
