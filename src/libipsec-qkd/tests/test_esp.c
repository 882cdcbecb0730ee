/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ESP AES-GCM-16 codec: RFC 4106 test vector, tampering, padding, ESN, context reuse. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esp.h"

/* draft-mcgrew-gcm-test-01 (the RFC 4106 ESP test vectors), AES-128, SPI 0x4321, 64-bit
 * extended sequence number 0x87654321_00000000 (AAD = SPI || seq_hi || seq_lo):
 * plaintext = IPv4 packet (68 bytes) || pad 01 02 || pad length 2 || next header 1 */
static const uint8_t v_key[20] = {
	0x4c, 0x80, 0xcd, 0xef, 0xbb, 0x5d, 0x10, 0xda, 0x90, 0x6a, 0xc7, 0x3c, 0x36, 0x13,
	0xa6, 0x34, 0x2e, 0x44, 0x3b, 0x68 };
static const uint8_t v_iv[8] = { 0x49, 0x56, 0xed, 0x7e, 0x3b, 0x24, 0x4c, 0xfe };
static const uint8_t v_plain[72] = {
	0x45, 0x00, 0x00, 0x48, 0x69, 0x9a, 0x00, 0x00, 0x80, 0x11, 0x4d, 0xb7, 0xc0, 0xa8,
	0x01, 0x02, 0xc0, 0xa8, 0x01, 0x01, 0x0a, 0x9b, 0xf1, 0x56, 0x38, 0xd3, 0x01, 0x00,
	0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x5f, 0x73, 0x69, 0x70, 0x04,
	0x5f, 0x75, 0x64, 0x70, 0x03, 0x73, 0x69, 0x70, 0x09, 0x63, 0x79, 0x62, 0x65, 0x72,
	0x63, 0x69, 0x74, 0x79, 0x02, 0x64, 0x6b, 0x00, 0x00, 0x21, 0x00, 0x01, 0x01, 0x02,
	0x02, 0x01 };
static const uint8_t v_cipher[88] = {
	0xfe, 0xcf, 0x53, 0x7e, 0x72, 0x9d, 0x5b, 0x07, 0xdc, 0x30, 0xdf, 0x52, 0x8d, 0xd2,
	0x2b, 0x76, 0x8d, 0x1b, 0x98, 0x73, 0x66, 0x96, 0xa6, 0xfd, 0x34, 0x85, 0x09, 0xfa,
	0x13, 0xce, 0xac, 0x34, 0xcf, 0xa2, 0x43, 0x6f, 0x14, 0xa3, 0xf3, 0xcf, 0x65, 0x92,
	0x5b, 0xf1, 0xf4, 0xa1, 0x3c, 0x5d, 0x15, 0xb2, 0x1e, 0x18, 0x84, 0xf5, 0xff, 0x62,
	0x47, 0xae, 0xab, 0xb7, 0x86, 0xb9, 0x3b, 0xce, 0x61, 0xbc, 0x17, 0xd7, 0x68, 0xfd,
	0x97, 0x32, 0x45, 0x90, 0x18, 0x14, 0x8f, 0x6c, 0xbe, 0x72, 0x2f, 0xd0, 0x47, 0x96,
	0x56, 0x2d, 0xfd, 0xb4 };

START_TEST(test_rfc4106_vector)
{
	struct iq_aead enc, dec;
	uint8_t pkt[256];
	size_t len;
	uint8_t nh;
	int ilen;

	ck_assert_int_eq(iq_aead_init(&enc, true, v_key, 16, v_key + 16), 0);
	ck_assert_int_eq(iq_aead_init(&dec, false, v_key, 16, v_key + 16), 0);
	memcpy(pkt + IQ_ESP_OFF, v_plain, 68);
	len = iq_esp_seal(&enc, pkt, 68, 1, 0x4321, 0x8765432100000000ull, true, v_iv);
	ck_assert_uint_eq(len, IQ_ESP_OFF + 88);
	ck_assert_uint_eq(len, iq_esp_len(68));
	ck_assert_mem_eq(pkt, "\x00\x00\x43\x21\x00\x00\x00\x00", 8);
	ck_assert_mem_eq(pkt + 8, v_iv, 8);
	ck_assert_mem_eq(pkt + IQ_ESP_OFF, v_cipher, 88);

	ilen = iq_esp_open(&dec, pkt, len, 0x8765432100000000ull, true, &nh);
	ck_assert_int_eq(ilen, 68);
	ck_assert_int_eq(nh, 1);
	ck_assert_mem_eq(pkt + IQ_ESP_OFF, v_plain, 68);
	iq_aead_free(&enc);
	iq_aead_free(&dec);
}
END_TEST

