/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "qkid_kme.h"

struct qkid_kme {
	struct etsi014_client *client;
	int notify_fd;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stop;
	int state;              /* 0 idle, 1 queued, 2 running, 3 done */
	char sae[ETSI014_ID_MAX + 1];
	unsigned size_bits;
	struct qkid_kme_result *job;
};

static long ms_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void *worker(void *arg)
{
	struct qkid_kme *k = arg;
	pthread_mutex_lock(&k->lock);
	for (;;) {
		struct qkid_kme_result *r;
		struct timespec t0;
		while (!k->stop && k->state != 1)
			pthread_cond_wait(&k->cond, &k->lock);
		if (k->stop)
			break;
		k->state = 2;
		r = k->job;
		pthread_mutex_unlock(&k->lock);

		clock_gettime(CLOCK_MONOTONIC, &t0);
		if (r->type == QKID_KME_STATUS) {
			r->code = etsi014_get_status(k->client, k->sae, &r->status, &r->err);
		} else if (r->type == QKID_KME_ENC) {
			r->code = etsi014_get_enc_keys(k->client, k->sae, r->number, k->size_bits,
						       &r->keys, &r->err);
		} else {
			const char *ids[QKID_KME_IDS_MAX];
			for (size_t i = 0; i < r->n_ids; i++)
				ids[i] = r->ids[i];
			r->code = etsi014_get_dec_keys_ex(k->client, k->sae, ids, r->n_ids,
							  k->size_bits, ETSI014_POST, &r->keys,
							  &r->err);
		}
		r->elapsed_ms = ms_since(&t0);

		pthread_mutex_lock(&k->lock);
		k->state = 3;
		{
			char b = 1;
			ssize_t w = write(k->notify_fd, &b, 1);
			(void)w;        /* a full pipe already wakes the loop */
		}
	}
	pthread_mutex_unlock(&k->lock);
	return NULL;
}

struct qkid_kme *qkid_kme_start(const struct etsi014_client_config *cfg, int notify_fd,
				char *err, size_t errlen)
{
	struct etsi014_error e = { 0 };
	struct qkid_kme *k = calloc(1, sizeof(*k));
	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->client = etsi014_client_new(cfg, &e);
	if (!k->client) {
		snprintf(err, errlen, "KME client: %s", e.message);
		free(k);
		return NULL;
	}
	k->notify_fd = notify_fd;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	if (pthread_create(&k->thread, NULL, worker, k)) {
		snprintf(err, errlen, "cannot start KME worker thread");
		etsi014_client_free(k->client);
		free(k);
		return NULL;
	}
	return k;
}

int qkid_kme_busy(struct qkid_kme *k)
{
	int busy;
	pthread_mutex_lock(&k->lock);
	busy = k->state != 0;
	pthread_mutex_unlock(&k->lock);
	return busy;
}

static int submit(struct qkid_kme *k, struct qkid_kme_result *r, const char *sae, unsigned bits)
{
	pthread_mutex_lock(&k->lock);
	if (k->state != 0 || strlen(sae) > ETSI014_ID_MAX) {
		pthread_mutex_unlock(&k->lock);
		free(r);
		return -1;
	}
	strcpy(k->sae, sae);
	k->size_bits = bits;
	k->job = r;
	k->state = 1;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	return 0;
}

int qkid_kme_submit_enc(struct qkid_kme *k, const char *slave_sae, unsigned number,
			unsigned size_bits)
{
	struct qkid_kme_result *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->type = QKID_KME_ENC;
	r->number = number;
	return submit(k, r, slave_sae, size_bits);
}

int qkid_kme_submit_status(struct qkid_kme *k, const char *slave_sae)
{
	struct qkid_kme_result *r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->type = QKID_KME_STATUS;
	return submit(k, r, slave_sae, 0);
}

int qkid_kme_submit_dec(struct qkid_kme *k, const char *master_sae, const char *const *ids,
			size_t n, unsigned size_bits)
{
	struct qkid_kme_result *r;
	if (n == 0 || n > QKID_KME_IDS_MAX)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r)
		return -1;
	r->type = QKID_KME_DEC;
	r->n_ids = n;
	for (size_t i = 0; i < n; i++)
		snprintf(r->ids[i], sizeof(r->ids[i]), "%s", ids[i]);
	return submit(k, r, master_sae, size_bits);
}

struct qkid_kme_result *qkid_kme_collect(struct qkid_kme *k)
{
	struct qkid_kme_result *r = NULL;
	pthread_mutex_lock(&k->lock);
	if (k->state == 3) {
		r = k->job;
		k->job = NULL;
		k->state = 0;
	}
	pthread_mutex_unlock(&k->lock);
	return r;
}

void qkid_kme_result_free(struct qkid_kme_result *r)
{
	if (!r)
		return;
	etsi014_key_container_free(r->keys);
	free(r);
}

void qkid_kme_stop(struct qkid_kme *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	k->stop = 1;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	pthread_join(k->thread, NULL);
	qkid_kme_result_free(k->job);
	etsi014_client_free(k->client);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->cond);
	free(k);
}
