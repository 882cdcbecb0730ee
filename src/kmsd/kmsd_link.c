/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_link.c - the simulated QKD link between two qkd-kmsd processes: its connection and thread.
 *
 * Transport: one TCP connection with mutual TLS (GnuTLS), both ends presenting their KME
 * certificate; the peer's certificate must chain to the configured CA and carry peer_kme_id as
 * CN. Messages: u32 length (big endian, counts type + payload), u8 type, payload.
 *
 * Consistency: the link master owns allocation. It appends generated blocks (KEYS, kmsd_keygen.c)
 * and removes blocks it hands out (RESERVE, ALLOC_REP) under its store lock while queueing the
 * message, so the stream carries store changes in store order and the slave, which never changes
 * its ring on its own, mirrors the master exactly (kmsd_link_proto.c). When the link drops, both
 * stores flush their available blocks (resync by emptying).
 *
 * One thread owns the socket: HTTP threads only queue messages and wait on a pending entry
 * (kmsd_link_queue.c).
 */
#include "ipseq_config.h"
#include "kmsd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "ipseq_addr.h"
#include "ipseq_util.h"
#include "kmsd_link_codec.h"

#define LINK_VERSION 2      /* 2: key relay (kmsd_relay.c); a version 1 peer gets no relays */
#define LINK_VERSION_MIN 1
#define RBUF_MAX (2 * KMSD_LINK_MSG_MAX + 64)
#define IO_TIMEOUT_MS 5000
#define TLS_PRIORITY "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

/* --- helpers ----------------------------------------------------------------------------------- */

static void set_nonblock(int fd, int on)
{
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK);
}

static void tune_socket(int fd)
{
	int one = 1, idle = 5, intvl = 2, cnt = 3;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
}

/* Sleep up to ms, returning early if woken (stop). */
static void nap(struct kmsd_link *l, int ms)
{
	struct pollfd p = {.fd = l->wake[0], .events = POLLIN};
	char buf[64];

	if (poll(&p, 1, ms) > 0)
		while (read(l->wake[0], buf, sizeof(buf)) > 0)
			;
}

/* --- sending ----------------------------------------------------------------------------------- */

static int read_available(struct kmsd_link *l, bool may_process);

static int write_all(struct kmsd_link *l, const uint8_t *d, size_t len)
{
	gnutls_session_t s = l->tls;
	size_t off = 0;

	while (off < len) {
		ssize_t n = gnutls_record_send(s, d + off, len - off);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED) {
			/* Keep reading while the peer's window is full, or both sides could block
			 * on writes forever. */
			struct pollfd p = {.fd = l->fd, .events = POLLOUT | POLLIN};
			int pr = poll(&p, 1, IO_TIMEOUT_MS);
			if (pr == 0) {
				ipseq_log(IPSEQ_LOG_WARN, "QKD link: write timed out");
				return -1;
			}
			if (pr > 0 && (p.revents & POLLIN) && read_available(l, true) < 0)
				return -1;
			continue;
		}
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: send failed: %s", gnutls_strerror((int)n));
		return -1;
	}
	return 0;
}

static int flush_queue(struct kmsd_link *l)
{
	struct kmsd_out_msg *m, *next;
	int rc = 0;

	pthread_mutex_lock(&l->qlock);
	m = l->qhead;
	l->qhead = l->qtail = NULL;
	pthread_mutex_unlock(&l->qlock);
	for (; m; m = next) {
		next = m->next;
		if (rc == 0 && write_all(l, m->data, m->len) < 0)
			rc = -1;
		ipseq_wipe(m->data, m->len);
		free(m);
	}
	return rc;
}

/* --- receiving --------------------------------------------------------------------------------- */

/* Read what the socket and TLS have. A fast sender can have far more than the buffer's bound in
 * flight: when room runs short, handle the complete frames already buffered (may_process: not
 * during the handshake) to make room, instead of dropping the link for load. */
