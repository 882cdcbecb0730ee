/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Key rotation: derivation, window switching, reordering across windows, exhaustion, prefetch,
 * catching up, forged epochs, the end of the epoch space. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "replay.h"
#include "rotation.h"

/* independent HKDF (RFC 5869) from one-shot HMACs */
static void hkdf_ref(const uint8_t *salt, size_t sl, const uint8_t *ikm, size_t il,
					 const uint8_t *info, size_t infol, uint8_t *okm, size_t L)
{
	uint8_t prk[32], t[32], buf[32 + 256 + 1];
	unsigned int len;
	size_t done = 0, tl = 0;
	uint8_t i = 1;

	HMAC(EVP_sha256(), salt, sl, ikm, il, prk, &len);
	while (done < L) {
		size_t n;
		memcpy(buf, t, tl);
		memcpy(buf + tl, info, infol);
		buf[tl + infol] = i++;
		HMAC(EVP_sha256(), prk, 32, buf, tl + infol + 1, t, &len);
		tl = 32;
		n = L - done < 32 ? L - done : 32;
		memcpy(okm + done, t, n);
		done += n;
	}
}

START_TEST(test_hkdf)
{
	/* RFC 5869 test case 1 validates the reference */
	uint8_t ikm[22], salt[13], info[10], okm[42];
	static const uint8_t exp[42] = {
		0x3c, 0xb2, 0x5f, 0x25, 0xfa, 0xac, 0xd5, 0x7a, 0x90, 0x43, 0x4f, 0x64, 0xd0, 0x36,
		0x2f, 0x2a, 0x2d, 0x2d, 0x0a, 0x90, 0xcf, 0x1a, 0x5a, 0x4c, 0x5d, 0xb0, 0x2d, 0x56,
		0xec, 0xc4, 0xc5, 0xbf, 0x34, 0x00, 0x72, 0x08, 0xd5, 0xb8, 0x87, 0x18, 0x58, 0x65 };
	uint8_t child[36], q[32], k1[32], k2[32], lbl[28];
	int i;

	memset(ikm, 0x0b, sizeof(ikm));
	for (i = 0; i < 13; i++)
		salt[i] = i;
	for (i = 0; i < 10; i++)
		info[i] = 0xf0 + i;
	hkdf_ref(salt, 13, ikm, 22, info, 10, okm, 42);
	ck_assert_mem_eq(okm, exp, 42);

	/* our window key = HKDF(salt = CHILD_SA key, IKM = quantum key,
	 *                       info = "IPSeQ ESP window key" || SPI || epoch) */
	for (i = 0; i < 36; i++)
		child[i] = 0x30 + i;
	for (i = 0; i < 32; i++)
		q[i] = 0xa0 ^ i;
	memcpy(lbl, "IPSeQ ESP window key", 20);
	iq_put32(lbl + 20, 0xc0ffee01);
	iq_put32(lbl + 24, 77);
	hkdf_ref(child, 36, q, 32, lbl, 28, k1, 32);
	ck_assert_int_eq(iq_rot_derive(child, 36, 0xc0ffee01, 77, q, 32, k2, 32), 0);
	ck_assert_mem_eq(k1, k2, 32);
	/* AES-128: first 16 bytes of the same output, salt = the 20-byte CHILD_SA key */
	hkdf_ref(child, 20, q, 32, lbl, 28, k1, 16);
	ck_assert_int_eq(iq_rot_derive(child, 20, 0xc0ffee01, 77, q, 32, k2, 16), 0);
	ck_assert_mem_eq(k1, k2, 16);
	/* other epoch, other SPI, other CHILD_SA key: other key */
	ck_assert_int_eq(iq_rot_derive(child, 36, 0xc0ffee01, 78, q, 32, k1, 32), 0);
	ck_assert_mem_ne(k1, k2, 16);
	ck_assert_int_eq(iq_rot_derive(child, 36, 0xc0ffee02, 77, q, 32, k1, 32), 0);
	ck_assert_mem_ne(k1, k2, 16);
	child[0] ^= 1;
	ck_assert_int_eq(iq_rot_derive(child, 36, 0xc0ffee01, 77, q, 32, k1, 32), 0);
	ck_assert_mem_ne(k1, k2, 16);
}
END_TEST

