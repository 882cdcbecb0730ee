/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_relay.c - trusted-node key relay between metro KMS nodes, one-time pad hop by hop.
 *
 * The source node makes K_r (CSPRNG) and its key_ID. Over link A-B it sends K_r XOR K_ab, where
 * K_ab are link blocks both ends of A-B hold under the same block IDs. A relay node B first makes
 * the mask K_ab XOR K_bc and XORs that onto the ciphertext, so it never holds K_r in clear, and
 * sends K_r XOR K_bc on; the destination removes its last link key and reserves K_r for the
 * slave SAE(s). Its RELAY_ACK travels back hop by hop; the source answers its SAE only then. Any
 * refusal is a NACK (RELAY_ACK with a status and a reason) the same way back, so the SAE gets an
 * answer (503, or 401 for an SAE the destination does not know), never a hang.
 *
 * Who picks the link blocks: only the link master of each link allocates from its store (as for
 * RESERVE and ALLOC_REQ, kmsd_link_proto.c). A master relaying to its slave takes the head blocks
 * and names them in RELAY, in one store lock hold, so the slave finds exactly them at its head. A
 * slave relaying to its master first asks for blocks (RELAY_ALLOC); the master takes them off its
 * head, keeps them as a grant and names them in RELAY_GRANT; the slave takes the same blocks off
 * its head and names the grant in RELAY. Relays in opposite directions over one link can
 * therefore never pick the same block. Every hop consumes whole blocks of its own link:
 * number * ceil(size / block bits) of them, exactly the relayed bits when size is a multiple of
 * the link's key_size.
 *
 * RELAY (link version 2, relay version 1):
 *   u8 version, u32 req, u32 grant (0: the sender is link master), str dst, str master SAE,
 *   u8 n_slaves + str slaves, u8 route_n + str route, u8 hop (the receiver's index in route),
 *   u16 number, u32 size (bits), u16 blocks per key on this link,
 *   number * 16 key_IDs, number * bpk * 16 link block IDs, number * size/8 ciphertext
 * RELAY_ACK:   u8 version, u32 req, u16 status (0, 400, 401, 503), u8 len + reason text
 * RELAY_ALLOC: u8 version, u32 req, u32 blocks
 * RELAY_GRANT: u8 version, u32 req, u16 status, u32 blocks, blocks * 16 block IDs (status 0)
 *
 * route: path[0] the source ... path[hop] the receiver. A source with a controller route sends
 * the whole path and the relays follow it; with a static route (DEST via NEXT) the path ends at
 * the next hop and each relay appends its own next hop. A node appears once on a path.
 *
 * Logs name key_IDs and nodes, never key material; every buffer is wiped when released.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etsi014_codec.h"
#include "ipseq_util.h"
#include "kmsd_link_codec.h"

#define MAX_GRANTS 256
#define MAX_FORWARDS 64

struct relay_hdr {
	uint32_t req, grant;
	char dst[ETSI014_ID_MAX + 1];
	char master[ETSI014_ID_MAX + 1];
	char slaves[KMSD_MAX_SAE_IDS][ETSI014_ID_MAX + 1];
	unsigned n_slaves;
	char route[KMSD_PATH_MAX][ETSI014_ID_MAX + 1];
	unsigned route_n, hop;
	unsigned number, size, bpk;
	uint8_t *key_ids; /* number * 16, owned */
};

static void *wiped_alloc(size_t n)
{
	return calloc(1, n ? n : 1);
}

static void wipe_free(void *p, size_t n)
{
	if (p) {
		ipseq_wipe(p, n);
		free(p);
	}
}

static void ids_text(const struct relay_hdr *h, char *out, size_t cap)
{
	kmsd_format_ids(h->key_ids, h->number, 16, out, cap);
}

static void route_text(const struct relay_hdr *h, char *out, size_t cap)
{
	size_t o = 0;
	unsigned i;

	out[0] = '\0';
	for (i = 0; i < h->route_n && o < cap; i++)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", i ? ">" : "", h->route[i]);
}

/* --- messages ---------------------------------------------------------------------------------- */

static void write_relay(struct kmsd_wbuf *w, const struct relay_hdr *h, const uint8_t *block_ids,
			const uint8_t *ct)
{
	unsigned i;

	kmsd_w_u8(w, KMSD_RELAY_VERSION);
	kmsd_w_u32(w, h->req);
	kmsd_w_u32(w, h->grant);
	kmsd_w_str(w, h->dst);
	kmsd_w_str(w, h->master);
	kmsd_w_u8(w, (uint8_t)h->n_slaves);
	for (i = 0; i < h->n_slaves; i++)
		kmsd_w_str(w, h->slaves[i]);
	kmsd_w_u8(w, (uint8_t)h->route_n);
	for (i = 0; i < h->route_n; i++)
		kmsd_w_str(w, h->route[i]);
	kmsd_w_u8(w, (uint8_t)h->hop);
	kmsd_w_u16(w, (uint16_t)h->number);
	kmsd_w_u32(w, h->size);
	kmsd_w_u16(w, (uint16_t)h->bpk);
	kmsd_w_bytes(w, h->key_ids, (size_t)h->number * 16);
	kmsd_w_bytes(w, block_ids, (size_t)h->number * h->bpk * 16);
	kmsd_w_bytes(w, ct, (size_t)h->number * (h->size / 8));
}

/* Parse RELAY after its version byte. 0, or -1 (malformed: a reason in why). */
static int read_relay(struct kmsd_rbuf *r, struct relay_hdr *h, const uint8_t **block_ids,
		      const uint8_t **ct, const char **why)
{
	const uint8_t *ids;
	unsigned i;

	h->req = kmsd_r_u32(r);
	h->grant = kmsd_r_u32(r);
	kmsd_r_str(r, h->dst);
	kmsd_r_str(r, h->master);
	h->n_slaves = kmsd_r_u8(r);
	if (r->err || h->n_slaves == 0 || h->n_slaves > KMSD_MAX_SAE_IDS) {
		*why = "bad header or slave count";
		return -1;
	}
	for (i = 0; i < h->n_slaves; i++)
		kmsd_r_str(r, h->slaves[i]);
	h->route_n = kmsd_r_u8(r);
	if (r->err || h->route_n < 2 || h->route_n > KMSD_PATH_MAX) {
		*why = "bad slave names or route length";
		return -1;
	}
	for (i = 0; i < h->route_n; i++)
		kmsd_r_str(r, h->route[i]);
	h->hop = kmsd_r_u8(r);
	h->number = kmsd_r_u16(r);
	h->size = kmsd_r_u32(r);
	h->bpk = kmsd_r_u16(r);
	if (r->err || h->number == 0 || h->number > KMSD_PER_REQUEST_MAX || h->size == 0 ||
	    h->size % 8 || h->size > ETSI014_KEY_BITS_MAX || h->bpk == 0 || h->bpk > 1024) {
		*why = "bad route names, key count or key size";
		return -1;
	}
	ids = kmsd_r_bytes(r, (size_t)h->number * 16);
	*block_ids = kmsd_r_bytes(r, (size_t)h->number * h->bpk * 16);
	*ct = kmsd_r_bytes(r, (size_t)h->number * (h->size / 8));
	if (r->err || r->off != r->len) {
		*why = "lengths do not add up";
		return -1;
	}
	h->key_ids = malloc((size_t)h->number * 16);
	if (!h->key_ids) {
		*why = "out of memory";
		return -1;
	}
	memcpy(h->key_ids, ids, (size_t)h->number * 16);
	return 0;
}

static int send_ack(struct kmsd_link *l, uint32_t req, unsigned status, const char *why)
{
	struct kmsd_wbuf w = {0};
	size_t n = why ? strlen(why) : 0;
	int rc;

	if (n > 120)
		n = 120;
	kmsd_w_u8(&w, KMSD_RELAY_VERSION);
	kmsd_w_u32(&w, req);
	kmsd_w_u16(&w, (uint16_t)status);
	kmsd_w_u8(&w, (uint8_t)n);
	kmsd_w_bytes(&w, why ? why : "", n);
	rc = w.err ? -1 : kmsd_link_send(l, KMSD_MSG_RELAY_ACK, w.p, w.len);
	kmsd_w_free(&w);
	return rc;
}

/* --- sending one hop --------------------------------------------------------------------------- */

/* Slave side of out: ask the master for nblocks link blocks and take the same ones here. */
static enum kmsd_link_status ask_grant(struct kmsd_kme *out, size_t nblocks, uint8_t **ids,
				       uint8_t **bytes, uint32_t *grant)
{
	struct kmsd_link *l = &out->link;
	struct kmsd_link_pending *p = kmsd_link_pending_new(l);
	struct kmsd_wbuf w = {0};
	enum kmsd_link_status st = KMSD_LINK_DOWN;
	size_t block_bytes;

	if (!p)
		return KMSD_LINK_DOWN;
	pthread_mutex_lock(&out->store.lock);
	block_bytes = out->store.block_bytes;
	pthread_mutex_unlock(&out->store.lock);
	p->nblocks = nblocks;
	p->ids = malloc(nblocks * 16);
	p->bytes_len = nblocks * block_bytes;
	p->bytes = wiped_alloc(p->bytes_len);
	kmsd_w_u8(&w, KMSD_RELAY_VERSION);
	kmsd_w_u32(&w, p->id);
	kmsd_w_u32(&w, (uint32_t)nblocks);
	if (p->ids && p->bytes && !w.err &&
	    kmsd_link_send(l, KMSD_MSG_RELAY_ALLOC, w.p, w.len) == 0)
		st = kmsd_link_pending_wait(l, p, out->cfg->link_timeout_ms);
	kmsd_w_free(&w);
	if (st == KMSD_LINK_OK) {
		pthread_mutex_lock(&l->plock);
		*ids = p->ids;
		*bytes = p->bytes;
		p->ids = NULL;
		p->bytes = NULL;
		pthread_mutex_unlock(&l->plock);
		*grant = p->id;
	}
	kmsd_link_pending_release(l, p);
	return st;
}

/* Send h's keys over out and wait for the next hop's answer. data: what leaves XOR the link key
 * (the source's K_r, or the ciphertext that came in); in_key: the link key it came in under
 * (NULL at the source). The mask in_key XOR out_key is made first: data XOR in_key (= K_r) never
 * exists at a relay. */
static enum kmsd_link_status relay_over(struct kmsd_node *n, struct kmsd_kme *out,
					struct relay_hdr *h, const uint8_t *data,
					const uint8_t *in_key, char *why, size_t why_len)
{
	struct kmsd_store *s = &out->store;
	struct kmsd_link *l = &out->link;
	struct kmsd_link_pending *p = NULL;
	struct kmsd_wbuf w = {0};
	size_t klen = h->size / 8, nblocks, block_bytes, i, j;
	uint8_t *ids = NULL, *kout = NULL, *mask = NULL, *ct = NULL;
	enum kmsd_link_status st = KMSD_LINK_OK;
	unsigned timeout;

	if (!atomic_load(&l->up) || l->peer_version < 2) {
		snprintf(why, why_len, "link %s to %s is down", out->name, out->cfg->peer_kme_id);
		return KMSD_LINK_DOWN;
	}
	pthread_mutex_lock(&s->lock);
	h->bpk = (unsigned)kmsd_blocks_per_key(s, h->size);
	block_bytes = s->block_bytes;
	pthread_mutex_unlock(&s->lock);
	nblocks = (size_t)h->number * h->bpk;
	h->grant = 0;
	if (!out->is_link_master) {
		st = ask_grant(out, nblocks, &ids, &kout, &h->grant);
		if (st != KMSD_LINK_OK) {
			snprintf(why, why_len, "no link key on %s (%s)", out->name,
				 st == KMSD_LINK_UNAVAILABLE ? "not enough stored" : "link master "
											   "did not answer");
			return st;
		}
	} else {
		ids = malloc(nblocks * 16);
		kout = wiped_alloc(nblocks * block_bytes);
	}
	mask = wiped_alloc(klen);
	ct = wiped_alloc((size_t)h->number * klen);
	p = kmsd_link_pending_new(l);
	if (!ids || !kout || !mask || !ct || !p) {
		st = KMSD_LINK_DOWN;
		snprintf(why, why_len, "out of memory");
		goto out;
	}
	h->req = p->id;

	/* Take (master) and name the blocks in one store lock hold: the stream stays in store
	 * order, as for RESERVE. */
	pthread_mutex_lock(&s->lock);
	if (out->is_link_master && kmsd_store_pop(s, nblocks, NULL, ids, kout) < 0) {
		pthread_mutex_unlock(&s->lock);
		st = KMSD_LINK_UNAVAILABLE;
		snprintf(why, why_len, "not enough link key on %s to %s", out->name,
			 out->cfg->peer_kme_id);
		goto out;
	}
	for (i = 0; i < h->number; i++) {
		const uint8_t *k = kout + i * h->bpk * block_bytes;

		for (j = 0; j < klen; j++)
			mask[j] = (uint8_t)((in_key ? in_key[i * klen + j] : 0) ^ k[j]);
		kmsd_trace(n, "link_key_out", h->key_ids + i * 16, k, klen);
		if (in_key)
			kmsd_trace(n, "mask", h->key_ids + i * 16, mask, klen);
		for (j = 0; j < klen; j++)
			ct[i * klen + j] = data[i * klen + j] ^ mask[j];
	}
	write_relay(&w, h, ids, ct);
	kmsd_trace(n, "relay_out", h->key_ids, w.p, w.len);
	if (w.err || kmsd_link_send(l, KMSD_MSG_RELAY, w.p, w.len) < 0) {
		pthread_mutex_unlock(&s->lock);
		st = KMSD_LINK_DOWN;
		snprintf(why, why_len, "link %s went down", out->name);
		goto out;
	}
	out->relay.keys_sent += h->number;
	out->relay.key_bits += (uint64_t)h->number * h->size;
	out->relay.link_bits += (uint64_t)nblocks * block_bytes * 8;
	pthread_mutex_unlock(&s->lock);

	/* The hops behind the next one answer first: wait longer the nearer the source. */
	timeout = out->cfg->link_timeout_ms * (KMSD_PATH_MAX - (h->hop < KMSD_PATH_MAX ? h->hop : 0));
	st = kmsd_link_pending_wait(l, p, timeout);
	if (st == KMSD_LINK_OK)
		goto out;
	pthread_mutex_lock(&l->plock);
	if (p->why[0])
		snprintf(why, why_len, "%s", p->why);
	else
		snprintf(why, why_len, "%s did not answer (%s)", out->cfg->peer_kme_id,
			 st == KMSD_LINK_TIMEOUT ? "timeout" : "link down");
	pthread_mutex_unlock(&l->plock);
out:
	kmsd_link_pending_release(l, p);
	kmsd_w_free(&w);
	free(ids);
	wipe_free(kout, nblocks * block_bytes);
	wipe_free(mask, klen);
	wipe_free(ct, (size_t)h->number * klen);
	return st;
}

/* --- the source -------------------------------------------------------------------------------- */

static void log_refusal(struct kmsd_node *n, const struct relay_hdr *h, const char *what,
			const char *why)
{
	char ids[512], path[KMSD_PATH_MAX * (ETSI014_ID_MAX + 1)];

	ids_text(h, ids, sizeof(ids));
	route_text(h, path, sizeof(path));
	ipseq_log(IPSEQ_LOG_WARN, "relay %s (%s -> %s, path %s) %s: %s", ids, h->master, h->dst,
		  path, what, why);
	(void)n;
}

enum kmsd_link_status kmsd_relay_send(struct kmsd_node *n, const char *dst, const char *master,
				      const char *const *slaves, unsigned n_slaves,
				      unsigned number, unsigned size, const uint8_t *key_ids,
				      const uint8_t *keys, char *why, size_t why_len)
{
	struct kmsd_route rt;
	struct kmsd_kme *out;
	struct relay_hdr h;
	enum kmsd_link_status st;
	char ids[512], path[KMSD_PATH_MAX * (ETSI014_ID_MAX + 1)];
	unsigned i;

	memset(&h, 0, sizeof(h));
	if (n_slaves == 0 || n_slaves > KMSD_MAX_SAE_IDS || number == 0)
		return KMSD_LINK_REFUSED;
	snprintf(h.dst, sizeof(h.dst), "%s", dst);
	snprintf(h.master, sizeof(h.master), "%s", master);
	for (i = 0; i < n_slaves; i++)
		snprintf(h.slaves[i], sizeof(h.slaves[i]), "%s", slaves[i]);
	h.n_slaves = n_slaves;
	h.number = number;
	h.size = size;
	h.key_ids = (uint8_t *)key_ids;
	if (kmsd_route_lookup(n, dst, &rt) < 0 || rt.n < 2 ||
	    !(out = kmsd_node_link_to(n, rt.path[1]))) {
		snprintf(why, why_len, "no route from %s to %s", n->cfg->kme_id, dst);
		kmsd_routes_poke(n);
		return KMSD_LINK_UNAVAILABLE;
	}
	memcpy(h.route, rt.path, sizeof(h.route));
	h.route_n = rt.n;
	h.hop = 1;
	for (i = 0; i < number; i++)
		kmsd_node_seen(n, key_ids + i * 16, dst);
	kmsd_trace(n, "source_key", key_ids, keys, (size_t)number * (size / 8));
	st = relay_over(n, out, &h, keys, NULL, why, why_len);
	ids_text(&h, ids, sizeof(ids));
	route_text(&h, path, sizeof(path));
	if (st != KMSD_LINK_OK) {
		log_refusal(n, &h, "failed", why);
		kmsd_routes_poke(n);
		pthread_mutex_lock(&out->store.lock);
		out->relay.refused++;
		pthread_mutex_unlock(&out->store.lock);
		return st;
	}
	pthread_mutex_lock(&n->relayed.lock);
	n->relayed_keys_sent += number;
	pthread_mutex_unlock(&n->relayed.lock);
	ipseq_log(IPSEQ_LOG_INFO, "relay %s: %u key(s) of %u bits %s -> %s stored at %s (path %s, "
		  "first hop %s consumed %u link bits)", ids, number, size, master, slaves[0], dst,
		  path, out->name, number * h.bpk * (unsigned)(out->store.block_bits));
	return KMSD_LINK_OK;
}

/* --- receiving --------------------------------------------------------------------------------- */

struct forward_job {
	struct kmsd_node *node;
	struct kmsd_kme *in, *out;
	uint32_t upstream_req;
	struct relay_hdr h;
	uint8_t *ct, *kin;
	size_t len;
};

static void forward_job_free(struct forward_job *j)
{
	wipe_free(j->ct, j->len);
	wipe_free(j->kin, j->len);
	free(j->h.key_ids);
	free(j);
}

static void *forward_main(void *arg)
{
	struct forward_job *j = arg;
	struct kmsd_node *n = j->node;
	char why[128] = "", ids[512], path[KMSD_PATH_MAX * (ETSI014_ID_MAX + 1)];
	enum kmsd_link_status st;
	unsigned status;

	st = relay_over(n, j->out, &j->h, j->ct, j->kin, why, sizeof(why));
	ids_text(&j->h, ids, sizeof(ids));
	route_text(&j->h, path, sizeof(path));
	if (st == KMSD_LINK_OK) {
		ipseq_log(IPSEQ_LOG_INFO, "relay %s: forwarded %s -> %s over %s (path %s), %u key(s) "
			  "of %u bits, %u link bits in and out", ids, j->in->cfg->peer_kme_id,
			  j->out->cfg->peer_kme_id, j->out->name, path, j->h.number, j->h.size,
			  j->h.number * j->h.bpk * (unsigned)j->out->store.block_bits);
		status = 0;
	} else {
		log_refusal(n, &j->h, "not forwarded", why);
		status = st == KMSD_LINK_UNAUTHORIZED ? 401 : st == KMSD_LINK_REFUSED ? 400 : 503;
		pthread_mutex_lock(&j->out->store.lock);
		j->out->relay.refused++;
		pthread_mutex_unlock(&j->out->store.lock);
		kmsd_routes_poke(n);
	}
	send_ack(&j->in->link, j->upstream_req, status, why);
	forward_job_free(j);
	atomic_fetch_sub(&n->forwards, 1);
	return NULL;
}

/* The link key the relay came in under: head blocks the master named (we are slave), or the
 * grant we made (we are master). 0; 1: refused, nothing consumed here (why); -1: the stores
 * diverged (drop the link). */
static int take_in_key(struct kmsd_kme *k, const struct relay_hdr *h, const uint8_t *block_ids,
		       uint8_t *kin_blocks, const char **why)
{
	struct kmsd_store *s = &k->store;
	struct kmsd_link *l = &k->link;
	size_t nblocks = (size_t)h->number * h->bpk;
	struct kmsd_relay_grant **gp, *g;
	int rc = 0;

	pthread_mutex_lock(&s->lock);
	if (h->bpk != kmsd_blocks_per_key(s, h->size)) {
		*why = "blocks per key do not fit this link";
		rc = 1;
	} else if (!k->is_link_master) {
		if (h->grant != 0) {
			*why = "a grant named to the link slave";
			rc = 1;
		} else if (kmsd_store_pop(s, nblocks, block_ids, NULL, kin_blocks) < 0) {
			*why = "names link blocks not at the head of our store (stores diverged)";
			rc = -1;
		}
	} else {
		for (gp = &l->grants; *gp && (*gp)->id != h->grant; gp = &(*gp)->next)
			;
		g = *gp;
		if (!g) {
			*why = "names no grant of ours (replayed, forged or expired)";
			rc = 1;
		} else {
			*gp = g->next;
			if (g->nblocks != nblocks || memcmp(g->ids, block_ids, nblocks * 16) != 0) {
				*why = "names other blocks than its grant (forged)";
				rc = 1;
			} else {
				memcpy(kin_blocks, g->bytes, nblocks * s->block_bytes);
			}
			wipe_free(g->bytes, g->nblocks * s->block_bytes);
			free(g->ids);
			free(g);
		}
	}
	if (rc == 0) {
		k->relay.keys_received += h->number;
		k->relay.key_bits += (uint64_t)h->number * h->size;
		k->relay.link_bits += (uint64_t)nblocks * s->block_bytes * 8;
	} else {
		k->relay.refused++;
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Who may send what: the route names the link's peer just before us, no node twice, and every
 * key_ID is new here (per destination: a multi-SAE key crosses a node once per destination). */
static const char *check_route(struct kmsd_kme *k, const struct relay_hdr *h)
{
	struct kmsd_node *n = k->node;
	unsigned i, j;

	if (h->hop == 0 || h->hop >= h->route_n)
		return "hop index outside the route";
	if (strcmp(h->route[h->hop], n->cfg->kme_id) != 0)
		return "route does not name this node as receiver";
	if (strcmp(h->route[h->hop - 1], k->cfg->peer_kme_id) != 0)
		return "route does not name the link's peer as sender (forged)";
	for (i = 0; i < h->route_n; i++)
		for (j = 0; j < i; j++)
			if (strcmp(h->route[i], h->route[j]) == 0)
				return "route names a node twice (loop)";
	if (h->hop + 1 < h->route_n && strcmp(h->route[h->route_n - 1], h->dst) != 0)
		return "route ends elsewhere than at its destination";
	if (h->hop + 1 == h->route_n && strcmp(h->dst, n->cfg->kme_id) != 0 &&
	    h->route_n >= KMSD_PATH_MAX)
		return "route too long";
	return NULL;
}

/* Destination: K_r = ciphertext XOR link key, reserved for each slave SAE. */
static unsigned deliver(struct kmsd_kme *k, const struct relay_hdr *h, const uint8_t *ct,
			const uint8_t *kin, const char **why)
{
	struct kmsd_node *n = k->node;
	size_t klen = h->size / 8, i, j;
	char src_of_master[ETSI014_ID_MAX + 1];
	uint8_t *key = wiped_alloc(klen);
	unsigned status = 0, s;

	if (!key) {
		*why = "out of memory";
		return 503;
	}
	for (s = 0; s < h->n_slaves; s++) {
		if (!kmsd_config_is_local_sae(n->cfg, h->slaves[s])) {
			*why = "slave SAE not attached to the destination";
			status = 401;
		}
	}
	if (!status && (!kmsd_config_remote_sae_node(n->cfg, h->master, src_of_master) ||
			strcmp(src_of_master, h->route[0]) != 0)) {
		*why = "master SAE not registered at the source node";
		status = 401;
	}
	pthread_mutex_lock(&n->relayed.lock);
	for (i = 0; !status && i < h->number; i++) {
		for (s = 0; s < h->n_slaves; s++) {
			if (kmsd_store_find_reserved_for(&n->relayed, h->key_ids + i * 16,
							 h->slaves[s])) {
				*why = "key_ID already held here (replayed)";
				status = 400;
			}
		}
	}
	for (i = 0; !status && i < h->number; i++) {
		for (j = 0; j < klen; j++)
			key[j] = ct[i * klen + j] ^ kin[i * klen + j];
		for (s = 0; s < h->n_slaves; s++)
			kmsd_store_reserve(&n->relayed, h->key_ids + i * 16, h->master,
					   h->slaves[s], key, klen, n->cfg->reservation_lifetime);
	}
	if (!status)
		n->relayed_keys_delivered += h->number;
	pthread_mutex_unlock(&n->relayed.lock);
	wipe_free(key, klen);
	return status;
}

int kmsd_relay_on_relay(struct kmsd_link *l, const uint8_t *p, size_t len)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_node *n = k->node;
	struct kmsd_rbuf r = {.p = p, .len = len};
	struct relay_hdr h;
	const uint8_t *block_ids = NULL, *ct = NULL;
	const char *why = NULL;
	uint8_t *kin_blocks = NULL, *kin = NULL;
	size_t klen, nblocks, block_bytes, i;
	unsigned version, status = 0;
	char ids[512], path[KMSD_PATH_MAX * (ETSI014_ID_MAX + 1)];
	int rc = 0;

	memset(&h, 0, sizeof(h));
	if (!n) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: RELAY on a link without a node");
		return -1;
	}
	version = kmsd_r_u8(&r);
	if (version != KMSD_RELAY_VERSION) {
		/* Another layout: its blocks cannot be found, so the stores may now differ. */
		h.req = kmsd_r_u32(&r);
		ipseq_log(IPSEQ_LOG_WARN, "relay from %s refused: relay version %u (we speak %u)",
			  k->cfg->peer_kme_id, version, KMSD_RELAY_VERSION);
		if (!r.err)
			send_ack(l, h.req, 400, "unsupported relay version");
		return -1;
	}
	if (read_relay(&r, &h, &block_ids, &ct, &why) < 0) {
		ipseq_log(IPSEQ_LOG_WARN, "relay from %s refused: malformed RELAY (%s); link "
			  "resynchronises", k->cfg->peer_kme_id, why);
		if (h.req)
			send_ack(l, h.req, 400, "malformed RELAY");
		free(h.key_ids);
		return -1;
	}
	kmsd_trace(n, "relay_in", h.key_ids, p, len);
	klen = h.size / 8;
	nblocks = (size_t)h.number * h.bpk;
	pthread_mutex_lock(&k->store.lock);
	block_bytes = k->store.block_bytes;
	pthread_mutex_unlock(&k->store.lock);
	kin_blocks = wiped_alloc(nblocks * block_bytes);
	kin = wiped_alloc((size_t)h.number * klen);
	if (!kin_blocks || !kin) {
		rc = -1;
		goto out;
	}
	rc = take_in_key(k, &h, block_ids, kin_blocks, &why);
	if (rc != 0) {
		status = 400;
		goto refuse;
	}
	for (i = 0; i < h.number; i++) { /* the first klen bytes of each key's blocks */
		memcpy(kin + i * klen, kin_blocks + i * h.bpk * block_bytes, klen);
		kmsd_trace(n, "link_key_in", h.key_ids + i * 16, kin + i * klen, klen);
	}
	why = check_route(k, &h);
	if (why) {
		status = 400;
		goto refuse;
	}
	for (i = 0; i < h.number; i++) {
		if (kmsd_node_seen(n, h.key_ids + i * 16, h.dst)) {
			why = "key_ID relayed through here before (replayed)";
			status = 400;
			goto refuse;
		}
	}
	if (strcmp(h.dst, n->cfg->kme_id) == 0) {
		status = deliver(k, &h, ct, kin, &why);
		if (status)
			goto refuse;
		ids_text(&h, ids, sizeof(ids));
		route_text(&h, path, sizeof(path));
		ipseq_log(IPSEQ_LOG_INFO, "relay %s: %u key(s) of %u bits from %s (path %s) reserved "
			  "for %s%s; last hop %s consumed %zu link bits", ids, h.number, h.size,
			  h.master, path, h.slaves[0], h.n_slaves > 1 ? " and others" : "", k->name,
			  nblocks * block_bytes * 8);
		send_ack(l, h.req, 0, "");
		goto out;
	}

	/* Forward: the route's next node, or (route ends here) our own route's. */
	{
		struct forward_job *j;
		struct kmsd_kme *out;
		pthread_t t;
		pthread_attr_t a;
		char next[ETSI014_ID_MAX + 1];

		if (h.hop + 1 < h.route_n) {
			snprintf(next, sizeof(next), "%s", h.route[h.hop + 1]);
		} else {
			struct kmsd_route rt;
			if (kmsd_route_lookup(n, h.dst, &rt) < 0 || rt.n < 2) {
				why = "no route onwards";
				status = 503;
				kmsd_routes_poke(n);
				goto refuse;
			}
			snprintf(next, sizeof(next), "%s", rt.path[1]);
			for (i = 0; i < h.route_n; i++) {
				if (strcmp(h.route[i], next) == 0) {
					why = "route onwards would loop";
					status = 503;
					goto refuse;
				}
			}
			snprintf(h.route[h.route_n], sizeof(h.route[0]), "%s", next);
			h.route_n++;
		}
		out = kmsd_node_link_to(n, next);
		if (!out || !atomic_load(&out->link.up)) {
			why = "link to the next hop is down";
			status = 503;
			kmsd_routes_poke(n);
			goto refuse;
		}
		if (atomic_fetch_add(&n->forwards, 1) >= MAX_FORWARDS) {
			atomic_fetch_sub(&n->forwards, 1);
			why = "too many relays in flight";
			status = 503;
			goto refuse;
		}
		j = calloc(1, sizeof(*j));
		if (!j) {
			atomic_fetch_sub(&n->forwards, 1);
			why = "out of memory";
			status = 503;
			goto refuse;
		}
		j->node = n;
		j->in = k;
		j->out = out;
		j->upstream_req = h.req;
		j->h = h;
		j->h.hop = h.hop + 1;
		j->len = (size_t)h.number * klen;
		j->ct = wiped_alloc(j->len);
		if (j->ct)
			memcpy(j->ct, ct, j->len);
		j->kin = kin;
		kin = NULL;
		h.key_ids = NULL; /* the job's now */
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		if (!j->ct || pthread_create(&t, &a, forward_main, j) != 0) {
			pthread_attr_destroy(&a);
			h.key_ids = j->h.key_ids;
			j->h.key_ids = NULL;
			forward_job_free(j);
			atomic_fetch_sub(&n->forwards, 1);
			why = "cannot start the forward";
			status = 503;
			goto refuse;
		}
		pthread_attr_destroy(&a);
		goto out;
	}

refuse:
	log_refusal(n, &h, rc < 0 ? "refused, link resynchronises" : "refused", why);
	send_ack(l, h.req, status ? status : 400, why);
out:
	wipe_free(kin_blocks, nblocks * block_bytes);
	wipe_free(kin, (size_t)h.number * klen);
	free(h.key_ids);
	return rc < 0 ? -1 : 0;
}

int kmsd_relay_on_ack(struct kmsd_link *l, const uint8_t *p, size_t len)
{
	struct kmsd_rbuf r = {.p = p, .len = len};
	struct kmsd_link_pending *pend;
	unsigned version = kmsd_r_u8(&r), status, n, i;
	uint32_t req = kmsd_r_u32(&r);
	const uint8_t *text;

	status = kmsd_r_u16(&r);
	n = kmsd_r_u8(&r);
	text = kmsd_r_bytes(&r, n);
	if (r.err || version != KMSD_RELAY_VERSION || r.off != r.len) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed RELAY_ACK from %s",
			  l->kme->cfg->peer_kme_id);
		return -1;
	}
	pthread_mutex_lock(&l->plock);
	pend = kmsd_link_pending_find(l, req);
	if (pend) {
		for (i = 0; i < n && i + 1 < sizeof(pend->why); i++)
			pend->why[i] = text[i] >= 0x20 && text[i] < 0x7f ? (char)text[i] : '?';
		pend->why[i] = '\0';
		kmsd_link_pending_complete(pend, status == 0     ? KMSD_LINK_OK
						 : status == 401 ? KMSD_LINK_UNAUTHORIZED
						 : status == 400 ? KMSD_LINK_REFUSED
								 : KMSD_LINK_UNAVAILABLE);
	}
	pthread_mutex_unlock(&l->plock);
	return 0;
}

