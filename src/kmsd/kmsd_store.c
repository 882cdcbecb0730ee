/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_store.c - the KME's key store: a FIFO ring of available blocks (identical on both KMEs of a
 * link) and a table of keys reserved for slave SAEs attached to this KME.
 *
 * Every byte of key material that leaves the store is wiped where it was. All functions except
 * init/destroy expect the caller to hold s->lock.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etsi014_codec.h"
#include "ipseq_util.h"

int kmsd_store_init(struct kmsd_store *s, unsigned block_bits, size_t cap)
{
	memset(s, 0, sizeof(*s));
	if (pthread_mutex_init(&s->lock, NULL) != 0)
		return -1;
	s->max_reserved = cap;
	return kmsd_store_resize(s, block_bits, cap);
}

static void free_ring(struct kmsd_store *s)
{
	if (s->keys) {
		ipseq_wipe(s->keys, s->cap * s->block_bytes);
		free(s->keys);
	}
	free(s->ids);
	s->keys = NULL;
	s->ids = NULL;
	s->cap = s->head = s->count = 0;
}

int kmsd_store_resize(struct kmsd_store *s, unsigned block_bits, size_t cap)
{
	if (block_bits == 0 || block_bits % 8 || block_bits > KMSD_BLOCK_BITS_MAX || cap == 0 ||
	    cap > KMSD_KEY_COUNT_MAX)
		return -1;
	if (s->keys && s->block_bits == block_bits && s->cap == cap) {
		kmsd_store_flush(s);
		return 0;
	}
	s->stats.flushed_blocks += s->count;
	free_ring(s);
	s->ids = calloc(cap, 16);
	s->keys = calloc(cap, block_bits / 8);
	if (!s->ids || !s->keys) {
		free(s->ids);
		free(s->keys);
		s->ids = NULL;
		s->keys = NULL;
		return -1;
	}
	s->block_bits = block_bits;
	s->block_bytes = block_bits / 8;
	s->cap = cap;
	s->max_reserved = cap;
	return 0;
}

void kmsd_store_flush(struct kmsd_store *s)
{
	size_t n;

	s->stats.flushed_blocks += s->count;
	for (n = 0; n < s->count; n++) {
		size_t slot = (s->head + n) % s->cap;
		ipseq_wipe(s->keys + slot * s->block_bytes, s->block_bytes);
	}
	s->head = s->count = 0;
}

int kmsd_store_push(struct kmsd_store *s, const uint8_t id[16], const uint8_t *key)
{
	size_t slot;

	if (s->count >= s->cap)
		return -1;
	slot = (s->head + s->count) % s->cap;
	memcpy(s->ids[slot], id, 16);
	memcpy(s->keys + slot * s->block_bytes, key, s->block_bytes);
	s->count++;
	s->stats.generated_blocks++;
	return 0;
}

int kmsd_store_pop(struct kmsd_store *s, size_t n, const uint8_t *want_ids, uint8_t *ids_out,
		   uint8_t *key_out)
{
	size_t i;

	if (n > s->count)
		return -1;
	if (want_ids) {
		for (i = 0; i < n; i++)
			if (memcmp(s->ids[(s->head + i) % s->cap], want_ids + i * 16, 16) != 0)
				return -1;
	}
	for (i = 0; i < n; i++) {
		size_t slot = (s->head + i) % s->cap;
		uint8_t *k = s->keys + slot * s->block_bytes;

		if (ids_out)
			memcpy(ids_out + i * 16, s->ids[slot], 16);
		if (key_out)
			memcpy(key_out + i * s->block_bytes, k, s->block_bytes);
		ipseq_wipe(k, s->block_bytes);
	}
	s->head = (s->head + n) % s->cap;
	s->count -= n;
	s->stats.consumed_blocks += n;
	return 0;
}

static size_t bucket_of(const uint8_t id[16])
{
	/* IDs are random: their first bytes are a fine hash. */
	return ((size_t)id[0] << 8 | id[1]) % KMSD_STORE_BUCKETS;
}

struct kmsd_reserved_key *kmsd_store_find_reserved(struct kmsd_store *s, const uint8_t id[16])
{
	struct kmsd_reserved_key *rk;

	for (rk = s->buckets[bucket_of(id)]; rk; rk = rk->hnext)
		if (memcmp(rk->id, id, 16) == 0)
			return rk;
	return NULL;
}

struct kmsd_reserved_key *kmsd_store_find_reserved_for(struct kmsd_store *s, const uint8_t id[16],
						       const char *slave)
{
	struct kmsd_reserved_key *rk;

	for (rk = s->buckets[bucket_of(id)]; rk; rk = rk->hnext)
		if (memcmp(rk->id, id, 16) == 0 && strcmp(rk->slave, slave) == 0)
			return rk;
	return NULL;
}