/* The key helper's path: one HMAC pair for many keys, the salt set once per SA batch, the PRK's
 * state overwritten between keys and after the batch. Every key must equal the reference, also
 * after a batch of another SA (other salt length) and after iq_hkdf_forget. */
START_TEST(test_hkdf_batch)
{
	uint8_t salt[2][36], q[32], lbl[28], ref[32], out[32];
	size_t salt_len[2] = { 36, 20 }, key_len[2] = { 32, 16 };
	struct iq_hkdf h;
	int round, s, e, i;

	for (i = 0; i < 36; i++) {
		salt[0][i] = 0x30 + i;
		salt[1][i] = 0x90 ^ i;
	}
	ck_assert_int_eq(iq_hkdf_init(&h), 0);
	for (round = 0; round < 2; round++) {
		for (s = 0; s < 2; s++) {
			ck_assert_int_eq(iq_hkdf_salt(&h, salt[s], salt_len[s]), 0);
			for (e = 0; e < 5; e++) {
				for (i = 0; i < 32; i++)
					q[i] = (uint8_t)(e * 31 + i + s);
				memcpy(lbl, "IPSeQ ESP window key", 20);
				iq_put32(lbl + 20, 0xc0ffee00 + s);
				iq_put32(lbl + 24, 100 + e);
				hkdf_ref(salt[s], salt_len[s], q, 32, lbl, 28, ref, key_len[s]);
				memset(out, 0, sizeof(out));
				ck_assert_int_eq(iq_hkdf_window_key(&h, 0xc0ffee00 + s, 100 + e, q, 32, out,
													 key_len[s]), 0);
				ck_assert_mem_eq(out, ref, key_len[s]);
			}
			iq_hkdf_forget(&h);
		}
	}
	ck_assert_int_eq(iq_hkdf_window_key(&h, 1, 1, q, 32, out, 33), -EINVAL);
	iq_hkdf_free(&h);
}
END_TEST

static const uint8_t child_key[20] = { 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
									   0xde, 0xad, 0xbe, 0xef };

static void qkey(uint32_t epoch, uint8_t *k)
{
	int i;

	for (i = 0; i < 32; i++)
		k[i] = (uint8_t)(epoch * 31 + i * 7 + 3);
}

static void deliver(struct iq_rot *r, uint32_t from, uint32_t to)
{
	uint8_t k[32];
	uint32_t e;

	for (e = from; e <= to; e++) {
		qkey(e, k);
		iq_rot_deliver(r, e, k, 32);
	}
}

#define NPKT 40
struct pkt {
	uint8_t b[128];
	size_t len;
	uint32_t epoch;
	uint64_t seq;
};

static int receive(struct iq_rot *rx, struct iq_replay *rp, struct pkt *p)
{
	uint8_t buf[128], nh;
	struct iq_aead *a;
	uint64_t seq;
	int ilen;

	memcpy(buf, p->b, p->len);
	if (iq_replay_check(rp, iq_get32(buf + 4), false, &seq) != IQ_REPLAY_OK)
		return -100;
	a = iq_rot_rx(rx, iq_get32(buf + 8));
	if (!a)
		return -200;
	ilen = iq_esp_open(a, buf, p->len, seq, false, &nh);
	if (ilen < 0)
		return ilen;
	iq_replay_update(rp, seq);
	iq_rot_rx_ok(rx, iq_get32(buf + 8));
	return ilen;
}

