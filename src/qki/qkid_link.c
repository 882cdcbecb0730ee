/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_link.c - the TCP link between two qkids: connect (slave) / accept (master), the
 * authenticated handshake of qkid_peerproto.h, framing, sequence check, keepalive, reconnect.
 * Messages that fail authentication or replay checks are dropped and logged; the keys logic
 * (qkid_sync.c) only ever sees authenticated, fresh messages, in order and none missing.
 *
 * The master's peer port is open to whoever can reach it, so nobody may hold it: connections
 * come only from configured peer hosts (if every master-side peer has an address), at most
 * UNBOUND_PER_SOURCE unidentified ones per host and UNBOUND_MAX in all (when full, the host with
 * the most loses its oldest). Only a HELLO1 that answers this connection's challenge, i.e. comes
 * from a holder of the PSK now, may replace a handshake in progress.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "qkid.h"
#include "qkid_log.h"

#define TX_MAX (8u << 20)       /* a peer that reads nothing is dropped past this */
#define HELLO_TIMEOUT_MS 5000
#define AUTH_FAILURES_MAX 3
#define UNBOUND_MAX 64          /* accepted connections that have not sent HELLO1 yet */
#define UNBOUND_PER_SOURCE 4    /* ... of them from one host */
#define ACCEPT_BURST 16         /* connections accepted per wakeup */
#define REFUSED_LOG_MS 10000    /* refusals are summarised at most this often */

static int split_hostport(const char *s, char *host, size_t hostlen, char *port, size_t portlen)
{
	const char *colon;
	size_t hl;
	if (*s == '[') {
		const char *end = strchr(s, ']');
		if (!end || end[1] != ':')
			return -1;
		hl = (size_t)(end - s - 1);
		s++;
		colon = end + 1;
	} else {
		colon = strrchr(s, ':');
		if (!colon)
			return -1;
		hl = (size_t)(colon - s);
	}
	if (hl >= hostlen || strlen(colon + 1) >= portlen || !colon[1])
		return -1;
	memcpy(host, s, hl);
	host[hl] = 0;
	strcpy(port, colon + 1);
	return 0;
}

static struct addrinfo *resolve(const char *hostport, int passive)
{
	char host[128], port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV |
					      (passive ? AI_PASSIVE : 0) };
	struct addrinfo *ai = NULL;
	if (split_hostport(hostport, host, sizeof(host), port, sizeof(port)))
		return NULL;
	if (getaddrinfo(*host ? host : NULL, port, &hints, &ai))
		return NULL;
	return ai;
}

static struct qkid_link *link_new(int fd)
{
	struct qkid_link *l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->rx = malloc(QKP_FRAME_MAX);
	if (!l->rx) {
		free(l);
		return NULL;
	}
	l->fd = fd;
	l->t_start = l->t_rx = l->t_tx = qkid_now_ms();
	return l;
}

void qkid_link_free(struct qkid_link *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	free(l->rx);
	free(l->tx);
	OPENSSL_cleanse(l, sizeof(*l));
	free(l);
}

int qkid_link_up(const struct qkid_peer *p)
{
	return p->link && p->link->state == QL_UP;
}

void qkid_link_drop(struct qkid_peer *p, const char *why)
{
	if (p->link) {
		log_info("peer %s: link down (%s)", p->conf->name, why);
		snprintf(p->last_error, sizeof(p->last_error), "peer link: %s", why);
		qkid_link_free(p->link);
		p->link = NULL;
		p->t_retry = qkid_now_ms() + p->retry_ms;
	}
}

