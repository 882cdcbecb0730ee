/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include <openssl/crypto.h>

#include "keyprov.h"
#include "rotation.h"

#define REQ_RING 256
#define DONE_RING 2048
#define MAX_BATCH IQ_KEYRING_BATCH
#define IQ_KEYRING_BATCH 128

/* Single-producer/single-consumer ring: head written by the producer, tail by the consumer. */
struct spsc {
	_Atomic uint32_t head, tail;
	uint32_t size;          /* power of two */
	size_t esize;
	uint8_t *slots;
};

static int spsc_init(struct spsc *r, uint32_t size, size_t esize)
{
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	r->size = size;
	r->esize = esize;
	r->slots = calloc(size, esize);
	return r->slots ? 0 : -ENOMEM;
}

static bool spsc_push(struct spsc *r, const void *e)
{
	uint32_t h = atomic_load_explicit(&r->head, memory_order_relaxed);
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_acquire);

	if (h - t >= r->size)
		return false;
	memcpy(r->slots + (size_t)(h & (r->size - 1)) * r->esize, e, r->esize);
	atomic_store_explicit(&r->head, h + 1, memory_order_release);
	return true;
}

static bool spsc_pop(struct spsc *r, void *e)
{
	uint32_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
	uint32_t h = atomic_load_explicit(&r->head, memory_order_acquire);
	uint8_t *slot;

	if (t == h)
		return false;
	slot = r->slots + (size_t)(t & (r->size - 1)) * r->esize;
	memcpy(e, slot, r->esize);
	OPENSSL_cleanse(slot, r->esize);      /* answers carry keys */
	atomic_store_explicit(&r->tail, t + 1, memory_order_release);
	return true;
}

struct iq_keyprov {
	struct iq_key_provider *p;
	struct spsc req, done;
	int req_efd, done_efd;
	_Atomic bool stop;
	pthread_t thread;
	bool started;
	uint8_t *keys;          /* MAX_BATCH * IQ_QKEY_MAX scratch for get_keys */
	struct iq_hkdf hkdf;    /* HKDF for window keys, used by the helper thread only */
};

static void wake_loop(struct iq_keyprov *kp)
{
	uint64_t one = 1;

	if (write(kp->done_efd, &one, sizeof(one)) < 0) {
		/* counter saturated: the loop will wake up anyway */
	}
}

/* Queue an answer. The loop is woken once per batch (signal = true on the last answer of a
 * provider call), not per key: every wakeup costs the loop a poll round and a context switch. */
static void push_done(struct iq_keyprov *kp, const struct iq_kp_done *d, bool signal)
{
	int tries = 0;

	/* the loop drains this ring every wakeup; if it is full, wait a little (bounded) */
	while (!spsc_push(&kp->done, d)) {
		struct timespec ts = { 0, 1000000 };
		if (atomic_load(&kp->stop) || ++tries > 5000)
			return;
		wake_loop(kp);
		nanosleep(&ts, NULL);
	}
	if (signal)
		wake_loop(kp);
}

/*
 * Derive the window keys of the provider's answer (*got keys of klen bytes in kp->keys, for
 * epochs first..; n asked) and queue them for the loop, skipping what it already holds. An
 * unusable answer counts as none (*got = 0); a derivation failure stops there (*got = keys
 * done, -EIO, err says why). Wipes the scratch keys.
 */
