/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_local.c - the local API server (API.md): unix stream socket, one request at a time per
 * connection, requests that wait for keys are parked (the connection is not read meanwhile) and
 * retried whenever keys arrive, until their WAIT_MS runs out. Any malformed input gets an error
 * reply; only a header that cannot be trusted ends the connection.
 */
#include <errno.h>
#include <grp.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "qkid.h"
#include "qkid_log.h"

#define RX_SIZE (QKI_HDR_LEN + QKI_MSG_MAX)
#define TX_MAX (4u << 20)
#define WAIT_MAX_MS 60000
#define PARKED_MAX 256

/* gid of a group named in qkid.conf; (gid_t)-1 when none is named. */
static int resolve_group(const char *name, const char *key, gid_t *gid, char *err, size_t errlen)
{
	struct group *g;
	*gid = (gid_t)-1;
	if (!name[0])
		return 0;
	if (!(g = getgrnam(name))) {
		snprintf(err, errlen, "%s %s: no such group", key, name);
		return -1;
	}
	*gid = g->gr_gid;
	return 0;
}

int qkid_local_open(struct qkid *d, char *err, size_t errlen)
{
	const struct qkid_conf *c = d->conf;
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	char dir[sizeof(sun.sun_path)], *slash;
	mode_t old;
	int fd;

	if (strlen(c->socket_path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "socket path too long: %s", c->socket_path);
		return -1;
	}
	strcpy(sun.sun_path, c->socket_path);
	strcpy(dir, c->socket_path);
	slash = strrchr(dir, '/');
	if (slash && slash != dir) {
		*slash = 0;
		if (mkdir(dir, 0755) && errno != EEXIST) {
			snprintf(err, errlen, "mkdir %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	if (lstat(c->socket_path, &st) == 0) {
		int probe;
		if (!S_ISSOCK(st.st_mode)) {
			snprintf(err, errlen, "%s exists and is not a socket", c->socket_path);
			return -1;
		}
		probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof(sun)) == 0) {
			close(probe);
			snprintf(err, errlen, "another qkid serves %s", c->socket_path);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(c->socket_path);
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		return -1;
	}
	old = umask(0177);      /* never world-accessible, not even for a moment */
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		umask(old);
		snprintf(err, errlen, "bind %s: %s", c->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (c->socket_group[0]) {
		struct group *g = getgrnam(c->socket_group);
		if (!g || chown(c->socket_path, (uid_t)-1, g->gr_gid)) {
			snprintf(err, errlen, "socket_group %s: %s", c->socket_group,
				 g ? strerror(errno) : "no such group");
			close(fd);
			unlink(c->socket_path);
			return -1;
		}
	}
	if (resolve_group(c->key_group, "key_group", &d->key_gid, err, errlen) ||
	    resolve_group(c->status_group[0] ? c->status_group : c->socket_group,
			  c->status_group[0] ? "status_group" : "socket_group", &d->status_gid,
			  err, errlen)) {
		close(fd);
		unlink(c->socket_path);
		return -1;
	}
	if (chmod(c->socket_path, c->socket_mode & 0770) || listen(fd, 64)) {
		snprintf(err, errlen, "socket %s: %s", c->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	d->local_fd = fd;
	log_info("local API on %s (mode %04o%s%s)", c->socket_path, c->socket_mode & 0770,
		 c->socket_group[0] ? ", group " : "", c->socket_group);
	return 0;
}

static int in_groups(gid_t want, const gid_t *gids, size_t n)
{
	if (want == (gid_t)-1)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (gids[i] == want)
			return 1;
	return 0;
}

/*
 * What the process at the other end of fd may do, from its credentials at connect time
 * (SO_PEERCRED, and SO_PEERGROUPS for its supplementary groups): key access for root, qkid's own
 * user and members of key_group; status for members of status_group (or, without one, of
 * socket_group); else nothing but VERSION.
 */
static uint8_t caller_access(const struct qkid *d, int fd, uid_t *uid)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	gid_t gids[64];
	size_t n = 0;

	*uid = (uid_t)-1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) || len != sizeof(cr))
		return QKID_ACCESS_NONE;
	*uid = cr.uid;
	if (cr.uid == 0 || cr.uid == geteuid())
		return QKID_ACCESS_KEYS;
	gids[n++] = cr.gid;
#ifdef SO_PEERGROUPS
	len = sizeof(gids) - sizeof(gids[0]);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, gids + 1, &len) == 0)
		n += len / sizeof(gids[0]);
#endif
	if (in_groups(d->key_gid, gids, n))
		return QKID_ACCESS_KEYS;
	if (in_groups(d->status_gid, gids, n))
		return QKID_ACCESS_STATUS;
	return QKID_ACCESS_NONE;
}

