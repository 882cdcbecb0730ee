/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "qkid_peerproto.h"

const struct qki_attr_rule qkp_rules[QKP_A_MAX] = {
	[QKP_A_SAE_FROM]   = { QKI_K_STR, 0, 1, 127 },
	[QKP_A_SAE_TO]     = { QKI_K_STR, 0, 1, 127 },
	[QKP_A_ROLE]       = { QKI_K_U8 },
	[QKP_A_NONCE]      = { QKI_K_BYTES, 0, QKP_NONCE_LEN, QKP_NONCE_LEN },
	[QKP_A_NONCE_PEER] = { QKI_K_BYTES, 0, QKP_NONCE_LEN, QKP_NONCE_LEN },
	[QKP_A_BOOT]       = { QKI_K_BYTES, 0, QKP_BOOT_LEN, QKP_BOOT_LEN },
	[QKP_A_ENTRY]      = { QKI_K_NEST, 1 },
	[QKP_A_KEY_ID]     = { QKI_K_STR, 0, 1, QKI_KEY_ID_MAX - 1 },
	[QKP_A_USE]        = { QKI_K_U8 },
	[QKP_A_SPI]        = { QKI_K_U32 },
	[QKP_A_RX]         = { QKI_K_U8 },
	[QKP_A_EPOCH]      = { QKI_K_U32 },
	[QKP_A_STATUS]     = { QKI_K_U8 },
	[QKP_A_COUNT]      = { QKI_K_U32 },
	[QKP_A_IKE_LEVEL]  = { QKI_K_U32 },
};

const char *qkp_type_name(int type)
{
	static const char *const names[QKP_TYPE_MAX] = {
		[QKP_HELLO1] = "HELLO1", [QKP_HELLO2] = "HELLO2", [QKP_READY] = "READY",
		[QKP_ASSIGN] = "ASSIGN", [QKP_ACK] = "ACK", [QKP_NEED] = "NEED",
		[QKP_STALE] = "STALE", [QKP_PING] = "PING", [QKP_PONG] = "PONG",
		[QKP_CHALLENGE] = "CHALLENGE",
	};
	return type > 0 && type < QKP_TYPE_MAX ? names[type] : "?";
}

void qkp_init(struct qki_msg *m, uint8_t *buf, size_t cap, uint8_t type, uint64_t seq)
{
	m->buf = buf;
	m->cap = cap < QKP_FRAME_MAX ? cap : QKP_FRAME_MAX;
	m->overflow = m->cap < QKP_HDR_LEN + QKP_TAG_LEN;
	m->len = 0;
	if (m->overflow)
		return;
	/* keep room for the tag: qki_msg_put checks against cap */
	m->cap -= QKP_TAG_LEN;
	qki_put16(buf, QKP_MAGIC);
	buf[2] = QKP_VERSION;
	buf[3] = type;
	qki_put32(buf + 4, 0);
	qki_put64(buf + 8, seq);
	m->len = QKP_HDR_LEN;
}

size_t qkp_seal(struct qki_msg *m, const uint8_t key[QKP_KEY_LEN])
{
	unsigned int tl = 0;
	if (m->overflow || m->len - QKP_HDR_LEN > QKP_MSG_MAX)
		return 0;
	qki_put32(m->buf + 4, (uint32_t)(m->len - QKP_HDR_LEN));
	if (!HMAC(EVP_sha256(), key, QKP_KEY_LEN, m->buf, m->len, m->buf + m->len, &tl) ||
	    tl != QKP_TAG_LEN)
		return 0;
	return m->len + QKP_TAG_LEN;
}

int qkp_hdr_parse(const uint8_t *buf, struct qkp_hdr *h)
{
	if (qki_get16(buf) != QKP_MAGIC)
		return -1;
	if (buf[2] != QKP_VERSION)
		return -2;
	h->type = buf[3];
	h->length = qki_get32(buf + 4);
	h->seq = qki_get64(buf + 8);
	if (h->length > QKP_MSG_MAX || h->type == 0 || h->type >= QKP_TYPE_MAX)
		return -1;
	return 0;
}

int qkp_verify(const uint8_t *frame, const struct qkp_hdr *h, const uint8_t key[QKP_KEY_LEN])
{
	uint8_t tag[EVP_MAX_MD_SIZE];
	unsigned int tl = 0;
	size_t n = QKP_HDR_LEN + h->length;
	int ok;
	if (!HMAC(EVP_sha256(), key, QKP_KEY_LEN, frame, n, tag, &tl) || tl != QKP_TAG_LEN)
		return 0;
	ok = CRYPTO_memcmp(tag, frame + n, QKP_TAG_LEN) == 0;
	OPENSSL_cleanse(tag, sizeof(tag));
	return ok;
}

void qkp_hmac(const uint8_t *key, size_t key_len, const void *const parts[], const size_t lens[],
	      size_t n, uint8_t out[32])
{
	uint8_t buf[256];
	size_t len = 0;
	unsigned int tl = 0;
	for (size_t i = 0; i < n; i++) {
		if (len + lens[i] > sizeof(buf))
			break;  /* callers pass fixed small parts; never reached */
		memcpy(buf + len, parts[i], lens[i]);
		len += lens[i];
	}
	HMAC(EVP_sha256(), key, (int)key_len, buf, len, out, &tl);
	OPENSSL_cleanse(buf, sizeof(buf));
}

/* The challenge carries only a public nonce; its tag is a checksum, not an authenticator. */
const uint8_t qkp_challenge_key[QKP_KEY_LEN];

void qkp_hello_key(const uint8_t *psk, size_t psk_len, uint8_t out[QKP_KEY_LEN])
{
	static const char label[] = "qkid v2 hello";
	const void *parts[] = { label };
	size_t lens[] = { sizeof(label) - 1 };
	qkp_hmac(psk, psk_len, parts, lens, 1, out);
}

void qkp_session_keys(const uint8_t *psk, size_t psk_len, const uint8_t ns[QKP_NONCE_LEN],
		      const uint8_t nm[QKP_NONCE_LEN], const uint8_t bs[QKP_BOOT_LEN],
		      const uint8_t bm[QKP_BOOT_LEN], uint8_t s2m[QKP_KEY_LEN],
		      uint8_t m2s[QKP_KEY_LEN])
{
	static const char label[] = "qkid v2 session", l1[] = "slave to master",
			  l2[] = "master to slave";
	uint8_t s[32];
	const void *parts[] = { label, ns, nm, bs, bm };
	size_t lens[] = { sizeof(label) - 1, QKP_NONCE_LEN, QKP_NONCE_LEN, QKP_BOOT_LEN,
			  QKP_BOOT_LEN };
	const void *p1[] = { l1 }, *p2[] = { l2 };
	size_t n1[] = { sizeof(l1) - 1 }, n2[] = { sizeof(l2) - 1 };

	qkp_hmac(psk, psk_len, parts, lens, 5, s);
	qkp_hmac(s, sizeof(s), p1, n1, 1, s2m);
	qkp_hmac(s, sizeof(s), p2, n2, 1, m2s);
	OPENSSL_cleanse(s, sizeof(s));
}
