/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_sa.h - per-SA key buffers (qkid_sa.c). An SA is known by SPI and receiving side (wire
 * view, `rx`) or by SPI and direction (local view, `dir`). Its keys are sorted by epoch; the
 * cursor is the lowest epoch anybody on the SA may still want, the floor the epoch below which
 * missing keys will never come.
 */
#ifndef QKID_SA_H
#define QKID_SA_H

#include <stddef.h>
#include <stdint.h>

struct qkid;
struct qkid_peer;
struct qkid_sa;
struct qkid_conn;
struct qkey;
struct qki_msg;

/* ---- the buffers, for the key agreement logic ---- */
struct qkid_sa *qkid_sa_by_wire(struct qkid_peer *p, uint32_t spi, uint8_t rx);
struct qkid_sa *qkid_sa_create(struct qkid_peer *p, uint32_t spi, uint8_t rx);
void qkid_sa_destroy(struct qkid_sa *sa);      /* buries its keys */
/* registered, or known from the peer and used within the last 10 s */
int qkid_sa_active(const struct qkid_sa *sa, int64_t now);
size_t qkid_sa_n_active(const struct qkid_peer *p);
uint32_t qkid_sa_capacity(const struct qkid_peer *p);   /* equal buffer size of every SA */
uint32_t qkid_sa_cursor(const struct qkid_sa *sa);
uint32_t qkid_sa_level(const struct qkid_sa *sa);       /* keys at or above the cursor */
/* keys all active SAs of p lack to be full */
unsigned qkid_sa_deficit(struct qkid_peer *p);
/* first epoch at or above the cursor without a key, below next_assign; else next_assign */
uint32_t qkid_sa_hole(struct qkid_sa *sa);
struct qkey *qkid_sa_key(struct qkid_sa *sa, uint32_t epoch);
void qkid_sa_account(struct qkid_sa *sa);      /* count consumed epochs for the drain rate */
void qkid_sa_drop_below(struct qkid_sa *sa, uint32_t below);
void qkid_sa_set_floor(struct qkid_sa *sa, uint32_t floor);
/* drop every buffered key, continue at fresh epochs; returns keys dropped */
unsigned qkid_sa_wipe(struct qkid_sa *sa);
void qkid_sa_rates(struct qkid_sa *sa, int64_t now, double dt);

/* ---- what the local datapath does ---- */
struct qkid_sa *qkid_sa_find(struct qkid *d, uint32_t spi, uint8_t dir);
int qkid_sa_register(struct qkid_peer *p, uint32_t spi, uint8_t dir, struct qkid_conn *owner,
		     struct qkid_sa **out);
void qkid_sa_unregister(struct qkid_sa *sa);
/* Keys for epochs first.. into m as EPOCH_KEY attributes (*n_out of them): QKI_OK, QKID_AGAIN
 * or an error (QKI_ERR_STALE with *next_epoch). first < QKI_EPOCH_LIMIT and
 * first + count <= QKI_EPOCH_LIMIT (the caller checks). Releases the epochs below first and
 * asks the peer for what is missing, unless peek: then it only looks (changes nothing). */
int qkid_sa_keys(struct qkid_sa *sa, uint32_t first, uint32_t count, int peek,
		 struct qki_msg *m, uint32_t *n_out, uint32_t *next_epoch, const char **msg);
struct qki_attrs;
/* the datapath's SA_REPORT: cumulative counters and its key economy */
void qkid_sa_report(struct qkid_sa *sa, const struct qki_attrs *a);
/* max-min fair shares of the peer's key supply among its active SAs (once a second) */
void qkid_sa_shares(struct qkid_peer *p);
unsigned qkid_sa_flush(struct qkid_sa *sa);
/* a local connection closed: its SAs become implicit (idle) */
void qkid_conn_gone(struct qkid *d, struct qkid_conn *c);

#endif