void qkid_local_accept(struct qkid *d)
{
	int fd = accept4(d->local_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	struct qkid_conn *c;
	if (fd < 0)
		return;
	if (d->n_conns >= d->conf->client_max) {
		log_warn("local API: %zu clients connected (client_max), refusing one", d->n_conns);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c)
		c->rx = malloc(RX_SIZE);
	if (!c || !c->rx) {
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	c->access = caller_access(d, fd, &c->uid);
	c->next = d->conns;
	d->conns = c;
	d->n_conns++;
}

void qkid_local_close(struct qkid *d, struct qkid_conn *c)
{
	/* marked here, freed in qkid_local_reap() so loops over d->conns stay valid */
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->closing = 2;
	(void)d;
}

void qkid_local_reap(struct qkid *d)
{
	struct qkid_conn **pp = &d->conns;
	while (*pp) {
		struct qkid_conn *c = *pp;
		if (c->closing == 2) {
			*pp = c->next;
			d->n_conns--;
			qkid_conn_gone(d, c);
			OPENSSL_cleanse(c->rx, RX_SIZE);
			free(c->rx);
			if (c->tx) {
				OPENSSL_cleanse(c->tx, c->tx_cap);
				free(c->tx);
			}
			free(c);
		} else {
			pp = &c->next;
		}
	}
}

static void flush_tx(struct qkid *d, struct qkid_conn *c)
{
	while (c->tx_off < c->tx_len) {
		ssize_t w = send(c->fd, c->tx + c->tx_off, c->tx_len - c->tx_off, MSG_NOSIGNAL);
		if (w > 0) {
			c->tx_off += (size_t)w;
		} else if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			return;
		} else {
			qkid_local_close(d, c);
			return;
		}
	}
	/* everything sent: wipe what may have been keys */
	OPENSSL_cleanse(c->tx, c->tx_len);
	c->tx_off = c->tx_len = 0;
	if (c->closing == 1)
		qkid_local_close(d, c);
}

static void queue_reply(struct qkid *d, struct qkid_conn *c, struct qki_msg *m)
{
	size_t n = qki_msg_finish(m);
	if (!n) {
		/* cannot happen with our own bounded replies; never leave the client hanging */
		struct qki_msg e;
		qki_msg_init(&e, m->buf, m->cap, m->buf[3], qki_get32(m->buf + 4));
		qki_msg_put_u32(&e, QKI_A_ERROR, QKI_ERR_INTERNAL);
		qki_msg_put_str(&e, QKI_A_MESSAGE, "reply too large");
		n = qki_msg_finish(&e);
	}
	if (c->tx_len + n > c->tx_cap) {
		size_t cap = c->tx_cap ? c->tx_cap : 4096;
		uint8_t *t;
		while (cap < c->tx_len + n)
			cap *= 2;
		if (cap > TX_MAX || !(t = malloc(cap))) {
			qkid_local_close(d, c);
			goto out;
		}
		if (c->tx) {
			memcpy(t, c->tx, c->tx_len);
			OPENSSL_cleanse(c->tx, c->tx_cap);
			free(c->tx);
		}
		c->tx = t;
		c->tx_cap = cap;
	}
	memcpy(c->tx + c->tx_len, m->buf, n);
	c->tx_len += n;
	flush_tx(d, c);
out:
	OPENSSL_cleanse(m->buf, n ? n : QKI_HDR_LEN);
}

static void reply_error(struct qkid *d, struct qkid_conn *c, uint8_t type, uint32_t seq, int code,
			const char *msg)
{
	struct qki_msg m;
	qki_msg_init(&m, d->reply, sizeof(d->reply), type, seq);
	qki_msg_put_u32(&m, QKI_A_ERROR, (uint32_t)code);
	qki_msg_put_str(&m, QKI_A_MESSAGE, msg ? msg : qki_strerror(code));
	queue_reply(d, c, &m);
}

static int need_attrs(const struct qki_attrs *a, const int *list, const char **missing)
{
	static const char *const names[QKI_A_ATTR_MAX] = {
		[QKI_A_PEER] = "PEER", [QKI_A_KEY_ID] = "KEY_ID", [QKI_A_SIZE] = "SIZE",
		[QKI_A_SPI] = "SPI", [QKI_A_DIR] = "DIR", [QKI_A_EPOCH] = "EPOCH",
		[QKI_A_COUNT] = "COUNT", [QKI_A_PACKETS] = "PACKETS", [QKI_A_BYTES] = "BYTES",
	};
	for (; *list; list++)
		if (!a->a[*list].present) {
			*missing = names[*list];
			return 0;
		}
	return 1;
}

static void put_peer_info(struct qki_msg *m, struct qkid_peer *p)
{
	size_t mark = qki_msg_nest_begin(m, QKI_A_PEER_INFO);
	uint32_t ike = p->role == QKI_ROLE_MASTER ? (uint32_t)p->pool.n : (uint32_t)p->ike_own.n;
	qki_msg_put_str(m, QKI_A_PEER, p->conf->name);
	qki_msg_put_str(m, QKI_A_LOCAL_SAE, p->conf->local_sae);
	qki_msg_put_str(m, QKI_A_PEER_SAE, p->conf->peer_sae);
	qki_msg_put_u8(m, QKI_A_ROLE, (uint8_t)p->role);
	qki_msg_put_u8(m, QKI_A_LINK, qkid_link_up(p) ? QKI_LINK_UP :
				      p->link || p->candidate ? QKI_LINK_CONNECTING : QKI_LINK_DOWN);
	qki_msg_put_u8(m, QKI_A_KME, (uint8_t)p->kme_state);
	qki_msg_put_u32(m, QKI_A_KEY_SIZE, p->key_len);
	qki_msg_put_u32(m, QKI_A_LEVEL, (uint32_t)(p->role == QKI_ROLE_MASTER ? p->pool.n
									     : p->fetchq.n));
	qki_msg_put_u32(m, QKI_A_CAPACITY, p->conf->pool_target + p->conf->ike_reserve);
	qki_msg_put_u32(m, QKI_A_IKE_LEVEL, ike);
	qki_msg_put_u32(m, QKI_A_BACKOFF_MS, p->kme_state == QKI_KME_BACKOFF ? p->backoff_ms : 0);
	qki_msg_put_u64(m, QKI_A_KEYS_IN, p->keys_in);
	qki_msg_put_u64(m, QKI_A_KEYS_OUT, p->keys_out);
	qki_msg_put_u64(m, QKI_A_RATE_IN, (uint64_t)llround(p->rate_in * 1000));
	qki_msg_put_u64(m, QKI_A_RATE_OUT, (uint64_t)llround(p->rate_out * 1000));
	qki_msg_put_u64(m, QKI_A_ERRORS, p->kme_errors);
	qki_msg_put_u64(m, QKI_A_DROPS, p->drops);
	qki_msg_put_u64(m, QKI_A_RESYNCS, p->resyncs);
	if (p->last_error[0])
		qki_msg_put_str(m, QKI_A_LAST_ERROR, p->last_error);
	qki_msg_nest_end(m, mark);
}

static void put_sa_info(struct qki_msg *m, struct qkid_sa *sa)
{
	size_t mark = qki_msg_nest_begin(m, QKI_A_SA_INFO);
	qki_msg_put_u32(m, QKI_A_SPI, sa->spi);
	qki_msg_put_u8(m, QKI_A_DIR, sa->dir);
	qki_msg_put_str(m, QKI_A_PEER, sa->peer->conf->name);
	qki_msg_put_u32(m, QKI_A_LEVEL, qkid_sa_level(sa));
	qki_msg_put_u32(m, QKI_A_CAPACITY, qkid_sa_capacity(sa->peer));
	qki_msg_put_u32(m, QKI_A_NEXT_EPOCH, sa->release > sa->floor ? sa->release : sa->floor);
	qki_msg_put_u32(m, QKI_A_RPK, sa->dp_rpk);
	qki_msg_put_u64(m, QKI_A_KEYS_OUT, sa->keys_out);
	qki_msg_put_u64(m, QKI_A_REFILLS, sa->refills);
	qki_msg_put_u64(m, QKI_A_STARVED, sa->starved);
	qki_msg_put_u64(m, QKI_A_PACKETS, sa->packets);
	qki_msg_put_u64(m, QKI_A_BYTES, sa->bytes);
	qki_msg_put_u64(m, QKI_A_PKT_RATE, (uint64_t)llround(sa->pkt_rate * 1000));
	qki_msg_put_u64(m, QKI_A_RATE_OUT, (uint64_t)llround(sa->drain_rate * 1000));
	qki_msg_put_u64(m, QKI_A_SHARE, (uint64_t)llround(sa->share * 1000));
	qki_msg_put_u32(m, QKI_A_DP_RPK, sa->dp_rpk);
	qki_msg_put_u32(m, QKI_A_DP_LEVEL, sa->dp_level);
	qki_msg_put_u32(m, QKI_A_DP_CAPACITY, sa->dp_capacity);
	qki_msg_put_u64(m, QKI_A_WINDOWS, sa->windows);
	qki_msg_put_u64(m, QKI_A_BEYOND_RPK, sa->beyond_rpk);
	qki_msg_put_u64(m, QKI_A_STALL_DROPS, sa->stall_drops);
	qki_msg_put_u64(m, QKI_A_EPISODES, sa->episodes);
	qki_msg_nest_end(m, mark);
}

/* The KME failed several times in a row: do not let callers wait for it, tell them at once. */
static int kme_failing(const struct qkid_peer *p)
{
	return p->kme_state == QKI_KME_BACKOFF && p->kme_fail_streak >= 3;
}

/* One request being handled: what its handler gets. */
struct request {
	struct qkid *d;
	struct qkid_conn *c;
	struct qki_hdr h;
	struct qki_attrs a;
	struct qki_msg m;       /* the reply, begun in d->reply */
	struct qkid_peer *p;    /* the PEER named, if it exists */
	struct qkid_sa *sa;     /* the registered SA named by SPI and DIR (handlers with .sa) */
	uint32_t spi, wait;
	uint8_t dir;
	int first_try;
	int expired;            /* the wait is over: answer now whatever the state */
};

enum handled {
	PARKED,                 /* waits for keys; tried again later */
	REPLY,                  /* the reply in r->m is to be sent */
	ANSWERED,               /* an error reply was sent already */
};

static enum handled refuse(struct request *r, int code, const char *msg)
{
	reply_error(r->d, r->c, r->h.type | QKI_REPLY, r->h.seq, code, msg);
	return ANSWERED;
}

static enum handled on_version(struct request *r)
{
	qki_msg_put_str(&r->m, QKI_A_VERSION, PACKAGE_VERSION);
	qki_msg_put_u32(&r->m, QKI_A_RPK_MIN, r->d->conf->rpk_min);
	qki_msg_put_u32(&r->m, QKI_A_RPK_MAX, r->d->conf->rpk_max);
	return REPLY;
}

/* KEY_NEW (initiator) and KEY_GET (responder): an IKE key of SIZE bytes. */
static enum handled on_key(struct request *r)
{
	struct qkid_peer *p = r->p;
	char key_id[QKI_KEY_ID_MAX], text[64];
	uint8_t key[QKI_KEY_MAX];
	const char *msg = NULL;
	uint32_t size = 0;
	int rc;

	qki_attr_u32(&r->a, QKI_A_SIZE, &size);
	if (size == 0 || size > p->key_len) {
		snprintf(text, sizeof(text), "SIZE must be 1..%u", p->key_len);
		return refuse(r, QKI_ERR_INVALID, text);
	}
	if (r->h.type == QKI_T_KEY_NEW) {
		rc = qkid_ike_new(p, size, key, key_id, &msg);
	} else {
		qki_attr_str(&r->a, QKI_A_KEY_ID, key_id, sizeof(key_id));
		rc = qkid_ike_get(p, key_id, size, key, &msg);
	}
	if (rc == QKID_AGAIN) {
		qkid_peer_flush(p);     /* a NEED or an on-demand fetch may be waiting */
		if (!r->expired && r->wait && !kme_failing(p))
			return PARKED;
		rc = kme_failing(p) ? QKI_ERR_KME : QKI_ERR_NO_KEY;
		if (!msg)
			msg = p->last_error[0] && p->kme_state == QKI_KME_BACKOFF ?
				p->last_error : "no key within WAIT_MS";
	}
	if (rc != QKI_OK)
		return refuse(r, rc, msg);
	/* the peer learns of the assignment before our caller gets the key */
	qkid_peer_flush(p);
	qki_msg_put_str(&r->m, QKI_A_KEY_ID, key_id);
	qki_msg_put(&r->m, QKI_A_KEY, key, size);
	OPENSSL_cleanse(key, sizeof(key));
	return REPLY;
}

static enum handled on_sa_register(struct request *r)
{
	struct qkid_sa *sa = qkid_sa_find(r->d, r->spi, r->dir);
	const char *taken = sa && sa->peer != r->p ? "SA registered for another peer"
						    : "SA registered by another client";
	int rc = qkid_sa_register(r->p, r->spi, r->dir, r->c, &sa);
	if (rc != QKI_OK)
		return refuse(r, rc, rc == QKI_ERR_EXISTS ? taken : NULL);
	qkid_peer_flush(r->p);
	qki_msg_put_u32(&r->m, QKI_A_CAPACITY, qkid_sa_capacity(r->p));
	return REPLY;
}

static enum handled on_sa_keys(struct request *r)
{
	struct qkid *d = r->d;
	struct qkid_sa *sa = r->sa;
	const char *msg = NULL;
	uint32_t epoch = 0, count = 0, got = 0, next = 0;
	uint8_t peek = 0;
	int rc;

	qki_attr_u32(&r->a, QKI_A_EPOCH, &epoch);
	qki_attr_u32(&r->a, QKI_A_COUNT, &count);
	qki_attr_u8(&r->a, QKI_A_PEEK, &peek);
	if (count == 0)
		return refuse(r, QKI_ERR_INVALID, "COUNT must be at least 1");
	if (epoch >= QKI_EPOCH_LIMIT) {
		log_warn("local API: SA %08x/%s: keys for epoch %u refused: the epoch space "
			 "ends at %u (the SA must be rekeyed)", sa->spi,
			 sa->dir == QKI_DIR_IN ? "in" : "out", epoch, QKI_EPOCH_LIMIT);
		return refuse(r, QKI_ERR_INVALID, "EPOCH beyond the epoch space; rekey the SA");
	}
	if (count > QKI_EPOCH_BATCH_MAX)
		count = QKI_EPOCH_BATCH_MAX;
	if (count > QKI_EPOCH_LIMIT - epoch)
		count = QKI_EPOCH_LIMIT - epoch;
	rc = qkid_sa_keys(sa, epoch, count, peek, &r->m, &got, &next, &msg);
	if (rc == QKID_AGAIN && peek) {
		rc = QKI_ERR_NO_KEY;        /* a look only: never parked, never starved */
		msg = "no key held for this epoch";
	} else if (rc == QKID_AGAIN) {
		if (r->first_try)
			sa->starved++;
		qkid_peer_flush(sa->peer);
		if (!r->expired && r->wait && !kme_failing(sa->peer)) {
			OPENSSL_cleanse(d->reply, r->m.len);
			return PARKED;
		}
		rc = kme_failing(sa->peer) ? QKI_ERR_KME : QKI_ERR_NO_KEY;
		if (!msg)
			msg = sa->peer->kme_state == QKI_KME_BACKOFF ? sa->peer->last_error
								     : "no key for this epoch yet";
	}
	qkid_peer_flush(sa->peer);
	if (rc != QKI_OK) {
		qki_msg_init(&r->m, d->reply, sizeof(d->reply), r->h.type | QKI_REPLY, r->h.seq);
		qki_msg_put_u32(&r->m, QKI_A_ERROR, (uint32_t)(rc < 0 ? QKI_ERR_INTERNAL : rc));
		qki_msg_put_str(&r->m, QKI_A_MESSAGE, msg ? msg : qki_strerror(rc));
	}
	qki_msg_put_u32(&r->m, QKI_A_NEXT_EPOCH, next);
	qki_msg_put_u32(&r->m, QKI_A_RPK, sa->dp_rpk);
	return REPLY;
}

static enum handled on_sa_report(struct request *r)
{
	qkid_sa_report(r->sa, &r->a);
	qki_msg_put_u32(&r->m, QKI_A_RPK, r->sa->dp_rpk);
	qki_msg_put_u64(&r->m, QKI_A_SHARE, (uint64_t)llround(r->sa->share * 1000));
	/* the most keys qkid holds for the SA (its part of sa_buffer_total): keys handed out
	 * count until released, so the datapath cannot hold more ahead than this */
	qki_msg_put_u32(&r->m, QKI_A_CAPACITY, qkid_sa_capacity(r->sa->peer));
	return REPLY;
}

static enum handled on_sa_unregister(struct request *r)
{
	qkid_sa_unregister(r->sa);
	return REPLY;
}

static enum handled on_sa_flush(struct request *r)
{
	qki_msg_put_u32(&r->m, QKI_A_COUNT, qkid_sa_flush(r->sa));
	qkid_peer_flush(r->sa->peer);
	return REPLY;
}

static enum handled on_rpk_advice(struct request *r)
{
	struct qkid_sa *sa = r->sa;
	qki_msg_put_u32(&r->m, QKI_A_RPK, sa->dp_rpk);
	qki_msg_put_u32(&r->m, QKI_A_RPK_MIN, r->d->conf->rpk_min);
	qki_msg_put_u32(&r->m, QKI_A_RPK_MAX, r->d->conf->rpk_max);
	qki_msg_put_u32(&r->m, QKI_A_LEVEL, qkid_sa_level(sa));
	qki_msg_put_u32(&r->m, QKI_A_CAPACITY, qkid_sa_capacity(sa->peer));
	qki_msg_put_u64(&r->m, QKI_A_PKT_RATE, (uint64_t)llround(sa->pkt_rate * 1000));
	qki_msg_put_u64(&r->m, QKI_A_RATE_IN, (uint64_t)llround(sa->share * 1000));
	qki_msg_put_u64(&r->m, QKI_A_SHARE, (uint64_t)llround(sa->share * 1000));
	qki_msg_put_u32(&r->m, QKI_A_DP_LEVEL, sa->dp_level);
	qki_msg_put_u32(&r->m, QKI_A_DP_CAPACITY, sa->dp_capacity);
	qki_msg_put_u64(&r->m, QKI_A_BEYOND_RPK, sa->beyond_rpk);
	qki_msg_put_u64(&r->m, QKI_A_EPISODES, sa->episodes);
	return REPLY;
}

/* Every peer (or the one named), then their SAs. One reply holds some 250 SAs (QKI_MSG_MAX);
 * a gateway has more (a soak's 200 CHILD_SAs are 400 SAs, plus those a killed charon left
 * until sa_orphan_timeout). A client that sends SA_FIRST pages: it gets the SAs from that
 * index on, as many as fit, and SA_NEXT when more follow. Without SA_FIRST (older clients)
 * a list that does not fit is refused, never cut short silently. */
static enum handled on_status(struct request *r)
{
	struct qkid *d = r->d;
	struct qki_msg *m = &r->m;
	uint32_t first = 0, idx = 0;
	int paging = qki_attr_u32(&r->a, QKI_A_SA_FIRST, &first) == 1;
	size_t cap = m->cap;
	if (r->a.a[QKI_A_PEER].present && !r->p)
		return refuse(r, QKI_ERR_NO_PEER, "no such peer in qkid.conf");
	qki_msg_put_str(m, QKI_A_VERSION, PACKAGE_VERSION);
	qki_msg_put_u64(m, QKI_A_UPTIME, (uint64_t)(qkid_now_ms() - d->t_start) / 1000);
	qki_msg_put_u32(m, QKI_A_RPK_MIN, d->conf->rpk_min);
	qki_msg_put_u32(m, QKI_A_RPK_MAX, d->conf->rpk_max);
	qki_msg_put_u32(m, QKI_A_KEYS_HELD, (uint32_t)(d->arena.n_slots - d->arena.n_free));
	qki_msg_put_u32(m, QKI_A_KEYS_SLOTS, (uint32_t)d->arena.n_slots);
	for (size_t i = 0; i < d->n_peers; i++)
		if (!r->p || &d->peers[i] == r->p)
			put_peer_info(m, &d->peers[i]);
	if (paging)
		m->cap -= 8; /* room for SA_NEXT */
	for (size_t i = 0; i < d->n_peers && !m->overflow; i++) {
		struct qkid_peer *q = &d->peers[i];
		if (r->p && q != r->p)
			continue;
		for (struct qkid_sa *s = q->sas; s; s = s->next, idx++) {
			size_t mark = m->len;
			if (idx < first)
				continue;
			put_sa_info(m, s);
			if (m->overflow) {
				if (!paging || idx == first)
					break; /* refused below */
				m->len = mark;
				m->overflow = 0;
				m->cap = cap;
				qki_msg_put_u32(m, QKI_A_SA_NEXT, idx);
				return REPLY;
			}
		}
	}
	m->cap = cap;
	if (m->overflow)
		return refuse(r, QKI_ERR_INTERNAL, "status too large; ask for one peer");
	return REPLY;
}

static enum handled on_peer_resync(struct request *r)
{
	qkid_peer_resync(r->p);
	return REPLY;
}

#define ATTRS(...) ((const int[]){ __VA_ARGS__, 0 })

/* One handler per request type. Before it runs, the caller has the `access` it needs, the
 * attributes `need` are present, PEER names a configured peer (`peer`), SPI/DIR name an SA qkid
 * knows (`sa`), and for `owner` requests this connection registered that SA. */
static const struct handler {
	uint8_t type;
	uint8_t access;         /* enum qkid_access the caller needs at least */
	const int *need;
	unsigned peer:1, sa:1;
	unsigned owner:1;       /* only the connection that registered the SA */
	enum handled (*fn)(struct request *r);
} handlers[] = {
	{ .type = QKI_T_VERSION, .access = QKID_ACCESS_NONE, .need = ATTRS(0), .fn = on_version },
	{ .type = QKI_T_STATUS, .access = QKID_ACCESS_STATUS, .need = ATTRS(0), .fn = on_status },
	{ .type = QKI_T_RPK_ADVICE, .access = QKID_ACCESS_STATUS,
	  .need = ATTRS(QKI_A_SPI, QKI_A_DIR), .sa = 1, .fn = on_rpk_advice },
	{ .type = QKI_T_KEY_NEW, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_PEER, QKI_A_SIZE), .peer = 1, .fn = on_key },
	{ .type = QKI_T_KEY_GET, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_PEER, QKI_A_KEY_ID, QKI_A_SIZE), .peer = 1, .fn = on_key },
	{ .type = QKI_T_SA_REGISTER, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_PEER, QKI_A_SPI, QKI_A_DIR), .peer = 1, .fn = on_sa_register },
	{ .type = QKI_T_SA_KEYS, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_SPI, QKI_A_DIR, QKI_A_EPOCH, QKI_A_COUNT), .sa = 1, .owner = 1,
	  .fn = on_sa_keys },
	{ .type = QKI_T_SA_REPORT, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_SPI, QKI_A_DIR, QKI_A_PACKETS, QKI_A_BYTES), .sa = 1, .owner = 1,
	  .fn = on_sa_report },
	{ .type = QKI_T_SA_UNREGISTER, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_SPI, QKI_A_DIR), .sa = 1, .owner = 1, .fn = on_sa_unregister },
	/* the operator's `qkictl flush`: any caller with key access */
	{ .type = QKI_T_SA_FLUSH, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_SPI, QKI_A_DIR), .sa = 1, .fn = on_sa_flush },
	{ .type = QKI_T_PEER_RESYNC, .access = QKID_ACCESS_KEYS,
	  .need = ATTRS(QKI_A_PEER), .peer = 1, .fn = on_peer_resync },
};