int qkid_link_listen(struct qkid *d, char *err, size_t errlen)
{
	struct addrinfo *ai;
	int fd, one = 1;

	d->listen_fd = -1;
	if (!d->conf->listen[0])
		return 0;
	for (size_t i = 0; i < d->n_peers; i++) {
		struct qkid_peer *p = &d->peers[i];
		if (p->role != QKI_ROLE_MASTER || !p->conf->address[0])
			continue;
		ai = resolve(p->conf->address, 0);
		if (!ai || ai->ai_addrlen > sizeof(p->allowed_src)) {
			snprintf(err, errlen, "peer %s: address %s: expected numeric host:port",
				 p->conf->name, p->conf->address);
			if (ai)
				freeaddrinfo(ai);
			return -1;
		}
		memcpy(&p->allowed_src, ai->ai_addr, ai->ai_addrlen);
		freeaddrinfo(ai);
		log_info("peer %s: accepting its qkid only from %s", p->conf->name, p->conf->address);
	}
	ai = resolve(d->conf->listen, 1);
	if (!ai) {
		snprintf(err, errlen, "listen %s: expected numeric host:port", d->conf->listen);
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) || listen(fd, UNBOUND_MAX)) {
		snprintf(err, errlen, "listen %s: %s", d->conf->listen, strerror(errno));
		if (fd >= 0)
			close(fd);
		freeaddrinfo(ai);
		return -1;
	}
	freeaddrinfo(ai);
	d->listen_fd = fd;
	log_info("listening for peer qkids on %s", d->conf->listen);
	return 0;
}

static int queue_frame(struct qkid_link *l, const uint8_t *frame, size_t n)
{
	if (l->tx_off && l->tx_off == l->tx_len)
		l->tx_off = l->tx_len = 0;
	if (l->tx_len + n > l->tx_cap) {
		size_t cap = l->tx_cap ? l->tx_cap : 65536;
		uint8_t *t;
		if (l->tx_off) {        /* compact first */
			memmove(l->tx, l->tx + l->tx_off, l->tx_len - l->tx_off);
			l->tx_len -= l->tx_off;
			l->tx_off = 0;
		}
		while (cap < l->tx_len + n)
			cap *= 2;
		if (cap > TX_MAX)
			return -1;
		if (cap > l->tx_cap) {
			t = realloc(l->tx, cap);
			if (!t)
				return -1;
			l->tx = t;
			l->tx_cap = cap;
		}
	}
	memcpy(l->tx + l->tx_len, frame, n);
	l->tx_len += n;
	return 0;
}

static void flush_tx(struct qkid_link *l)
{
	while (l->tx_off < l->tx_len) {
		ssize_t w = send(l->fd, l->tx + l->tx_off, l->tx_len - l->tx_off, MSG_NOSIGNAL);
		if (w > 0) {
			l->tx_off += (size_t)w;
			l->t_tx = qkid_now_ms();
		} else {
			break;
		}
	}
	if (l->tx_off == l->tx_len)
		l->tx_off = l->tx_len = 0;
}

static void unbound_remove(struct qkid *d, struct qkid_link *l)
{
	for (size_t i = 0; i < d->n_unbound; i++)
		if (d->unbound[i] == l) {
			d->unbound[i] = d->unbound[--d->n_unbound];
			return;
		}
}

/* The host part of an address (IPv4-mapped IPv6 as IPv4), to compare sources. */
static size_t host_bytes(const struct sockaddr_storage *ss, const uint8_t **out)
{
	if (ss->ss_family == AF_INET) {
		*out = (const uint8_t *)&((const struct sockaddr_in *)ss)->sin_addr;
		return 4;
	}
	if (ss->ss_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
		*out = IN6_IS_ADDR_V4MAPPED(a) ? a->s6_addr + 12 : a->s6_addr;
		return IN6_IS_ADDR_V4MAPPED(a) ? 4 : 16;
	}
	return 0;
}

static int same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	const uint8_t *ha = NULL, *hb = NULL;
	size_t la = host_bytes(a, &ha), lb = host_bytes(b, &hb);
	return la && la == lb && !memcmp(ha, hb, la);
}

/* A master-side peer with an address accepts only that host; one without accepts any. */
static int source_allowed(const struct qkid *d, const struct sockaddr_storage *src)
{
	for (size_t i = 0; i < d->n_peers; i++) {
		const struct qkid_peer *p = &d->peers[i];
		if (p->role == QKI_ROLE_MASTER &&
		    (!p->allowed_src.ss_family || same_host(&p->allowed_src, src)))
			return 1;
	}
	return 0;
}

static size_t unbound_from(const struct qkid *d, const struct sockaddr_storage *src)
{
	size_t n = 0;
	for (size_t i = 0; i < d->n_unbound; i++)
		n += same_host(&d->unbound[i]->src, src);
	return n;
}

