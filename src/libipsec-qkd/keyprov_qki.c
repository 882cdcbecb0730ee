/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "keyprov_qki.h"
#include "rotation.h"
#include "qki_client.h"

#define QP_SAS 256

struct qki_prov {
	struct iq_key_provider pub;
	char path[108];
	int timeout_ms, wait_ms;
	struct qki_client *c;
	struct qki_epoch_key batch[QKI_EPOCH_BATCH_MAX];
	bool down;
	/* registered SAs, to register again after qkid lost them (restart, reconnect) */
	struct { bool used; uint32_t spi; bool inbound; char peer[QKI_NAME_MAX]; } sa[QP_SAS];
};

static enum qki_dir dir_of(const struct iq_key_sa *sa)
{
	return sa->inbound ? QKI_DIR_IN : QKI_DIR_OUT;
}

static int to_errno(int code)
{
	switch (code) {
	case QKI_ERR_NO_KEY: case QKI_ERR_BUSY: case QKI_ERR_KME: case QKI_ERR_PEER_DOWN:
		return -EAGAIN;
	case QKI_ERR_STALE:
		return -ESTALE;
	case QKI_ERR_NO_SA: case QKI_ERR_NO_PEER:
		return -ENOENT;
	case QKI_ERR_INVALID:
		return -EINVAL;
	case QKI_ERR_CONNECT: case QKI_ERR_IO: case QKI_ERR_TIMEOUT:
		return -ECONNREFUSED;
	default:
		return -EIO;
	}
}

static int fail(iq_err_t *err, const struct qki_error *q, const char *what)
{
	if (err)
		snprintf(err->msg, sizeof(err->msg), "qkid %s: %.200s", what, q->message);
	return to_errno(q->code);
}

static bool connected(struct qki_prov *p, struct qki_error *q)
{
	if (p->c)
		return true;
	p->c = qki_client_connect(p->path[0] ? p->path : NULL, p->timeout_ms, q);
	if (!p->c) {
		if (!p->down)
			fprintf(stderr, "libipsec-qkd: cannot reach qkid: %s\n", q->message);
		p->down = true;
		return false;
	}
	p->down = false;
	return true;
}

static int slot_of(struct qki_prov *p, const struct iq_key_sa *sa, bool create)
{
	int i, free_i = -1;

	for (i = 0; i < QP_SAS; i++) {
		if (p->sa[i].used && p->sa[i].spi == sa->spi && p->sa[i].inbound == sa->inbound)
			return i;
		if (!p->sa[i].used && free_i < 0)
			free_i = i;
	}
	if (!create || free_i < 0)
		return -1;
	p->sa[free_i].used = true;
	p->sa[free_i].spi = sa->spi;
	p->sa[free_i].inbound = sa->inbound;
	snprintf(p->sa[free_i].peer, sizeof(p->sa[free_i].peer), "%s", sa->peer ? sa->peer : "");
	return free_i;
}

static int do_register(struct qki_prov *p, const struct iq_key_sa *sa, iq_err_t *err)
{
	struct qki_error q = { 0 };
	int i = slot_of(p, sa, true);

	if (i < 0) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "qkid provider: too many SAs");
		return -ENOSPC;
	}
	if (!p->sa[i].peer[0]) {
		if (err)
			snprintf(err->msg, sizeof(err->msg), "SA %08x has no qkid peer name", sa->spi);
		return -EINVAL;
	}
	if (!connected(p, &q))
		return fail(err, &q, "connect");
	if (qki_sa_register(p->c, p->sa[i].peer, sa->spi, dir_of(sa), NULL, &q) != QKI_OK)
		return fail(err, &q, "SA_REGISTER");
	return 0;
}

static int qp_open(void *ctx, const struct iq_key_sa *sa, iq_err_t *err)
{
	return do_register(ctx, sa, err);
}

/* The same epoch space on both sides of the qkid socket (see rotation.h and qki_proto.h). */
_Static_assert(IQ_EPOCH_LIMIT == QKI_EPOCH_LIMIT, "datapath and qkid epoch limits differ");
_Static_assert(IQ_JUMP_MAX <= QKI_EPOCH_JUMP_MAX, "datapath catch-up beyond qkid's bound");

/* Copy a reply's contiguous keys from first on into keys; *got of them. -EIO if inconsistent. */
static int copy_batch(struct qki_prov *p, unsigned n, uint32_t first, uint8_t *keys,
					  size_t *key_len, uint32_t *got, iq_err_t *err)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		if (p->batch[i].epoch != first + i || !p->batch[i].size ||
			p->batch[i].size > IQ_QKEY_MAX || (i && p->batch[i].size != p->batch[0].size))
			break;
		memcpy(keys + (size_t)i * p->batch[0].size, p->batch[i].key, p->batch[i].size);
	}
	*key_len = n ? p->batch[0].size : 0;
	*got = i;
	OPENSSL_cleanse(p->batch, sizeof(p->batch));
	if (i < n && err)
		snprintf(err->msg, sizeof(err->msg), "qkid: inconsistent epoch keys in reply");
	return i < n ? -EIO : 0;
}

