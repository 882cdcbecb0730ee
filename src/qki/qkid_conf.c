/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid_conf.c - parser for qkid.conf. Format: "key = value" lines, '#' comments, sections
 * "[peer NAME]". Strict: unknown keys, bad numbers and duplicate peers are errors with the line.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "qkid_conf.h"

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

void qkid_conf_defaults(struct qkid_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->socket_path, sizeof(c->socket_path), "%s", QKI_DEFAULT_SOCKET);
	c->socket_mode = 0660;
	c->log_level = 2;
	c->rpk_min = 64;
	c->rpk_max = 65536;
	c->max_keys = 8192;
	c->client_max = 64;
	c->client_idle_timeout_s = 10;
	c->sa_orphan_timeout_s = 300;
	c->ike_key_lifetime_s = 600;
	c->peer_keepalive_s = 5;
	c->peer_timeout_s = 15;
	c->kme_backoff_min_ms = 100;
	c->kme_backoff_max_ms = 10000;
}

static void peer_defaults(struct qkid_peer_conf *p)
{
	memset(p, 0, sizeof(*p));
	p->kme_connect_timeout_ms = 2000;
	p->kme_timeout_ms = 5000;
	p->key_size_bits = 256;
	p->batch = 16;
	p->pool_target = 32;
	p->ike_reserve = 4;
	p->ike_stash = 4;
	p->sa_buffer_total = 256;
	p->sa_buffer_min = 4;
	p->sa_buffer_max = 64;
	p->fair_slack = 4;
}

static int parse_uint(const char *v, unsigned long min, unsigned long max, unsigned *out, int base)
{
	char *end;
	unsigned long n;
	if (!*v || *v == '-')
		return -1;
	errno = 0;
	n = strtoul(v, &end, base);
	if (errno || *end || n < min || n > max)
		return -1;
	*out = (unsigned)n;
	return 0;
}

static int set_str(char *dst, size_t size, const char *v)
{
	if (strlen(v) >= size)
		return -1;
	strcpy(dst, v);
	return 0;
}

#define UINT_KEY(name, field, min, max) \
	if (!strcmp(key, name)) \
		return parse_uint(value, min, max, &(field), 10) ? \
			fail(err, errlen, "%s: expected a number in [%lu, %lu]", key, \
			     (unsigned long)(min), (unsigned long)(max)) : 0;
#define STR_KEY(name, field) \
	if (!strcmp(key, name)) \
		return set_str(field, sizeof(field), value) ? \
			fail(err, errlen, "%s: value too long", key) : 0;

int qkid_conf_set(struct qkid_conf *c, const char *key, const char *value, char *err,
		  size_t errlen)
{
	STR_KEY("socket", c->socket_path)
	STR_KEY("socket_group", c->socket_group)
	STR_KEY("key_group", c->key_group)
	STR_KEY("status_group", c->status_group)
	STR_KEY("listen", c->listen)
	STR_KEY("pid_file", c->pid_file)
	if (!strcmp(key, "socket_mode"))
		return parse_uint(value, 0, 0777, &c->socket_mode, 8) ?
			fail(err, errlen, "socket_mode: expected octal mode") : 0;
	if (!strcmp(key, "log_level")) {
		static const char *const levels[] = { "error", "warning", "info", "debug" };
		for (int i = 0; i < 4; i++)
			if (!strcmp(value, levels[i])) {
				c->log_level = i;
				return 0;
			}
		return fail(err, errlen, "log_level: expected error, warning, info or debug");
	}
	if (!strcmp(key, "log")) {
		if (!strcmp(value, "syslog"))
			c->log_syslog = 1;
		else if (!strcmp(value, "stderr"))
			c->log_syslog = 0;
		else
			return fail(err, errlen, "log: expected stderr or syslog");
		return 0;
	}
	UINT_KEY("rpk_min", c->rpk_min, 1, UINT32_MAX)
	UINT_KEY("rpk_max", c->rpk_max, 1, UINT32_MAX)
	UINT_KEY("max_keys", c->max_keys, 16, 1u << 20)
	UINT_KEY("client_max", c->client_max, 1, 4096)
	UINT_KEY("client_idle_timeout", c->client_idle_timeout_s, 1, 3600)
	UINT_KEY("sa_orphan_timeout", c->sa_orphan_timeout_s, 1, 86400)
	UINT_KEY("ike_key_lifetime", c->ike_key_lifetime_s, 1, 86400)
	UINT_KEY("peer_keepalive", c->peer_keepalive_s, 1, 3600)
	UINT_KEY("peer_timeout", c->peer_timeout_s, 2, 3600)
	UINT_KEY("kme_backoff_min", c->kme_backoff_min_ms, 10, 600000)
	UINT_KEY("kme_backoff_max", c->kme_backoff_max_ms, 10, 3600000)
	return fail(err, errlen, "unknown setting '%s'", key);
}

