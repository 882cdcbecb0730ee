/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Unauthenticated input must not cost much: the per-peer budget of keys spent on IKE_SAs that
 * have not authenticated, and qkid calls that do not wait for each other (a fake qkid holds
 * one key request until a second one arrived and was answered).
 */
#include <check.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <library.h>
#include <daemon.h>

#include <qki_proto.h>

#include "../qkd_qki.h"
#include "../qkd_budget.h"

#include "charon_test.h"

START_TEST(test_budget_limits_per_peer)
{
	qkd_budget_t *budget = qkd_budget_create(3, 60);
	u_int id;

	for (id = 1; id <= 3; id++)
	{
		ck_assert(budget->charge(budget, "gwA", id));
	}
	ck_assert(!budget->charge(budget, "gwA", 4));		/* used up */
	ck_assert(!budget->charge(budget, "gwA", 5));
	ck_assert_uint_eq(budget->spent(budget, "gwA"), 3);
	ck_assert(budget->charge(budget, "gwC", 6));		/* other peers have their own */
	budget->refund(budget, 2);							/* qkid refused: nothing spent */
	ck_assert_uint_eq(budget->spent(budget, "gwA"), 2);
	ck_assert(budget->charge(budget, "gwA", 7));
	ck_assert(!budget->charge(budget, "gwA", 8));
	budget->authenticated(budget, 1);					/* well spent */
	budget->authenticated(budget, 3);
	ck_assert_uint_eq(budget->spent(budget, "gwA"), 1);
	ck_assert(budget->charge(budget, "gwA", 9));
	ck_assert(budget->charge(budget, "gwA", 9));		/* KE and PPK of one IKE_SA */
	ck_assert(!budget->charge(budget, "gwA", 10));
	budget->authenticated(budget, 9);					/* returns both */
	ck_assert_uint_eq(budget->spent(budget, "gwA"), 1);
	budget->destroy(budget);
}
END_TEST

START_TEST(test_budget_window)
{
	qkd_budget_t *budget = qkd_budget_create(2, 1);

	ck_assert(budget->charge(budget, "gwA", 1));
	ck_assert(budget->charge(budget, "gwA", 2));
	ck_assert(!budget->charge(budget, "gwA", 3));
	usleep(2100 * 1000);								/* the charges age out */
	ck_assert_uint_eq(budget->spent(budget, "gwA"), 0);
	ck_assert(budget->charge(budget, "gwA", 4));
	budget->destroy(budget);
}
END_TEST

START_TEST(test_budget_unlimited)
{
	qkd_budget_t *budget = qkd_budget_create(0, 60);
	u_int id;

	for (id = 1; id <= 100; id++)
	{
		ck_assert(budget->charge(budget, "gwA", id));
	}
	budget->destroy(budget);
}
END_TEST

/* --- a fake qkid ---------------------------------------------------------------------------- */

#define HELD_ID "00000000-0000-4000-8000-000000000001"
#define QUICK_ID "00000000-0000-4000-8000-000000000002"

static struct {
	char path[108];
	int listen_fd;
	/* the held request: its connection and sequence number, -1 if none */
	int held_fd;
	uint32_t held_seq;
	/* set once the held request arrived (polled by the test) */
	volatile int held_seen;
	/* order of answers: 'q' quick, 'h' held, 'e' held answered NO_KEY after waiting */
	char order[4];
} srv;

static void reply(int fd, uint8_t type, uint32_t seq, const char *key_id, int error)
{
	uint8_t buf[256], key[32];
	struct qki_msg m;
	size_t len;

	memset(key, 0x5a, sizeof(key));
	qki_msg_init(&m, buf, sizeof(buf), type | QKI_REPLY, seq);
	if (error)
	{
		qki_msg_put_u32(&m, QKI_A_ERROR, error);
	}
	else
	{
		qki_msg_put_str(&m, QKI_A_KEY_ID, key_id);
		qki_msg_put(&m, QKI_A_KEY, key, sizeof(key));
	}
	len = qki_msg_finish(&m);
	ck_assert_int_eq(write(fd, buf, len), len);
}

