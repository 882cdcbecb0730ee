/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Unit test of the QKD link's receive path (kmsd_link.c's read_available, static, hence the
 * #include): a sender with far more than the receive buffer's bound (RBUF_MAX, 2 MiB) in flight
 * must not make the link drop with 'receive buffer overflow'; the frames already buffered are
 * handled to make room. Both TLS ends live in this thread and talk through memory queues
 * (GnuTLS push/pull functions, anonymous TLS 1.2), so all the sender's records are there at
 * once, deterministically, with no socket and no timing. */
#include "../kmsd_link.c"

#include <check.h>

/* One direction of the TLS byte stream. */
struct pipe_mem {
	uint8_t *buf;
	size_t len, off, cap;
};

struct end {
	gnutls_session_t s;
	struct pipe_mem *in, *out;
};

static ssize_t push(gnutls_transport_ptr_t p, const void *data, size_t len)
{
	struct end *e = p;
	struct pipe_mem *m = e->out;

	if (m->len + len > m->cap) {	/* doubling: 3 MiB of records in ~10 copies, not ~3000 */
		size_t cap = m->cap ? m->cap : 65536;
		uint8_t *b;

		while (cap < m->len + len)
			cap *= 2;
		b = realloc(m->buf, cap);
		if (!b) {
			errno = ENOMEM;
			return -1;
		}
		m->buf = b;
		m->cap = cap;
	}
	memcpy(m->buf + m->len, data, len);
	m->len += len;
	return (ssize_t)len;
}

static ssize_t pull(gnutls_transport_ptr_t p, void *data, size_t len)
{
	struct end *e = p;
	size_t n = e->in->len - e->in->off;

	if (n == 0) {
		gnutls_transport_set_errno(e->s, EAGAIN);
		return -1;
	}
	if (n > len)
		n = len;
	memcpy(data, e->in->buf + e->in->off, n);
	e->in->off += n;
	return (ssize_t)n;
}

static void end_init(struct end *e, unsigned flags, struct pipe_mem *in, struct pipe_mem *out,
		     void *cred)
{
	ck_assert_int_eq(gnutls_init(&e->s, flags | GNUTLS_NONBLOCK), 0);
	ck_assert_int_eq(gnutls_priority_set_direct(e->s,
		"NORMAL:-VERS-ALL:+VERS-TLS1.2:+ANON-ECDH", NULL), 0);
	ck_assert_int_eq(gnutls_credentials_set(e->s, GNUTLS_CRD_ANON, cred), 0);
	e->in = in;
	e->out = out;
	gnutls_transport_set_ptr(e->s, e);
	gnutls_transport_set_push_function(e->s, push);
	gnutls_transport_set_pull_function(e->s, pull);
}

START_TEST(link_reader_handles_more_than_its_buffer)
{
	gnutls_anon_server_credentials_t scred;
	gnutls_anon_client_credentials_t ccred;
	struct pipe_mem to_rx = {0}, to_tx = {0};
	struct end rx, tx;
	struct kmsd_config cfg = {0};
	static struct kmsd_kme kme; /* large; zeroed */
	struct kmsd_link *l = &kme.link;
	uint8_t frame[4 + 1 + 2 + 64 * 16];
	size_t sent = 0, frames = 0;
	int i, rc_rx = GNUTLS_E_AGAIN, rc_tx = GNUTLS_E_AGAIN;

	ck_assert_int_eq(gnutls_anon_allocate_server_credentials(&scred), 0);
	ck_assert_int_eq(gnutls_anon_allocate_client_credentials(&ccred), 0);
	end_init(&rx, GNUTLS_SERVER, &to_rx, &to_tx, scred);
	end_init(&tx, GNUTLS_CLIENT, &to_tx, &to_rx, ccred);
	for (i = 0; i < 100 && (rc_rx < 0 || rc_tx < 0); i++) { /* bounded: a few round trips */
		if (rc_tx < 0)
			rc_tx = gnutls_handshake(tx.s);
		if (rc_rx < 0)
			rc_rx = gnutls_handshake(rx.s);
		ck_assert(rc_tx == 0 || !gnutls_error_is_fatal(rc_tx));
		ck_assert(rc_rx == 0 || !gnutls_error_is_fatal(rc_rx));
	}
	ck_assert_msg(rc_rx == 0 && rc_tx == 0, "TLS handshake in memory did not finish");

	/* CONSUMED frames of 64 key_IDs each (a slave's informational message), 3 MiB in all: more
	 * than RBUF_MAX, all in flight before the receiver reads anything */
	memset(frame, 0, sizeof(frame));
	frame[2] = (uint8_t)((sizeof(frame) - 4) >> 8);
	frame[3] = (uint8_t)(sizeof(frame) - 4);
	frame[4] = KMSD_MSG_CONSUMED;
	frame[6] = 64;
	while (sent < 3 * 1024 * 1024) {
		ck_assert_int_eq(gnutls_record_send(tx.s, frame, sizeof(frame)), (ssize_t)sizeof(frame));
		sent += sizeof(frame);
		frames++;
	}
	ck_assert_uint_gt(sent, RBUF_MAX);

	cfg.kme_id = "KME_A";
	cfg.peer_kme_id = "KME_B";
	kme.cfg = &cfg;
	kme.is_link_master = 1;
	l->kme = &kme;
	l->fd = l->listen_fd = -1;
	l->tls = rx.s;
	ck_assert_int_eq(read_available(l, true), 0);     /* all read, EAGAIN at the end */
	ck_assert_uint_eq(to_rx.off, to_rx.len);          /* every record was taken */
	ck_assert_int_eq(kmsd_link_process(l), 0);        /* the rest of the frames */
	ck_assert_uint_eq(l->rlen, 0);                    /* ... nothing left half */
	ck_assert_uint_le(l->rcap, RBUF_MAX);
	ck_assert_uint_gt(frames, 0);

	ipseq_wipe(l->rbuf, l->rcap);
	free(l->rbuf);
	gnutls_deinit(rx.s);
	gnutls_deinit(tx.s);
	gnutls_anon_free_server_credentials(scred);
	gnutls_anon_free_client_credentials(ccred);
	free(to_rx.buf);
	free(to_tx.buf);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kmsd_link_rx");
	TCase *tc = tcase_create("receive");
	SRunner *sr;
	int failed;

	ipseq_log_set_level(IPSEQ_LOG_WARN); /* a line per CONSUMED frame at INFO */
	tcase_add_test(tc, link_reader_handles_more_than_its_buffer);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