/*
 * Handle the request in c->rx. Returns 1 when answered, 0 when parked (waiting for keys).
 * `expired`: the wait is over, answer now whatever the state.
 */
static int dispatch(struct qkid *d, struct qkid_conn *c, int first_try, int expired)
{
	struct request r = { .d = d, .c = c, .first_try = first_try, .expired = expired };
	const struct handler *h = NULL;
	const char *why = NULL, *missing = NULL;
	char text[64];

	qki_hdr_parse(c->rx, QKI_HDR_LEN, &r.h);
	if (qki_attrs_parse(c->rx + QKI_HDR_LEN, r.h.length, &r.a, &why)) {
		log_warn("local API: malformed request 0x%02x: %s", r.h.type, why);
		refuse(&r, QKI_ERR_PROTO, why);
		return 1;
	}
	qki_attr_u32(&r.a, QKI_A_WAIT_MS, &r.wait);
	if (r.wait > WAIT_MAX_MS)
		r.wait = WAIT_MAX_MS;
	if (r.a.a[QKI_A_PEER].present) {
		char peer[QKI_NAME_MAX];
		qki_attr_str(&r.a, QKI_A_PEER, peer, sizeof(peer));
		r.p = qkid_peer_by_name(d, peer);
	}
	if (r.a.a[QKI_A_SPI].present || r.a.a[QKI_A_DIR].present) {
		qki_attr_u32(&r.a, QKI_A_SPI, &r.spi);
		qki_attr_u8(&r.a, QKI_A_DIR, &r.dir);
		if (r.dir != QKI_DIR_IN && r.dir != QKI_DIR_OUT) {
			refuse(&r, QKI_ERR_INVALID, "DIR must be 1 (in) or 2 (out)");
			return 1;
		}
	}
	for (size_t i = 0; i < sizeof(handlers) / sizeof(handlers[0]) && !h; i++)
		if (handlers[i].type == r.h.type)
			h = &handlers[i];
	if (!h) {
		refuse(&r, QKI_ERR_UNSUPPORTED, "unknown request type");
		return 1;
	}
	if (c->access < h->access) {
		int keys = h->access == QKID_ACCESS_KEYS;
		if (!c->refused) {     /* once per connection: a client may retry in a loop */
			c->refused = 1;
			log_warn("local API: request 0x%02x from uid %ld refused: it needs %s",
				 r.h.type, (long)c->uid, keys ? "key access" : "status access");
		}
		refuse(&r, QKI_ERR_PERMISSION, keys ? "needs key access (root or key_group)"
						    : "needs status access (status_group)");
		return 1;
	}
	if (!need_attrs(&r.a, h->need, &missing)) {
		snprintf(text, sizeof(text), "missing attribute %s", missing);
		refuse(&r, QKI_ERR_INVALID, text);
		return 1;
	}
	if (h->peer && !r.p) {
		refuse(&r, QKI_ERR_NO_PEER, "no such peer in qkid.conf");
		return 1;
	}
	if (h->sa && !(r.sa = qkid_sa_find(d, r.spi, r.dir))) {
		refuse(&r, QKI_ERR_NO_SA, "SA not registered");
		return 1;
	}
	if (h->owner && r.sa->owner != c) {
		/* an SA that lost its connection is registered again by its next user */
		if (r.sa->registered)
			refuse(&r, QKI_ERR_PERMISSION, "SA registered by another client");
		else
			refuse(&r, QKI_ERR_NO_SA, "SA not registered");
		return 1;
	}
	qki_msg_init(&r.m, d->reply, sizeof(d->reply), r.h.type | QKI_REPLY, r.h.seq);
	switch (h->fn(&r)) {
	case PARKED:
		return 0;
	case REPLY:
		queue_reply(d, c, &r.m);
		return 1;
	case ANSWERED:
		break;
	}
	return 1;
}