START_TEST(test_windows_and_reordering)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 4, .rpk_max = 4 };
	struct iq_rot tx, rx;
	struct iq_replay rp;
	static struct pkt p[NPKT];
	uint64_t seq;
	int i;
	/* order with swaps across every window boundary (3<->4, 7<->8, ...) and a late packet */
	int order[NPKT];

	ck_assert_int_eq(iq_rot_init(&tx, &cfg, 0x1000, false, child_key, 20, 0), 0);
	ck_assert_int_eq(iq_rot_init(&rx, &cfg, 0x1000, true, child_key, 20, 1024), 0);
	ck_assert_int_eq(iq_replay_init(&rp, 1024), 0);
	deliver(&tx, 0, 20);
	deliver(&rx, 0, 20);

	for (i = 0, seq = 1; i < NPKT; i++, seq++) {
		uint32_t epoch;
		uint8_t iv[8];
		struct iq_aead *a = iq_rot_tx(&tx, &epoch);

		ck_assert_ptr_nonnull(a);
		ck_assert_uint_eq(epoch, i / 4);           /* a new window every rpk packets */
		iq_put32(iv, epoch);
		iq_put32(iv + 4, (uint32_t)seq);
		memset(p[i].b + IQ_ESP_OFF, 0x45, 40);
		p[i].len = iq_esp_seal(a, p[i].b, 40, 4, 0x1000, seq, false, iv);
		p[i].epoch = epoch;
		p[i].seq = seq;
	}
	ck_assert_uint_eq(tx.windows, NPKT / 4 - 1);
	/* the sender wiped the keys of windows it left */
	ck_assert(!(tx.ring[0].valid && tx.ring[0].epoch == 0));

	for (i = 0; i < NPKT; i++)
		order[i] = i;
	for (i = 3; i + 1 < NPKT; i += 4) {
		int t = order[i];
		order[i] = order[i + 1];
		order[i + 1] = t;
	}
	/* packet 9 (window 2) arrives only after window 4 started */
	memmove(order + 9, order + 10, (17 - 9) * sizeof(int));
	order[17] = 9;
	for (i = 0; i < NPKT; i++)
		ck_assert_int_eq(receive(&rx, &rp, &p[order[i]]), 40);
	ck_assert_uint_eq(rx.epoch, (NPKT - 1) / 4);
	/* replays of any window are dropped by the (single) replay window */
	for (i = 0; i < NPKT; i++)
		ck_assert_int_eq(receive(&rx, &rp, &p[i]), -100);
	/* a forged epoch in the IV: the key of another window does not authenticate */
	{
		struct pkt f = p[NPKT - 1];
		struct iq_replay fresh;
		ck_assert_int_eq(iq_replay_init(&fresh, 1024), 0);
		iq_put32(f.b + 8, p[NPKT - 1].epoch - 1);
		ck_assert_int_eq(receive(&rx, &fresh, &f), IQ_ESP_EAUTH);
		/* an epoch nobody has a key for */
		iq_put32(f.b + 8, 5000);
		ck_assert_int_eq(receive(&rx, &fresh, &f), -200);
		iq_replay_free(&fresh);
	}
	iq_rot_free(&tx);
	iq_rot_free(&rx);
	iq_replay_free(&rp);
}
END_TEST

/* a window key never protects more than rpk_max packets; STALL never extends a window */
START_TEST(test_exhaustion)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 4, .rpk_max = 10,
							   .exhaust = _i ? IQ_EXHAUST_STALL : IQ_EXHAUST_REUSE };
	struct iq_rot tx;
	uint32_t epoch, n_e1 = 0;
	int i, sent = 0, dropped = 0;

	ck_assert_int_eq(iq_rot_init(&tx, &cfg, 0x2000, false, child_key, 20, 0), 0);
	/* no key at all: nothing goes out, whatever the policy */
	ck_assert_ptr_null(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(tx.stall_drops, 1);
	deliver(&tx, 0, 1);
	for (i = 0; i < 30; i++) {
		if (iq_rot_tx(&tx, &epoch)) {
			sent++;
			if (epoch == 1)
				n_e1++;
		} else {
			dropped++;
		}
	}
	if (cfg.exhaust == IQ_EXHAUST_REUSE) {
		ck_assert_uint_eq(n_e1, 10);           /* bounded by rpk_max */
		ck_assert_uint_eq(tx.reuse_packets, 6);
		ck_assert_int_eq(sent, 14);
	} else {
		ck_assert_uint_eq(n_e1, 4);            /* exactly rpk */
		ck_assert_uint_eq(tx.reuse_packets, 0);
		ck_assert_int_eq(sent, 8);
	}
	ck_assert_uint_eq(tx.stall_drops, 1 + dropped);
	/* a key arrives: traffic resumes in the next window at once */
	deliver(&tx, 2, 2);
	ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, 2);
	iq_rot_free(&tx);
}
END_TEST

