/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_keygen.c - the link master's key source: blocks of key_size bits from the CSPRNG
 * (gnutls_rnd, KEY level) at the secret key rate, each under a fresh UUID v4 key_ID, pushed into
 * the store and sent to the link slave as KEYS in one lock hold. Bits that find the store full
 * are lost, as on a real QKD link.
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <math.h>
#include <time.h>

#include <gnutls/crypto.h>

#include "ipseq_util.h"
#include "kmsd_link_codec.h"

#define KEYS_BATCH_BYTES (256u * 1024)

void kmsd_make_key_id(uint8_t id[16])
{
	gnutls_rnd(GNUTLS_RND_NONCE, id, 16);
	id[6] = (id[6] & 0x0f) | 0x40; /* UUID version 4 */
	id[8] = (id[8] & 0x3f) | 0x80; /* RFC 4122 variant */
}

int kmsd_keygen_tick(struct kmsd_link *l)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_store *s = &k->store;
	size_t want, room, n, i, per_msg, bytes;
	struct kmsd_wbuf w = {0};
	struct timespec now;
	double dt;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &now);
	dt = (double)(now.tv_sec - l->last_tick.tv_sec) +
	     (double)(now.tv_nsec - l->last_tick.tv_nsec) / 1e9;
	l->last_tick = now;
	if (dt <= 0)
		return 0;
	l->credit_bits += k->rate_bps * dt;

	pthread_mutex_lock(&s->lock);
	bytes = s->block_bytes;
	room = s->cap - s->count;
	pthread_mutex_unlock(&s->lock);
	want = (size_t)floor(l->credit_bits / (bytes * 8));
	n = want < room ? want : room;
	l->credit_bits -= (double)n * bytes * 8;
	if (want > room) /* store full: a real link would lose these bits too */
		l->credit_bits = fmin(l->credit_bits, (double)bytes * 8);
	if (n == 0)
		return 0;

	per_msg = KEYS_BATCH_BYTES / (16 + bytes);
	if (per_msg > 0xffff)
		per_msg = 0xffff;
	while (n > 0 && rc == 0) {
		size_t batch = n < per_msg ? n : per_msg;

		w.len = 0;
		kmsd_w_u16(&w, (uint16_t)batch);
		kmsd_w_reserve(&w, batch * (16 + bytes));
		if (w.err)
			break;
		for (i = 0; i < batch; i++) {
			uint8_t *p = w.p + w.len;
			kmsd_make_key_id(p);
			gnutls_rnd(GNUTLS_RND_KEY, p + 16, bytes);
			w.len += 16 + bytes;
		}
		/* Push and queue under one lock hold: the stream stays in store order. */
		pthread_mutex_lock(&s->lock);
		for (i = 0; i < batch; i++) {
			const uint8_t *p = w.p + 2 + i * (16 + bytes);
			if (kmsd_store_push(s, p, p + 16) < 0)
				break;
		}
		if (i != batch || kmsd_link_send(l, KMSD_MSG_KEYS, w.p, w.len) < 0)
			rc = -1;
		pthread_mutex_unlock(&s->lock);
		ipseq_wipe(w.p, w.len);
		n -= batch;
	}
	kmsd_w_free(&w);
	return rc;
}