static int peer_set(struct qkid_peer_conf *p, const char *key, const char *value, char *err,
		    size_t errlen)
{
	STR_KEY("local_sae", p->local_sae)
	STR_KEY("peer_sae", p->peer_sae)
	STR_KEY("address", p->address)
	STR_KEY("auth_key_file", p->auth_key_file)
	STR_KEY("kme_url", p->kme_url)
	STR_KEY("kme_cert", p->kme_cert)
	STR_KEY("kme_key", p->kme_key)
	STR_KEY("kme_ca", p->kme_ca)
	if (!strcmp(key, "role")) {
		if (!strcmp(value, "auto"))
			p->role_conf = QKID_ROLE_AUTO;
		else if (!strcmp(value, "master"))
			p->role_conf = QKID_ROLE_CONF_MASTER;
		else if (!strcmp(value, "slave"))
			p->role_conf = QKID_ROLE_CONF_SLAVE;
		else
			return fail(err, errlen, "role: expected auto, master or slave");
		return 0;
	}
	UINT_KEY("kme_connect_timeout", p->kme_connect_timeout_ms, 10, 600000)
	UINT_KEY("kme_timeout", p->kme_timeout_ms, 10, 600000)
	UINT_KEY("batch", p->batch, 1, 1024)
	UINT_KEY("pool_target", p->pool_target, 0, 65536)
	UINT_KEY("ike_reserve", p->ike_reserve, 0, 1024)
	UINT_KEY("ike_stash", p->ike_stash, 0, 256)
	UINT_KEY("sa_buffer_total", p->sa_buffer_total, 1, 1u << 20)
	UINT_KEY("sa_buffer_min", p->sa_buffer_min, 1, 65536)
	UINT_KEY("sa_buffer_max", p->sa_buffer_max, 1, 65536)
	UINT_KEY("fair_slack", p->fair_slack, 0, 65536)
	if (!strcmp(key, "key_size")) {
		if (parse_uint(value, 8, QKI_KEY_MAX * 8, &p->key_size_bits, 10) ||
		    p->key_size_bits % 8)
			return fail(err, errlen, "key_size: expected bits, a multiple of 8 up to %d",
				    QKI_KEY_MAX * 8);
		return 0;
	}
	return fail(err, errlen, "unknown peer setting '%s'", key);
}

static char *trim(char *s)
{
	char *e;
	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = 0;
	return s;
}

static int valid_name(const char *s)
{
	if (!*s || strlen(s) >= QKI_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && !strchr("-_.", *s))
			return 0;
	return 1;
}