static int read_available(struct kmsd_link *l, bool may_process)
{
	gnutls_session_t s = l->tls;

	for (;;) {
		ssize_t n;

		if (may_process && l->rcap - l->rlen < 16384 && l->rlen > 0 &&
		    kmsd_link_process(l) < 0)
			return -1;
		if (l->rcap - l->rlen < 16384) {
			uint8_t *p;

			/* one doubling always makes the room (rcap >= 65536) */
			if ((l->rcap ? l->rcap * 2 : 65536) > RBUF_MAX) {
				ipseq_log(IPSEQ_LOG_WARN, "QKD link: receive buffer overflow");
				return -1;
			}
			p = ipseq_grow_wiped(l->rbuf, &l->rcap, l->rlen, l->rlen + 16384, 65536);
			if (!p)
				return -1;
			l->rbuf = p;
		}
		n = gnutls_record_recv(s, l->rbuf + l->rlen, l->rcap - l->rlen);
		if (n > 0) {
			l->rlen += (size_t)n;
			continue;
		}
		if (n == GNUTLS_E_AGAIN || n == GNUTLS_E_INTERRUPTED)
			return 0;
		if (n == 0)
			ipseq_log(IPSEQ_LOG_WARN, "QKD link: peer closed the connection");
		else
			ipseq_log(IPSEQ_LOG_WARN, "QKD link: receive failed: %s",
				  gnutls_strerror((int)n));
		return -1;
	}
}

/* --- connection lifecycle ---------------------------------------------------------------------- */

static int open_listener(struct kmsd_link *l)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, one = 1;

	if (ipseq_resolve(l->kme->cfg->link_address, 1, &ss, &sl) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "link_address '%s' is not host:port",
			  l->kme->cfg->link_address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, sl) < 0 || listen(fd, 4) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "QKD link: cannot listen on %s: %s",
			  l->kme->cfg->link_address, strerror(errno));
		close(fd);
		return -1;
	}
	set_nonblock(fd, 1);
	l->listen_fd = fd;
	return 0;
}

static int accept_peer(struct kmsd_link *l)
{
	struct pollfd p[2] = {{.fd = l->listen_fd, .events = POLLIN},
			      {.fd = l->wake[0], .events = POLLIN}};
	char buf[64];
	int fd;

	if (poll(p, 2, 500) <= 0)
		return -1;
	if (p[1].revents & POLLIN)
		while (read(l->wake[0], buf, sizeof(buf)) > 0)
			;
	if (!(p[0].revents & POLLIN))
		return -1;
	fd = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC);
	return fd;
}

static int connect_peer(struct kmsd_link *l, unsigned *failures)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	int fd, err = 0;
	socklen_t el = sizeof(err);
	struct pollfd p;

	if (ipseq_resolve(l->kme->cfg->link_address, 0, &ss, &sl) < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "link_address '%s' is not host:port",
			  l->kme->cfg->link_address);
		return -1;
	}
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS) {
		err = errno;
	} else {
		p.fd = fd;
		p.events = POLLOUT;
		if (poll(&p, 1, 2000) <= 0)
			err = ETIMEDOUT;
		else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
			err = errno;
	}
	if (err) {
		if ((*failures)++ % 20 == 0)
			ipseq_log(IPSEQ_LOG_INFO, "QKD link: cannot reach %s: %s (retrying)",
				  l->kme->cfg->link_address, strerror(err));
		close(fd);
		return -1;
	}
	*failures = 0;
	return fd;
}

static int peer_cn_ok(struct kmsd_link *l)
{
	gnutls_session_t s = l->tls;
	const gnutls_datum_t *certs;
	unsigned status = 0, n = 0;
	gnutls_x509_crt_t crt;
	char cn[ETSI014_ID_MAX + 2];
	size_t cnlen = sizeof(cn);
	int rc;

	rc = gnutls_certificate_verify_peers2(s, &status);
	if (rc < 0 || status != 0) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: peer certificate not trusted (%s)",
			  rc < 0 ? gnutls_strerror(rc) : "verification failed");
		return 0;
	}
	certs = gnutls_certificate_get_peers(s, &n);
	if (!certs || n == 0 || gnutls_x509_crt_init(&crt) < 0)
		return 0;
	rc = gnutls_x509_crt_import(crt, &certs[0], GNUTLS_X509_FMT_DER);
	if (rc >= 0)
		rc = gnutls_x509_crt_get_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, 0, cn,
						   &cnlen);
	gnutls_x509_crt_deinit(crt);
	if (rc < 0 || strcmp(cn, l->kme->cfg->peer_kme_id) != 0) {
		ipseq_log(IPSEQ_LOG_WARN,
			  "QKD link: peer certificate CN '%s' is not peer_kme_id '%s'",
			  rc < 0 ? "?" : cn, l->kme->cfg->peer_kme_id);
		return 0;
	}
	return 1;
}