static int derive_push(struct iq_keyprov *kp, const struct iq_kp_req *rq, enum iq_kp_type type,
					   uint32_t first, uint32_t *got, uint32_t n, size_t klen, iq_err_t *err)
{
	struct iq_kp_done d;
	uint32_t i;
	int ret = 0;

	memset(&d, 0, sizeof(d));
	if (*got > n || klen == 0 || klen > IQ_QKEY_MAX)
		*got = 0;
	if (*got && iq_hkdf_salt(&kp->hkdf, rq->salt, rq->salt_len)) {
		snprintf(err->msg, sizeof(err->msg), "window key derivation failed");
		*got = 0;
		ret = -EIO;
	}
	for (i = 0; i < *got; i++) {
		/* the provider answers from the current window on (see iq_rot_want); what the loop
		 * already holds costs neither a derivation nor a ring slot */
		if (type == KP_GET && first + i < rq->have_end)
			continue;
		memset(&d, 0, sizeof(d));
		d.type = type;
		d.uid = rq->uid;
		d.epoch = first + i;
		d.key_len = rq->key_len;
		if (kp->p->export_qkey)       /* test only, see ipsec_qkd.h */
			kp->p->export_qkey(kp->p->export_ctx, &rq->sa, first + i,
							   kp->keys + (size_t)i * klen, klen);
		if (iq_hkdf_window_key(&kp->hkdf, rq->sa.spi, first + i, kp->keys + (size_t)i * klen,
							   klen, d.key, rq->key_len)) {
			snprintf(err->msg, sizeof(err->msg), "window key derivation failed");
			*got = i;
			ret = -EIO;
			break;
		}
		push_done(kp, &d, false);
	}
	iq_hkdf_forget(&kp->hkdf);
	OPENSSL_cleanse(kp->keys, (size_t)MAX_BATCH * IQ_QKEY_MAX);
	OPENSSL_cleanse(&d, sizeof(d));
	return ret;
}

static void handle(struct iq_keyprov *kp, struct iq_kp_req *rq)
{
	struct iq_kp_done d;
	iq_err_t err = { { 0 } };

	rq->sa.peer = rq->peer[0] ? rq->peer : NULL;
	memset(&d, 0, sizeof(d));
	d.type = rq->type;
	d.uid = rq->uid;
	switch (rq->type) {
	case KP_OPEN:
		d.status = kp->p->sa_open ? kp->p->sa_open(kp->p->ctx, &rq->sa, &err) : 0;
		if (d.status) {
			snprintf(d.msg, sizeof(d.msg), "%s", err.msg);
			push_done(kp, &d, true);
		}
		return;
	case KP_CLOSE:
		if (kp->p->sa_close)
			kp->p->sa_close(kp->p->ctx, &rq->sa);
		return;
	case KP_REPORT:
		if (!kp->p->sa_report)
			return;
		d.status = kp->p->sa_report(kp->p->ctx, &rq->sa, &d.ans);
		push_done(kp, &d, true);
		return;
	case KP_PEEK: {
		uint32_t n = rq->count > MAX_BATCH ? MAX_BATCH : rq->count, got = 0;
		size_t klen = 0;

		if (!kp->p->peek_keys)
			return;
		/* a look that found nothing is no failure: the loop peeks again when packets
		 * beyond its lookahead keep coming */
		kp->p->peek_keys(kp->p->ctx, &rq->sa, rq->first, n, kp->keys, &klen, &got, &err);
		derive_push(kp, rq, KP_PEEK, rq->first, &got, n, klen, &err);
		if (got)
			wake_loop(kp);
		return;
	}
	case KP_GET: {
		uint32_t first = rq->first, left = rq->count;
		while (left && !atomic_load(&kp->stop)) {
			uint32_t n = left > MAX_BATCH ? MAX_BATCH : left, got = 0;
			size_t klen = 0;
			int ret = kp->p->get_keys(kp->p->ctx, &rq->sa, first, n, kp->keys, &klen, &got,
									  &err);
			if (derive_push(kp, rq, KP_GET, first, &got, n, klen, &err))
				ret = -EIO;
			first += got;
			left -= got;
			if (got)
				wake_loop(kp);            /* once per provider call */
			/* fewer than asked: that is what the provider had ready. Never ask on beyond
			 * it (a provider may take a request for unassigned epochs as a jump); tell the
			 * loop, which asks again soon from its current window. */
			if (ret || got < n) {
				memset(&d, 0, sizeof(d));
				d.type = KP_GET;
				d.uid = rq->uid;
				d.status = ret ? ret : -EAGAIN;
				d.partial = got > 0;
				d.epoch = first;
				d.count = left;
				snprintf(d.msg, sizeof(d.msg), "%s", err.msg[0] ? err.msg : "no keys ready");
				push_done(kp, &d, true);
				return;
			}
		}
		return;
	}
	}
}

