/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "rotation.h"

static const char hkdf_label[] = "IPSeQ ESP window key";

/*
 * HKDF-SHA256 (RFC 5869) written out with two HMAC contexts fetched once. OpenSSL 3.0's
 * EVP_KDF "HKDF" fetches HMAC and SHA-256 by name and allocates fresh HMAC contexts on every
 * derivation: under callgrind that was ~40k instructions per window key, more than the hashing
 * itself, on every gateway for every window (scripts/bench rotation-profile). A window key is
 * at most 32 bytes, so HKDF-Expand is a single block T(1) = HMAC(PRK, info || 0x01).
 */
int iq_hkdf_init(struct iq_hkdf *h)
{
	EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	OSSL_PARAM p[2];

	memset(h, 0, sizeof(*h));
	if (!mac)
		return -EIO;
	p[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
	p[1] = OSSL_PARAM_construct_end();
	h->extract = EVP_MAC_CTX_new(mac);
	h->expand = EVP_MAC_CTX_new(mac);
	EVP_MAC_free(mac);
	if (!h->extract || !h->expand || EVP_MAC_CTX_set_params(h->extract, p) != 1 ||
		EVP_MAC_CTX_set_params(h->expand, p) != 1) {
		iq_hkdf_free(h);
		return -EIO;
	}
	return 0;
}

int iq_hkdf_salt(struct iq_hkdf *h, const uint8_t *salt, size_t salt_len)
{
	return EVP_MAC_init(h->extract, salt, salt_len, NULL) == 1 ? 0 : -EIO;
}

int iq_hkdf_window_key(struct iq_hkdf *h, uint32_t spi, uint32_t epoch, const uint8_t *qkey,
					   size_t qkey_len, uint8_t *out, size_t out_len)
{
	uint8_t info[sizeof(hkdf_label) - 1 + 8 + 1], prk[32], t[32];
	size_t n;
	int ok;

	if (out_len > sizeof(t))
		return -EINVAL;
	memcpy(info, hkdf_label, sizeof(hkdf_label) - 1);
	iq_put32(info + sizeof(hkdf_label) - 1, spi);
	iq_put32(info + sizeof(hkdf_label) - 1 + 4, epoch);
	info[sizeof(info) - 1] = 1;
	/* Extract: PRK = HMAC(salt, IKM); the NULL key re-initialises with the salt's key */
	ok = EVP_MAC_init(h->extract, NULL, 0, NULL) == 1 &&
		 EVP_MAC_update(h->extract, qkey, qkey_len) == 1 &&
		 EVP_MAC_final(h->extract, prk, &n, sizeof(prk)) == 1 && n == sizeof(prk) &&
		 /* Expand: T(1) = HMAC(PRK, info || 0x01) */
		 EVP_MAC_init(h->expand, prk, sizeof(prk), NULL) == 1 &&
		 EVP_MAC_update(h->expand, info, sizeof(info)) == 1 &&
		 EVP_MAC_final(h->expand, t, &n, sizeof(t)) == 1 && n == sizeof(t);
	if (ok)
		memcpy(out, t, out_len);
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(t, sizeof(t));
	return ok ? 0 : -EIO;
}

void iq_hkdf_forget(struct iq_hkdf *h)
{
	static const uint8_t zero[32];

	/* the contexts hold the HMAC states of the salt and of the last PRK: overwrite them */
	if (h->extract)
		EVP_MAC_init(h->extract, zero, sizeof(zero), NULL);
	if (h->expand)
		EVP_MAC_init(h->expand, zero, sizeof(zero), NULL);
}

void iq_hkdf_free(struct iq_hkdf *h)
{
	/* EVP_MAC_CTX_free cleanses the HMAC states */
	EVP_MAC_CTX_free(h->extract);
	EVP_MAC_CTX_free(h->expand);
	h->extract = h->expand = NULL;
}

int iq_rot_derive(const uint8_t *salt, size_t salt_len, uint32_t spi, uint32_t epoch,
				  const uint8_t *qkey, size_t qkey_len, uint8_t *out, size_t out_len)
{
	struct iq_hkdf h;
	int ret;

	ret = iq_hkdf_init(&h);
	if (ret)
		return ret;
	ret = iq_hkdf_salt(&h, salt, salt_len);
	if (!ret)
		ret = iq_hkdf_window_key(&h, spi, epoch, qkey, qkey_len, out, out_len);
	iq_hkdf_free(&h);
	return ret;
}

int iq_rot_init(struct iq_rot *r, const struct iq_rotation *cfg, uint32_t spi, bool inbound,
				const uint8_t *child_key, size_t child_key_len, uint32_t replay_window)
{
	uint8_t zero[32] = { 0 };
	int i, ret;

	memset(r, 0, sizeof(*r));
	if (!cfg->enabled)
		return 0;
	if (child_key_len != 20 && child_key_len != 36)
		return -EINVAL;
	if (cfg->rpk_min < 1 || cfg->rpk_max < cfg->rpk_min || cfg->rpk_max >= (1u << 31))
		return -EINVAL;
	r->enabled = true;
	r->inbound = inbound;
	r->spi = spi;
	r->rpk_min = cfg->rpk_min;
	r->rpk_max = cfg->rpk_max;
	r->exhaust = cfg->exhaust;
	r->lookahead = cfg->lookahead ? cfg->lookahead : IQ_LOOKAHEAD_DEFAULT;
	if (r->lookahead > IQ_LOOKAHEAD_MAX)
		r->lookahead = IQ_LOOKAHEAD_MAX;
	/* an inbound SA keeps the keys of as many older windows as the replay window can span */
	if (inbound) {
		uint64_t back = (uint64_t)replay_window / cfg->rpk_min + 1;
		r->back = back > IQ_BACK_MAX ? IQ_BACK_MAX : (uint32_t)back;
	}
	r->rpk = cfg->rpk_min;
	r->key_len = child_key_len - 4;
	memcpy(r->hkdf_salt, child_key, child_key_len);
	r->hkdf_salt_len = child_key_len;
	for (i = 0; i < IQ_CTX_SLOTS; i++) {
		/* keyed with zeros until a window key arrives; slot_keyed guards their use */
		ret = iq_aead_init(&r->slot[i], !inbound, zero, r->key_len, child_key + r->key_len);
		if (ret) {
			iq_rot_free(r);
			return ret;
		}
	}
	return 0;
}

void iq_rot_free(struct iq_rot *r)
{
	int i;

	for (i = 0; i < IQ_CTX_SLOTS; i++)
		iq_aead_free(&r->slot[i]);
	OPENSSL_cleanse(r, sizeof(*r));
}

/* lowest epoch worth keeping */
static uint32_t keep_from(const struct iq_rot *r)
{
	if (!r->cur_valid)
		return r->epoch;
	return r->epoch >= r->back ? r->epoch - r->back : 0;
}

/* [keep_from, epoch + lookahead]; no wrap: the window never reaches IQ_EPOCH_LIMIT (it moves
 * only to epochs iq_rot_rx or iq_rot_tx accepted), so epoch + lookahead < 2^32 */
static bool in_keep_range(const struct iq_rot *r, uint32_t e)
{
	uint32_t lo = keep_from(r);

	return e >= lo && e <= r->epoch + r->lookahead && e < IQ_EPOCH_LIMIT &&
		   e - lo < IQ_KEYRING;
}

static bool in_cand_range(const struct iq_rot *r, uint32_t e)
{
	return r->inbound && e >= r->cand_first && e - r->cand_first < IQ_CAND_KEYS;
}

/* The key of epoch e the SA may use now: its window ring, or (inbound) a peeked candidate. */
static struct iq_wkey *key_for(struct iq_rot *r, uint32_t e)
{
	struct iq_wkey *k;

	if (in_keep_range(r, e))
		k = &r->ring[e & (IQ_KEYRING - 1)];
	else if (in_cand_range(r, e))
		k = &r->cand[e - r->cand_first];
	else
		return NULL;
	return k->valid && k->epoch == e ? k : NULL;
}

/* Forget the key schedules of contexts whose epoch no key backs any more (L3: the EVP context
 * holds the expanded key as long as it stays keyed). Re-keying with zeros overwrites it in
 * place and allocates nothing. */
static void slots_wipe_stale(struct iq_rot *r)
{
	static const uint8_t zero[32];
	int i;

	for (i = 0; i < IQ_CTX_SLOTS; i++) {
		if (!r->slot_keyed[i] || key_for(r, r->slot_epoch[i]))
			continue;
		iq_aead_rekey(&r->slot[i], zero);
		r->slot_keyed[i] = false;
	}
}

static void ring_wipe_below(struct iq_rot *r, uint32_t lo)
{
	int i;

	for (i = 0; i < IQ_KEYRING; i++) {
		if (r->ring[i].valid && r->ring[i].epoch < lo)
			OPENSSL_cleanse(&r->ring[i], sizeof(r->ring[i]));
	}
	slots_wipe_stale(r);
}

static void cand_wipe(struct iq_rot *r)
{
	OPENSSL_cleanse(r->cand, sizeof(r->cand));
	slots_wipe_stale(r);
}

/* The wiped ring slot a delivered key for epoch goes into, or NULL when it is not wanted
 * (rotation off, epoch out of the keep range, or already held). Counts the delivery. */
static struct iq_wkey *slot_for_delivery(struct iq_rot *r, uint32_t epoch)
{
	struct iq_wkey *k;

	if (!r->enabled)
		return NULL;
	r->keys_delivered++;
	if (!in_keep_range(r, epoch))
		return NULL;
	k = &r->ring[epoch & (IQ_KEYRING - 1)];
	if (k->valid && k->epoch == epoch)
		return NULL;
	OPENSSL_cleanse(k, sizeof(*k));
	r->keys_stored++;
	return k;
}

int iq_rot_store(struct iq_rot *r, uint32_t epoch, const uint8_t *key)
{
	struct iq_wkey *k = slot_for_delivery(r, epoch);

	if (!k)
		return 0;
	memcpy(k->key, key, r->key_len);
	k->epoch = epoch;
	k->valid = true;
	return 1;
}

int iq_rot_store_peeked(struct iq_rot *r, uint32_t epoch, const uint8_t *key)
{
	struct iq_wkey *k;

	if (!r->enabled || !r->inbound)
		return 0;
	if (in_keep_range(r, epoch))         /* the window moved there meanwhile */
		return iq_rot_store(r, epoch, key);
	if (!in_cand_range(r, epoch))
		return 0;
	k = &r->cand[epoch - r->cand_first];
	OPENSSL_cleanse(k, sizeof(*k));
	memcpy(k->key, key, r->key_len);
	k->epoch = epoch;
	k->valid = true;
	return 1;
}

int iq_rot_deliver(struct iq_rot *r, uint32_t epoch, const uint8_t *qkey, size_t qkey_len)
{
	struct iq_wkey *k = slot_for_delivery(r, epoch);
	int ret;

	if (!k)
		return 0;
	ret = iq_rot_derive(r->hkdf_salt, r->hkdf_salt_len, r->spi, epoch, qkey, qkey_len, k->key,
						r->key_len);
	if (ret) {
		OPENSSL_cleanse(k, sizeof(*k));
		r->keys_stored--;
		return ret;
	}
	k->epoch = epoch;
	k->valid = true;
	return 1;
}

void iq_rot_failed(struct iq_rot *r, uint32_t first, uint32_t count, uint64_t now_ms,
				   bool soft)
{
	if (!soft)
		r->key_failures++;
	if (first < r->requested_end)
		r->requested_end = first;
	/* back off: the provider said no (exhausted or down) or had nothing more ready */
	r->retry_at_ms = now_ms + (soft ? IQ_RETRY_SOFT_MS : IQ_RETRY_MS);
	(void)count;
}

/* The context for epoch e, keyed from its window key if it is not yet. Per packet this is
 * the slot check alone: a keyed slot always has its key behind it (every wipe of a key is
 * followed by slots_wipe_stale, and a held key is never replaced), so the key ring is looked at
 * only when a window starts (scripts/bench rotation-profile: ~150 instructions per packet
 * before). */
static struct iq_aead *slot_for(struct iq_rot *r, uint32_t e)
{
	unsigned i = e & (IQ_CTX_SLOTS - 1);
	struct iq_wkey *k;

	if (r->slot_keyed[i] && r->slot_epoch[i] == e)
		return &r->slot[i];
	k = key_for(r, e);
	if (!k)
		return NULL;
	if (iq_aead_rekey(&r->slot[i], k->key)) {
		r->slot_keyed[i] = false;
		return NULL;
	}
	r->slot_keyed[i] = true;
	r->slot_epoch[i] = e;
	return &r->slot[i];
}

struct iq_aead *iq_rot_tx(struct iq_rot *r, uint32_t *epoch)
{
	struct iq_aead *a;
	bool due = !r->cur_valid || r->window_pkts >= r->window_rpk;

	/* a window ends after the rpk fixed when it started (due), or earlier once the rpk loop
	 * has lowered rpk below the packets it holds (after idle it starts at rpk_max: rpkctl.h) */
	if (due || r->window_pkts >= r->rpk) {
		uint32_t next = r->cur_valid ? r->epoch + 1 : r->epoch;

		/* never past the epoch space: at the limit the exhaustion policy holds (the rekey
		 * was asked for long before, from IQ_EPOCH_REKEY on) */
		a = next < IQ_EPOCH_LIMIT ? slot_for(r, next) : NULL;
		if (a) {
			if (r->cur_valid) {
				r->windows++;
				/* the sender never needs an old window key again */
				ring_wipe_below(r, next);
			}
			r->epoch = next;
			r->cur_valid = true;
			r->window_pkts = 0;
			r->window_rpk = r->rpk;
			if (next >= IQ_EPOCH_REKEY)
				r->rekey_due = true;
		} else if (!due) {
			/* ending early, but the next key is not there: the window keeps its own rpk */
		} else if (r->cur_valid && r->exhaust == IQ_EXHAUST_REUSE &&
				   r->window_pkts < r->rpk_max) {
			r->reuse_packets++;
		} else {
			r->stall_drops++;
			return NULL;
		}
	}
	a = slot_for(r, r->epoch);
	if (!a) {
		r->stall_drops++;
		return NULL;
	}
	r->window_pkts++;
	*epoch = r->epoch;
	return a;
}

struct iq_aead *iq_rot_rx(struct iq_rot *r, uint32_t e)
{
	struct iq_aead *a;

	/* an epoch no SA reaches, or further ahead than any provider holds keys: forged or
	 * broken, not worth a look-up */
	if (e >= IQ_EPOCH_LIMIT || (e > r->epoch && e - r->epoch > IQ_JUMP_MAX)) {
		r->epoch_drops++;
		return NULL;
	}
	a = slot_for(r, e);
	if (a)
		return a;
	/* the sender may have run ahead further than our lookahead (its packets were lost for a
	 * while): remember, iq_rot_peek looks for keys there after IQ_FAR_PEEK such packets.
	 * Only authentication (iq_rot_rx_ok) moves the window. */
	if (e > r->epoch && e - r->epoch > r->lookahead) {
		r->far_epoch = e;
		r->far_count++;
	}
	r->nokey_drops++;
	return NULL;
}

/* After the window moved: candidates now in the keep range go to the ring, all are wiped. */
static void cand_adopt(struct iq_rot *r)
{
	int i;

	for (i = 0; i < IQ_CAND_KEYS; i++) {
		struct iq_wkey *c = &r->cand[i];

		if (c->valid && in_keep_range(r, c->epoch)) {
			struct iq_wkey *k = &r->ring[c->epoch & (IQ_KEYRING - 1)];
			if (!(k->valid && k->epoch == c->epoch))
				memcpy(k, c, sizeof(*k));
		}
	}
	cand_wipe(r);
}

void iq_rot_rx_ok(struct iq_rot *r, uint32_t e)
{
	r->far_count = 0;
	if (r->cur_valid && e <= r->epoch)
		return;
	if (r->cur_valid) {
		r->windows += e - r->epoch;
		if (e - r->epoch > r->lookahead)
			r->jumps++;
	}
	r->epoch = e;
	r->cur_valid = true;
	ring_wipe_below(r, keep_from(r));
	cand_adopt(r);
}

uint32_t iq_rot_want(struct iq_rot *r, uint64_t now_ms, uint32_t *first)
{
	uint32_t ahead, count;

	if (!r->enabled || now_ms < r->retry_at_ms)
		return 0;
	/* ask when a quarter of the lookahead is used up (or nothing is there): three quarters
	 * of it are the slack for the provider's answer (the helper skips keys we hold, so the
	 * repeated part of a request costs little) */
	ahead = r->requested_end > r->epoch ? r->requested_end - r->epoch : 0;
	if (ahead > r->lookahead - r->lookahead / 4)
		return 0;
	count = IQ_EPOCH_LIMIT - r->epoch < r->lookahead ? IQ_EPOCH_LIMIT - r->epoch : r->lookahead;
	if (!count)
		return 0;
	*first = r->epoch;
	r->requested_end = r->epoch + count;
	r->key_requests++;
	return count;
}

uint32_t iq_rot_peek(struct iq_rot *r, uint64_t now_ms, uint32_t *first)
{
	uint32_t count;

	if (!r->enabled || !r->inbound || r->far_count < IQ_FAR_PEEK || now_ms < r->peek_at_ms)
		return 0;
	/* far_epoch passed iq_rot_rx's bounds: below IQ_EPOCH_LIMIT, ahead of the window */
	cand_wipe(r);
	r->cand_first = r->far_epoch;
	r->far_count = 0;
	r->peek_at_ms = now_ms + IQ_PEEK_MS;
	r->peeks++;
	count = IQ_EPOCH_LIMIT - r->cand_first;
	if (count > IQ_CAND_KEYS)
		count = IQ_CAND_KEYS;
	*first = r->cand_first;
	return count;
}

uint32_t iq_rot_keys_ready(const struct iq_rot *r)
{
	uint32_t n = 0, e;

	if (!r->enabled)
		return 0;
	/* no wrap: epoch + lookahead < 2^32 (rotation.h) */
	for (e = r->epoch + (r->cur_valid ? 1 : 0); e <= r->epoch + r->lookahead; e++) {
		const struct iq_wkey *k = &r->ring[e & (IQ_KEYRING - 1)];
		if (!(k->valid && k->epoch == e))
			break;
		n++;
	}
	return n;
}

uint32_t iq_rot_held(const struct iq_rot *r, uint32_t from)
{
	uint32_t n = 0;

	while (n < IQ_KEYRING) {
		const struct iq_wkey *k = &r->ring[(from + n) & (IQ_KEYRING - 1)];
		if (!(k->valid && k->epoch == from + n))
			break;
		n++;
	}
	return n;
}