static void close_conn(struct kmsd_link *l)
{
	if (l->tls && atomic_load(&l->stop))
		gnutls_bye(l->tls, GNUTLS_SHUT_WR); /* orderly goodbye; non-blocking, best effort */
	if (l->tls) {
		gnutls_deinit(l->tls);
		l->tls = NULL;
	}
	if (l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	if (l->rbuf) {
		ipseq_wipe(l->rbuf, l->rcap);
		free(l->rbuf);
	}
	l->rbuf = NULL;
	l->rlen = l->rcap = 0;
}

/* Read until one full message is buffered (handshake phase only). */
static int read_one(struct kmsd_link *l, unsigned timeout_ms)
{
	uint64_t end = ipseq_now_ms() + timeout_ms;

	for (;;) {
		if (l->rlen >= 4) {
			uint32_t len = (uint32_t)l->rbuf[0] << 24 | (uint32_t)l->rbuf[1] << 16 |
				       (uint32_t)l->rbuf[2] << 8 | l->rbuf[3];
			if (len == 0 || len > KMSD_LINK_MSG_MAX)
				return -1;
			if (l->rlen >= 4 + (size_t)len)
				return 0;
		}
		if (gnutls_record_check_pending(l->tls) == 0) {
			struct pollfd p = {.fd = l->fd, .events = POLLIN};
			int ms = (int)((int64_t)end - (int64_t)ipseq_now_ms());
			if (ms <= 0 || poll(&p, 1, ms) <= 0)
				return -1;
		}
		if (read_available(l, false) < 0)
			return -1;
	}
}

static int handshake(struct kmsd_link *l, int fd)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_wbuf w = {0};
	struct kmsd_rbuf r;
	char peer_id[ETSI014_ID_MAX + 1];
	unsigned version, role, bits, cap;
	gnutls_session_t s;
	int rc;

	l->fd = fd;
	tune_socket(fd);
	set_nonblock(fd, 0);
	if (gnutls_init(&s, k->is_link_master ? GNUTLS_SERVER : GNUTLS_CLIENT) < 0)
		return -1;
	l->tls = s;
	if (gnutls_priority_set_direct(s, TLS_PRIORITY, NULL) < 0 ||
	    gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, l->creds) < 0)
		return -1;
	if (k->is_link_master)
		gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
	gnutls_transport_set_int(s, fd);
	gnutls_handshake_set_timeout(s, IO_TIMEOUT_MS);
	do {
		rc = gnutls_handshake(s);
	} while (rc < 0 && !gnutls_error_is_fatal(rc));
	if (rc < 0) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: TLS handshake failed: %s",
			  gnutls_strerror(rc));
		return -1;
	}
	if (!peer_cn_ok(l))
		return -1;
	set_nonblock(fd, 1);

	pthread_mutex_lock(&k->store.lock);
	kmsd_w_u8(&w, LINK_VERSION);
	kmsd_w_u8(&w, k->is_link_master ? 0 : 1);
	kmsd_w_u32(&w, k->store.block_bits);
	kmsd_w_u32(&w, (uint32_t)k->store.cap);
	pthread_mutex_unlock(&k->store.lock);
	kmsd_w_str(&w, k->cfg->kme_id);
	{
		uint8_t hdr[5];
		uint32_t total = (uint32_t)w.len + 1;
		hdr[0] = total >> 24;
		hdr[1] = total >> 16;
		hdr[2] = total >> 8;
		hdr[3] = total;
		hdr[4] = KMSD_MSG_HELLO;
		rc = w.err || write_all(l, hdr, 5) < 0 || write_all(l, w.p, w.len) < 0 ? -1 : 0;
	}
	kmsd_w_free(&w);
	if (rc < 0 || read_one(l, IO_TIMEOUT_MS) < 0 || l->rbuf[4] != KMSD_MSG_HELLO) {
		ipseq_log(IPSEQ_LOG_WARN, "QKD link: no HELLO from peer");
		return -1;
	}
	r.p = l->rbuf + 5;
	r.len = ((size_t)l->rbuf[0] << 24 | (size_t)l->rbuf[1] << 16 | (size_t)l->rbuf[2] << 8 |
		 l->rbuf[3]) - 1;
	r.off = 0;
	r.err = 0;
	version = kmsd_r_u8(&r);
	role = kmsd_r_u8(&r);
	bits = kmsd_r_u32(&r);
	cap = kmsd_r_u32(&r);
	kmsd_r_str(&r, peer_id);
	memmove(l->rbuf, l->rbuf + 5 + r.len, l->rlen - 5 - r.len);
	l->rlen -= 5 + r.len;
	if (r.err || version < LINK_VERSION_MIN || version > LINK_VERSION ||
	    role == (k->is_link_master ? 0u : 1u) ||
	    strcmp(peer_id, k->cfg->peer_kme_id) != 0) {
		ipseq_log(IPSEQ_LOG_WARN,
			  "QKD link: peer HELLO does not match (version %u, role %u, id %s)",
			  version, role, peer_id);
		return -1;
	}

	l->peer_version = version;
	/* Bring up: empty store on both sides (the only resync), then accept traffic. */
	pthread_mutex_lock(&k->store.lock);
	kmsd_relay_grants_drop(l, 0);
	if (k->is_link_master) {
		kmsd_store_flush(&k->store);
	} else if (kmsd_store_resize(&k->store, bits, cap) < 0) {
		pthread_mutex_unlock(&k->store.lock);
		ipseq_log(IPSEQ_LOG_ERR,
			  "QKD link: cannot hold the master's store (%u blocks of %u bits)", cap,
			  bits);
		return -1;
	}
	pthread_mutex_lock(&l->qlock);
	kmsd_link_free_msgs(l->qhead);
	l->qhead = l->qtail = NULL;
	atomic_store(&l->up, 1);
	pthread_mutex_unlock(&l->qlock);
	pthread_mutex_unlock(&k->store.lock);
	l->credit_bits = 0;
	clock_gettime(CLOCK_MONOTONIC, &l->last_tick);
	if (k->is_link_master)
		ipseq_log(IPSEQ_LOG_INFO, "QKD link up: %s is link slave; generating %.0f bit/s in "
			  "%u-bit blocks, store bound %u",
			  peer_id, k->rate_bps, bits ? bits : 0, (unsigned)k->store.cap);
	else
		ipseq_log(IPSEQ_LOG_INFO,
			  "QKD link up: %s is link master; %u-bit blocks, store bound %u", peer_id,
			  bits, cap);
	return 0;
}