START_TEST(test_prefetch)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 1, .rpk_max = 1, .lookahead = 16 };
	struct iq_rot tx;
	uint32_t first, n, epoch;
	int i;

	ck_assert_int_eq(iq_rot_init(&tx, &cfg, 0x3000, false, child_key, 20, 0), 0);
	n = iq_rot_want(&tx, 0, &first);
	ck_assert_uint_eq(first, 0);
	ck_assert_uint_eq(n, 16);                  /* the lookahead, from the current window */
	ck_assert_uint_eq(iq_rot_want(&tx, 0, &first), 0);   /* already asked */
	deliver(&tx, 0, 15);
	ck_assert_uint_eq(iq_rot_keys_ready(&tx), 16);
	for (i = 0; i < 3; i++)
		ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, 2);
	ck_assert_uint_eq(iq_rot_want(&tx, 0, &first), 0);   /* not yet a quarter used */
	for (i = 0; i < 2; i++)
		ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, 4);
	/* always from the current window (never beyond what the provider may have assigned) */
	n = iq_rot_want(&tx, 0, &first);
	ck_assert_uint_eq(first, epoch);
	ck_assert_uint_eq(n, 16);
	ck_assert_uint_eq(iq_rot_held(&tx, first), 12);      /* 4..15: the helper skips these */
	/* keys already held come again and are ignored */
	deliver(&tx, 4, 19);
	ck_assert_uint_eq(tx.keys_delivered, 16 + 16);
	ck_assert_uint_eq(iq_rot_held(&tx, first), 16);
	for (i = 0; i < 5; i++)
		ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, 9);
	ck_assert_uint_gt(iq_rot_want(&tx, 0, &first), 0);
	/* a partial answer: ask again soon (soft), not counted as a failure */
	iq_rot_failed(&tx, 12, 13, 1000, true);     /* only 9..11 were ready */
	ck_assert_uint_eq(tx.key_failures, 0);
	ck_assert_uint_eq(iq_rot_want(&tx, 1005, &first), 0);
	ck_assert_uint_gt(iq_rot_want(&tx, 1011, &first), 0);
	/* the provider failed: ask again, but only after a longer back-off */
	iq_rot_failed(&tx, first, 16, 2000, false);
	ck_assert_uint_eq(tx.key_failures, 1);
	ck_assert_uint_eq(iq_rot_want(&tx, 2050, &first), 0);
	n = iq_rot_want(&tx, 2200, &first);
	ck_assert_uint_eq(first, epoch);
	ck_assert_uint_gt(n, 0);
	/* keys far outside the window are not kept */
	ck_assert_int_eq(iq_rot_deliver(&tx, 500, child_key, 20), 0);
	iq_rot_free(&tx);
}
END_TEST

/* an ESP packet of window `epoch` as the sender seals it (genuine), or with a key nobody has */
static void seal_pkt(struct pkt *p, uint32_t spi, uint32_t epoch, uint64_t seq, bool genuine)
{
	uint8_t q[32], k[16], iv[8];
	struct iq_aead a;

	qkey(epoch, q);
	if (!genuine)
		q[0] ^= 0x80;
	ck_assert_int_eq(iq_rot_derive(child_key, 20, spi, epoch, q, 32, k, 16), 0);
	ck_assert_int_eq(iq_aead_init(&a, true, k, 16, child_key + 16), 0);
	iq_put32(iv, epoch);
	iq_put32(iv + 4, (uint32_t)seq);
	memset(p->b + IQ_ESP_OFF, 0x45, 40);
	p->len = iq_esp_seal(&a, p->b, 40, 4, spi, seq, false, iv);
	p->epoch = epoch;
	p->seq = seq;
	iq_aead_free(&a);
}