static int qp_get_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					   uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	struct qki_prov *p = ctx;
	struct qki_error q = { 0 };
	unsigned n = 0, want = count > QKI_EPOCH_BATCH_MAX ? QKI_EPOCH_BATCH_MAX : count;
	uint32_t next = 0;
	int tries, ret = 0;

	*got = 0;
	*key_len = 0;
	for (tries = 0; tries < 2; tries++) {
		if (!connected(p, &q))
			return fail(err, &q, "connect");
		ret = qki_sa_get_epoch_keys(p->c, sa->spi, dir_of(sa), first, want, p->wait_ms,
									p->batch, &n, NULL, &next, &q);
		if (ret == QKI_OK)
			break;
		/* qkid forgot the SA (restart, or our connection dropped): register again, retry */
		if ((ret == QKI_ERR_NO_SA || ret == QKI_ERR_IO || ret == QKI_ERR_TIMEOUT) && tries == 0 &&
			do_register(p, sa, NULL) == 0)
			continue;
		OPENSSL_cleanse(p->batch, sizeof(p->batch));
		if (ret == QKI_ERR_STALE && err) {
			snprintf(err->msg, sizeof(err->msg), "qkid: epoch %u is gone (next %u): %.150s",
					 first, next, q.message);
			return -ESTALE;
		}
		return fail(err, &q, "SA_KEYS");
	}
	return copy_batch(p, n, first, keys, key_len, got, err);
}

/* SA_KEYS with PEEK: what qkid holds now; releases nothing, no wait, no NEED to the peer */
static int qp_peek_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
						uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	struct qki_prov *p = ctx;
	struct qki_error q = { 0 };
	unsigned n = 0, want = count > QKI_EPOCH_BATCH_MAX ? QKI_EPOCH_BATCH_MAX : count;

	*got = 0;
	*key_len = 0;
	if (!connected(p, &q))
		return fail(err, &q, "connect");
	if (qki_sa_peek_epoch_keys(p->c, sa->spi, dir_of(sa), first, want, p->batch, &n, &q) !=
		QKI_OK) {
		OPENSSL_cleanse(p->batch, sizeof(p->batch));
		return fail(err, &q, "SA_KEYS peek");
	}
	return copy_batch(p, n, first, keys, key_len, got, err);
}

static int qp_report(void *ctx, const struct iq_key_sa *sa, struct iq_key_answer *ans)
{
	struct qki_prov *p = ctx;
	struct qki_error q = { 0 };
	struct qki_sa_counters cnt = {
		.packets = sa->packets, .bytes = sa->bytes, .rpk = sa->rpk, .level = sa->level,
		.capacity = sa->capacity, .windows = sa->windows, .beyond_rpk = sa->beyond_rpk,
		.stall_drops = sa->stall_drops, .episodes = sa->episodes,
	};
	struct qki_sa_feedback fb;

	if (!connected(p, &q))
		return to_errno(q.code);
	/* the report feeds qkid's packet rate, fair share and statistics of the SA; the answer
	 * carries the SA's fair share of the key supply */
	if (qki_sa_report(p->c, sa->spi, dir_of(sa), &cnt, &fb, &q) != QKI_OK)
		return to_errno(q.code);
	ans->share_milli = fb.share_milli;
	ans->capacity = fb.capacity;
	return 0;
}

static void qp_close(void *ctx, const struct iq_key_sa *sa)
{
	struct qki_prov *p = ctx;
	struct qki_error q = { 0 };
	int i = slot_of(p, sa, false);

	if (i >= 0)
		p->sa[i].used = false;
	if (p->c)
		qki_sa_unregister(p->c, sa->spi, dir_of(sa), &q);
}

static void qp_destroy(void *ctx)
{
	struct qki_prov *p = ctx;

	qki_client_close(p->c);
	OPENSSL_cleanse(p, sizeof(*p));
	free(p);
}

struct iq_key_provider *iq_qki_provider_create(const char *socket, int timeout_ms, int wait_ms)
{
	struct qki_prov *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	if (socket)
		snprintf(p->path, sizeof(p->path), "%s", socket);
	p->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
	p->wait_ms = wait_ms >= 0 ? wait_ms : 50;
	p->pub.ctx = p;
	p->pub.sa_open = qp_open;
	p->pub.get_keys = qp_get_keys;
	p->pub.peek_keys = qp_peek_keys;
	p->pub.sa_report = qp_report;
	p->pub.sa_close = qp_close;
	p->pub.destroy = qp_destroy;
	return &p->pub;
}