static size_t parked_count(struct qkid *d)
{
	size_t n = 0;
	for (struct qkid_conn *c = d->conns; c; c = c->next)
		n += c->parked;
	return n;
}

/* A complete request is in c->rx. */
static void handle(struct qkid *d, struct qkid_conn *c)
{
	struct qki_hdr h;
	int r = qki_hdr_parse(c->rx, QKI_HDR_LEN, &h);
	uint32_t wait = 0;
	struct qki_attrs a;

	c->rx_len = 0;
	c->t_partial = 0;
	if (r == QKI_ERR_VERSION) {
		reply_error(d, c, QKI_T_ERROR | QKI_REPLY, h.seq, QKI_ERR_VERSION,
			    "protocol version not supported (this qkid speaks 1)");
		return;
	}
	if (dispatch(d, c, 1, 0))
		return;
	if (parked_count(d) >= PARKED_MAX) {
		dispatch(d, c, 0, 1);
		return;
	}
	if (qki_attrs_parse(c->rx + QKI_HDR_LEN, h.length, &a, NULL) == QKI_OK)
		qki_attr_u32(&a, QKI_A_WAIT_MS, &wait);
	if (wait > WAIT_MAX_MS)
		wait = WAIT_MAX_MS;
	c->parked = 1;
	c->park_deadline = qkid_now_ms() + wait;
	/* keep the request: rx_len stays 0 but the bytes remain in c->rx until answered */
}