/* the key a peek at the provider returns for an epoch (the helper derives it) */
static void store_peeked(struct iq_rot *r, uint32_t from, uint32_t count)
{
	uint8_t q[32], k[32];
	uint32_t e;

	for (e = from; e < from + count; e++) {
		qkey(e, q);
		ck_assert_int_eq(iq_rot_derive(child_key, 20, r->spi, e, q, 32, k, r->key_len), 0);
		iq_rot_store_peeked(r, e, k);
	}
}

/* the sender ran far ahead (its packets were lost longer than the lookahead): the receiver
 * peeks at the keys there (releasing nothing) and moves only when a packet authenticates */
START_TEST(test_receiver_catches_up)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 4, .rpk_max = 4, .lookahead = 16 };
	struct iq_rot rx;
	struct iq_replay rp;
	struct pkt p;
	uint32_t first, n;
	int i;

	ck_assert_int_eq(iq_rot_init(&rx, &cfg, 0x4000, true, child_key, 20, 1024), 0);
	ck_assert_int_eq(iq_replay_init(&rp, 1024), 0);
	ck_assert_uint_eq(iq_rot_want(&rx, 0, &first), 16);
	deliver(&rx, 0, 15);
	seal_pkt(&p, 0x4000, 0, 1, true);
	ck_assert_int_eq(receive(&rx, &rp, &p), 40);
	/* genuine packets of window 1000 without a key: no peek before IQ_FAR_PEEK of them */
	for (i = 0; i < IQ_FAR_PEEK - 1; i++) {
		seal_pkt(&p, 0x4000, 1000, 100 + i, true);
		ck_assert_int_eq(receive(&rx, &rp, &p), -200);
	}
	ck_assert_uint_eq(iq_rot_peek(&rx, 0, &first), 0);
	seal_pkt(&p, 0x4000, 1000, 200, true);
	ck_assert_int_eq(receive(&rx, &rp, &p), -200);
	n = iq_rot_peek(&rx, 0, &first);
	ck_assert_uint_eq(first, 1000);
	ck_assert_uint_eq(n, IQ_CAND_KEYS);
	ck_assert_uint_eq(rx.peeks, 1);
	/* nothing moved, and the regular requests still start at the current window */
	ck_assert_uint_eq(rx.epoch, 0);
	ck_assert_ptr_nonnull(iq_rot_rx(&rx, 1));
	rx.requested_end = 0;
	ck_assert_uint_eq(iq_rot_want(&rx, 0, &first), 16);
	ck_assert_uint_eq(first, 0);
	/* the peeked keys are candidates only; the window moves with the first authentic packet */
	store_peeked(&rx, 1000, IQ_CAND_KEYS);
	ck_assert_uint_eq(rx.epoch, 0);
	seal_pkt(&p, 0x4000, 1001, 300, true);
	ck_assert_int_eq(receive(&rx, &rp, &p), 40);
	ck_assert_uint_eq(rx.epoch, 1001);
	ck_assert_uint_eq(rx.jumps, 1);
	/* the candidates became window keys, the old windows are gone */
	ck_assert_ptr_nonnull(iq_rot_rx(&rx, 1000));
	ck_assert_ptr_nonnull(iq_rot_rx(&rx, 1015));
	ck_assert_ptr_null(iq_rot_rx(&rx, 1));
	ck_assert_uint_eq(iq_rot_held(&rx, 1001), IQ_CAND_KEYS - 1);
	/* and the regular requests follow from the new window */
	n = iq_rot_want(&rx, 0, &first);
	ck_assert_uint_eq(first, 1001);
	ck_assert_uint_eq(n, 16);
	iq_replay_free(&rp);
	iq_rot_free(&rx);
}
END_TEST

/* forged packets (right SPI, fresh sequence numbers, any epoch) change no key state: not the
 * window, not the ring, not what is asked of the provider; even when the provider holds real
 * keys for a forged epoch (peeked), a forgery does not authenticate and moves nothing */
