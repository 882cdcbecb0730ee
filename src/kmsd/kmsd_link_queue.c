/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_link_queue.c - what HTTP threads and the link thread share: the queue of outgoing link
 * messages (any thread queues, only the link thread writes them to the peer) and the table of
 * requests waiting for the peer's answer (an HTTP thread waits, the link thread completes).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ipseq_util.h"

int kmsd_link_send(struct kmsd_link *l, uint8_t type, const uint8_t *payload, size_t len)
{
	struct kmsd_out_msg *m;
	uint32_t total = (uint32_t)len + 1;

	if (len + 1 > KMSD_LINK_MSG_MAX)
		return -1;
	m = malloc(sizeof(*m) + 5 + len);
	if (!m)
		return -1;
	m->next = NULL;
	m->len = 5 + len;
	m->data[0] = total >> 24;
	m->data[1] = total >> 16;
	m->data[2] = total >> 8;
	m->data[3] = total;
	m->data[4] = type;
	if (len)
		memcpy(m->data + 5, payload, len);
	pthread_mutex_lock(&l->qlock);
	if (!atomic_load(&l->up)) {
		pthread_mutex_unlock(&l->qlock);
		ipseq_wipe(m->data, m->len);
		free(m);
		return -1;
	}
	if (l->qtail)
		l->qtail->next = m;
	else
		l->qhead = m;
	l->qtail = m;
	pthread_mutex_unlock(&l->qlock);
	if (write(l->wake[1], "w", 1) < 0 && errno != EAGAIN)
		ipseq_log(IPSEQ_LOG_DEBUG, "QKD link: wake pipe: %s", strerror(errno));
	return 0;
}

void kmsd_link_free_msgs(struct kmsd_out_msg *m)
{
	while (m) {
		struct kmsd_out_msg *next = m->next;
		ipseq_wipe(m->data, m->len);
		free(m);
		m = next;
	}
}


struct kmsd_link_pending *kmsd_link_pending_new(struct kmsd_link *l)
{
	struct kmsd_link_pending *p = calloc(1, sizeof(*p));
	pthread_condattr_t ca;

	if (!p)
		return NULL;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&l->plock);
	if (++l->next_id == 0)
		l->next_id = 1;
	p->id = l->next_id;
	p->next = l->pending;
	l->pending = p;
	pthread_mutex_unlock(&l->plock);
	return p;
}

enum kmsd_link_status kmsd_link_pending_wait(struct kmsd_link *l, struct kmsd_link_pending *p,
					     unsigned timeout_ms)
{
	struct timespec until;
	enum kmsd_link_status st;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&l->plock);
	while (!p->done) {
		if (pthread_cond_timedwait(&p->cond, &l->plock, &until) == ETIMEDOUT)
			break;
	}
	st = p->done ? p->status : KMSD_LINK_TIMEOUT;
	pthread_mutex_unlock(&l->plock);
	return st;
}

void kmsd_link_pending_release(struct kmsd_link *l, struct kmsd_link_pending *p)
{
	struct kmsd_link_pending **pp;

	if (!p)
		return;
	pthread_mutex_lock(&l->plock);
	for (pp = &l->pending; *pp; pp = &(*pp)->next) {
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	}
	pthread_mutex_unlock(&l->plock);
	pthread_cond_destroy(&p->cond);
	if (p->bytes) {
		ipseq_wipe(p->bytes, p->bytes_len);
		free(p->bytes);
	}
	free(p->ids);
	free(p);
}

struct kmsd_link_pending *kmsd_link_pending_find(struct kmsd_link *l, uint32_t id)
{
	struct kmsd_link_pending *p;

	for (p = l->pending; p; p = p->next)
		if (p->id == id && !p->done)
			return p;
	return NULL;
}

void kmsd_link_pending_complete(struct kmsd_link_pending *p, enum kmsd_link_status st)
{
	p->status = st;
	p->done = 1;
	pthread_cond_signal(&p->cond);
}
