/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qki_client.c - blocking client of qkid's local API. libc only, no globals.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "qki_client.h"

#define BUF_SIZE (QKI_HDR_LEN + QKI_MSG_MAX)

struct qki_client {
	int fd;
	int timeout_ms;
	uint32_t seq;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint8_t tx[BUF_SIZE];
	uint8_t rx[BUF_SIZE];
	size_t rx_len;          /* payload length of the last reply */
	struct qki_attrs reply;
};

static int set_err(struct qki_error *err, int code, const char *fmt, ...)
{
	va_list ap;
	if (!err)
		return code;
	err->code = code;
	if (fmt) {
		va_start(ap, fmt);
		vsnprintf(err->message, sizeof(err->message), fmt, ap);
		va_end(ap);
	} else {
		snprintf(err->message, sizeof(err->message), "%s", qki_strerror(code));
	}
	return code;
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void drop_connection(struct qki_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int open_socket(struct qki_client *c, struct qki_error *err)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct pollfd pfd;
	int fd, r, soerr = 0;
	socklen_t sl = sizeof(soerr);

	memcpy(sun.sun_path, c->path, sizeof(sun.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return set_err(err, QKI_ERR_CONNECT, "socket: %s", strerror(errno));
	r = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	if (r < 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
		/* unix sockets return EAGAIN when the backlog is full; wait for writability */
		pfd.fd = fd;
		pfd.events = POLLOUT;
		r = poll(&pfd, 1, c->timeout_ms);
		if (r == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && !soerr)
			r = 0;
		else {
			close(fd);
			return set_err(err, r == 0 ? QKI_ERR_TIMEOUT : QKI_ERR_CONNECT,
				       "connect %s: %s", c->path,
				       r == 0 ? "timeout" : strerror(soerr ? soerr : errno));
		}
	}
	if (r < 0) {
		int e = errno;
		close(fd);
		return set_err(err, QKI_ERR_CONNECT, "connect %s: %s", c->path, strerror(e));
	}
	c->fd = fd;
	return QKI_OK;
}

struct qki_client *qki_client_connect(const char *path, int timeout_ms, struct qki_error *err)
{
	struct qki_client *c;

	if (!path)
		path = QKI_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(c->path)) {
		set_err(err, QKI_ERR_INVALID, "socket path too long: %s", path);
		return NULL;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		set_err(err, QKI_ERR_NOMEM, NULL);
		return NULL;
	}
	c->fd = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
	strcpy(c->path, path);
	if (open_socket(c, err) != QKI_OK) {
		free(c);
		return NULL;
	}
	set_err(err, QKI_OK, NULL);
	return c;
}

void qki_client_close(struct qki_client *c)
{
	if (!c)
		return;
	drop_connection(c);
	qki_wipe(c, sizeof(*c));
	free(c);
}

int qki_client_reconnect(struct qki_client *c, struct qki_error *err)
{
	drop_connection(c);
	return open_socket(c, err);
}

void qki_client_set_timeout(struct qki_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 5000;
}

/* Wait for fd readiness until deadline; 0 ok, else an error code. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	for (;;) {
		int64_t left = deadline - now_ms();
		int r;
		if (left <= 0)
			return QKI_ERR_TIMEOUT;
		r = poll(&pfd, 1, (int)left);
		if (r > 0)
			return QKI_OK;
		if (r == 0)
			return QKI_ERR_TIMEOUT;
		if (errno != EINTR)
			return QKI_ERR_IO;
	}
}

static int write_all(struct qki_client *c, const uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int r = wait_fd(c->fd, POLLOUT, deadline);
			if (r)
				return r;
			continue;
		}
		return QKI_ERR_IO;
	}
	return QKI_OK;
}

static int read_all(struct qki_client *c, uint8_t *p, size_t n, int64_t deadline)
{
	while (n) {
		ssize_t r = recv(c->fd, p, n, 0);
		if (r > 0) {
			p += r;
			n -= (size_t)r;
			continue;
		}
		if (r == 0)
			return QKI_ERR_IO;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			int w = wait_fd(c->fd, POLLIN, deadline);
			if (w)
				return w;
			continue;
		}
		return QKI_ERR_IO;
	}
	return QKI_OK;
}

/*
 * Send the message in c->tx (built with qki_msg) and read the matching reply into c->rx and
 * c->reply. Returns QKI_OK, a transport error, or the daemon's error code (with its message).
 */
static int transact(struct qki_client *c, struct qki_msg *m, struct qki_error *err)
{
	struct qki_hdr h;
	size_t len = qki_msg_finish(m);
	int64_t deadline = now_ms() + c->timeout_ms;
	uint8_t want = c->tx[3] | QKI_REPLY;
	uint32_t seq = qki_get32(c->tx + 4);
	const char *why = NULL;
	uint32_t code;
	int r;

	if (!len) {
		r = set_err(err, QKI_ERR_INVALID, "request too large");
		goto out;
	}
	if (c->fd < 0 && (r = open_socket(c, err)) != QKI_OK)
		goto out;
	r = write_all(c, c->tx, len, deadline);
	if (r) {
		drop_connection(c);
		set_err(err, r, "send to qkid: %s", qki_strerror(r));
		goto out;
	}
	for (;;) {
		r = read_all(c, c->rx, QKI_HDR_LEN, deadline);
		if (r == QKI_OK) {
			r = qki_hdr_parse(c->rx, QKI_HDR_LEN, &h);
			if (r != QKI_OK)
				r = QKI_ERR_REPLY;
		}
		if (r == QKI_OK)
			r = read_all(c, c->rx + QKI_HDR_LEN, h.length, deadline);
		if (r) {
			/* the stream is out of step now: never reuse it */
			drop_connection(c);
			set_err(err, r, "reply from qkid: %s", qki_strerror(r));
			goto out;
		}
		if (h.seq == seq)
			break;
		/* a late reply to an earlier, timed out request cannot happen (we drop the
		 * connection on timeout), but skip anything not ours defensively */
	}
	c->rx_len = h.length;
	if (qki_attrs_parse(c->rx + QKI_HDR_LEN, h.length, &c->reply, &why) != QKI_OK) {
		drop_connection(c);
		r = set_err(err, QKI_ERR_REPLY, "malformed reply from qkid: %s", why);
		goto out;
	}
	if (qki_attr_u32(&c->reply, QKI_A_ERROR, &code) && code != QKI_OK) {
		char msg[QKI_TEXT_MAX];
		if (!qki_attr_str(&c->reply, QKI_A_MESSAGE, msg, sizeof(msg)))
			snprintf(msg, sizeof(msg), "%s", qki_strerror((int)code));
		r = set_err(err, (int)code, "qkid: %s", msg);
		goto out;
	}
	if (h.type != want && h.type != (QKI_T_ERROR | QKI_REPLY)) {
		drop_connection(c);
		r = set_err(err, QKI_ERR_REPLY, "reply of type 0x%02x to request 0x%02x", h.type,
			    c->tx[3]);
		goto out;
	}
	r = set_err(err, QKI_OK, NULL);
out:
	qki_wipe(c->tx, len ? len : QKI_HDR_LEN);
	return r;
}

/* Wipe the reply buffer (it may hold keys) once its attributes were copied out. */
static void done(struct qki_client *c)
{
	qki_wipe(c->rx, QKI_HDR_LEN + c->rx_len);
	memset(&c->reply, 0, sizeof(c->reply));
	c->rx_len = 0;
}

static void begin(struct qki_client *c, struct qki_msg *m, uint8_t type)
{
	qki_msg_init(m, c->tx, sizeof(c->tx), type, ++c->seq);
}

/* Server-side wait: a little below our own timeout so the daemon answers before we give up. */
static uint32_t server_wait(const struct qki_client *c)
{
	return c->timeout_ms > 200 ? (uint32_t)(c->timeout_ms - 100) : (uint32_t)c->timeout_ms / 2;
}

int qki_version(struct qki_client *c, char *version, size_t version_size, struct qki_error *err)
{
	struct qki_msg m;
	int r;
	begin(c, &m, QKI_T_VERSION);
	r = transact(c, &m, err);
	if (r == QKI_OK && version && !qki_attr_str(&c->reply, QKI_A_VERSION, version, version_size))
		r = set_err(err, QKI_ERR_REPLY, "reply without version");
	done(c);
	return r;
}

static int copy_key(struct qki_client *c, const struct qki_attrs *a, size_t size, uint8_t *key,
		    char *key_id, struct qki_error *err)
{
	const struct qki_attr *k = &a->a[QKI_A_KEY];
	if (!k->present || k->len != size)
		return set_err(err, QKI_ERR_REPLY, "reply carries %u key bytes, expected %zu",
			       k->present ? k->len : 0, size);
	if (key_id && !qki_attr_str(a, QKI_A_KEY_ID, key_id, QKI_KEY_ID_MAX))
		return set_err(err, QKI_ERR_REPLY, "reply without key_ID");
	memcpy(key, k->val, size);
	return QKI_OK;
}

int qki_get_new_key(struct qki_client *c, const char *peer, size_t size, uint8_t *key,
		    char key_id[QKI_KEY_ID_MAX], struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (!peer || !key || !key_id || size == 0 || size > QKI_KEY_MAX)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_get_new_key");
	begin(c, &m, QKI_T_KEY_NEW);
	qki_msg_put_str(&m, QKI_A_PEER, peer);
	qki_msg_put_u32(&m, QKI_A_SIZE, (uint32_t)size);
	qki_msg_put_u32(&m, QKI_A_WAIT_MS, server_wait(c));
	r = transact(c, &m, err);
	if (r == QKI_OK)
		r = copy_key(c, &c->reply, size, key, key_id, err);
	done(c);
	return r;
}

int qki_get_key_by_id(struct qki_client *c, const char *peer, const char *key_id, size_t size,
		      uint8_t *key, struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (!peer || !key_id || !key || size == 0 || size > QKI_KEY_MAX ||
	    !*key_id || strlen(key_id) >= QKI_KEY_ID_MAX)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_get_key_by_id");
	begin(c, &m, QKI_T_KEY_GET);
	qki_msg_put_str(&m, QKI_A_PEER, peer);
	qki_msg_put_str(&m, QKI_A_KEY_ID, key_id);
	qki_msg_put_u32(&m, QKI_A_SIZE, (uint32_t)size);
	qki_msg_put_u32(&m, QKI_A_WAIT_MS, server_wait(c));
	r = transact(c, &m, err);
	if (r == QKI_OK)
		r = copy_key(c, &c->reply, size, key, NULL, err);
	done(c);
	return r;
}

static void put_sa(struct qki_msg *m, uint32_t spi, enum qki_dir dir)
{
	qki_msg_put_u32(m, QKI_A_SPI, spi);
	qki_msg_put_u8(m, QKI_A_DIR, (uint8_t)dir);
}

int qki_sa_register(struct qki_client *c, const char *peer, uint32_t spi, enum qki_dir dir,
		    uint32_t *capacity, struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (!peer || (dir != QKI_DIR_IN && dir != QKI_DIR_OUT))
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_sa_register");
	begin(c, &m, QKI_T_SA_REGISTER);
	qki_msg_put_str(&m, QKI_A_PEER, peer);
	put_sa(&m, spi, dir);
	r = transact(c, &m, err);
	if (r == QKI_OK && capacity && !qki_attr_u32(&c->reply, QKI_A_CAPACITY, capacity))
		*capacity = 0;
	done(c);
	return r;
}

static int sa_epoch_keys(struct qki_client *c, uint32_t spi, enum qki_dir dir,
			 uint32_t first_epoch, unsigned count, unsigned wait_ms, int peek,
			 struct qki_epoch_key *keys, unsigned *n_keys, uint32_t *rpk,
			 uint32_t *next_epoch, struct qki_error *err)
{
	struct qki_msg m;
	struct qki_iter it;
	uint16_t t, l;
	const uint8_t *v;
	unsigned n = 0;
	int r;

	if (n_keys)
		*n_keys = 0;
	if (!keys || !n_keys || count == 0 || (dir != QKI_DIR_IN && dir != QKI_DIR_OUT))
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_sa_get_epoch_keys");
	if (count > QKI_EPOCH_BATCH_MAX)
		count = QKI_EPOCH_BATCH_MAX;
	if (wait_ms >= (unsigned)c->timeout_ms)
		wait_ms = server_wait(c);
	begin(c, &m, QKI_T_SA_KEYS);
	put_sa(&m, spi, dir);
	qki_msg_put_u32(&m, QKI_A_EPOCH, first_epoch);
	qki_msg_put_u32(&m, QKI_A_COUNT, count);
	qki_msg_put_u32(&m, QKI_A_WAIT_MS, wait_ms);
	if (peek)
		qki_msg_put_u8(&m, QKI_A_PEEK, 1);
	r = transact(c, &m, err);
	if (next_epoch && !qki_attr_u32(&c->reply, QKI_A_NEXT_EPOCH, next_epoch))
		*next_epoch = first_epoch;
	if (rpk && !qki_attr_u32(&c->reply, QKI_A_RPK, rpk))
		*rpk = 0;
	if (r != QKI_OK)
		goto out;
	qki_iter_init(&it, c->rx + QKI_HDR_LEN, c->rx_len);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		struct qki_attrs ek;
		struct qki_epoch_key *k;
		if (t != QKI_A_EPOCH_KEY)
			continue;
		if (n >= count || qki_attrs_parse(v, l, &ek, NULL) != QKI_OK) {
			r = set_err(err, QKI_ERR_REPLY, "bad epoch key list in reply");
			break;
		}
		k = &keys[n];
		if (!qki_attr_u32(&ek, QKI_A_EPOCH, &k->epoch) || k->epoch != first_epoch + n ||
		    !qki_attr_str(&ek, QKI_A_KEY_ID, k->key_id, sizeof(k->key_id)) ||
		    !ek.a[QKI_A_KEY].present) {
			r = set_err(err, QKI_ERR_REPLY, "bad epoch key in reply");
			break;
		}
		k->size = ek.a[QKI_A_KEY].len;
		memcpy(k->key, ek.a[QKI_A_KEY].val, k->size);
		n++;
	}
	if (r != QKI_OK) {
		qki_wipe(keys, n * sizeof(*keys));
		n = 0;
	} else if (n == 0) {
		r = set_err(err, QKI_ERR_NO_KEY, "qkid: no key for epoch %u yet", first_epoch);
	}
	*n_keys = n;
out:
	done(c);
	return r;
}

int qki_sa_get_epoch_keys(struct qki_client *c, uint32_t spi, enum qki_dir dir,
			  uint32_t first_epoch, unsigned count, unsigned wait_ms,
			  struct qki_epoch_key *keys, unsigned *n_keys, uint32_t *rpk,
			  uint32_t *next_epoch, struct qki_error *err)
{
	return sa_epoch_keys(c, spi, dir, first_epoch, count, wait_ms, 0, keys, n_keys, rpk,
			     next_epoch, err);
}

int qki_sa_peek_epoch_keys(struct qki_client *c, uint32_t spi, enum qki_dir dir,
			   uint32_t first_epoch, unsigned count, struct qki_epoch_key *keys,
			   unsigned *n_keys, struct qki_error *err)
{
	return sa_epoch_keys(c, spi, dir, first_epoch, count, 0, 1, keys, n_keys, NULL, NULL,
			     err);
}

int qki_sa_report(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		  const struct qki_sa_counters *cnt, struct qki_sa_feedback *fb,
		  struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (fb)
		memset(fb, 0, sizeof(*fb));
	if (!cnt)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_sa_report");
	begin(c, &m, QKI_T_SA_REPORT);
	put_sa(&m, spi, dir);
	qki_msg_put_u64(&m, QKI_A_PACKETS, cnt->packets);
	qki_msg_put_u64(&m, QKI_A_BYTES, cnt->bytes);
	qki_msg_put_u32(&m, QKI_A_DP_RPK, cnt->rpk);
	qki_msg_put_u32(&m, QKI_A_DP_LEVEL, cnt->level);
	qki_msg_put_u32(&m, QKI_A_DP_CAPACITY, cnt->capacity);
	qki_msg_put_u64(&m, QKI_A_WINDOWS, cnt->windows);
	qki_msg_put_u64(&m, QKI_A_BEYOND_RPK, cnt->beyond_rpk);
	qki_msg_put_u64(&m, QKI_A_STALL_DROPS, cnt->stall_drops);
	qki_msg_put_u64(&m, QKI_A_EPISODES, cnt->episodes);
	r = transact(c, &m, err);
	if (fb && r == QKI_OK) {
		qki_attr_u32(&c->reply, QKI_A_RPK, &fb->rpk);
		qki_attr_u64(&c->reply, QKI_A_SHARE, &fb->share_milli);
		qki_attr_u32(&c->reply, QKI_A_CAPACITY, &fb->capacity);
	}
	done(c);
	return r;
}

int qki_sa_unregister(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		      struct qki_error *err)
{
	struct qki_msg m;
	int r;
	begin(c, &m, QKI_T_SA_UNREGISTER);
	put_sa(&m, spi, dir);
	r = transact(c, &m, err);
	done(c);
	return r;
}

int qki_rpk_advice(struct qki_client *c, uint32_t spi, enum qki_dir dir,
		   struct qki_rpk_advice *out, struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (!out)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_rpk_advice");
	memset(out, 0, sizeof(*out));
	begin(c, &m, QKI_T_RPK_ADVICE);
	put_sa(&m, spi, dir);
	r = transact(c, &m, err);
	if (r == QKI_OK) {
		qki_attr_u32(&c->reply, QKI_A_RPK, &out->rpk);
		qki_attr_u32(&c->reply, QKI_A_RPK_MIN, &out->rpk_min);
		qki_attr_u32(&c->reply, QKI_A_RPK_MAX, &out->rpk_max);
		qki_attr_u32(&c->reply, QKI_A_LEVEL, &out->level);
		qki_attr_u32(&c->reply, QKI_A_CAPACITY, &out->capacity);
		qki_attr_u64(&c->reply, QKI_A_PKT_RATE, &out->pkt_rate_milli);
		qki_attr_u64(&c->reply, QKI_A_RATE_IN, &out->key_rate_milli);
		qki_attr_u32(&c->reply, QKI_A_DP_LEVEL, &out->dp_level);
		qki_attr_u32(&c->reply, QKI_A_DP_CAPACITY, &out->dp_capacity);
		qki_attr_u64(&c->reply, QKI_A_BEYOND_RPK, &out->beyond_rpk);
		qki_attr_u64(&c->reply, QKI_A_EPISODES, &out->episodes);
	}
	done(c);
	return r;
}

int qki_sa_flush(struct qki_client *c, uint32_t spi, enum qki_dir dir, unsigned *wiped,
		 struct qki_error *err)
{
	struct qki_msg m;
	uint32_t n = 0;
	int r;
	begin(c, &m, QKI_T_SA_FLUSH);
	put_sa(&m, spi, dir);
	r = transact(c, &m, err);
	if (r == QKI_OK)
		qki_attr_u32(&c->reply, QKI_A_COUNT, &n);
	if (wiped)
		*wiped = n;
	done(c);
	return r;
}

int qki_peer_resync(struct qki_client *c, const char *peer, struct qki_error *err)
{
	struct qki_msg m;
	int r;
	if (!peer)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_peer_resync");
	begin(c, &m, QKI_T_PEER_RESYNC);
	qki_msg_put_str(&m, QKI_A_PEER, peer);
	r = transact(c, &m, err);
	done(c);
	return r;
}

static void parse_peer(const struct qki_attrs *a, struct qki_peer_status *p)
{
	qki_attr_str(a, QKI_A_PEER, p->name, sizeof(p->name));
	qki_attr_str(a, QKI_A_LOCAL_SAE, p->local_sae, sizeof(p->local_sae));
	qki_attr_str(a, QKI_A_PEER_SAE, p->peer_sae, sizeof(p->peer_sae));
	qki_attr_u8(a, QKI_A_ROLE, &p->role);
	qki_attr_u8(a, QKI_A_LINK, &p->link);
	qki_attr_u8(a, QKI_A_KME, &p->kme);
	qki_attr_u32(a, QKI_A_KEY_SIZE, &p->key_size);
	qki_attr_u32(a, QKI_A_LEVEL, &p->pool_level);
	qki_attr_u32(a, QKI_A_CAPACITY, &p->pool_capacity);
	qki_attr_u32(a, QKI_A_IKE_LEVEL, &p->ike_level);
	qki_attr_u32(a, QKI_A_BACKOFF_MS, &p->backoff_ms);
	qki_attr_u64(a, QKI_A_KEYS_IN, &p->keys_in);
	qki_attr_u64(a, QKI_A_KEYS_OUT, &p->keys_out);
	qki_attr_u64(a, QKI_A_RATE_IN, &p->rate_in_milli);
	qki_attr_u64(a, QKI_A_RATE_OUT, &p->rate_out_milli);
	qki_attr_u64(a, QKI_A_ERRORS, &p->errors);
	qki_attr_u64(a, QKI_A_DROPS, &p->drops);
	qki_attr_u64(a, QKI_A_RESYNCS, &p->resyncs);
	qki_attr_str(a, QKI_A_LAST_ERROR, p->last_error, sizeof(p->last_error));
}

static void parse_sa(const struct qki_attrs *a, struct qki_sa_status *s)
{
	qki_attr_u32(a, QKI_A_SPI, &s->spi);
	qki_attr_u8(a, QKI_A_DIR, &s->dir);
	qki_attr_str(a, QKI_A_PEER, s->peer, sizeof(s->peer));
	qki_attr_u32(a, QKI_A_LEVEL, &s->level);
	qki_attr_u32(a, QKI_A_CAPACITY, &s->capacity);
	qki_attr_u32(a, QKI_A_NEXT_EPOCH, &s->next_epoch);
	qki_attr_u32(a, QKI_A_RPK, &s->rpk);
	qki_attr_u64(a, QKI_A_KEYS_OUT, &s->keys_out);
	qki_attr_u64(a, QKI_A_REFILLS, &s->refills);
	qki_attr_u64(a, QKI_A_STARVED, &s->starved);
	qki_attr_u64(a, QKI_A_PACKETS, &s->packets);
	qki_attr_u64(a, QKI_A_BYTES, &s->bytes);
	qki_attr_u64(a, QKI_A_PKT_RATE, &s->pkt_rate_milli);
	qki_attr_u64(a, QKI_A_RATE_OUT, &s->drain_rate_milli);
	qki_attr_u64(a, QKI_A_SHARE, &s->share_milli);
	qki_attr_u32(a, QKI_A_DP_RPK, &s->dp_rpk);
	qki_attr_u32(a, QKI_A_DP_LEVEL, &s->dp_level);
	qki_attr_u32(a, QKI_A_DP_CAPACITY, &s->dp_capacity);
	qki_attr_u64(a, QKI_A_WINDOWS, &s->windows);
	qki_attr_u64(a, QKI_A_BEYOND_RPK, &s->beyond_rpk);
	qki_attr_u64(a, QKI_A_STALL_DROPS, &s->stall_drops);
	qki_attr_u64(a, QKI_A_EPISODES, &s->episodes);
}

/* Appends the SA_INFOs of one STATUS page to st (the daemon attributes and the peers come
 * from the first page). */
static int status_page(struct qki_client *c, struct qki_status *st, int first_page,
		       struct qki_error *err)
{
	struct qki_iter it;
	uint16_t t, l;
	const uint8_t *v;
	size_t np = 0, ns = 0;
	void *grown;

	qki_iter_init(&it, c->rx + QKI_HDR_LEN, c->rx_len);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		np += t == QKI_A_PEER_INFO;
		ns += t == QKI_A_SA_INFO;
	}
	if (first_page) {
		st->peers = calloc(np ? np : 1, sizeof(*st->peers));
		if (!st->peers)
			return set_err(err, QKI_ERR_NOMEM, NULL);
		qki_attr_str(&c->reply, QKI_A_VERSION, st->version, sizeof(st->version));
		qki_attr_u64(&c->reply, QKI_A_UPTIME, &st->uptime_s);
		qki_attr_u32(&c->reply, QKI_A_RPK_MIN, &st->rpk_min);
		qki_attr_u32(&c->reply, QKI_A_RPK_MAX, &st->rpk_max);
		qki_attr_u32(&c->reply, QKI_A_KEYS_HELD, &st->keys_held);
		qki_attr_u32(&c->reply, QKI_A_KEYS_SLOTS, &st->keys_slots);
	}
	grown = realloc(st->sas, (st->n_sas + ns + 1) * sizeof(*st->sas));
	if (!grown)
		return set_err(err, QKI_ERR_NOMEM, NULL);
	st->sas = grown;
	qki_iter_init(&it, c->rx + QKI_HDR_LEN, c->rx_len);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		struct qki_attrs a;
		if ((t != QKI_A_PEER_INFO && t != QKI_A_SA_INFO) ||
		    qki_attrs_parse(v, l, &a, NULL) != QKI_OK)
			continue;
		if (t == QKI_A_PEER_INFO && first_page)
			parse_peer(&a, &st->peers[st->n_peers++]);
		else if (t == QKI_A_SA_INFO) {
			memset(&st->sas[st->n_sas], 0, sizeof(st->sas[0]));
			parse_sa(&a, &st->sas[st->n_sas++]);
		}
	}
	return QKI_OK;
}