static void teardown(struct kmsd_link *l)
{
	struct kmsd_kme *k = l->kme;
	struct kmsd_link_pending *p;
	int was_up;

	pthread_mutex_lock(&k->store.lock);
	pthread_mutex_lock(&l->qlock);
	was_up = atomic_exchange(&l->up, 0);
	kmsd_link_free_msgs(l->qhead);
	l->qhead = l->qtail = NULL;
	pthread_mutex_unlock(&l->qlock);
	kmsd_store_flush(&k->store);
	kmsd_relay_grants_drop(l, 0);
	pthread_mutex_unlock(&k->store.lock);
	pthread_mutex_lock(&l->plock);
	for (p = l->pending; p; p = p->next)
		if (!p->done)
			kmsd_link_pending_complete(p, KMSD_LINK_DOWN);
	pthread_mutex_unlock(&l->plock);
	close_conn(l);
	if (was_up)
		ipseq_log(IPSEQ_LOG_WARN, "QKD link down: available keys flushed on this side");
}

static void run(struct kmsd_link *l)
{
	struct kmsd_kme *k = l->kme;
	uint64_t next_expire = 0;
	char buf[256];

	while (!atomic_load(&l->stop)) {
		struct pollfd p[3] = {{.fd = l->fd, .events = POLLIN},
				      {.fd = l->wake[0], .events = POLLIN},
				      {.fd = l->listen_fd, .events = POLLIN}};
		int timeout = k->is_link_master ? 10 : 200;
		nfds_t nfds = l->listen_fd >= 0 ? 3 : 2;

		if (gnutls_record_check_pending(l->tls) > 0)
			timeout = 0;
		if (poll(p, nfds, timeout) < 0 && errno != EINTR)
			return;
		if (p[1].revents & POLLIN)
			while (read(l->wake[0], buf, sizeof(buf)) > 0)
				;
		if (nfds == 3 && (p[2].revents & POLLIN)) {
			ipseq_log(IPSEQ_LOG_WARN,
				  "QKD link: new connection from the peer replaces this one");
			return;
		}
		if ((p[0].revents & (POLLIN | POLLHUP | POLLERR)) ||
		    gnutls_record_check_pending(l->tls) > 0) {
			if (read_available(l, true) < 0)
				return;
		}
		if (kmsd_link_process(l) < 0) {
			flush_queue(l); /* a relay NACK queued before the drop still reaches the peer */
			return;
		}
		if (k->is_link_master && kmsd_keygen_tick(l) < 0)
			return;
		if (flush_queue(l) < 0)
			return;
		if (ipseq_now_ms() >= next_expire) {
			pthread_mutex_lock(&k->store.lock);
			kmsd_store_expire(&k->store, ipseq_now_ms());
			kmsd_relay_grants_drop(l, 1);
			pthread_mutex_unlock(&k->store.lock);
			next_expire = ipseq_now_ms() + 1000;
		}
	}
}

