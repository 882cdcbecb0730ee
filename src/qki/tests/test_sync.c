/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid's SA epochs at the edges: what a peer message or a local request beyond the epoch space
 * (QKI_EPOCH_LIMIT) or far beyond the assigned epochs does (nothing), that refilling stops at
 * the end of the epoch space instead of wrapping to epoch 0, and that a PEEK changes nothing.
 * Runs the daemon's key agreement code (qkid_sync.c and friends) without sockets or a KME.
 */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../qkid.h"
#include "../qkid_log.h"

/* qkid.c's process-wide helpers, which this test does not link */
int64_t qkid_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

static struct qkid d;
static struct qkid_conf conf;
static struct qkid_link link_up_state;
static struct qkid_peer *p;
static struct qkid_sa *sa;      /* SPI 0x1000, the slave receives on it */

/* A peer with 16 keys in the pool and one registered SA; the link counts as up. */
static void setup(int role)
{
	static const uint8_t key[32] = { 1, 2, 3 };
	char err[256];

	qkid_log_open(QKID_LOG_ERR, 0);
	memset(&d, 0, sizeof(d));
	memset(&conf, 0, sizeof(conf));
	qkid_conf_defaults(&conf);
	conf.n_peers = 1;
	snprintf(conf.peers[0].name, sizeof(conf.peers[0].name), "test");
	conf.peers[0].role = role;
	conf.peers[0].key_size_bits = 256;
	conf.peers[0].sa_buffer_total = 64;
	conf.peers[0].sa_buffer_min = 4;
	conf.peers[0].sa_buffer_max = 16;
	conf.peers[0].ike_stash = 0;
	conf.peers[0].ike_reserve = 0;
	d.conf = &conf;
	ck_assert_int_eq(qkid_arena_init(&d.arena, 1024, err, sizeof(err)), 0);
	d.peers = p = calloc(1, sizeof(*p));
	d.n_peers = 1;
	p->d = &d;
	p->conf = &conf.peers[0];
	p->role = role;
	p->key_len = 32;
	p->kme_next = INT64_MAX;        /* no KME in this test */
	link_up_state.state = QL_UP;
	p->link = &link_up_state;
	for (int i = 0; i < 16; i++) {
		char id[40];
		struct qkey *k;
		snprintf(id, sizeof(id), "00000000-0000-4000-8000-0000000000%02d", i);
		k = qkid_key_new(p, id);
		qkid_key_set_bytes(&d, k, key, sizeof(key));
		k->state = QK_POOL;
		qkey_list_append(&p->pool, k);
	}
	ck_assert_int_eq(qkid_sa_register(p, 0x1000, role == QKI_ROLE_MASTER ? QKI_DIR_OUT :
									  QKI_DIR_IN, NULL, &sa), QKI_OK);
}

static void teardown(void)
{
	p->link = NULL;
	qkid_peer_destroy(p);
	free(p);
	qkid_arena_destroy(&d.arena);
}

static size_t keys_held(void)
{
	return d.arena.n_slots - d.arena.n_free;
}

/* One peer message with one entry (SPI 0x1000, the slave receives), as after authentication. */
static void peer_message(uint8_t type, uint32_t epoch, uint32_t count, const char *key_id)
{
	static uint8_t buf[QKI_HDR_LEN + 1024];
	struct qkp_hdr h = { .type = type };
	struct qki_msg m;
	size_t mark;

	qki_msg_init(&m, buf, sizeof(buf), 0, 0);
	mark = qki_msg_nest_begin(&m, QKP_A_ENTRY);
	qki_msg_put_u32(&m, QKP_A_SPI, 0x1000);
	qki_msg_put_u8(&m, QKP_A_RX, QKI_ROLE_SLAVE);
	qki_msg_put_u32(&m, QKP_A_EPOCH, epoch);
	if (count)
		qki_msg_put_u32(&m, QKP_A_COUNT, count);
	if (key_id) {
		qki_msg_put_str(&m, QKP_A_KEY_ID, key_id);
		qki_msg_put_u8(&m, QKP_A_USE, QKP_USE_SA);
	}
	qki_msg_nest_end(&m, mark);
	ck_assert(!m.overflow);
	h.length = (uint32_t)(m.len - QKI_HDR_LEN);
	qkid_peer_on_message(p, &h, buf + QKI_HDR_LEN);
}

/* the master assigns what the SA's buffer lacks; the slave's ACK makes the keys ready */
static void refill_and_ack(void)
{
	qkid_peer_work(p, qkid_now_ms());
	for (struct qkey *k = sa->keys.head; k; k = k->next) {
		k->state = QK_READY;
		k->unacked = 0;
	}
}