START_TEST(test_forged_epochs_move_nothing)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 4, .rpk_max = 4, .lookahead = 16 };
	static const uint32_t forged[] = { 6, 7, 20, 21, 40, 1000, 5 + IQ_JUMP_MAX,
									   6 + IQ_JUMP_MAX, 0x7fffffff, IQ_EPOCH_LIMIT - 1,
									   IQ_EPOCH_LIMIT, 0xfffffff0, 0xffffffff };
	struct iq_rot rx;
	struct iq_replay rp;
	struct pkt p;
	uint32_t first, n, held;
	uint64_t seq = 1000;
	size_t i;
	int round;

	ck_assert_int_eq(iq_rot_init(&rx, &cfg, 0x5000, true, child_key, 20, 1024), 0);
	ck_assert_int_eq(iq_replay_init(&rp, 1024), 0);
	ck_assert_uint_eq(iq_rot_want(&rx, 0, &first), 16);
	deliver(&rx, 0, 15);
	seal_pkt(&p, 0x5000, 5, 1, true);
	ck_assert_int_eq(receive(&rx, &rp, &p), 40);
	held = iq_rot_held(&rx, 0);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
			int k;
			for (k = 0; k < 2 * IQ_FAR_PEEK; k++) {
				seal_pkt(&p, 0x5000, forged[i], seq++, false);
				ck_assert_int_lt(receive(&rx, &rp, &p), 0);
			}
			/* a peek (non-destructive) may follow; give it the real keys */
			n = iq_rot_peek(&rx, (uint64_t)(round * 100 + i) * IQ_PEEK_MS, &first);
			if (n) {
				ck_assert_uint_le(first + n, IQ_EPOCH_LIMIT);
				ck_assert_uint_le(first - rx.epoch, IQ_JUMP_MAX);
				store_peeked(&rx, first, n);
			}
		}
	}
	ck_assert_uint_eq(rx.epoch, 5);
	ck_assert_uint_eq(rx.jumps, 0);
	ck_assert_uint_eq(iq_rot_held(&rx, 0), held);
	ck_assert_uint_gt(rx.epoch_drops, 0);
	ck_assert_uint_gt(rx.peeks, 0);
	/* what the provider is asked for still starts at the genuine window */
	rx.requested_end = 0;
	ck_assert_uint_eq(iq_rot_want(&rx, 0, &first), 16);
	ck_assert_uint_eq(first, 5);
	/* the replay window never saw a forged sequence number; genuine traffic goes on */
	ck_assert_int_eq(iq_replay_check(&rp, 1000, false, &seq), IQ_REPLAY_OK);
	seal_pkt(&p, 0x5000, 6, 2, true);
	ck_assert_int_eq(receive(&rx, &rp, &p), 40);
	ck_assert_uint_eq(rx.epoch, 6);
	/* the window moved: candidate keys and stale contexts are wiped (L3) */
	for (i = 0; i < IQ_CAND_KEYS; i++)
		ck_assert(!rx.cand[i].valid);
	for (i = 0; i < IQ_CTX_SLOTS; i++)
		ck_assert(!rx.slot_keyed[i] || (rx.slot_epoch[i] >= 5 && rx.slot_epoch[i] <= 6 + 16));
	iq_replay_free(&rp);
	iq_rot_free(&rx);
}
END_TEST

/* What slot_for relies on to skip the key ring per packet: a keyed context always has its
 * window key (ring or candidate) behind it, through window moves, deliveries, far packets,
 * peeks and adoptions. A fixed pseudo-random walk over both directions. */
static void assert_slots_backed(const struct iq_rot *r)
{
	int i;

	for (i = 0; i < IQ_CTX_SLOTS; i++) {
		uint32_t e = r->slot_epoch[i];
		const struct iq_wkey *k = &r->ring[e & (IQ_KEYRING - 1)];
		bool backed = k->valid && k->epoch == e;

		if (!backed && r->inbound && e >= r->cand_first && e - r->cand_first < IQ_CAND_KEYS)
			backed = r->cand[e - r->cand_first].valid && r->cand[e - r->cand_first].epoch == e;
		ck_assert_msg(!r->slot_keyed[i] || backed, "slot %d keyed for epoch %u without its key",
					  i, e);
	}
}

