/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_keys.c - where keys live: one mmap'd arena of fixed slots, locked in RAM (mlock) and kept
 * out of core dumps (MADV_DONTDUMP), wiped on every free; and the per-peer key_ID map.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "qkid.h"
#include "qkid_log.h"

int qkid_arena_init(struct qkid_arena *a, size_t n_slots, char *err, size_t errlen)
{
	size_t size;
	memset(a, 0, sizeof(*a));
	a->slot = QKI_KEY_MAX;
	a->n_slots = n_slots;
	size = a->slot * n_slots;
	a->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a->base == MAP_FAILED) {
		a->base = NULL;
		snprintf(err, errlen, "mmap %zu bytes for keys: %s", size, strerror(errno));
		return -1;
	}
#ifdef MADV_DONTDUMP
	madvise(a->base, size, MADV_DONTDUMP);
#endif
	if (mlock(a->base, size) == 0)
		a->locked = 1;
	else
		log_warn("cannot lock %zu bytes of key memory (%s): keys may be swapped out; "
			 "raise RLIMIT_MEMLOCK or lower max_keys", size, strerror(errno));
	a->free_list = calloc(n_slots, sizeof(*a->free_list));
	if (!a->free_list) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (size_t i = 0; i < n_slots; i++)
		a->free_list[i] = (uint32_t)(n_slots - 1 - i);
	a->n_free = n_slots;
	return 0;
}

uint8_t *qkid_arena_alloc(struct qkid_arena *a)
{
	if (!a->n_free)
		return NULL;
	return a->base + (size_t)a->free_list[--a->n_free] * a->slot;
}

void qkid_arena_free(struct qkid_arena *a, uint8_t *p)
{
	if (!p)
		return;
	OPENSSL_cleanse(p, a->slot);
	a->free_list[a->n_free++] = (uint32_t)((size_t)(p - a->base) / a->slot);
}

void qkid_arena_destroy(struct qkid_arena *a)
{
	if (a->base) {
		size_t size = a->slot * a->n_slots;
		OPENSSL_cleanse(a->base, size);
		if (a->locked)
			munlock(a->base, size);
		munmap(a->base, size);
	}
	free(a->free_list);
	memset(a, 0, sizeof(*a));
}

void qkey_list_append(struct qkey_list *l, struct qkey *k)
{
	k->list = l;
	k->next = NULL;
	k->prev = l->tail;
	if (l->tail)
		l->tail->next = k;
	else
		l->head = k;
	l->tail = k;
	l->n++;
}

void qkey_list_insert_epoch(struct qkey_list *l, struct qkey *k)
{
	struct qkey *at = l->tail;
	while (at && at->epoch > k->epoch)
		at = at->prev;
	k->list = l;
	k->prev = at;
	k->next = at ? at->next : l->head;
	if (k->next)
		k->next->prev = k;
	else
		l->tail = k;
	if (at)
		at->next = k;
	else
		l->head = k;
	l->n++;
}

void qkey_list_remove(struct qkey *k)
{
	struct qkey_list *l = k->list;
	if (!l)
		return;
	if (k->prev)
		k->prev->next = k->next;
	else
		l->head = k->next;
	if (k->next)
		k->next->prev = k->prev;
	else
		l->tail = k->prev;
	l->n--;
	k->prev = k->next = NULL;
	k->list = NULL;
}

static unsigned bucket(const char *id)
{
	uint32_t h = 2166136261u;       /* FNV-1a; key_IDs are random UUIDs anyway */
	for (; *id; id++)
		h = (h ^ (uint8_t)*id) * 16777619u;
	return h % QKID_MAP_BUCKETS;
}

struct qkey *qkid_key_find(struct qkid_peer *p, const char *id)
{
	struct qkey *k;
	for (k = p->map[bucket(id)]; k; k = k->hnext)
		if (!strcmp(k->id, id))
			return k;
	return NULL;
}

struct qkey *qkid_key_new(struct qkid_peer *p, const char *id)
{
	struct qkey *k;
	unsigned b;
	if (strlen(id) >= QKI_KEY_ID_MAX || qkid_key_find(p, id))
		return NULL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return NULL;
	strcpy(k->id, id);
	b = bucket(id);
	k->hnext = p->map[b];
	p->map[b] = k;
	k->t = qkid_now_ms();
	return k;
}

int qkid_key_set_bytes(struct qkid *d, struct qkey *k, const uint8_t *b, size_t len)
{
	if (len > QKI_KEY_MAX)
		return -1;
	if (!k->bytes)
		k->bytes = qkid_arena_alloc(&d->arena);
	if (!k->bytes)
		return -1;
	memcpy(k->bytes, b, len);
	k->len = (uint16_t)len;
	return 0;
}

void qkid_key_wipe(struct qkid *d, struct qkey *k)
{
	qkid_arena_free(&d->arena, k->bytes);
	k->bytes = NULL;
	k->len = 0;
}

void qkid_key_free(struct qkid_peer *p, struct qkey *k)
{
	struct qkey **pp = &p->map[bucket(k->id)];
	qkey_list_remove(k);
	qkid_key_wipe(p->d, k);
	while (*pp && *pp != k)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = k->hnext;
	free(k);
}

void qkid_key_bury(struct qkid_peer *p, struct qkey *k)
{
	qkey_list_remove(k);
	qkid_key_wipe(p->d, k);
	/* Only a key given to our charon as initiator key must still reach the peer's records;
	 * any other key buried here was never handed out, so its assignment is void. */
	if (k->use != QKP_USE_IKE_MASTER)
		k->unacked = 0;
	k->state = QK_USED;
	k->t = qkid_now_ms();
	qkey_list_append(&p->tombs, k);
	/* Tombstones are bounded: the oldest are forgotten. By then the KME has long deleted
	 * those keys, so a replayed key_ID fails there instead. Unacknowledged ones stay. */
	while (p->tombs.n > QKID_TOMBS_MAX && p->tombs.head && !p->tombs.head->unacked)
		qkid_key_free(p, p->tombs.head);
}

struct qkey *qkid_pool_take(struct qkid_peer *p)
{
	struct qkey *k = p->pool.head;
	if (k)
		qkey_list_remove(k);
	return k;
}
