/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qki_proto.c - TLV codec of the qkid local API. libc only; shared by daemon, client and qkictl.
 */
#include <string.h>

#include "qki_proto.h"

#define K_NONE  0
#define K_U8    QKI_K_U8
#define K_U32   QKI_K_U32
#define K_U64   QKI_K_U64
#define K_STR   QKI_K_STR
#define K_BYTES QKI_K_BYTES
#define K_NEST  QKI_K_NEST

static const struct qki_attr_rule rules[QKI_A_ATTR_MAX] = {
	[QKI_A_PEER]       = { K_STR, 0, 1, QKI_NAME_MAX - 1 },
	[QKI_A_KEY_ID]     = { K_STR, 0, 1, QKI_KEY_ID_MAX - 1 },
	[QKI_A_KEY]        = { K_BYTES, 0, 1, QKI_KEY_MAX },
	[QKI_A_SIZE]       = { K_U32 },
	[QKI_A_SPI]        = { K_U32 },
	[QKI_A_DIR]        = { K_U8 },
	[QKI_A_EPOCH]      = { K_U32 },
	[QKI_A_COUNT]      = { K_U32 },
	[QKI_A_WAIT_MS]    = { K_U32 },
	[QKI_A_PACKETS]    = { K_U64 },
	[QKI_A_BYTES]      = { K_U64 },
	[QKI_A_ERROR]      = { K_U32 },
	[QKI_A_MESSAGE]    = { K_STR, 0, 0, QKI_TEXT_MAX - 1 },
	[QKI_A_RPK]        = { K_U32 },
	[QKI_A_RPK_MIN]    = { K_U32 },
	[QKI_A_RPK_MAX]    = { K_U32 },
	[QKI_A_EPOCH_KEY]  = { K_NEST, 1 },
	[QKI_A_PEER_INFO]  = { K_NEST, 1 },
	[QKI_A_SA_INFO]    = { K_NEST, 1 },
	[QKI_A_VERSION]    = { K_STR, 0, 0, QKI_TEXT_MAX - 1 },
	[QKI_A_UPTIME]     = { K_U64 },
	[QKI_A_LEVEL]      = { K_U32 },
	[QKI_A_CAPACITY]   = { K_U32 },
	[QKI_A_ROLE]       = { K_U8 },
	[QKI_A_LINK]       = { K_U8 },
	[QKI_A_KME]        = { K_U8 },
	[QKI_A_KEYS_IN]    = { K_U64 },
	[QKI_A_KEYS_OUT]   = { K_U64 },
	[QKI_A_RATE_IN]    = { K_U64 },
	[QKI_A_RATE_OUT]   = { K_U64 },
	[QKI_A_ERRORS]     = { K_U64 },
	[QKI_A_LAST_ERROR] = { K_STR, 0, 0, QKI_TEXT_MAX - 1 },
	[QKI_A_DROPS]      = { K_U64 },
	[QKI_A_RESYNCS]    = { K_U64 },
	[QKI_A_LOCAL_SAE]  = { K_STR, 0, 1, QKI_TEXT_MAX - 1 },
	[QKI_A_PEER_SAE]   = { K_STR, 0, 1, QKI_TEXT_MAX - 1 },
	[QKI_A_PKT_RATE]   = { K_U64 },
	[QKI_A_STARVED]    = { K_U64 },
	[QKI_A_IKE_LEVEL]  = { K_U32 },
	[QKI_A_NEXT_EPOCH] = { K_U32 },
	[QKI_A_KEY_SIZE]   = { K_U32 },
	[QKI_A_REFILLS]    = { K_U64 },
	[QKI_A_BACKOFF_MS] = { K_U32 },
	[QKI_A_PEEK]       = { K_U8 },
	[QKI_A_KEYS_HELD]  = { K_U32 },
	[QKI_A_KEYS_SLOTS] = { K_U32 },
	[QKI_A_DP_RPK]     = { K_U32 },
	[QKI_A_DP_LEVEL]   = { K_U32 },
	[QKI_A_DP_CAPACITY] = { K_U32 },
	[QKI_A_WINDOWS]    = { K_U64 },
	[QKI_A_BEYOND_RPK] = { K_U64 },
	[QKI_A_STALL_DROPS] = { K_U64 },
	[QKI_A_EPISODES]   = { K_U64 },
	[QKI_A_SHARE]      = { K_U64 },
	[QKI_A_SA_FIRST]   = { K_U32 },
	[QKI_A_SA_NEXT]    = { K_U32 },
};