void kmsd_relay_grants_drop(struct kmsd_link *l, int only_expired)
{
	struct kmsd_relay_grant **gp = &l->grants, *g;
	uint64_t now = ipseq_now_ms();
	size_t bb = l->kme->store.block_bytes;

	while ((g = *gp)) {
		if (only_expired && g->expires_ms > now) {
			gp = &g->next;
			continue;
		}
		*gp = g->next;
		wipe_free(g->bytes, g->nblocks * bb);
		free(g->ids);
		free(g);
	}
}

/* Master: the slave wants blocks for a relay it sends us. */
int kmsd_relay_on_alloc(struct kmsd_link *l, const uint8_t *p, size_t len)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_store *s = &k->store;
	struct kmsd_rbuf r = {.p = p, .len = len};
	unsigned version = kmsd_r_u8(&r), count = 0;
	uint32_t req = kmsd_r_u32(&r), nblocks = kmsd_r_u32(&r);
	struct kmsd_relay_grant *g = NULL, *x;
	struct kmsd_wbuf w = {0};
	uint16_t status = 0;
	int rc = 0;

	if (r.err || version != KMSD_RELAY_VERSION || r.off != r.len || nblocks == 0 ||
	    nblocks > KMSD_PER_REQUEST_MAX * 1024u) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed RELAY_ALLOC from %s",
			  k->cfg->peer_kme_id);
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	kmsd_relay_grants_drop(l, 1);
	for (x = l->grants; x; x = x->next)
		count++;
	if (!k->node || count >= MAX_GRANTS || s->count < nblocks) {
		status = 503;
	} else {
		g = calloc(1, sizeof(*g));
		if (g) {
			g->ids = malloc((size_t)nblocks * 16);
			g->bytes = wiped_alloc((size_t)nblocks * s->block_bytes);
		}
		if (!g || !g->ids || !g->bytes ||
		    kmsd_store_pop(s, nblocks, NULL, g->ids, g->bytes) < 0) {
			status = 503;
			if (g) {
				free(g->ids);
				free(g->bytes);
				free(g);
			}
			g = NULL;
		}
	}
	kmsd_w_u8(&w, KMSD_RELAY_VERSION);
	kmsd_w_u32(&w, req);
	kmsd_w_u16(&w, status);
	kmsd_w_u32(&w, nblocks);
	if (g) {
		g->id = req;
		g->nblocks = nblocks;
		g->expires_ms = ipseq_now_ms() + 2ull * k->cfg->link_timeout_ms;
		g->next = l->grants;
		l->grants = g;
		kmsd_w_bytes(&w, g->ids, (size_t)nblocks * 16);
	}
	if (w.err || kmsd_link_send(l, KMSD_MSG_RELAY_GRANT, w.p, w.len) < 0)
		rc = -1;
	pthread_mutex_unlock(&s->lock);
	kmsd_w_free(&w);
	return rc;
}

