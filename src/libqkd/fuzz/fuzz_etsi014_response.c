/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: what a KME answers, through the ETSI GS QKD 014 response parsers that
 * qkid and qkd-etsi014 run on every body (etsi014_parse_key_container, etsi014_parse_status,
 * etsi014_parse_error_body). Input byte 0 picks the parser and, for key containers, the
 * expectations (count, size, asked-for key_IDs); the rest is the HTTP body.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../etsi014_client.h"
#include "../etsi014_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const want_ids[] = {
	"00000000-0000-4000-8000-000000000001",
	"00000000-0000-4000-8000-000000000002",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct etsi014_key_container *kc = NULL;
	struct etsi014_status status;
	struct etsi014_error err;
	const char *body;
	uint8_t mode;

	if (size < 1)
		return 0;
	mode = data[0];
	body = (const char *)data + 1;
	size--;
	memset(&err, 0, sizeof(err));
	switch (mode % 4) {
	case 0: /* enc_keys answer: any count of keys of any size */
		if (etsi014_parse_key_container(body, size, 1 + (mode >> 2) % 4, 0, NULL, &kc,
						&err) == ETSI014_OK)
			etsi014_key_container_free(kc);
		break;
	case 1: /* dec_keys answer: exactly the key_IDs asked for, 256-bit keys */
		if (etsi014_parse_key_container(body, size, 1 + (mode >> 2) % 2, 256, want_ids, &kc,
						&err) == ETSI014_OK)
			etsi014_key_container_free(kc);
		break;
	case 2:
		etsi014_parse_status(body, size, &status, &err);
		break;
	default:
		etsi014_parse_error_body(body, size, &err);
		break;
	}
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer): '=' + text; the digit is byte 0
 * ('0'..'3' select the four modes, as any byte does modulo 4). */
const char *const fuzz_seeds[] = {
	"=0{\"keys\":[{\"key_ID\":\"bc490419-7d60-487f-adc1-4ddcc177c139\","
	"\"key\":\"wHHVxRwDJs3/bXd38GHP3oe4svTuRpZS0yCC7x4Ly+s=\"}]}",
	"=1{\"keys\":[{\"key_ID\":\"00000000-0000-4000-8000-000000000001\","
	"\"key\":\"wHHVxRwDJs3/bXd38GHP3oe4svTuRpZS0yCC7x4Ly+s=\"}]}",
	"=2{\"source_KME_ID\":\"KMEA\",\"target_KME_ID\":\"KMEB\",\"master_SAE_ID\":\"A\","
	"\"slave_SAE_ID\":\"B\",\"key_size\":256,\"stored_key_count\":25000,"
	"\"max_key_count\":100000,\"max_key_per_request\":128,\"max_key_size\":1024,"
	"\"min_key_size\":64,\"max_SAE_ID_count\":0}",
	"=3{\"message\":\"key not found\",\"details\":[{\"message\":\"key_ID unknown\"}]}",
	"=3{\"detail\":\"Not authenticated\"}",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