/* Full table: the oldest connection of the host that holds the most slots makes room. */
static struct qkid_link *unbound_victim(const struct qkid *d)
{
	struct qkid_link *victim = NULL;
	size_t most = 0;
	for (size_t i = 0; i < d->n_unbound; i++) {
		struct qkid_link *l = d->unbound[i];
		size_t n = unbound_from(d, &l->src);
		if (n > most || (n == most && l->t_start < victim->t_start)) {
			most = n;
			victim = l;
		}
	}
	return victim;
}

/* Refusals on the open port are summarised, so a flood of connections cannot flood the log. */
static void refused(struct qkid *d, const char *who, const char *why)
{
	int64_t now = qkid_now_ms();
	d->refused++;
	if (now - d->t_refused_log < REFUSED_LOG_MS)
		return;
	log_warn("peer port: refused %s: %s (%llu refused since the last such message)", who, why,
		 (unsigned long long)d->refused);
	d->refused = 0;
	d->t_refused_log = now;
}

/* The master speaks first: a fresh nonce the slave's HELLO1 must cover. */
static int send_challenge(struct qkid *d, struct qkid_link *l)
{
	struct qki_msg m;
	size_t n;
	qkid_random(l->nonce_local, QKP_NONCE_LEN);
	qkp_init(&m, d->scratch, sizeof(d->scratch), QKP_CHALLENGE, 0);
	qki_msg_put(&m, QKP_A_NONCE, l->nonce_local, QKP_NONCE_LEN);
	n = qkp_seal(&m, qkp_challenge_key);
	if (!n || queue_frame(l, d->scratch, n))
		return -1;
	flush_tx(l);
	return 0;
}