const char *qki_strerror(int code)
{
	switch (code) {
	case QKI_OK: return "success";
	case QKI_ERR_PROTO: return "malformed message";
	case QKI_ERR_VERSION: return "protocol version not supported";
	case QKI_ERR_UNSUPPORTED: return "unknown request";
	case QKI_ERR_INVALID: return "missing or invalid argument";
	case QKI_ERR_NO_PEER: return "no such peer";
	case QKI_ERR_NO_SA: return "SA not registered";
	case QKI_ERR_EXISTS: return "SA already registered";
	case QKI_ERR_NO_KEY: return "no key available";
	case QKI_ERR_UNKNOWN_KEY: return "unknown key_ID";
	case QKI_ERR_KEY_USED: return "key_ID already used";
	case QKI_ERR_KME: return "KME unavailable";
	case QKI_ERR_PEER_DOWN: return "peer qkid not connected";
	case QKI_ERR_STALE: return "epoch no longer available";
	case QKI_ERR_BUSY: return "daemon busy";
	case QKI_ERR_INTERNAL: return "internal error";
	case QKI_ERR_PERMISSION: return "permission denied";
	case QKI_ERR_CONNECT: return "cannot connect to qkid";
	case QKI_ERR_IO: return "connection to qkid failed";
	case QKI_ERR_TIMEOUT: return "timeout waiting for qkid";
	case QKI_ERR_NOMEM: return "out of memory";
	case QKI_ERR_REPLY: return "malformed reply from qkid";
	}
	return "unknown error";
}

void qki_wipe(void *p, size_t n)
{
	/* A volatile function pointer keeps the compiler from proving the store dead. */
	static void *(*const volatile do_memset)(void *, int, size_t) = memset;
	if (p && n)
		do_memset(p, 0, n);
}

void qki_msg_init(struct qki_msg *m, uint8_t *buf, size_t cap, uint8_t type, uint32_t seq)
{
	m->buf = buf;
	m->cap = cap;
	m->len = 0;
	m->overflow = cap < QKI_HDR_LEN;
	if (m->overflow)
		return;
	qki_put16(buf, QKI_MAGIC);
	buf[2] = QKI_PROTO_VERSION;
	buf[3] = type;
	qki_put32(buf + 4, seq);
	qki_put32(buf + 8, 0);
	m->len = QKI_HDR_LEN;
}

void qki_msg_put(struct qki_msg *m, uint16_t attr, const void *val, size_t len)
{
	if (m->overflow || len > 0xffff || m->cap - m->len < 4 + len ||
	    m->len + 4 + len - QKI_HDR_LEN > QKI_MSG_MAX) {
		m->overflow = 1;
		return;
	}
	qki_put16(m->buf + m->len, attr);
	qki_put16(m->buf + m->len + 2, (uint16_t)len);
	if (len)
		memcpy(m->buf + m->len + 4, val, len);
	m->len += 4 + len;
}

void qki_msg_put_u8(struct qki_msg *m, uint16_t attr, uint8_t v)
{
	qki_msg_put(m, attr, &v, 1);
}

void qki_msg_put_u32(struct qki_msg *m, uint16_t attr, uint32_t v)
{
	uint8_t b[4];
	qki_put32(b, v);
	qki_msg_put(m, attr, b, 4);
}

void qki_msg_put_u64(struct qki_msg *m, uint16_t attr, uint64_t v)
{
	uint8_t b[8];
	qki_put64(b, v);
	qki_msg_put(m, attr, b, 8);
}

void qki_msg_put_str(struct qki_msg *m, uint16_t attr, const char *s)
{
	qki_msg_put(m, attr, s, strlen(s));
}

size_t qki_msg_nest_begin(struct qki_msg *m, uint16_t attr)
{
	size_t mark = m->len;
	qki_msg_put(m, attr, NULL, 0);
	return mark;
}

void qki_msg_nest_end(struct qki_msg *m, size_t mark)
{
	size_t inner;
	if (m->overflow)
		return;
	inner = m->len - mark - 4;
	if (inner > 0xffff) {
		m->overflow = 1;
		return;
	}
	qki_put16(m->buf + mark + 2, (uint16_t)inner);
}

size_t qki_msg_finish(struct qki_msg *m)
{
	if (m->overflow)
		return 0;
	qki_put32(m->buf + 8, (uint32_t)(m->len - QKI_HDR_LEN));
	return m->len;
}

int qki_hdr_parse(const uint8_t *buf, size_t n, struct qki_hdr *h)
{
	if (n < QKI_HDR_LEN || qki_get16(buf) != QKI_MAGIC)
		return QKI_ERR_PROTO;
	h->version = buf[2];
	h->type = buf[3];
	h->seq = qki_get32(buf + 4);
	h->length = qki_get32(buf + 8);
	if (h->length > QKI_MSG_MAX)
		return QKI_ERR_PROTO;
	if (h->version != QKI_PROTO_VERSION)
		return QKI_ERR_VERSION;
	return QKI_OK;
}

