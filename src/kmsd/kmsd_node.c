/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_node.c - a metro KMS node: its QKD links (one kmsd_kme each, from the [link NAME] sections,
 * or the one link of the node's own settings), the keys relayed to its SAEs, and the replay
 * guard of the relay. kmsd.c starts and stops the threads.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "ipseq_util.h"

#define SEEN_BUCKETS 8192

struct kmsd_seen {
	uint8_t tag[16]; /* key_ID mixed with the destination's name */
	int32_t next;    /* bucket chain, -1 ends */
	int used;
};

int kmsd_node_init(struct kmsd_node *n, struct kmsd_config *cfg)
{
	unsigned i;

	memset(n, 0, sizeof(*n));
	n->cfg = cfg;
	n->metro = cfg->n_links > 0 || cfg->n_remote_saes > 0;
	n->n_links = cfg->n_links ? cfg->n_links : 1;
	n->links = calloc(n->n_links, sizeof(*n->links));
	n->seen = calloc(KMSD_SEEN_MAX, sizeof(*n->seen));
	n->seen_buckets = malloc(SEEN_BUCKETS * sizeof(*n->seen_buckets));
	if (!n->links || !n->seen || !n->seen_buckets)
		return -1;
	for (i = 0; i < SEEN_BUCKETS; i++)
		n->seen_buckets[i] = -1;
	pthread_mutex_init(&n->seen_lock, NULL);
	pthread_mutex_init(&n->routes.lock, NULL);
	n->routes.version = -1;
	n->routes.wake[0] = n->routes.wake[1] = -1;
	n->routes.reachable = -1;
	/* reservations only: the ring of this store stays empty */
	if (kmsd_store_init(&n->relayed, 8, cfg->max_key_count) < 0)
		return -1;
	for (i = 0; i < n->n_links; i++) {
		struct kmsd_kme *k = &n->links[i];
		struct kmsd_config *lc = cfg->n_links ? cfg->links[i].cfg : cfg;

		k->cfg = lc;
		k->node = n;
		k->name = cfg->n_links ? cfg->links[i].name : "default";
		k->is_link_master = lc->link_mode == KMSD_LINK_LISTEN;
		k->rate_bps = kmsd_config_effective_rate(lc);
		k->min_key_size = lc->min_key_size;
		k->max_key_size = lc->max_key_size;
		k->max_key_per_request = lc->max_key_per_request;
		if (kmsd_store_init(&k->store, lc->key_size, lc->max_key_count) < 0)
			return -1;
	}
	return 0;
}

void kmsd_node_destroy(struct kmsd_node *n)
{
	unsigned i;

	for (i = 0; n->links && i < n->n_links; i++)
		if (n->links[i].store.keys)
			kmsd_store_destroy(&n->links[i].store);
	free(n->links);
	n->links = NULL;
	if (n->relayed.keys)
		kmsd_store_destroy(&n->relayed);
	free(n->seen);
	free(n->seen_buckets);
	n->seen = NULL;
	n->seen_buckets = NULL;
}

struct kmsd_kme *kmsd_node_link_for_sae(struct kmsd_node *n, const char *sae)
{
	unsigned i;

	for (i = 0; i < n->n_links; i++)
		if (kmsd_config_is_peer_sae(n->links[i].cfg, sae))
			return &n->links[i];
	return NULL;
}

struct kmsd_kme *kmsd_node_link_to(struct kmsd_node *n, const char *peer)
{
	unsigned i;

	for (i = 0; i < n->n_links; i++)
		if (strcmp(n->links[i].cfg->peer_kme_id, peer) == 0)
			return &n->links[i];
	return NULL;
}

/* FNV-1a over dst, spread over 16 bytes and mixed into the random key_ID. */
static void seen_tag(uint8_t tag[16], const uint8_t id[16], const char *dst)
{
	uint64_t h = 1469598103934665603ull;
	size_t i;

	for (i = 0; dst[i]; i++)
		h = (h ^ (uint8_t)dst[i]) * 1099511628211ull;
	for (i = 0; i < 16; i++)
		tag[i] = id[i] ^ (uint8_t)(h >> (8 * (i % 8) + (i / 8)));
}

static size_t seen_bucket(const uint8_t tag[16])
{
	return ((size_t)tag[0] << 8 | tag[1]) % SEEN_BUCKETS;
}

int kmsd_node_seen(struct kmsd_node *n, const uint8_t id[16], const char *dst)
{
	uint8_t tag[16];
	struct kmsd_seen *e;
	int32_t *pp, i;
	size_t b;

	seen_tag(tag, id, dst);
	b = seen_bucket(tag);
	pthread_mutex_lock(&n->seen_lock);
	for (i = n->seen_buckets[b]; i >= 0; i = n->seen[i].next) {
		if (memcmp(n->seen[i].tag, tag, 16) == 0) {
			pthread_mutex_unlock(&n->seen_lock);
			return 1;
		}
	}
	/* Reuse the oldest slot: unlink it from its chain first. */
	e = &n->seen[n->seen_next];
	if (e->used) {
		for (pp = &n->seen_buckets[seen_bucket(e->tag)]; *pp >= 0; pp = &n->seen[*pp].next) {
			if (*pp == (int32_t)n->seen_next) {
				*pp = e->next;
				break;
			}
		}
	}
	memcpy(e->tag, tag, 16);
	e->used = 1;
	e->next = n->seen_buckets[b];
	n->seen_buckets[b] = (int32_t)n->seen_next;
	n->seen_next = (n->seen_next + 1) % KMSD_SEEN_MAX;
	pthread_mutex_unlock(&n->seen_lock);
	return 0;
}

/* One link as the relayed status and the controller report show it. */
struct json_object *kmsd_node_link_json(struct kmsd_kme *k)
{
	struct json_object *o = json_object_new_object();
	struct kmsd_relay_stats rs;
	uint64_t stored, consumed;

	pthread_mutex_lock(&k->store.lock);
	stored = (uint64_t)k->store.count * k->store.block_bits;
	consumed = k->store.stats.consumed_blocks * k->store.block_bits;
	rs = k->relay;
	pthread_mutex_unlock(&k->store.lock);
	json_object_object_add(o, "link", json_object_new_string(k->name));
	json_object_object_add(o, "peer", json_object_new_string(k->cfg->peer_kme_id));
	json_object_object_add(o, "up", json_object_new_boolean(atomic_load(&k->link.up)));
	json_object_object_add(o, "link_master", json_object_new_boolean(k->is_link_master));
	json_object_object_add(o, "rate_bps", json_object_new_double(k->rate_bps));
	json_object_object_add(o, "stored_bits", json_object_new_int64((int64_t)stored));
	json_object_object_add(o, "consumed_bits", json_object_new_int64((int64_t)consumed));
	json_object_object_add(o, "relay_keys_sent", json_object_new_int64((int64_t)rs.keys_sent));
	json_object_object_add(o, "relay_keys_received",
			       json_object_new_int64((int64_t)rs.keys_received));
	json_object_object_add(o, "relay_key_bits", json_object_new_int64((int64_t)rs.key_bits));
	json_object_object_add(o, "relay_link_bits", json_object_new_int64((int64_t)rs.link_bits));
	json_object_object_add(o, "relay_refused", json_object_new_int64((int64_t)rs.refused));
	return o;
}