START_TEST(test_keyed_slots_backed)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 3, .rpk_max = 3, .lookahead = 16,
							   .exhaust = IQ_EXHAUST_STALL };
	struct iq_rot tx, rx;
	uint32_t seed = 12345, first, n, epoch, e;
	int step, switches = 0, peeks = 0, jumps;

	ck_assert_int_eq(iq_rot_init(&tx, &cfg, 0x7000, false, child_key, 20, 0), 0);
	ck_assert_int_eq(iq_rot_init(&rx, &cfg, 0x7000, true, child_key, 20, 64), 0);
	for (step = 0; step < 4000; step++) {
		uint32_t op;

		seed = seed * 1103515245u + 12345u;
		op = (seed >> 16) % 100;
		if (op < 40) {                                  /* send */
			uint64_t w = tx.windows;
			iq_rot_tx(&tx, &epoch);
			switches += tx.windows != w;
		} else if (op < 50) {                           /* keys for the sender arrive */
			n = iq_rot_want(&tx, (uint64_t)step * 1000, &first);
			if (n)
				deliver(&tx, first, first + n / 2 + (seed >> 8) % (n / 2 + 1));
		} else if (op < 60) {                           /* keys for the receiver arrive */
			n = iq_rot_want(&rx, (uint64_t)step * 1000, &first);
			if (n)
				deliver(&rx, first, first + n - 1);
		} else if (op < 90) {                           /* a packet near the window */
			e = rx.epoch + (seed >> 4) % 24;
			e = e >= 4 ? e - 4 : e;
			if (iq_rot_rx(&rx, e) && (seed & 0x100))
				iq_rot_rx_ok(&rx, e);                   /* it authenticated */
		} else if (op < 97) {                           /* a burst far beyond the lookahead */
			int k;
			e = rx.epoch + 40 + (seed >> 6) % 8;
			for (k = 0; k < IQ_FAR_PEEK + 2; k++)
				if (iq_rot_rx(&rx, e + k) && (seed & 0x200))
					iq_rot_rx_ok(&rx, e + k);
		} else {                                        /* catching up */
			n = iq_rot_peek(&rx, (uint64_t)step * 1000, &first);
			if (n) {
				peeks++;
				store_peeked(&rx, first, n / 2 + 1);
			}
		}
		assert_slots_backed(&tx);
		assert_slots_backed(&rx);
	}
	jumps = (int)rx.jumps;
	/* the walk went through everything it is meant to */
	ck_assert_int_gt(switches, 100);
	ck_assert_int_gt(peeks, 5);
	ck_assert_int_gt(jumps, 0);
	ck_assert_uint_gt(rx.windows, 100);
	iq_rot_free(&tx);
	iq_rot_free(&rx);
}
END_TEST

