/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_kme.h - one worker thread per peer that makes the blocking ETSI 014 calls (libcurl), so
 * qkid's event loop never waits on a KME. One job at a time: the loop submits, the worker runs
 * it and writes a byte to notify_fd, the loop collects the result with qkid_kme_collect().
 * Key material crosses the thread boundary only inside an etsi014_key_container (wiped on free).
 */
#ifndef QKID_KME_H
#define QKID_KME_H

#include <stddef.h>

#include "etsi014_client.h"

#define QKID_KME_IDS_MAX 256

enum qkid_kme_job_type { QKID_KME_ENC = 1, QKID_KME_DEC, QKID_KME_STATUS };

struct qkid_kme_result {
	enum qkid_kme_job_type type;
	unsigned number;                /* ENC: keys asked */
	size_t n_ids;                   /* DEC: key_IDs asked */
	char ids[QKID_KME_IDS_MAX][ETSI014_KEY_ID_LEN + 1];
	enum etsi014_error_code code;
	struct etsi014_error err;
	struct etsi014_key_container *keys; /* owned by the result */
	struct etsi014_status status;   /* STATUS: the KME's answer */
	long elapsed_ms;
};

struct qkid_kme;

/* Start a worker. The client is created in the calling thread (config errors show at once). */
struct qkid_kme *qkid_kme_start(const struct etsi014_client_config *cfg, int notify_fd,
				char *err, size_t errlen);
/* 1 while a job is queued or running, or a result waits to be collected. */
int qkid_kme_busy(struct qkid_kme *k);
/* Submit; returns -1 if busy. sae: the slave's SAE ID (ENC) or the master's (DEC). */
int qkid_kme_submit_enc(struct qkid_kme *k, const char *slave_sae, unsigned number,
			unsigned size_bits);
/* Get status: a cheap probe while the KME is in back-off and nothing else is to be done. */
int qkid_kme_submit_status(struct qkid_kme *k, const char *slave_sae);
int qkid_kme_submit_dec(struct qkid_kme *k, const char *master_sae, const char *const *ids,
			size_t n, unsigned size_bits);
/* The finished job's result (caller frees with qkid_kme_result_free), or NULL. */
struct qkid_kme_result *qkid_kme_collect(struct qkid_kme *k);
void qkid_kme_result_free(struct qkid_kme_result *r);
/* Stop the thread (waits for a running request up to its timeout) and free. */
void qkid_kme_stop(struct qkid_kme *k);

#endif