/* STATUS in pages (SA_FIRST/SA_NEXT): a qkid with many SAs answers in several replies. SAs
 * that come or go between two pages may be missed or shown twice; the bound on pages keeps a
 * daemon that keeps answering SA_NEXT from holding the client forever. */
#define STATUS_PAGES_MAX 4096

int qki_status(struct qki_client *c, const char *peer, struct qki_status **out,
	       struct qki_error *err)
{
	struct qki_msg m;
	struct qki_status *st;
	uint32_t first = 0, next;
	int r = QKI_OK;

	if (!out)
		return set_err(err, QKI_ERR_INVALID, "bad arguments to qki_status");
	*out = NULL;
	st = calloc(1, sizeof(*st));
	if (!st)
		return set_err(err, QKI_ERR_NOMEM, NULL);
	for (unsigned page = 0;; page++) {
		int more;
		if (page == STATUS_PAGES_MAX) {
			r = set_err(err, QKI_ERR_PROTO, "qkid's STATUS did not end within 4096 pages");
			break;
		}
		begin(c, &m, QKI_T_STATUS);
		if (peer)
			qki_msg_put_str(&m, QKI_A_PEER, peer);
		qki_msg_put_u32(&m, QKI_A_SA_FIRST, first);
		r = transact(c, &m, err);
		if (r == QKI_OK)
			r = status_page(c, st, page == 0, err);
		more = r == QKI_OK && qki_attr_u32(&c->reply, QKI_A_SA_NEXT, &next) == 1;
		if (more && next <= first)
			r = set_err(err, QKI_ERR_PROTO, "qkid's STATUS pages do not advance");
		done(c);
		if (r != QKI_OK || !more)
			break;
		first = next;
	}
	if (r != QKI_OK) {
		qki_status_free(st);
		return r;
	}
	*out = st;
	return QKI_OK;
}

void qki_status_free(struct qki_status *st)
{
	if (!st)
		return;
	free(st->peers);
	free(st->sas);
	free(st);
}