START_TEST(test_need_beyond_the_epochs)
{
	uint64_t drops;

	setup(QKI_ROLE_MASTER);
	refill_and_ack();
	ck_assert_uint_eq(sa->keys.n, 16);
	ck_assert_uint_eq(sa->next_assign, 16);
	drops = p->drops;
	/* NEED(0xfffffff0) piled every pool key onto a wrapped epoch 0 and killed the SA's keys */
	peer_message(QKP_NEED, 0xfffffff0, 16, NULL);
	peer_message(QKP_NEED, QKI_EPOCH_LIMIT, 16, NULL);
	/* not representable, but more than QKI_EPOCH_JUMP_MAX beyond the assigned epochs */
	peer_message(QKP_NEED, 16 + QKI_EPOCH_JUMP_MAX + 1, 16, NULL);
	ck_assert_uint_eq(p->drops, drops + 3);
	ck_assert_uint_eq(sa->floor, 0);
	ck_assert_uint_eq(sa->remote, 0);
	ck_assert_uint_eq(sa->next_assign, 16);
	ck_assert_uint_eq(sa->keys.n, 16);
	qkid_peer_work(p, qkid_now_ms());
	ck_assert_uint_eq(sa->keys.n, 16);          /* no key went anywhere */
	ck_assert_uint_eq(keys_held(), 16);
	/* a NEED within the bound still moves the SA, as a restarted slave needs */
	peer_message(QKP_NEED, 16 + QKI_EPOCH_JUMP_MAX, 0, NULL);
	ck_assert_uint_eq(p->drops, drops + 3);
	ck_assert_uint_eq(sa->floor, 16 + QKI_EPOCH_JUMP_MAX);
	teardown();
}
END_TEST

START_TEST(test_refill_stops_at_the_epoch_limit)
{
	setup(QKI_ROLE_MASTER);
	/* a long-lived SA at the end of the epoch space */
	sa->floor = sa->next_assign = sa->release = QKI_EPOCH_LIMIT - 3;
	qkid_peer_work(p, qkid_now_ms());
	qkid_peer_work(p, qkid_now_ms());
	ck_assert_uint_eq(sa->keys.n, 3);
	ck_assert_uint_eq(sa->keys.head->epoch, QKI_EPOCH_LIMIT - 3);
	ck_assert_uint_eq(sa->keys.tail->epoch, QKI_EPOCH_LIMIT - 1);
	ck_assert_uint_eq(sa->next_assign, QKI_EPOCH_LIMIT);
	ck_assert_uint_eq(p->pool.n, 13);          /* the rest stays in the pool */
	teardown();
}
END_TEST

START_TEST(test_peek_changes_nothing)
{
	static uint8_t buf[QKI_HDR_LEN + QKI_MSG_MAX];
	struct qki_msg m;
	const char *msg = NULL;
	uint32_t n = 0, next = 0;

	setup(QKI_ROLE_MASTER);
	refill_and_ack();
	qki_msg_init(&m, buf, sizeof(buf), QKI_T_SA_KEYS | QKI_REPLY, 1);
	ck_assert_int_eq(qkid_sa_keys(sa, 4, 4, 1, &m, &n, &next, &msg), QKI_OK);
	ck_assert_uint_eq(n, 4);
	ck_assert_uint_eq(sa->release, 0);
	ck_assert_uint_eq(sa->keys.n, 16);
	ck_assert_uint_eq(sa->keys_out, 0);
	/* beyond the assigned epochs: no key, and no jump */
	qki_msg_init(&m, buf, sizeof(buf), QKI_T_SA_KEYS | QKI_REPLY, 2);
	ck_assert_int_eq(qkid_sa_keys(sa, 1000, 16, 1, &m, &n, &next, &msg), QKID_AGAIN);
	ck_assert_uint_eq(sa->floor, 0);
	ck_assert_uint_eq(sa->next_assign, 16);
	ck_assert_uint_eq(sa->keys.n, 16);
	/* the same without PEEK releases what lies below and counts what it hands out */
	qki_msg_init(&m, buf, sizeof(buf), QKI_T_SA_KEYS | QKI_REPLY, 3);
	ck_assert_int_eq(qkid_sa_keys(sa, 4, 4, 0, &m, &n, &next, &msg), QKI_OK);
	ck_assert_uint_eq(sa->release, 4);
	ck_assert_uint_eq(sa->keys.n, 12);
	ck_assert_uint_eq(sa->keys_out, 4);
	teardown();
}
END_TEST

START_TEST(test_slave_refuses_epochs_beyond_the_limit)
{
	uint64_t drops;

	setup(QKI_ROLE_SLAVE);
	drops = p->drops;
	peer_message(QKP_ASSIGN, 0xffffffff, 0, "11111111-0000-4000-8000-000000000001");
	ck_assert_ptr_null(qkid_key_find(p, "11111111-0000-4000-8000-000000000001"));
	ck_assert_uint_eq(sa->next_assign, 0);
	peer_message(QKP_STALE, QKI_EPOCH_LIMIT, 0, NULL);
	ck_assert_uint_eq(sa->floor, 0);
	ck_assert_uint_eq(p->drops, drops + 2);
	/* in the epoch space both still work */
	peer_message(QKP_ASSIGN, 7, 0, "11111111-0000-4000-8000-000000000002");
	ck_assert_ptr_nonnull(qkid_key_find(p, "11111111-0000-4000-8000-000000000002"));
	ck_assert_uint_eq(sa->next_assign, 8);
	peer_message(QKP_STALE, 5, 0, NULL);
	ck_assert_uint_eq(sa->floor, 5);
	teardown();
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkid sync");
	TCase *tc = tcase_create("epochs");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, test_need_beyond_the_epochs);
	tcase_add_test(tc, test_refill_stops_at_the_epoch_limit);
	tcase_add_test(tc, test_peek_changes_nothing);
	tcase_add_test(tc, test_slave_refuses_epochs_beyond_the_limit);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
