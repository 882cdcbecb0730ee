/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_link_codec.h - the byte codec of the KME-to-KME stream (kmsd_link_codec.c).
 *
 * Writers and readers keep a sticky error: once a write could not grow the buffer or a read ran
 * past the end, every later call does nothing and err stays 1, so a message is built or parsed
 * in a row of calls and checked once.
 */
#ifndef KMSD_LINK_CODEC_H
#define KMSD_LINK_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "etsi014_client.h" /* ETSI014_ID_MAX */

/* A message being written; its buffer may hold key material and is wiped when it grows. */
struct kmsd_wbuf {
	uint8_t *p;
	size_t len, cap;
	int err;
};

void kmsd_w_reserve(struct kmsd_wbuf *w, size_t n);
void kmsd_w_bytes(struct kmsd_wbuf *w, const void *d, size_t n);
void kmsd_w_u8(struct kmsd_wbuf *w, uint8_t v);
void kmsd_w_u16(struct kmsd_wbuf *w, uint16_t v);
void kmsd_w_u32(struct kmsd_wbuf *w, uint32_t v);
void kmsd_w_str(struct kmsd_wbuf *w, const char *s);
void kmsd_w_free(struct kmsd_wbuf *w);

/* A message being read: p[0..len), off is the next byte. */
struct kmsd_rbuf {
	const uint8_t *p;
	size_t len, off;
	int err;
};

const uint8_t *kmsd_r_bytes(struct kmsd_rbuf *r, size_t n);
uint8_t kmsd_r_u8(struct kmsd_rbuf *r);
uint16_t kmsd_r_u16(struct kmsd_rbuf *r);
uint32_t kmsd_r_u32(struct kmsd_rbuf *r);
void kmsd_r_str(struct kmsd_rbuf *r, char out[ETSI014_ID_MAX + 1]);

#endif