static void *link_main(void *arg)
{
	struct kmsd_link *l = arg;
	unsigned failures = 0;

	while (!atomic_load(&l->stop)) {
		int fd = l->kme->is_link_master ? accept_peer(l) : connect_peer(l, &failures);

		if (fd < 0) {
			if (!l->kme->is_link_master)
				nap(l, (int)l->kme->cfg->link_retry_ms);
			/* the reservation clock runs while the link is down, too */
			pthread_mutex_lock(&l->kme->store.lock);
			kmsd_store_expire(&l->kme->store, ipseq_now_ms());
			pthread_mutex_unlock(&l->kme->store.lock);
			continue;
		}
		if (handshake(l, fd) == 0)
			run(l);
		teardown(l);
		if (!l->kme->is_link_master && !atomic_load(&l->stop))
			nap(l, (int)l->kme->cfg->link_retry_ms);
	}
	return NULL;
}

int kmsd_link_start(struct kmsd_link *l, struct kmsd_kme *k)
{
	gnutls_certificate_credentials_t creds;
	int rc;

	memset(l, 0, sizeof(*l));
	l->kme = k;
	l->fd = l->listen_fd = -1;
	l->wake[0] = l->wake[1] = -1;
	pthread_mutex_init(&l->qlock, NULL);
	pthread_mutex_init(&l->plock, NULL);
	if (pipe2(l->wake, O_NONBLOCK | O_CLOEXEC) < 0)
		return -1;
	if (gnutls_certificate_allocate_credentials(&creds) < 0)
		return -1;
	l->creds = creds;
	rc = gnutls_certificate_set_x509_key_file(creds, k->cfg->cert, k->cfg->key,
						  GNUTLS_X509_FMT_PEM);
	if (rc < 0) {
		ipseq_log(IPSEQ_LOG_ERR, "QKD link: cannot load %s / %s: %s", k->cfg->cert,
			  k->cfg->key, gnutls_strerror(rc));
		return -1;
	}
	rc = gnutls_certificate_set_x509_trust_file(creds, k->cfg->ca, GNUTLS_X509_FMT_PEM);
	if (rc <= 0) {
		ipseq_log(IPSEQ_LOG_ERR, "QKD link: no CA certificate in %s", k->cfg->ca);
		return -1;
	}
	if (k->is_link_master && open_listener(l) < 0)
		return -1;
	if (pthread_create(&l->thread, NULL, link_main, l) != 0)
		return -1;
	l->started = 1;
	return 0;
}

void kmsd_link_halt(struct kmsd_link *l)
{
	if (l->started) {
		atomic_store(&l->stop, 1);
		if (write(l->wake[1], "s", 1) < 0)
			ipseq_log(IPSEQ_LOG_DEBUG, "QKD link: wake pipe: %s", strerror(errno));
		pthread_join(l->thread, NULL);
		l->started = 0;
	}
}

void kmsd_link_stop(struct kmsd_link *l)
{
	kmsd_link_halt(l);
	kmsd_relay_grants_drop(l, 0);
	kmsd_link_free_msgs(l->qhead);
	l->qhead = l->qtail = NULL;
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	l->listen_fd = -1;
	close_conn(l);
	if (l->creds)
		gnutls_certificate_free_credentials(l->creds);
	l->creds = NULL;
	if (l->wake[0] >= 0)
		close(l->wake[0]);
	if (l->wake[1] >= 0)
		close(l->wake[1]);
	l->wake[0] = l->wake[1] = -1;
	pthread_mutex_destroy(&l->qlock);
	pthread_mutex_destroy(&l->plock);
}