/** read one request of a client; FALSE on EOF */
static bool serve_one(int fd)
{
	uint8_t hdr[QKI_HDR_LEN], body[1024];
	char key_id[QKI_KEY_ID_MAX] = "";
	struct qki_attrs attrs;
	struct qki_hdr h;
	const char *why;

	if (read(fd, hdr, sizeof(hdr)) != sizeof(hdr) ||
		qki_hdr_parse(hdr, sizeof(hdr), &h) != QKI_OK || h.length > sizeof(body) ||
		read(fd, body, h.length) != (ssize_t)h.length ||
		qki_attrs_parse(body, h.length, &attrs, &why) != QKI_OK)
	{
		return FALSE;
	}
	qki_attr_str(&attrs, QKI_A_KEY_ID, key_id, sizeof(key_id));
	if (streq(key_id, HELD_ID))
	{	/* answered only after the quick one */
		srv.held_fd = fd;
		srv.held_seq = h.seq;
		srv.held_seen = 1;
		return TRUE;
	}
	reply(fd, h.type, h.seq, key_id, 0);
	strcat(srv.order, "q");
	if (srv.held_fd >= 0)
	{
		reply(srv.held_fd, QKI_T_KEY_GET, srv.held_seq, HELD_ID, 0);
		strcat(srv.order, "h");
		srv.held_fd = -1;
	}
	return TRUE;
}

/** serve until both requests are answered, at most 4 s; the held one gets NO_KEY after 3 s */
static void *serve(void *arg)
{
	struct pollfd fds[8];
	int n = 1, i, ms;

	fds[0] = (struct pollfd){ .fd = srv.listen_fd, .events = POLLIN };
	for (ms = 0; ms < 4000 && strlen(srv.order) < 2; ms += 50)
	{
		if (ms >= 3000 && srv.held_fd >= 0)
		{	/* the second request never came: qkid answers when its wait runs out */
			reply(srv.held_fd, QKI_T_KEY_GET, srv.held_seq, NULL, QKI_ERR_NO_KEY);
			strcat(srv.order, "e");
			srv.held_fd = -1;
		}
		if (poll(fds, n, 50) <= 0)
		{
			continue;
		}
		if ((fds[0].revents & POLLIN) && n < countof(fds))
		{
			fds[n++] = (struct pollfd){ .fd = accept(srv.listen_fd, NULL, NULL),
										.events = POLLIN };
		}
		for (i = 1; i < n; i++)
		{
			if ((fds[i].revents & (POLLIN | POLLHUP)) && !serve_one(fds[i].fd))
			{
				fds[i].events = 0;
			}
		}
	}
	return NULL;
}

typedef struct {
	qkd_qki_t *qki;
	char *key_id;
	bool ok;
} call_t;

static void *call(void *arg)
{
	call_t *c = arg;
	chunk_t key;

	c->ok = c->qki->get_key_by_id(c->qki, "gwA", c->key_id, 32, &key);
	chunk_clear(&key);
	return NULL;
}

START_TEST(test_qkid_calls_do_not_wait_for_each_other)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char dir[] = "/tmp/qkd-test-XXXXXX";
	pthread_t server, a, b;
	call_t held, quick;
	qkd_qki_t *qki;
	int i;

	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(srv.path, sizeof(srv.path), "%s/qkid.sock", dir);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", srv.path);
	srv.listen_fd = socket(AF_UNIX, SOCK_STREAM, 0);
	ck_assert_int_eq(bind(srv.listen_fd, (struct sockaddr*)&sun, sizeof(sun)), 0);
	ck_assert_int_eq(listen(srv.listen_fd, 8), 0);
	srv.held_fd = -1;
	pthread_create(&server, NULL, serve, NULL);

	qki = qkd_qki_create(srv.path, 5000);
	held = (call_t){ .qki = qki, .key_id = HELD_ID };
	quick = (call_t){ .qki = qki, .key_id = QUICK_ID };
	pthread_create(&a, NULL, call, &held);
	for (i = 0; i < 200 && !srv.held_seen; i++)
	{
		usleep(10 * 1000);
	}
	ck_assert_msg(srv.held_seen, "the fake qkid got no request");
	pthread_create(&b, NULL, call, &quick);
	pthread_join(b, NULL);
	pthread_join(a, NULL);
	pthread_join(server, NULL);
	ck_assert_msg(streq(srv.order, "qh"), "answers in order '%s': the second call waited "
				  "for the first (want 'qh')", srv.order);
	ck_assert(quick.ok);
	ck_assert(held.ok);

	qki->destroy(qki);
	close(srv.listen_fd);
	unlink(srv.path);
	rmdir(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qkd_unauth");
	TCase *tc = tcase_create("unauth");

	if (!charon_test_init(NULL))
	{
		return EXIT_FAILURE;
	}
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, test_budget_limits_per_peer);
	tcase_add_test(tc, test_budget_window);
	tcase_add_test(tc, test_budget_unlimited);
	tcase_add_test(tc, test_qkid_calls_do_not_wait_for_each_other);
	suite_add_tcase(s, tc);
	return charon_test_run(s);
}
