/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: the peer protocol past authentication. A frame's header is parsed,
 * its tag is not checked (a fuzzer cannot forge HMACs; this is about what an authenticated but
 * buggy or hostile peer qkid could send), and the payload is handed to the key agreement logic
 * of a master and of a slave qkid, with some keys and SAs already in place. Input byte 0 picks
 * the role.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../qkid.h"
#include "../qkid_log.h"
#include "ipseq_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int64_t qkid_now_ms(void)
{
	return (int64_t)ipseq_now_ms();
}

void qkid_random(void *buf, size_t n)
{
	memset(buf, 0x5a, n);
}

struct qkid_peer *qkid_peer_by_name(struct qkid *d, const char *name)
{
	(void)d;
	(void)name;
	return NULL;
}

static struct qkid *d;
static struct qkid_conf *conf;

static void setup(void)
{
	char err[256];
	qkid_log_open(QKID_LOG_ERR, 0);
	conf = calloc(1, sizeof(*conf));
	d = calloc(1, sizeof(*d));
	qkid_conf_defaults(conf);
	conf->n_peers = 1;
	snprintf(conf->peers[0].name, sizeof(conf->peers[0].name), "fuzz");
	conf->peers[0].key_size_bits = 256;
	conf->peers[0].sa_buffer_total = 64;
	conf->peers[0].sa_buffer_min = 4;
	conf->peers[0].sa_buffer_max = 16;
	conf->peers[0].ike_stash = 4;
	d->conf = conf;
	if (qkid_arena_init(&d->arena, 4096, err, sizeof(err)))
		abort();
}

static void populate(struct qkid_peer *p)
{
	static const uint8_t key[32] = { 1, 2, 3 };
	for (int i = 0; i < 8; i++) {
		char id[40];
		struct qkey *k;
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000000%02d", i);
		k = qkid_key_new(p, id);
		qkid_key_set_bytes(d, k, key, sizeof(key));
		k->state = QK_POOL;
		qkey_list_append(&p->pool, k);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qkid_peer *p;
	struct qkp_hdr h;
	struct qkid_sa *sa;

	if (!d)
		setup();
	if (size < 1 + QKP_HDR_LEN)
		return 0;
	conf->peers[0].role = data[0] & 1 ? QKI_ROLE_MASTER : QKI_ROLE_SLAVE;
	data++;
	size--;
	if (qkp_hdr_parse(data, &h))
		return 0;
	if (h.length > size - QKP_HDR_LEN)
		h.length = (uint32_t)(size - QKP_HDR_LEN);
	d->peers = p = calloc(1, sizeof(*p));
	d->n_peers = 1;
	p->d = d;
	p->conf = &conf->peers[0];
	p->role = conf->peers[0].role;
	p->key_len = 32;
	populate(p);
	qkid_sa_register(p, 0x1000, QKI_DIR_OUT, NULL, &sa);
	qkid_sa_register(p, 0x1000, QKI_DIR_IN, NULL, &sa);
	qkid_peer_on_message(p, &h, data + QKP_HDR_LEN);
	/* what a local user could do next must not trip over the new state */
	{
		static uint8_t buf[QKI_HDR_LEN + QKI_MSG_MAX];
		struct qki_msg m;
		uint32_t n, next;
		const char *msg;
		uint8_t key[32];
		char id[QKI_KEY_ID_MAX];
		qki_msg_init(&m, buf, sizeof(buf), QKI_T_SA_KEYS | QKI_REPLY, 1);
		qkid_sa_keys(sa, 0, 16, 0, &m, &n, &next, &msg);
		qkid_ike_get(p, "00000000-0000-4000-8000-000000000003", 32, key, &msg);
		qkid_ike_new(p, 32, key, id, &msg);
		qkid_sa_flush(sa);
	}
	qkid_peer_destroy(p);
	free(p);
	d->peers = NULL;
	return 0;
}