int qkid_conf_parse(struct qkid_conf *c, const char *text, size_t len, char *err, size_t errlen)
{
	struct qkid_peer_conf *peer = NULL;
	char line[1024], msg[200];
	size_t pos = 0;
	unsigned lineno = 0;

	while (pos < len) {
		size_t n = 0;
		char *s, *eq;
		lineno++;
		while (pos < len && text[pos] != '\n') {
			if (n + 1 >= sizeof(line))
				return fail(err, errlen, "line %u: too long", lineno);
			if (text[pos] == 0)
				return fail(err, errlen, "line %u: NUL byte", lineno);
			line[n++] = text[pos++];
		}
		pos++;
		line[n] = 0;
		if ((s = strchr(line, '#')))
			*s = 0;
		s = trim(line);
		if (!*s)
			continue;
		if (*s == '[') {
			char *end = strchr(s, ']'), *name;
			if (!end || trim(end + 1)[0])
				return fail(err, errlen, "line %u: bad section header", lineno);
			*end = 0;
			s = trim(s + 1);
			if (strncmp(s, "peer", 4) || !isspace((unsigned char)s[4]))
				return fail(err, errlen, "line %u: unknown section '%s' (want [peer NAME])",
					    lineno, s);
			name = trim(s + 4);
			if (!valid_name(name))
				return fail(err, errlen, "line %u: bad peer name '%s' (letters, digits, -_.)",
					    lineno, name);
			for (size_t i = 0; i < c->n_peers; i++)
				if (!strcmp(c->peers[i].name, name))
					return fail(err, errlen, "line %u: duplicate peer '%s'", lineno,
						    name);
			if (c->n_peers >= QKID_PEERS_MAX)
				return fail(err, errlen, "line %u: more than %d peers", lineno,
					    QKID_PEERS_MAX);
			peer = &c->peers[c->n_peers++];
			peer_defaults(peer);
			strcpy(peer->name, name);
			continue;
		}
		eq = strchr(s, '=');
		if (!eq)
			return fail(err, errlen, "line %u: expected key = value", lineno);
		*eq = 0;
		{
			char *key = trim(s), *value = trim(eq + 1);
			int r;
			if (!*key)
				return fail(err, errlen, "line %u: empty key", lineno);
			r = peer ? peer_set(peer, key, value, msg, sizeof(msg))
				 : qkid_conf_set(c, key, value, msg, sizeof(msg));
			if (r)
				return fail(err, errlen, "line %u: %s", lineno, msg);
		}
	}
	return 0;
}

int qkid_conf_finish(struct qkid_conf *c, char *err, size_t errlen)
{
	int any_master = 0;
	if (c->rpk_min > c->rpk_max)
		return fail(err, errlen, "rpk_min %u is above rpk_max %u", c->rpk_min, c->rpk_max);
	if (c->kme_backoff_min_ms > c->kme_backoff_max_ms)
		return fail(err, errlen, "kme_backoff_min is above kme_backoff_max");
	if (!c->socket_path[0])
		return fail(err, errlen, "socket must not be empty");
	for (size_t i = 0; i < c->n_peers; i++) {
		struct qkid_peer_conf *p = &c->peers[i];
		const char *missing = !p->local_sae[0] ? "local_sae" : !p->peer_sae[0] ? "peer_sae" :
			!p->auth_key_file[0] ? "auth_key_file" : !p->kme_url[0] ? "kme_url" :
			!p->kme_cert[0] ? "kme_cert" : !p->kme_key[0] ? "kme_key" :
			!p->kme_ca[0] ? "kme_ca" : NULL;
		if (missing)
			return fail(err, errlen, "peer %s: %s is required", p->name, missing);
		if (!strcmp(p->local_sae, p->peer_sae))
			return fail(err, errlen, "peer %s: local_sae and peer_sae are equal", p->name);
		if (p->sa_buffer_min > p->sa_buffer_max)
			return fail(err, errlen, "peer %s: sa_buffer_min above sa_buffer_max", p->name);
		switch (p->role_conf) {
		case QKID_ROLE_CONF_MASTER: p->role = QKI_ROLE_MASTER; break;
		case QKID_ROLE_CONF_SLAVE: p->role = QKI_ROLE_SLAVE; break;
		default:
			/* both ends compute the same answer from the same two names */
			p->role = strcmp(p->local_sae, p->peer_sae) < 0 ? QKI_ROLE_MASTER
									: QKI_ROLE_SLAVE;
		}
		if (p->role == QKI_ROLE_SLAVE && !p->address[0])
			return fail(err, errlen, "peer %s: address is required on the slave side "
				    "(the slave connects to the master)", p->name);
		if (p->role == QKI_ROLE_MASTER)
			any_master = 1;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(c->peers[j].peer_sae, p->peer_sae) &&
			    !strcmp(c->peers[j].local_sae, p->local_sae))
				return fail(err, errlen, "peers %s and %s have the same SAE IDs",
					    c->peers[j].name, p->name);
	}
	if (any_master && !c->listen[0])
		return fail(err, errlen, "listen is required: this qkid is master for a peer, and "
			    "the slave connects to it");
	return 0;
}

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9') return ch - '0';
	if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
	return -1;
}