void kmsd_store_remove_reserved(struct kmsd_store *s, struct kmsd_reserved_key *rk)
{
	struct kmsd_reserved_key **pp = &s->buckets[bucket_of(rk->id)];

	while (*pp && *pp != rk)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = rk->hnext;
	if (rk->older)
		rk->older->newer = rk->newer;
	else
		s->oldest = rk->newer;
	if (rk->newer)
		rk->newer->older = rk->older;
	else
		s->newest = rk->older;
	s->n_reserved--;
	ipseq_wipe(rk, sizeof(*rk) + rk->len);
	free(rk);
}

int kmsd_store_reserve(struct kmsd_store *s, const uint8_t id[16], const char *master,
		       const char *slave, const uint8_t *key, size_t len, unsigned lifetime_s)
{
	struct kmsd_reserved_key *rk;
	size_t b;

	if (kmsd_store_find_reserved_for(s, id, slave))
		return -1;
	/* Bounded: the oldest reservation makes room (its slave evidently is not coming). */
	while (s->n_reserved >= s->max_reserved && s->oldest) {
		char idtext[ETSI014_KEY_ID_LEN + 1];
		etsi014_uuid_format(s->oldest->id, idtext);
		ipseq_log(IPSEQ_LOG_WARN, "reservation table full: dropping key %s reserved for %s",
			  idtext, s->oldest->slave);
		s->stats.expired_keys++;
		kmsd_store_remove_reserved(s, s->oldest);
	}
	rk = calloc(1, sizeof(*rk) + len);
	if (!rk)
		return -1;
	memcpy(rk->id, id, 16);
	snprintf(rk->master, sizeof(rk->master), "%s", master);
	snprintf(rk->slave, sizeof(rk->slave), "%s", slave);
	rk->expires_ms = ipseq_now_ms() + (uint64_t)lifetime_s * 1000;
	rk->len = len;
	memcpy(rk->key, key, len);
	b = bucket_of(id);
	rk->hnext = s->buckets[b];
	s->buckets[b] = rk;
	rk->older = s->newest;
	if (s->newest)
		s->newest->newer = rk;
	else
		s->oldest = rk;
	s->newest = rk;
	s->n_reserved++;
	s->stats.reserved_keys_made++;
	return 0;
}

size_t kmsd_store_expire(struct kmsd_store *s, uint64_t now_ms)
{
	size_t n = 0;

	/* Lifetimes are equal, so the age list is also expiry order. */
	while (s->oldest && s->oldest->expires_ms <= now_ms) {
		char idtext[ETSI014_KEY_ID_LEN + 1];
		etsi014_uuid_format(s->oldest->id, idtext);
		ipseq_log(IPSEQ_LOG_INFO, "key %s reserved for %s expired unfetched", idtext,
			  s->oldest->slave);
		kmsd_store_remove_reserved(s, s->oldest);
		s->stats.expired_keys++;
		n++;
	}
	return n;
}

void kmsd_store_destroy(struct kmsd_store *s)
{
	while (s->oldest)
		kmsd_store_remove_reserved(s, s->oldest);
	free_ring(s);
	pthread_mutex_destroy(&s->lock);
}

size_t kmsd_blocks_per_key(const struct kmsd_store *s, unsigned size_bits)
{
	return (size_bits + s->block_bits - 1) / s->block_bits;
}

void kmsd_format_ids(const uint8_t *ids, size_t n, size_t stride, char *out, size_t cap)
{
	size_t i, o = 0;

	out[0] = '\0';
	for (i = 0; i < n && o + ETSI014_KEY_ID_LEN + 2 < cap; i++) {
		if (i)
			out[o++] = ',';
		etsi014_uuid_format(ids + i * stride, out + o);
		o += ETSI014_KEY_ID_LEN;
	}
	if (i < n && o + 4 < cap)
		memcpy(out + o, ",...", 5);
}

void kmsd_log_ids(int level, const char *what, const uint8_t *ids, size_t n, size_t stride)
{
	char text[KMSD_LOG_IDS_PER_LINE * (ETSI014_KEY_ID_LEN + 1) + 1];
	size_t i = 0, j, o;

	do {
		o = 0;
		text[0] = '\0';
		for (j = i; j < n && j < i + KMSD_LOG_IDS_PER_LINE; j++) {
			if (j > i)
				text[o++] = ',';
			etsi014_uuid_format(ids + j * stride, text + o);
			o += ETSI014_KEY_ID_LEN;
		}
		if (i == 0)
			ipseq_log(level, "%s: %s", what, text);
		else
			ipseq_log(level, "%s (continued, key_IDs %zu-%zu of %zu): %s", what, i + 1, j,
				  n, text);
		i = j;
	} while (i < n);
}