void qkid_local_io(struct qkid *d, struct qkid_conn *c, short revents)
{
	if (c->closing == 2)
		return;
	if (revents & POLLOUT)
		flush_tx(d, c);
	if (c->parked && (revents & (POLLHUP | POLLERR))) {
		/* the client gave up waiting: forget its request (poll would report this forever) */
		qkid_local_close(d, c);
		return;
	}
	if (c->closing || c->parked || !(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	/* a complete message is always handled; only the reads are bounded per wakeup */
	for (int reads = 0; !c->parked && !c->closing;) {
		struct qki_hdr h;
		size_t want = QKI_HDR_LEN;
		ssize_t n;
		if (c->rx_len >= QKI_HDR_LEN) {
			int r = qki_hdr_parse(c->rx, QKI_HDR_LEN, &h);
			if (r == QKI_ERR_PROTO) {
				log_warn("local API: bad message header (magic or length), closing "
					 "the connection");
				reply_error(d, c, QKI_T_ERROR | QKI_REPLY, 0, QKI_ERR_PROTO,
					    "bad header (magic or length); closing");
				c->closing = 1;
				flush_tx(d, c);
				return;
			}
			want = QKI_HDR_LEN + h.length;
		}
		if (c->rx_len < want) {
			if (reads++ >= 16)
				return;         /* more next time: poll reports the rest */
			n = recv(c->fd, c->rx + c->rx_len, want - c->rx_len, 0);
			if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				qkid_local_close(d, c);
				return;
			}
			if (n < 0)
				return;
			if (!c->t_partial)
				c->t_partial = qkid_now_ms();
			c->rx_len += (size_t)n;
			continue;
		}
		handle(d, c);
	}
}

void qkid_local_retry(struct qkid *d, int64_t now)
{
	for (struct qkid_conn *c = d->conns; c; c = c->next) {
		if (c->closing)
			continue;
		if (c->parked) {
			int expired = now >= c->park_deadline;
			if (dispatch(d, c, 0, expired)) {
				c->parked = 0;
				/* the connection may have more requests buffered in the kernel */
				qkid_local_io(d, c, POLLIN);
			}
		} else if (c->t_partial && c->rx_len &&
			   now - c->t_partial > (int64_t)d->conf->client_idle_timeout_s * 1000) {
			log_warn("local API: client sent a partial message and went silent; "
				 "disconnected");
			qkid_local_close(d, c);
		}
	}
}