static int load_key(struct qkid_peer_conf *p, char *err, size_t errlen)
{
	char buf[512];
	struct stat st;
	ssize_t n;
	size_t k = 0;
	int fd = open(p->auth_key_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	int hi = -1;

	if (fd < 0)
		return fail(err, errlen, "peer %s: auth_key_file %s: %s", p->name, p->auth_key_file,
			    strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || (st.st_mode & 077)) {
		close(fd);
		return fail(err, errlen, "peer %s: auth_key_file %s must be a regular file with mode "
			    "0600 or stricter", p->name, p->auth_key_file);
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return fail(err, errlen, "peer %s: read %s: %s", p->name, p->auth_key_file,
			    strerror(errno));
	for (ssize_t i = 0; i < n; i++) {
		int v;
		if (isspace((unsigned char)buf[i]))
			continue;
		v = hexval(buf[i]);
		if (v < 0 || (hi < 0 && k >= QKID_AUTH_KEY_MAX)) {
			k = 0;
			break;
		}
		if (hi < 0) {
			hi = v;
		} else {
			p->auth_key[k++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	explicit_bzero(buf, sizeof(buf));
	if (k < QKID_AUTH_KEY_MIN || hi >= 0) {
		explicit_bzero(p->auth_key, sizeof(p->auth_key));
		return fail(err, errlen, "peer %s: auth_key_file %s must hold %d to %d bytes as hex "
			    "(e.g. openssl rand -hex 32)", p->name, p->auth_key_file,
			    QKID_AUTH_KEY_MIN, QKID_AUTH_KEY_MAX);
	}
	p->auth_key_len = k;
	return 0;
}

int qkid_conf_load_keys(struct qkid_conf *c, char *err, size_t errlen)
{
	for (size_t i = 0; i < c->n_peers; i++)
		if (load_key(&c->peers[i], err, errlen))
			return -1;
	return 0;
}

int qkid_conf_load(struct qkid_conf *c, const char *path, char *err, size_t errlen)
{
	char *text, msg[300];
	struct stat st;
	FILE *f = fopen(path, "re");
	size_t n;
	int r;

	if (!f)
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) || st.st_size > 1 << 20) {
		fclose(f);
		return fail(err, errlen, "%s: not a readable config file under 1 MiB", path);
	}
	text = malloc((size_t)st.st_size + 1);
	if (!text) {
		fclose(f);
		return fail(err, errlen, "out of memory");
	}
	n = fread(text, 1, (size_t)st.st_size, f);
	fclose(f);
	r = qkid_conf_parse(c, text, n, msg, sizeof(msg));
	free(text);
	if (r)
		return fail(err, errlen, "%s: %s", path, msg);
	return 0;
}

void qkid_conf_wipe(struct qkid_conf *c)
{
	for (size_t i = 0; i < c->n_peers; i++)
		explicit_bzero(c->peers[i].auth_key, sizeof(c->peers[i].auth_key));
}
