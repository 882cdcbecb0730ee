/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * keyprov_test.c - deterministic key provider for unit tests and benchmarks: both gateways
 * compute the same key for (SPI, epoch) from a shared seed. Not a source of secrets.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "esp.h"
#include "ipsec_qkd.h"

#define TP_SAS 64

struct test_provider {
	struct iq_key_provider pub;
	EVP_MD *sha256;               /* fetched once: an implicit fetch per key costs ~1 us */
	EVP_MD_CTX *md;               /* used by the key helper thread only */
	char seed[64];
	uint64_t budget;
	unsigned latency_ms;
	struct { uint32_t spi; bool inbound, used; uint64_t served; } sa[TP_SAS];
};

static uint64_t *served_of(struct test_provider *tp, const struct iq_key_sa *sa)
{
	int i, free_i = -1;

	for (i = 0; i < TP_SAS; i++) {
		if (tp->sa[i].used && tp->sa[i].spi == sa->spi && tp->sa[i].inbound == sa->inbound)
			return &tp->sa[i].served;
		if (!tp->sa[i].used && free_i < 0)
			free_i = i;
	}
	if (free_i < 0)
		return NULL;
	tp->sa[free_i].used = true;
	tp->sa[free_i].spi = sa->spi;
	tp->sa[free_i].inbound = sa->inbound;
	tp->sa[free_i].served = 0;
	return &tp->sa[free_i].served;
}

/* peek: the same keys, neither counted against the budget nor delayed */
static int tp_keys(struct test_provider *tp, const struct iq_key_sa *sa, uint32_t first,
				   uint32_t count, uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err,
				   bool peek)
{
	uint64_t *served = served_of(tp, sa);
	uint32_t i;

	*got = 0;
	*key_len = 32;
	if (tp->latency_ms && !peek) {
		struct timespec ts = { tp->latency_ms / 1000, (tp->latency_ms % 1000) * 1000000L };
		nanosleep(&ts, NULL);
	}
	if (!served) {
		snprintf(err->msg, sizeof(err->msg), "test provider: too many SAs");
		return -ENOSPC;
	}
	for (i = 0; i < count; i++) {
		uint8_t in[64 + 8 + 11];
		size_t sl = strlen(tp->seed);
		unsigned int ol;

		if (tp->budget && *served >= tp->budget && !peek) {
			snprintf(err->msg, sizeof(err->msg), "test provider: budget of %llu keys used",
					 (unsigned long long)tp->budget);
			return -ENOKEY;
		}
		memcpy(in, "iq-test-key", 11);
		memcpy(in + 11, tp->seed, sl);
		iq_put32(in + 11 + sl, sa->spi);
		iq_put32(in + 11 + sl + 4, first + i);
		if (EVP_DigestInit_ex(tp->md, tp->sha256, NULL) != 1 ||
			EVP_DigestUpdate(tp->md, in, 11 + sl + 8) != 1 ||
			EVP_DigestFinal_ex(tp->md, keys + (size_t)i * 32, &ol) != 1)
			return -EIO;
		if (!peek)
			(*served)++;
		(*got)++;
	}
	return 0;
}

static int tp_get_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					   uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	return tp_keys(ctx, sa, first, count, keys, key_len, got, err, false);
}

static int tp_peek_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
						uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	return tp_keys(ctx, sa, first, count, keys, key_len, got, err, true);
}

static void tp_destroy(void *ctx)
{
	struct test_provider *tp = ctx;

	EVP_MD_CTX_free(tp->md);
	EVP_MD_free(tp->sha256);
	OPENSSL_cleanse(tp, sizeof(*tp));
	free(tp);
}

struct iq_key_provider *iq_test_provider_create(const char *seed, uint64_t budget,
												unsigned latency_ms)
{
	struct test_provider *tp = calloc(1, sizeof(*tp));

	if (!tp)
		return NULL;
	tp->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	tp->md = EVP_MD_CTX_new();
	if (!tp->sha256 || !tp->md) {
		tp_destroy(tp);
		return NULL;
	}
	snprintf(tp->seed, sizeof(tp->seed), "%s", seed ? seed : "");
	tp->budget = budget;
	tp->latency_ms = latency_ms;
	tp->pub.ctx = tp;
	tp->pub.get_keys = tp_get_keys;
	tp->pub.peek_keys = tp_peek_keys;
	tp->pub.destroy = tp_destroy;
	return &tp->pub;
}
