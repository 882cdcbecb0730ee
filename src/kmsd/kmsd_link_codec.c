/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_link_codec.c - the byte codec of the KME-to-KME stream: big-endian integers, short strings
 * and byte runs, written into a growing wiped buffer or read from a bounded one. Pure data: no
 * sockets, no locks, so the link protocol can be tested on buffers.
 */
#include "ipseq_config.h"
#include "kmsd_link_codec.h"

#include <stdlib.h>
#include <string.h>

#include "etsi014_codec.h"
#include "ipseq_util.h"

void kmsd_w_reserve(struct kmsd_wbuf *w, size_t n)
{
	uint8_t *p;

	if (w->err)
		return;
	p = ipseq_grow_wiped(w->p, &w->cap, w->len, w->len + n, 256);
	if (!p)
		w->err = 1;
	else
		w->p = p;
}

void kmsd_w_bytes(struct kmsd_wbuf *w, const void *d, size_t n)
{
	kmsd_w_reserve(w, n);
	if (w->err)
		return;
	memcpy(w->p + w->len, d, n);
	w->len += n;
}

void kmsd_w_u8(struct kmsd_wbuf *w, uint8_t v)
{
	kmsd_w_bytes(w, &v, 1);
}

void kmsd_w_u16(struct kmsd_wbuf *w, uint16_t v)
{
	uint8_t b[2] = {v >> 8, v};
	kmsd_w_bytes(w, b, 2);
}

void kmsd_w_u32(struct kmsd_wbuf *w, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
	kmsd_w_bytes(w, b, 4);
}

void kmsd_w_str(struct kmsd_wbuf *w, const char *s)
{
	size_t n = strlen(s);
	kmsd_w_u8(w, (uint8_t)n);
	kmsd_w_bytes(w, s, n);
}

void kmsd_w_free(struct kmsd_wbuf *w)
{
	if (w->p) {
		ipseq_wipe(w->p, w->cap);
		free(w->p);
	}
	memset(w, 0, sizeof(*w));
}

const uint8_t *kmsd_r_bytes(struct kmsd_rbuf *r, size_t n)
{
	const uint8_t *p;

	if (r->err || r->len - r->off < n) {
		r->err = 1;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

uint8_t kmsd_r_u8(struct kmsd_rbuf *r)
{
	const uint8_t *p = kmsd_r_bytes(r, 1);
	return p ? p[0] : 0;
}

uint16_t kmsd_r_u16(struct kmsd_rbuf *r)
{
	const uint8_t *p = kmsd_r_bytes(r, 2);
	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

uint32_t kmsd_r_u32(struct kmsd_rbuf *r)
{
	const uint8_t *p = kmsd_r_bytes(r, 4);
	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

void kmsd_r_str(struct kmsd_rbuf *r, char out[ETSI014_ID_MAX + 1])
{
	size_t n = kmsd_r_u8(r);
	const uint8_t *p = kmsd_r_bytes(r, n);

	out[0] = '\0';
	if (!p || n > ETSI014_ID_MAX || !etsi014_sae_id_valid((const char *)p, n)) {
		r->err = 1;
		return;
	}
	memcpy(out, p, n);
	out[n] = '\0';
}