/* Returns 0 when a connection was taken (or refused), -1 when there is none waiting. */
static int accept_one(struct qkid *d)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	struct qkid_link *l, **grown;
	char host[64] = "?", serv[16] = "?";
	int fd = accept4(d->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int one = 1;

	if (fd < 0)
		return -1;
	getnameinfo((struct sockaddr *)&ss, sl, host, sizeof(host), serv, sizeof(serv),
		    NI_NUMERICHOST | NI_NUMERICSERV);
	if (!source_allowed(d, &ss)) {
		refused(d, host, "not the address of a configured peer");
		close(fd);
		return 0;
	}
	if (unbound_from(d, &ss) >= UNBOUND_PER_SOURCE) {
		refused(d, host, "too many unidentified connections from this host");
		close(fd);
		return 0;
	}
	if (d->n_unbound >= UNBOUND_MAX) {
		struct qkid_link *victim = unbound_victim(d);
		refused(d, victim->addr, "too many unidentified connections, oldest of the "
			"busiest host closed");
		unbound_remove(d, victim);
		qkid_link_free(victim);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	l = link_new(fd);
	grown = realloc(d->unbound, (d->n_unbound + 1) * sizeof(*d->unbound));
	if (!l || !grown) {
		qkid_link_free(l);
		if (grown)
			d->unbound = grown;
		else
			close(fd);
		return 0;
	}
	d->unbound = grown;
	snprintf(l->addr, sizeof(l->addr), "%s:%s", host, serv);
	memcpy(&l->src, &ss, sizeof(ss));
	l->state = QL_HELLO;
	if (send_challenge(d, l)) {
		qkid_link_free(l);
		return 0;
	}
	d->unbound[d->n_unbound++] = l;
	log_debug("peer port: connection from %s, challenge sent", l->addr);
	return 0;
}

void qkid_link_accept(struct qkid *d)
{
	for (int i = 0; i < ACCEPT_BURST && !accept_one(d); i++)
		;
}

struct qki_msg *qkid_link_begin(struct qkid_peer *p, struct qki_msg *m, uint8_t type)
{
	uint64_t seq = p->link ? ++p->link->seq_tx : 0;
	qkp_init(m, p->d->scratch, sizeof(p->d->scratch), type, seq);
	return m;
}

int qkid_link_send(struct qkid_peer *p, struct qki_msg *m)
{
	struct qkid_link *l = p->link;
	size_t n;
	if (!l || l->state != QL_UP)
		return -1;
	n = qkp_seal(m, l->k_tx);
	if (!n) {
		log_err("peer %s: message too large, not sent", p->conf->name);
		return -1;
	}
	if (queue_frame(l, p->d->scratch, n)) {
		qkid_link_drop(p, "peer does not read (send queue full)");
		return -1;
	}
	flush_tx(l);
	return 0;
}

/* Handshake messages are built and sealed with the hello key, outside the session. */
static int send_hello(struct qkid_peer *p, struct qkid_link *l, int type)
{
	struct qki_msg m;
	uint8_t kh[QKP_KEY_LEN];
	size_t n;
	qkp_init(&m, p->d->scratch, sizeof(p->d->scratch), (uint8_t)type, 0);
	qki_msg_put_str(&m, QKP_A_SAE_FROM, p->conf->local_sae);
	qki_msg_put_str(&m, QKP_A_SAE_TO, p->conf->peer_sae);
	qki_msg_put_u8(&m, QKP_A_ROLE, (uint8_t)p->role);
	qki_msg_put(&m, QKP_A_NONCE, l->nonce_local, QKP_NONCE_LEN);
	qki_msg_put(&m, QKP_A_NONCE_PEER, l->nonce_peer, QKP_NONCE_LEN);
	qki_msg_put(&m, QKP_A_BOOT, p->boot, QKP_BOOT_LEN);
	qkp_hello_key(p->conf->auth_key, p->conf->auth_key_len, kh);
	n = qkp_seal(&m, kh);
	OPENSSL_cleanse(kh, sizeof(kh));
	if (!n || queue_frame(l, p->d->scratch, n))
		return -1;
	flush_tx(l);
	return 0;
}

static void derive(struct qkid_peer *p, struct qkid_link *l)
{
	uint8_t s2m[QKP_KEY_LEN], m2s[QKP_KEY_LEN];
	int master = p->role == QKI_ROLE_MASTER;
	const uint8_t *ns = master ? l->nonce_peer : l->nonce_local;
	const uint8_t *nm = master ? l->nonce_local : l->nonce_peer;
	const uint8_t *bs = master ? l->boot_peer : p->boot;
	const uint8_t *bm = master ? p->boot : l->boot_peer;
	qkp_session_keys(p->conf->auth_key, p->conf->auth_key_len, ns, nm, bs, bm, s2m, m2s);
	memcpy(l->k_tx, master ? m2s : s2m, QKP_KEY_LEN);
	memcpy(l->k_rx, master ? s2m : m2s, QKP_KEY_LEN);
	OPENSSL_cleanse(s2m, sizeof(s2m));
	OPENSSL_cleanse(m2s, sizeof(m2s));
	qkid_replay_reset(&l->replay);
	l->seq_tx = 0;
}

static int verify_hello(struct qkid_peer *p, const uint8_t *frame, const struct qkp_hdr *h)
{
	uint8_t kh[QKP_KEY_LEN];
	int ok;
	qkp_hello_key(p->conf->auth_key, p->conf->auth_key_len, kh);
	ok = qkp_verify(frame, h, kh);
	OPENSSL_cleanse(kh, sizeof(kh));
	return ok;
}

static int attr_str_eq(const struct qki_attr *a, const char *s)
{
	return a->present && a->len == strlen(s) && !memcmp(a->val, s, a->len);
}

/* Returns 1 when the link was consumed (closed or moved), 0 to keep reading. */
static int on_hello1(struct qkid *d, struct qkid_link *l, const uint8_t *frame,
		     const struct qkp_hdr *h)
{
	struct qki_attr a[QKP_A_MAX];
	struct qkid_peer *p = NULL;
	const char *why = "malformed";

	if (h->type != QKP_HELLO1 || h->seq != 0 ||
	    qki_tlv_parse(qkp_rules, QKP_A_MAX, frame + QKP_HDR_LEN, h->length, a, &why) ||
	    !a[QKP_A_NONCE].present || !a[QKP_A_NONCE_PEER].present || !a[QKP_A_BOOT].present ||
	    !a[QKP_A_ROLE].present)
		goto refuse;
	for (size_t i = 0; i < d->n_peers; i++) {
		struct qkid_peer *c = &d->peers[i];
		if (c->role == QKI_ROLE_MASTER && attr_str_eq(&a[QKP_A_SAE_FROM], c->conf->peer_sae) &&
		    attr_str_eq(&a[QKP_A_SAE_TO], c->conf->local_sae))
			p = c;
	}
	if (!p) {
		why = "no master-side peer for these SAE IDs";
		goto refuse;
	}
	if (p->allowed_src.ss_family && !same_host(&p->allowed_src, &l->src)) {
		why = "not the configured address of the peer named in HELLO1";
		goto refuse;
	}
	if (!verify_hello(p, frame, h)) {
		p->drops++;
		log_warn("peer %s: forged HELLO1 from %s (authentication failed), dropped",
			 p->conf->name, l->addr);
		why = NULL;
		goto refuse;
	}
	if (memcmp(a[QKP_A_NONCE_PEER].val, l->nonce_local, QKP_NONCE_LEN)) {
		/* authentic but not an answer to this connection's challenge: recorded earlier */
		p->drops++;
		log_warn("peer %s: replayed HELLO1 from %s (does not answer this connection's "
			 "challenge), refused%s", p->conf->name, l->addr,
			 p->candidate ? "; the handshake in progress goes on" : "");
		why = NULL;
		goto refuse;
	}
	if (a[QKP_A_ROLE].val[0] != QKI_ROLE_SLAVE) {
		log_err("peer %s: role conflict: %s also claims to be master (check role and "
			"SAE IDs on both sides)", p->conf->name, l->addr);
		snprintf(p->last_error, sizeof(p->last_error), "role conflict with peer");
		why = NULL;
		goto refuse;
	}
	memcpy(l->nonce_peer, a[QKP_A_NONCE].val, QKP_NONCE_LEN);
	memcpy(l->boot_peer, a[QKP_A_BOOT].val, QKP_BOOT_LEN);
	l->peer = p;
	derive(p, l);
	if (send_hello(p, l, QKP_HELLO2)) {
		why = "cannot send HELLO2";
		goto refuse;
	}
	unbound_remove(d, l);
	/* only a holder of the PSK could answer the challenge: a slave that dialled again */
	if (p->candidate)
		qkid_link_free(p->candidate);
	p->candidate = l;
	l->t_start = qkid_now_ms();
	log_debug("peer %s: HELLO1 from %s, HELLO2 sent", p->conf->name, l->addr);
	return 1;
refuse:
	if (why)
		log_warn("peer port: refused connection from %s: %s", l->addr, why);
	unbound_remove(d, l);
	qkid_link_free(l);
	return 1;
}

/* Slave: the master's challenge; HELLO1 answers it. Returns 1 if the link was dropped. */
static int on_challenge(struct qkid_peer *p, struct qkid_link *l, const uint8_t *frame,
			const struct qkp_hdr *h)
{
	struct qki_attr a[QKP_A_MAX];
	const char *why = "malformed challenge";

	if (h->type != QKP_CHALLENGE || h->seq != 0 || !qkp_verify(frame, h, qkp_challenge_key) ||
	    qki_tlv_parse(qkp_rules, QKP_A_MAX, frame + QKP_HDR_LEN, h->length, a, &why) ||
	    !a[QKP_A_NONCE].present) {
		p->drops++;
		log_warn("peer %s: the master's first message is not a valid challenge (%s: %s)",
			 p->conf->name, qkp_type_name(h->type), why);
		why = "no valid challenge from the master";
		goto drop;
	}
	memcpy(l->nonce_peer, a[QKP_A_NONCE].val, QKP_NONCE_LEN);
	qkid_random(l->nonce_local, QKP_NONCE_LEN);
	if (send_hello(p, l, QKP_HELLO1)) {
		why = "cannot send HELLO1";
		goto drop;
	}
	l->hello_sent = 1;
	return 0;
drop:
	qkid_link_drop(p, why);
	return 1;
}

static int on_hello2(struct qkid_peer *p, struct qkid_link *l, const uint8_t *frame,
		     const struct qkp_hdr *h)
{
	struct qki_attr a[QKP_A_MAX];
	const char *why = "malformed HELLO2";
	int restarted;
	struct qki_msg m;

	if (h->type != QKP_HELLO2 || h->seq != 0 ||
	    qki_tlv_parse(qkp_rules, QKP_A_MAX, frame + QKP_HDR_LEN, h->length, a, &why) ||
	    !a[QKP_A_NONCE].present || !a[QKP_A_NONCE_PEER].present || !a[QKP_A_BOOT].present ||
	    !a[QKP_A_ROLE].present)
		goto drop;
	if (!verify_hello(p, frame, h) ||
	    memcmp(a[QKP_A_NONCE_PEER].val, l->nonce_local, QKP_NONCE_LEN) ||
	    memcmp(a[QKP_A_NONCE].val, l->nonce_peer, QKP_NONCE_LEN)) {
		p->drops++;
		log_warn("peer %s: forged or replayed HELLO2 (authentication failed), dropped",
			 p->conf->name);
		why = "handshake authentication failed";
		goto drop;
	}
	if (!attr_str_eq(&a[QKP_A_SAE_FROM], p->conf->peer_sae) ||
	    !attr_str_eq(&a[QKP_A_SAE_TO], p->conf->local_sae) ||
	    a[QKP_A_ROLE].val[0] != QKI_ROLE_MASTER) {
		why = "peer's SAE IDs or role do not match ours";
		goto drop;
	}
	memcpy(l->boot_peer, a[QKP_A_BOOT].val, QKP_BOOT_LEN);
	derive(p, l);
	l->state = QL_UP;
	restarted = p->peer_boot_known && memcmp(p->peer_boot, l->boot_peer, QKP_BOOT_LEN);
	log_info("peer %s: link up to master %s%s", p->conf->name, p->conf->address,
		 restarted ? " (master restarted: resync)" : "");
	qkid_peer_on_up(p, restarted, NULL, NULL, 0);
	memcpy(p->peer_boot, l->boot_peer, QKP_BOOT_LEN);
	p->peer_boot_known = 1;
	qkid_link_begin(p, &m, QKP_READY);
	qkid_peer_fill_ready(p, &m);
	qkid_link_send(p, &m);
	p->retry_ms = 200;
	return 0;
drop:
	qkid_link_drop(p, why);
	return 1;
}

static void on_ready(struct qkid_peer *p, struct qkid_link *l, const uint8_t *frame,
		     const struct qkp_hdr *h)
{
	struct qki_attr a[QKP_A_MAX];
	const char *why = "malformed READY";
	int restarted;

	if (h->type != QKP_READY || h->seq != 1 || !qkp_verify(frame, h, l->k_rx)) {
		p->drops++;
		log_warn("peer %s: handshake from %s not completed (bad READY), dropped",
			 p->conf->name, l->addr);
		goto drop;
	}
	if (qki_tlv_parse(qkp_rules, QKP_A_MAX, frame + QKP_HDR_LEN, h->length, a, &why)) {
		log_warn("peer %s: %s", p->conf->name, why);
		goto drop;
	}
	qkid_replay_update(&l->replay, h->seq);
	if (p->link)
		qkid_link_drop(p, "replaced by a new session");
	p->link = l;
	p->candidate = NULL;
	l->state = QL_UP;
	l->t_rx = qkid_now_ms();
	restarted = !p->peer_boot_known || memcmp(p->peer_boot, l->boot_peer, QKP_BOOT_LEN);
	log_info("peer %s: link up from slave %s%s", p->conf->name, l->addr,
		 restarted && p->peer_boot_known ? " (slave restarted: resync)" : "");
	/* A slave we never saw before is "restarted" only if we knew an earlier one. */
	qkid_peer_on_up(p, restarted && p->peer_boot_known, a, frame + QKP_HDR_LEN, h->length);
	memcpy(p->peer_boot, l->boot_peer, QKP_BOOT_LEN);
	p->peer_boot_known = 1;
	return;
drop:
	p->candidate = NULL;
	qkid_link_free(l);
}

/* Process one complete frame. Returns 1 if l was freed or moved. */
static int on_frame(struct qkid *d, struct qkid_link *l, const uint8_t *frame,
		    const struct qkp_hdr *h)
{
	struct qkid_peer *p = l->peer;
	if (!p)
		return on_hello1(d, l, frame, h);
	if (l->state == QL_HELLO) {
		if (p->role == QKI_ROLE_SLAVE)
			return l->hello_sent ? on_hello2(p, l, frame, h) : on_challenge(p, l, frame, h);
		on_ready(p, l, frame, h);
		return 1;
	}
	/* established session */
	if (!qkp_verify(frame, h, l->k_rx)) {
		p->drops++;
		log_warn("peer %s: forged %s message (seq %llu, authentication failed), dropped",
			 p->conf->name, qkp_type_name(h->type), (unsigned long long)h->seq);
		if (++l->auth_failures >= AUTH_FAILURES_MAX) {
			/* a stream full of forgeries is not worth keeping; the slave reconnects */
			qkid_link_drop(p, "repeated authentication failures");
			return 1;
		}
		return 0;
	}
	l->auth_failures = 0;
	switch (qkid_replay_check(&l->replay, h->seq)) {
	case QKID_SEQ_OLD:
		p->drops++;
		log_warn("peer %s: replayed %s message (seq %llu), dropped", p->conf->name,
			 qkp_type_name(h->type), (unsigned long long)h->seq);
		return 0;
	case QKID_SEQ_GAP:
		/* TCP loses nothing: a gap means our picture of the peer's state is wrong */
		p->drops++;
		log_warn("peer %s: %s message has seq %llu, %llu was due: messages were lost, "
			 "re-establishing the link", p->conf->name, qkp_type_name(h->type),
			 (unsigned long long)h->seq, (unsigned long long)l->replay.last + 1);
		qkid_link_drop(p, "sequence gap (messages lost)");
		return 1;
	case QKID_SEQ_NEXT:
		break;
	}
	qkid_replay_update(&l->replay, h->seq);
	l->t_rx = qkid_now_ms();
	if (h->type == QKP_PING) {
		struct qki_msg m;
		qkid_link_begin(p, &m, QKP_PONG);
		qkid_link_send(p, &m);
		return p->link != l;
	}
	if (h->type == QKP_PONG)
		return 0;
	qkid_peer_on_message(p, h, frame + QKP_HDR_LEN);
	return p->link != l;
}

void qkid_link_io(struct qkid *d, struct qkid_link *l, short revents)
{
	struct qkid_peer *p = l->peer;
	char why[160] = "protocol error";

	if (p && l == p->link && l->state == QL_CONNECTING && (revents & (POLLOUT | POLLERR | POLLHUP))) {
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(l->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) || soerr) {
			snprintf(why, sizeof(why), "connect %s: %s", p->conf->address,
				 strerror(soerr ? soerr : errno));
			qkid_link_drop(p, why);
			return;
		}
		l->state = QL_HELLO;    /* the master speaks first: its challenge */
		l->t_start = qkid_now_ms();
		return;
	}
	if (revents & POLLOUT)
		flush_tx(l);
	if (!(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	for (int reads = 0;;) {
		struct qkp_hdr h;
		size_t want = QKP_HDR_LEN;
		ssize_t r;
		if (l->rx_len >= QKP_HDR_LEN) {
			int rc = qkp_hdr_parse(l->rx, &h);
			if (rc == -2) {
				snprintf(why, sizeof(why), "the peer qkid speaks link protocol version "
					 "%u, this one version %u: run the same qkid release on both "
					 "gateways", l->rx[2], QKP_VERSION);
				if (p)
					log_err("peer %s: %s", p->conf->name, why);
				else
					log_err("peer port: %s: %s", l->addr, why);
				goto close;
			}
			if (rc) {
				if (p) {
					p->drops++;
					log_warn("peer %s: malformed frame header, closing link",
						 p->conf->name);
				} else {
					log_warn("peer port: garbage from %s, closing", l->addr);
				}
				goto close;
			}
			want = QKP_HDR_LEN + h.length + QKP_TAG_LEN;
		}
		if (l->rx_len < want) {
			if (reads++ >= 64)
				return;         /* a complete frame is never left behind, see above */
			r = recv(l->fd, l->rx + l->rx_len, want - l->rx_len, 0);
			if (r == 0)
				goto close_quiet;
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
					return;
				goto close_quiet;
			}
			l->rx_len += (size_t)r;
			continue;
		}
		l->rx_len = 0;
		if (on_frame(d, l, l->rx, &h))
			return;
		if (!p)
			return;
	}
	return;
close_quiet:
	if (p && l == p->link) {
		qkid_link_drop(p, l->state == QL_HELLO && !l->hello_sent ?
			       "connection closed before the master's challenge (this host is not "
			       "its configured peer address, or it runs a qkid older than link "
			       "protocol version 2)" : "connection closed by peer");
		return;
	}
close:
	if (!p) {
		unbound_remove(d, l);
		qkid_link_free(l);
	} else if (l == p->link) {
		qkid_link_drop(p, why);
	} else if (l == p->candidate) {
		p->candidate = NULL;
		qkid_link_free(l);
	}
}

/* Accepted connections must say HELLO1 in time, or they would pin a slot forever. */
void qkid_link_sweep(struct qkid *d, int64_t now)
{
	for (size_t i = 0; i < d->n_unbound;) {
		struct qkid_link *l = d->unbound[i];
		if (now - l->t_start > HELLO_TIMEOUT_MS) {
			refused(d, l->addr, "no complete HELLO1 in time");
			unbound_remove(d, l);
			qkid_link_free(l);
			continue;
		}
		i++;
	}
}

static void start_connect(struct qkid_peer *p, int64_t now)
{
	struct addrinfo *ai = resolve(p->conf->address, 0);
	struct qkid_link *l;
	int fd, one = 1;

	p->t_retry = now + p->retry_ms;
	p->retry_ms = p->retry_ms < 5000 ? p->retry_ms * 2 : 5000;
	if (!ai) {
		snprintf(p->last_error, sizeof(p->last_error),
			 "address %s: expected numeric host:port", p->conf->address);
		return;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		freeaddrinfo(ai);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) && errno != EINPROGRESS) {
		snprintf(p->last_error, sizeof(p->last_error), "connect %s: %s", p->conf->address,
			 strerror(errno));
		close(fd);
		freeaddrinfo(ai);
		return;
	}
	freeaddrinfo(ai);
	l = link_new(fd);
	if (!l) {
		close(fd);
		return;
	}
	l->peer = p;
	l->state = QL_CONNECTING;
	snprintf(l->addr, sizeof(l->addr), "%s", p->conf->address);
	p->link = l;
}