void qki_iter_init(struct qki_iter *it, const uint8_t *p, size_t len)
{
	it->p = p;
	it->end = p + len;
}

int qki_iter_next(struct qki_iter *it, uint16_t *type, const uint8_t **val, uint16_t *len)
{
	size_t left = (size_t)(it->end - it->p);
	uint16_t l;
	if (left == 0)
		return 0;
	if (left < 4)
		return -1;
	l = qki_get16(it->p + 2);
	if (left - 4 < l)
		return -1;
	*type = qki_get16(it->p);
	*len = l;
	*val = it->p + 4;
	it->p += 4 + l;
	return 1;
}

static int parse_level(const struct qki_attr_rule *rules, size_t nrules, const uint8_t *p,
		       size_t len, struct qki_attr *out, int depth, const char **why)
{
	struct qki_iter it;
	uint16_t t, l;
	const uint8_t *v;
	int r;

	memset(out, 0, nrules * sizeof(*out));
	qki_iter_init(&it, p, len);
	while ((r = qki_iter_next(&it, &t, &v, &l)) == 1) {
		const struct qki_attr_rule *rule;
		if (t >= nrules || rules[t].kind == K_NONE)
			continue;       /* unknown: skip, newer peer */
		rule = &rules[t];
		switch (rule->kind) {
		case K_U8:  if (l != 1) goto badlen; break;
		case K_U32: if (l != 4) goto badlen; break;
		case K_U64: if (l != 8) goto badlen; break;
		case K_STR:
			if (l < rule->min || l > rule->max)
				goto badlen;
			if (memchr(v, 0, l)) {
				*why = "NUL inside a string attribute";
				return QKI_ERR_PROTO;
			}
			break;
		case K_BYTES:
			if (l < rule->min || l > rule->max)
				goto badlen;
			break;
		case K_NEST:
			if (depth >= 2) {
				*why = "attributes nested too deep";
				return QKI_ERR_PROTO;
			}
			{
				struct qki_attr inner[nrules];
				if (parse_level(rules, nrules, v, l, inner, depth + 1, why) != QKI_OK)
					return QKI_ERR_PROTO;
			}
			break;
		}
		if (out[t].present && !rule->repeat) {
			*why = "duplicate attribute";
			return QKI_ERR_PROTO;
		}
		if (!out[t].present) {
			out[t].val = v;
			out[t].len = l;
			out[t].present = 1;
		}
		continue;
badlen:
		*why = "attribute length out of range";
		return QKI_ERR_PROTO;
	}
	if (r < 0) {
		*why = "truncated attribute";
		return QKI_ERR_PROTO;
	}
	return QKI_OK;
}

int qki_tlv_parse(const struct qki_attr_rule *rules, size_t nrules, const uint8_t *p,
		  size_t len, struct qki_attr *out, const char **why)
{
	const char *dummy;
	return parse_level(rules, nrules, p, len, out, 0, why ? why : &dummy);
}

int qki_attrs_parse(const uint8_t *p, size_t len, struct qki_attrs *out, const char **why)
{
	struct qki_attrs scratch;
	return qki_tlv_parse(rules, QKI_A_ATTR_MAX, p, len, out ? out->a : scratch.a, why);
}

int qki_attr_u8(const struct qki_attrs *a, uint16_t t, uint8_t *v)
{
	if (t >= QKI_A_ATTR_MAX || !a->a[t].present || a->a[t].len != 1)
		return 0;
	*v = a->a[t].val[0];
	return 1;
}

int qki_attr_u32(const struct qki_attrs *a, uint16_t t, uint32_t *v)
{
	if (t >= QKI_A_ATTR_MAX || !a->a[t].present || a->a[t].len != 4)
		return 0;
	*v = qki_get32(a->a[t].val);
	return 1;
}

int qki_attr_u64(const struct qki_attrs *a, uint16_t t, uint64_t *v)
{
	if (t >= QKI_A_ATTR_MAX || !a->a[t].present || a->a[t].len != 8)
		return 0;
	*v = qki_get64(a->a[t].val);
	return 1;
}

int qki_attr_str(const struct qki_attrs *a, uint16_t t, char *buf, size_t bufsize)
{
	if (t >= QKI_A_ATTR_MAX || !a->a[t].present || a->a[t].len >= bufsize)
		return 0;
	memcpy(buf, a->a[t].val, a->a[t].len);
	buf[a->a[t].len] = 0;
	return 1;
}