/* every byte of the packet is protected: SPI/seq via AAD, IV via the nonce, the rest by GCM */
START_TEST(test_tamper_every_byte)
{
	struct iq_aead enc, dec;
	uint8_t ref[256], pkt[256], nh;
	size_t len, i;

	ck_assert_int_eq(iq_aead_init(&enc, true, v_key, 16, v_key + 16), 0);
	ck_assert_int_eq(iq_aead_init(&dec, false, v_key, 16, v_key + 16), 0);
	memcpy(ref + IQ_ESP_OFF, v_plain, 68);
	len = iq_esp_seal(&enc, ref, 68, 4, 0x4321, 7, false, v_iv);
	for (i = 0; i < len; i++) {
		memcpy(pkt, ref, len);
		pkt[i] ^= 0x01;
		ck_assert_int_eq(iq_esp_open(&dec, pkt, len, iq_get32(pkt + 4), false, &nh),
						 IQ_ESP_EAUTH);
	}
	/* truncated */
	memcpy(pkt, ref, len);
	ck_assert_int_lt(iq_esp_open(&dec, pkt, len - 1, 7, false, &nh), 0);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, 20, 7, false, &nh), IQ_ESP_ELEN);
	/* and the original still opens (the context recovers from failures) */
	memcpy(pkt, ref, len);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, len, 7, false, &nh), 68);
	iq_aead_free(&enc);
	iq_aead_free(&dec);
}
END_TEST

/* reference: a fresh one-shot EVP computation */
static void ref_seal(const uint8_t *key, size_t klen, const uint8_t *salt, const uint8_t *aad,
					 size_t aadlen, const uint8_t *iv, const uint8_t *pt, size_t ptlen,
					 uint8_t *out)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	uint8_t nonce[12];
	int l;

	memcpy(nonce, salt, 4);
	memcpy(nonce + 4, iv, 8);
	ck_assert(EVP_EncryptInit_ex(c, klen == 16 ? EVP_aes_128_gcm() : EVP_aes_256_gcm(), NULL,
								 key, nonce) == 1);
	ck_assert(EVP_EncryptUpdate(c, NULL, &l, aad, aadlen) == 1);
	ck_assert(EVP_EncryptUpdate(c, out, &l, pt, ptlen) == 1);
	ck_assert(EVP_EncryptFinal_ex(c, out + ptlen, &l) == 1);
	ck_assert(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, out + ptlen) == 1);
	EVP_CIPHER_CTX_free(c);
}

/* one context per key, only the IV per packet: identical to fresh contexts, all lengths,
 * AES-128 and AES-256, with and without ESN (AAD = SPI || seq_hi || seq_lo) */
START_TEST(test_reuse_matches_fresh)
{
	uint8_t key[36], pt[300], pkt[400], exp[400], aad[12], iv[8], nh;
	struct iq_aead enc, dec;
	size_t klen = _i ? 32 : 16, n;
	int esn;

	for (n = 0; n < sizeof(key); n++)
		key[n] = n * 7 + 1;
	for (esn = 0; esn <= 1; esn++) {
		ck_assert_int_eq(iq_aead_init(&enc, true, key, klen, key + klen), 0);
		ck_assert_int_eq(iq_aead_init(&dec, false, key, klen, key + klen), 0);
		for (n = 0; n < 260; n++) {
			uint64_t seq = esn ? 0x100000000ull * 3 + n + 1 : n + 1;
			size_t pad = (4 - ((n + 2) & 3)) & 3, len, i;
			int ilen;

			for (i = 0; i < n; i++)
				pt[i] = (uint8_t)(i * 13 + n);
			memcpy(pkt + IQ_ESP_OFF, pt, n);
			iq_put32(iv, 0xabc);
			iq_put32(iv + 4, (uint32_t)seq);
			len = iq_esp_seal(&enc, pkt, n, 41, 0x1234, seq, esn, iv);
			ck_assert_uint_eq(len, iq_esp_len(n));
			ck_assert_uint_eq(len % 4, 0);
			/* expected: plaintext with RFC 4303 padding */
			for (i = 0; i < pad; i++)
				pt[n + i] = i + 1;
			pt[n + pad] = pad;
			pt[n + pad + 1] = 41;
			iq_put32(aad, 0x1234);
			if (esn) {
				iq_put32(aad + 4, seq >> 32);
				iq_put32(aad + 8, (uint32_t)seq);
			} else {
				iq_put32(aad + 4, (uint32_t)seq);
			}
			ref_seal(key, klen, key + klen, aad, esn ? 12 : 8, iv, pt, n + pad + 2, exp);
			ck_assert_mem_eq(pkt + IQ_ESP_OFF, exp, n + pad + 2 + 16);
			ilen = iq_esp_open(&dec, pkt, len, seq, esn, &nh);
			ck_assert_int_eq(ilen, (int)n);
			ck_assert_int_eq(nh, 41);
			if (esn && n == 5) {
				/* ESN: the high half is authenticated although not sent */
				len = iq_esp_seal(&enc, pkt, n, 41, 0x1234, seq, esn, iv);
				ck_assert_int_eq(iq_esp_open(&dec, pkt, len, seq + 0x100000000ull, esn, &nh),
								 IQ_ESP_EAUTH);
			}
		}
		iq_aead_free(&enc);
		iq_aead_free(&dec);
	}
}
END_TEST