static void *helper(void *arg)
{
	struct iq_keyprov *kp = arg;
	struct iq_kp_req rq;
	uint64_t v;

	/* This thread sleeps almost always and must answer within milliseconds when the loop
	 * runs low on window keys, also on a machine saturated with packet processing, where a
	 * normal (even nice -10) thread was measured to wait up to 15 ms for a CPU (SCHED_FIFO:
	 * under 0.4 ms). It works in bursts of ~0.2 ms and then blocks, so the lowest real-time
	 * priority is safe (the kernel's RT throttling bounds it anyway). Needs CAP_SYS_NICE;
	 * else try nice -10, else stay as is. */
	{
		struct sched_param sp = { .sched_priority = 1 };
		if (pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp) != 0 &&
			setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), -10) < 0) {
			/* not permitted: normal priority */
		}
	}

	while (!atomic_load(&kp->stop)) {
		struct pollfd pfd = { .fd = kp->req_efd, .events = POLLIN };
		if (poll(&pfd, 1, 200) <= 0)
			continue;
		if (read(kp->req_efd, &v, sizeof(v)) < 0) {
			/* EAGAIN: another wakeup raced us; the ring is what counts */
		}
		while (!atomic_load(&kp->stop) && spsc_pop(&kp->req, &rq)) {
			handle(kp, &rq);
			OPENSSL_cleanse(&rq, sizeof(rq));      /* carried the CHILD_SA key */
		}
	}
	return NULL;
}

int iq_kp_create(struct iq_key_provider *p, struct iq_keyprov **out)
{
	struct iq_keyprov *kp = calloc(1, sizeof(*kp));
	int ret = -ENOMEM;

	if (!kp)
		return -ENOMEM;
	kp->p = p;
	kp->req_efd = kp->done_efd = -1;
	atomic_init(&kp->stop, false);
	if (spsc_init(&kp->req, REQ_RING, sizeof(struct iq_kp_req)) ||
		spsc_init(&kp->done, DONE_RING, sizeof(struct iq_kp_done)))
		goto fail;
	kp->keys = calloc(MAX_BATCH, IQ_QKEY_MAX);
	if (!kp->keys || iq_hkdf_init(&kp->hkdf))
		goto fail;
	kp->req_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	kp->done_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (kp->req_efd < 0 || kp->done_efd < 0) {
		ret = -errno;
		goto fail;
	}
	ret = -pthread_create(&kp->thread, NULL, helper, kp);
	if (ret)
		goto fail;
	kp->started = true;
	*out = kp;
	return 0;
fail:
	kp->p = NULL;          /* the caller still owns p on failure */
	iq_kp_destroy(kp);
	return ret;
}

int iq_kp_fd(struct iq_keyprov *kp)
{
	return kp->done_efd;
}

bool iq_kp_post(struct iq_keyprov *kp, const struct iq_kp_req *req)
{
	uint64_t one = 1;

	if (!spsc_push(&kp->req, req))
		return false;
	if (write(kp->req_efd, &one, sizeof(one)) < 0) {
		/* saturated counter: the helper is awake anyway */
	}
	return true;
}

void iq_kp_ack(struct iq_keyprov *kp)
{
	uint64_t v;

	if (read(kp->done_efd, &v, sizeof(v)) < 0) {
		/* nothing signalled */
	}
}

bool iq_kp_take(struct iq_keyprov *kp, struct iq_kp_done *done)
{
	return spsc_pop(&kp->done, done);
}

void iq_kp_destroy(struct iq_keyprov *kp)
{
	struct iq_kp_done d;

	if (!kp)
		return;
	atomic_store(&kp->stop, true);
	if (kp->started)
		pthread_join(kp->thread, NULL);
	if (kp->done.slots)
		while (spsc_pop(&kp->done, &d))
			OPENSSL_cleanse(&d, sizeof(d));
	free(kp->req.slots);
	free(kp->done.slots);
	if (kp->keys) {
		OPENSSL_cleanse(kp->keys, (size_t)MAX_BATCH * IQ_QKEY_MAX);
		free(kp->keys);
	}
	iq_hkdf_free(&kp->hkdf);
	if (kp->req.slots)
		while (spsc_pop(&kp->req, &(struct iq_kp_req){ 0 }))
			;
	if (kp->req_efd >= 0)
		close(kp->req_efd);
	if (kp->done_efd >= 0)
		close(kp->done_efd);
	if (kp->p && kp->p->destroy)
		kp->p->destroy(kp->p->ctx);
	free(kp);
}