void qkid_link_tick(struct qkid_peer *p, int64_t now)
{
	struct qkid_link *l = p->link;
	if (p->candidate && now - p->candidate->t_start > HELLO_TIMEOUT_MS) {
		log_warn("peer %s: handshake from %s timed out", p->conf->name, p->candidate->addr);
		qkid_link_free(p->candidate);
		p->candidate = NULL;
	}
	if (!l) {
		if (p->role == QKI_ROLE_SLAVE && now >= p->t_retry)
			start_connect(p, now);
		return;
	}
	if (l->state != QL_UP) {
		if (now - l->t_start > HELLO_TIMEOUT_MS)
			qkid_link_drop(p, l->state == QL_CONNECTING ? "connect timeout" :
				       p->role == QKI_ROLE_SLAVE && !l->hello_sent ?
				       "handshake timeout: no challenge from the master (a qkid older "
				       "than link protocol version 2 sends none)" : "handshake timeout");
		return;
	}
	if (now - l->t_rx > (int64_t)p->d->conf->peer_timeout_s * 1000) {
		qkid_link_drop(p, "peer silent (timeout)");
		return;
	}
	if (now - l->t_tx > (int64_t)p->d->conf->peer_keepalive_s * 1000 && l->tx_len == 0) {
		struct qki_msg m;
		qkid_link_begin(p, &m, QKP_PING);
		qkid_link_send(p, &m);
	}
	if (l->tx_len)
		flush_tx(l);
}