/* L5: the epoch space ends; an SA asks for a rekey long before and never wraps */
START_TEST(test_epoch_space_end)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 1, .rpk_max = 3, .lookahead = 16,
							   .exhaust = IQ_EXHAUST_REUSE };
	struct iq_rot tx, rx;
	uint32_t first, n, epoch;
	int i;

	ck_assert_int_eq(iq_rot_init(&tx, &cfg, 0x6000, false, child_key, 20, 0), 0);
	/* a long-lived ESN SA with rpk 1 got here */
	tx.epoch = IQ_EPOCH_REKEY - 2;
	tx.cur_valid = true;
	tx.window_rpk = 1;
	tx.window_pkts = 1;
	deliver(&tx, IQ_EPOCH_REKEY - 2, IQ_EPOCH_REKEY + 2);
	ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, IQ_EPOCH_REKEY - 1);
	ck_assert(!tx.rekey_due);
	ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(epoch, IQ_EPOCH_REKEY);
	ck_assert(tx.rekey_due);                   /* the datapath asks for a rekey */

	/* no rekey came: at the end of the epoch space no window switch, bounded reuse, stall */
	tx.epoch = IQ_EPOCH_LIMIT - 3;
	tx.window_pkts = 1;
	n = iq_rot_want(&tx, 0, &first);
	ck_assert_uint_eq(first, IQ_EPOCH_LIMIT - 3);
	ck_assert_uint_eq(n, 3);                   /* never asks beyond the limit */
	deliver(&tx, IQ_EPOCH_LIMIT - 3, IQ_EPOCH_LIMIT - 1);
	ck_assert_int_eq(iq_rot_deliver(&tx, IQ_EPOCH_LIMIT, child_key, 20), 0);
	for (i = 0; i < 2; i++) {
		ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
		ck_assert_uint_eq(epoch, IQ_EPOCH_LIMIT - 2 + i);
	}
	for (i = 0; i < 2; i++) {                  /* reuse up to rpk_max = 3 packets */
		ck_assert_ptr_nonnull(iq_rot_tx(&tx, &epoch));
		ck_assert_uint_eq(epoch, IQ_EPOCH_LIMIT - 1);
	}
	ck_assert_ptr_null(iq_rot_tx(&tx, &epoch));
	ck_assert_uint_eq(tx.epoch, IQ_EPOCH_LIMIT - 1);
	ck_assert_uint_eq(tx.reuse_packets, 2);
	ck_assert_uint_eq(tx.stall_drops, 1);

	/* the receiver near the end: its ranges do not wrap around to epoch 0 */
	ck_assert_int_eq(iq_rot_init(&rx, &cfg, 0x6000, true, child_key, 20, 1024), 0);
	rx.epoch = IQ_EPOCH_LIMIT - 8;
	rx.cur_valid = true;
	deliver(&rx, IQ_EPOCH_LIMIT - 8, IQ_EPOCH_LIMIT - 1);
	deliver(&rx, 0, 8);                        /* wrapped epochs are not window keys */
	ck_assert_ptr_null(iq_rot_rx(&rx, 0));
	ck_assert_ptr_null(iq_rot_rx(&rx, 3));
	ck_assert_uint_eq(iq_rot_keys_ready(&rx), 7);
	ck_assert_ptr_nonnull(iq_rot_rx(&rx, IQ_EPOCH_LIMIT - 1));
	ck_assert_ptr_null(iq_rot_rx(&rx, IQ_EPOCH_LIMIT));
	ck_assert_ptr_null(iq_rot_rx(&rx, 0xffffffff));
	ck_assert_uint_eq(rx.epoch_drops, 2);
	n = iq_rot_want(&rx, 0, &first);
	ck_assert_uint_eq(first + n, IQ_EPOCH_LIMIT);
	iq_rot_free(&tx);
	iq_rot_free(&rx);
}
END_TEST

START_TEST(test_bad_config)
{
	struct iq_rotation cfg = { .enabled = true, .rpk_min = 0, .rpk_max = 4 };
	struct iq_rot r;

	ck_assert_int_lt(iq_rot_init(&r, &cfg, 1, false, child_key, 20, 0), 0);
	cfg.rpk_min = 5;
	ck_assert_int_lt(iq_rot_init(&r, &cfg, 1, false, child_key, 20, 0), 0);
	cfg.rpk_min = 1;
	ck_assert_int_lt(iq_rot_init(&r, &cfg, 1, false, child_key, 19, 0), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("rotation");
	TCase *tc = tcase_create("windows");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_hkdf);
	tcase_add_test(tc, test_hkdf_batch);
	tcase_add_test(tc, test_windows_and_reordering);
	tcase_add_loop_test(tc, test_exhaustion, 0, 2);
	tcase_add_test(tc, test_prefetch);
	tcase_add_test(tc, test_receiver_catches_up);
	tcase_add_test(tc, test_forged_epochs_move_nothing);
	tcase_add_test(tc, test_keyed_slots_backed);
	tcase_add_test(tc, test_epoch_space_end);
	tcase_add_test(tc, test_bad_config);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