/* Slave: the master's blocks for our relay; take the same ones off our head. */
int kmsd_relay_on_grant(struct kmsd_link *l, const uint8_t *p, size_t len)
{
	struct kmsd_store *s = &l->kme->store;
	struct kmsd_rbuf r = {.p = p, .len = len};
	unsigned version = kmsd_r_u8(&r);
	uint32_t req = kmsd_r_u32(&r);
	uint16_t status = kmsd_r_u16(&r);
	uint32_t nblocks = kmsd_r_u32(&r);
	const uint8_t *ids = status ? NULL : kmsd_r_bytes(&r, (size_t)nblocks * 16);
	struct kmsd_link_pending *pend;
	uint8_t *scratch = NULL, *dst;
	int rc = 0;

	if (r.err || version != KMSD_RELAY_VERSION || r.off != r.len ||
	    nblocks > KMSD_PER_REQUEST_MAX * 1024u) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: malformed RELAY_GRANT from %s",
			  l->kme->cfg->peer_kme_id);
		return -1;
	}
	pthread_mutex_lock(&s->lock);
	pthread_mutex_lock(&l->plock);
	pend = kmsd_link_pending_find(l, req);
	if (status) {
		if (pend)
			kmsd_link_pending_complete(pend, KMSD_LINK_UNAVAILABLE);
	} else {
		if (pend && pend->nblocks == nblocks && pend->bytes) {
			dst = pend->bytes;
		} else {
			scratch = wiped_alloc((size_t)nblocks * s->block_bytes);
			dst = scratch;
		}
		if (!dst || kmsd_store_pop(s, nblocks, ids, NULL, dst) < 0) {
			ipseq_log(IPSEQ_LOG_ERR, "QKD link: stores diverged (RELAY_GRANT names "
				  "blocks we do not hold)");
			if (pend)
				kmsd_link_pending_complete(pend, KMSD_LINK_DESYNC);
			rc = -1;
		} else if (pend && dst == pend->bytes) {
			memcpy(pend->ids, ids, (size_t)nblocks * 16);
			kmsd_link_pending_complete(pend, KMSD_LINK_OK);
		} else if (pend) {
			kmsd_link_pending_complete(pend, KMSD_LINK_DESYNC);
		}
	}
	pthread_mutex_unlock(&l->plock);
	pthread_mutex_unlock(&s->lock);
	wipe_free(scratch, (size_t)nblocks * s->block_bytes);
	return rc;
}
