/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_peerproto.h - the qkid <-> qkid protocol (version 2) over TCP, authenticated with
 * HMAC-SHA256. Only key_IDs and their assignments travel here, never key material.
 *
 *   header (16):  magic u16 0x5150 "QP" | version u8 | type u8 | length u32 | seq u64
 *   payload:      TLV attributes (same layout as the local API, own attribute numbers)
 *   tag (32):     HMAC-SHA256(K, header || payload)
 *
 * Handshake (the slave dials the master; the master speaks first):
 *   CHALLENGE master->slave  NONCE(nm)                                         seq 0, K = Kc
 *   HELLO1 slave->master  SAE_FROM, SAE_TO, ROLE, NONCE(ns), NONCE_PEER(nm), BOOT(bs)  seq 0, Kh
 *   HELLO2 master->slave  SAE_FROM, SAE_TO, ROLE, NONCE(nm), NONCE_PEER(ns), BOOT(bm)  seq 0, Kh
 *   READY  slave->master  ENTRY(SPI, RX, EPOCH = highest epoch held)*, IKE_LEVEL   seq 1, Ks2m
 * with Kh = HMAC(psk, "qkid v2 hello"), Kc = 32 zero bytes (the challenge is public; HELLO1
 * authenticates it by covering nm), and the session keys
 *   S = HMAC(psk, "qkid v2 session" || ns || nm || bs || bm),
 *   Ks2m = HMAC(S, "slave to master"), Km2s = HMAC(S, "master to slave").
 * The master draws nm fresh for every accepted connection, so a recorded HELLO1 answers no other
 * connection's challenge and is refused before it can touch a handshake in progress (version 1
 * had no challenge: a replayed HELLO1 got a HELLO2 and displaced the genuine slave's handshake).
 * Fresh nonces make every session's keys new, so nothing of an old session replays into a new
 * one. Within a session the stream is TCP, so the only valid sequence number is the previous one
 * plus one: lower is a replay (dropped), higher means messages were lost (the link is torn down
 * and built anew, see qkid_replay.h). BOOT is a random id per qkid incarnation: a changed BOOT
 * tells the other side that its peer restarted. A peer speaking another version is refused with
 * a log line naming both versions.
 */
#ifndef QKID_PEERPROTO_H
#define QKID_PEERPROTO_H

#include <stddef.h>
#include <stdint.h>

#include "qki_proto.h"

#define QKP_MAGIC    0x5150
#define QKP_VERSION  2
#define QKP_HDR_LEN  16
#define QKP_TAG_LEN  32
#define QKP_MSG_MAX  65536
#define QKP_NONCE_LEN 32
#define QKP_BOOT_LEN  16
#define QKP_KEY_LEN   32
#define QKP_FRAME_MAX (QKP_HDR_LEN + QKP_MSG_MAX + QKP_TAG_LEN)

enum qkp_type {
	QKP_HELLO1 = 1,
	QKP_HELLO2 = 2,
	QKP_READY  = 3,
	QKP_ASSIGN = 4, /* master->slave: ENTRY(KEY_ID, USE, [SPI, RX, EPOCH])* */
	QKP_ACK    = 5, /* slave->master: ENTRY(KEY_ID, STATUS)* */
	QKP_NEED   = 6, /* slave->master: ENTRY(SPI, RX, EPOCH, COUNT)*, [IKE_LEVEL] */
	QKP_STALE  = 7, /* master->slave: ENTRY(SPI, RX, EPOCH = floor)* */
	QKP_PING   = 8,
	QKP_PONG   = 9,
	QKP_CHALLENGE = 10, /* master->slave, first frame on an accepted connection: NONCE */
	QKP_TYPE_MAX,
};

enum qkp_attr {
	QKP_A_SAE_FROM   = 1,  /* str */
	QKP_A_SAE_TO     = 2,  /* str */
	QKP_A_ROLE       = 3,  /* u8: sender's role */
	QKP_A_NONCE      = 4,  /* bytes 32 */
	QKP_A_NONCE_PEER = 5,  /* bytes 32 */
	QKP_A_BOOT       = 6,  /* bytes 16 */
	QKP_A_ENTRY      = 7,  /* nested, repeatable */
	QKP_A_KEY_ID     = 8,  /* str */
	QKP_A_USE        = 9,  /* u8: enum qkp_use */
	QKP_A_SPI        = 10, /* u32 */
	QKP_A_RX         = 11, /* u8: which side receives on the SA: enum qki_role */
	QKP_A_EPOCH      = 12, /* u32 */
	QKP_A_STATUS     = 13, /* u8: enum qkp_ack */
	QKP_A_COUNT      = 14, /* u32 */
	QKP_A_IKE_LEVEL  = 15, /* u32 */
	QKP_A_MAX        = 16,
};

enum qkp_use {
	QKP_USE_IKE_MASTER = 1, /* the master's charon initiates with it */
	QKP_USE_IKE_SLAVE  = 2, /* the slave's charon initiates with it (stash) */
	QKP_USE_SA         = 3, /* an SA epoch */
};

enum qkp_ack {
	QKP_ACK_OK       = 0, /* fetched with dec_keys */
	QKP_ACK_UNKNOWN  = 1, /* the KME does not know the key_ID (any more) */
	QKP_ACK_CONFLICT = 2, /* the key_ID was already used here for something else */
	QKP_ACK_FAILED   = 3, /* the KME failed repeatedly; the slave gave up on it */
};

extern const struct qki_attr_rule qkp_rules[QKP_A_MAX];

struct qkp_hdr {
	uint8_t type;
	uint32_t length;
	uint64_t seq;
};

/* Start a message in buf (cap >= QKP_FRAME_MAX recommended); attributes with qki_msg_put*.
 * qkp_seal() writes length and tag and returns the frame length (0 on overflow). */
void qkp_init(struct qki_msg *m, uint8_t *buf, size_t cap, uint8_t type, uint64_t seq);
size_t qkp_seal(struct qki_msg *m, const uint8_t key[QKP_KEY_LEN]);

/* Parse a header from >= QKP_HDR_LEN bytes: 0 ok, -1 bad magic/length/type, -2 right magic but
 * another protocol version (the version is buf[2]). */
int qkp_hdr_parse(const uint8_t *buf, struct qkp_hdr *h);
/* Check the tag of a complete frame of QKP_HDR_LEN + h->length + QKP_TAG_LEN bytes. */
int qkp_verify(const uint8_t *frame, const struct qkp_hdr *h, const uint8_t key[QKP_KEY_LEN]);

/* HMAC-SHA256 over the concatenation of up to 5 parts. */
void qkp_hmac(const uint8_t *key, size_t key_len, const void *const parts[], const size_t lens[],
	      size_t n, uint8_t out[32]);
void qkp_hello_key(const uint8_t *psk, size_t psk_len, uint8_t out[QKP_KEY_LEN]);
extern const uint8_t qkp_challenge_key[QKP_KEY_LEN];
void qkp_session_keys(const uint8_t *psk, size_t psk_len, const uint8_t ns[QKP_NONCE_LEN],
		      const uint8_t nm[QKP_NONCE_LEN], const uint8_t bs[QKP_BOOT_LEN],
		      const uint8_t bm[QKP_BOOT_LEN], uint8_t s2m[QKP_KEY_LEN],
		      uint8_t m2s[QKP_KEY_LEN]);

const char *qkp_type_name(int type);

#endif