/* an authentic packet with bad padding is refused (RFC 4303 monotonic padding) */
START_TEST(test_bad_padding)
{
	uint8_t key[20] = { 1, 2, 3 }, pt[64], pkt[128], aad[8], iv[8] = { 0 }, nh;
	struct iq_aead dec;

	ck_assert_int_eq(iq_aead_init(&dec, false, key, 16, key + 16), 0);
	memset(pt, 0x45, 10);
	pt[10] = 1; pt[11] = 3;         /* padding 1, 3: wrong */
	pt[12] = 2; pt[13] = 4;
	iq_put32(pkt, 0x999);
	iq_put32(pkt + 4, 5);
	memcpy(pkt + 8, iv, 8);
	memcpy(aad, pkt, 8);
	ref_seal(key, 16, key + 16, aad, 8, iv, pt, 14, pkt + IQ_ESP_OFF);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, IQ_ESP_OFF + 14 + 16, 5, false, &nh), IQ_ESP_EPAD);
	/* pad length beyond the payload */
	pt[10] = 1; pt[11] = 2; pt[12] = 200;
	ref_seal(key, 16, key + 16, aad, 8, iv, pt, 14, pkt + IQ_ESP_OFF);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, IQ_ESP_OFF + 14 + 16, 5, false, &nh), IQ_ESP_EPAD);
	/* correct padding opens */
	pt[12] = 2;
	ref_seal(key, 16, key + 16, aad, 8, iv, pt, 14, pkt + IQ_ESP_OFF);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, IQ_ESP_OFF + 14 + 16, 5, false, &nh), 10);
	iq_aead_free(&dec);
}
END_TEST

START_TEST(test_rekey)
{
	uint8_t k1[20] = { 1 }, k2[16] = { 2 }, pkt[128], nh;
	struct iq_aead enc, dec;
	size_t len;

	ck_assert_int_eq(iq_aead_init(&enc, true, k1, 16, k1 + 16), 0);
	ck_assert_int_eq(iq_aead_init(&dec, false, k1, 16, k1 + 16), 0);
	memset(pkt + IQ_ESP_OFF, 0x60, 40);
	ck_assert_int_eq(iq_aead_rekey(&enc, k2), 0);
	len = iq_esp_seal(&enc, pkt, 40, 41, 0x500, 1, false, (uint8_t *)"\0\0\0\0\0\0\0\1");
	ck_assert_int_eq(iq_esp_open(&dec, pkt, len, 1, false, &nh), IQ_ESP_EAUTH);
	len = iq_esp_seal(&enc, pkt, 40, 41, 0x500, 1, false, (uint8_t *)"\0\0\0\0\0\0\0\1");
	ck_assert_int_eq(iq_aead_rekey(&dec, k2), 0);
	ck_assert_int_eq(iq_esp_open(&dec, pkt, len, 1, false, &nh), 40);
	iq_aead_free(&enc);
	iq_aead_free(&dec);
	ck_assert_int_eq(iq_aead_init(&enc, true, k1, 24, k1 + 16), -22);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("esp");
	TCase *tc = tcase_create("codec");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_rfc4106_vector);
	tcase_add_test(tc, test_tamper_every_byte);
	tcase_add_loop_test(tc, test_reuse_matches_fresh, 0, 2);
	tcase_add_test(tc, test_bad_padding);
	tcase_add_test(tc, test_rekey);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
