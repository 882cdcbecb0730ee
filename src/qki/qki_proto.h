/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qki_proto.h - the wire codec of qkid's local API (version 1), see API.md.
 *
 * A message is a 12-byte header followed by a payload of TLV attributes:
 *
 *   header:    magic u16 (0x514B "QK") | version u8 | type u8 | seq u32 | length u32
 *   attribute: type u16 | length u16 | value (length bytes, no padding)
 *
 * All integers big endian. Nested attributes (EPOCH_KEY, PEER_INFO, SA_INFO) carry a TLV list as
 * their value. The codec is shared by the daemon, the client library and qkictl; it depends only
 * on libc and never allocates: builders write into a caller buffer, parsers point into the
 * caller's buffer.
 */
#ifndef QKI_PROTO_H
#define QKI_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define QKI_DEFAULT_SOCKET  "/run/qkid/qkid.sock"
#define QKI_MAGIC           0x514B
#define QKI_PROTO_VERSION   1
#define QKI_HDR_LEN         12
#define QKI_MSG_MAX         65536   /* largest payload either side accepts */
#define QKI_KEY_MAX         64      /* largest key in bytes (512 bits) */
#define QKI_KEY_ID_MAX      64      /* buffer size for a key_ID incl. NUL (UUIDs are 36) */
#define QKI_NAME_MAX        64      /* buffer size for a peer name incl. NUL */
#define QKI_TEXT_MAX        256     /* buffer size for MESSAGE/LAST_ERROR incl. NUL */
#define QKI_EPOCH_BATCH_MAX 64      /* most epoch keys one SA_KEYS reply carries */
/* SA epochs are 32-bit (the ESP IV carries them). No epoch at or above QKI_EPOCH_LIMIT is ever
 * served, assigned or accepted from the peer, so epoch + count arithmetic never wraps; an SA
 * that gets there must be rekeyed (libipsec-qkd asks for that long before: rotation.h).
 * A peer's NEED more than QKI_EPOCH_JUMP_MAX epochs beyond what this side has assigned is
 * refused: no datapath ever runs that far ahead of its qkids. */
#define QKI_EPOCH_LIMIT     0xffff0000u
#define QKI_EPOCH_JUMP_MAX  (1u << 16)

/* Message types. A reply has the request's type with QKI_REPLY set; QKI_T_ERROR answers a
 * message whose header could not be understood (unknown type, bad version). */
enum qki_msg_type {
	QKI_T_VERSION       = 0x01, /* -> VERSION, RPK_MIN/MAX defaults */
	QKI_T_KEY_NEW       = 0x02, /* PEER, SIZE, [WAIT_MS] -> KEY_ID, KEY */
	QKI_T_KEY_GET       = 0x03, /* PEER, KEY_ID, SIZE, [WAIT_MS] -> KEY_ID, KEY */
	QKI_T_SA_REGISTER   = 0x04, /* PEER, SPI, DIR, [SIZE] -> CAPACITY */
	QKI_T_SA_KEYS       = 0x05, /* SPI, DIR, EPOCH, COUNT, [WAIT_MS], [PEEK] -> EPOCH_KEY*, RPK,
				     * EPOCH */
	QKI_T_SA_REPORT     = 0x06, /* SPI, DIR, PACKETS, BYTES, [DP_*...] -> RPK, SHARE */
	QKI_T_SA_UNREGISTER = 0x07, /* SPI, DIR -> */
	QKI_T_RPK_ADVICE    = 0x08, /* SPI, DIR -> RPK, RPK_MIN, RPK_MAX, LEVEL, ... */
	QKI_T_STATUS        = 0x09, /* [PEER], [SA_FIRST] -> daemon attrs, PEER_INFO*, SA_INFO*,
				     * [SA_NEXT] */
	QKI_T_SA_FLUSH      = 0x0A, /* SPI, DIR -> COUNT (keys wiped) */
	QKI_T_PEER_RESYNC   = 0x0B, /* PEER -> */
	QKI_T_ERROR         = 0x7F,
	QKI_REPLY           = 0x80,
};

/* Attribute types. Integers have fixed sizes (u8/u32/u64); strings are not NUL terminated. */
enum qki_attr_type {
	QKI_A_PEER        = 1,  /* str 1..63: peer name from qkid.conf */
	QKI_A_KEY_ID      = 2,  /* str 1..63: ETSI key_ID (UUID) */
	QKI_A_KEY         = 3,  /* bytes 1..QKI_KEY_MAX */
	QKI_A_SIZE        = 4,  /* u32: key size in bytes */
	QKI_A_SPI         = 5,  /* u32 */
	QKI_A_DIR         = 6,  /* u8: 1 inbound, 2 outbound */
	QKI_A_EPOCH       = 7,  /* u32 */
	QKI_A_COUNT       = 8,  /* u32 */
	QKI_A_WAIT_MS     = 9,  /* u32: how long the daemon may park the request */
	QKI_A_PACKETS     = 10, /* u64 */
	QKI_A_BYTES       = 11, /* u64 */
	QKI_A_ERROR       = 12, /* u32: enum qki_error_code; absent means success */
	QKI_A_MESSAGE     = 13, /* str 0..255 */
	QKI_A_RPK         = 14, /* u32: suggested packets per key */
	QKI_A_RPK_MIN     = 15, /* u32 */
	QKI_A_RPK_MAX     = 16, /* u32 */
	QKI_A_EPOCH_KEY   = 17, /* nested: EPOCH, KEY_ID, KEY */
	QKI_A_PEER_INFO   = 18, /* nested: see API.md */
	QKI_A_SA_INFO     = 19, /* nested: see API.md */
	QKI_A_VERSION     = 20, /* str: daemon version */
	QKI_A_UPTIME      = 21, /* u64: seconds */
	QKI_A_LEVEL       = 22, /* u32: keys buffered */
	QKI_A_CAPACITY    = 23, /* u32: buffer capacity in keys */
	QKI_A_ROLE        = 24, /* u8: 1 master, 2 slave */
	QKI_A_LINK        = 25, /* u8: peer link state, enum qki_link_state */
	QKI_A_KME         = 26, /* u8: KME state, enum qki_kme_state */
	QKI_A_KEYS_IN     = 27, /* u64: keys obtained from the KME */
	QKI_A_KEYS_OUT    = 28, /* u64: keys handed to local users */
	QKI_A_RATE_IN     = 29, /* u64: keys/s x 1000 (EWMA) */
	QKI_A_RATE_OUT    = 30, /* u64: keys/s x 1000 (EWMA) */
	QKI_A_ERRORS      = 31, /* u64: KME errors */
	QKI_A_LAST_ERROR  = 32, /* str: last KME or peer error text */
	QKI_A_DROPS       = 33, /* u64: peer messages dropped (forged, replayed, malformed) */
	QKI_A_RESYNCS     = 34, /* u64 */
	QKI_A_LOCAL_SAE   = 35, /* str */
	QKI_A_PEER_SAE    = 36, /* str */
	QKI_A_PKT_RATE    = 37, /* u64: packets/s x 1000 */
	QKI_A_STARVED     = 38, /* u64: key requests that found the buffer empty */
	QKI_A_IKE_LEVEL   = 39, /* u32: IKE keys ready at once */
	QKI_A_NEXT_EPOCH  = 40, /* u32: lowest epoch still held */
	QKI_A_KEY_SIZE    = 41, /* u32: peer key size in bytes */
	QKI_A_REFILLS     = 42, /* u64: keys put into this SA's buffer */
	QKI_A_BACKOFF_MS  = 43, /* u32: current KME back-off */
	QKI_A_PEEK        = 44, /* u8: 1 = SA_KEYS only looks (releases and requests nothing) */
	QKI_A_KEYS_HELD   = 45, /* u32: keys in qkid's key memory */
	QKI_A_KEYS_SLOTS  = 46, /* u32: size of qkid's key memory in keys (max_keys) */
	/* an SA's key economy as its datapath reports it (SA_REPORT) and qkid shows it (SA_INFO) */
	QKI_A_DP_RPK      = 47, /* u32: packets per window the datapath uses now */
	QKI_A_DP_LEVEL    = 48, /* u32: window keys the datapath holds ahead (its buffer) */
	QKI_A_DP_CAPACITY = 49, /* u32: the most window keys it holds ahead (lookahead) */
	QKI_A_WINDOWS     = 50, /* u64: window switches (key windows used) */
	QKI_A_BEYOND_RPK  = 51, /* u64: packets sent beyond a window's rpk (exhaust = reuse) */
	QKI_A_STALL_DROPS = 52, /* u64: packets dropped for want of a window key */
	QKI_A_EPISODES    = 53, /* u64: key shortages (the exhaustion policy had to act) */
	QKI_A_SHARE       = 54, /* u64: the SA's max-min fair share of the key supply, keys/s x 1000 */
	/* STATUS in pages: a daemon holds more SAs than one reply (QKI_MSG_MAX) carries */
	QKI_A_SA_FIRST    = 55, /* u32: list SAs from this index on (request; asks for paging) */
	QKI_A_SA_NEXT     = 56, /* u32: the index of the first SA this reply left out (reply) */
	QKI_A_ATTR_MAX    = 57,
};

enum qki_dir {
	QKI_DIR_IN  = 1,
	QKI_DIR_OUT = 2,
};

enum qki_role {
	QKI_ROLE_MASTER = 1,
	QKI_ROLE_SLAVE  = 2,
};

enum qki_link_state {
	QKI_LINK_DOWN = 0,
	QKI_LINK_CONNECTING = 1,
	QKI_LINK_UP = 2,
};

enum qki_kme_state {
	QKI_KME_OK = 0,
	QKI_KME_BACKOFF = 1,  /* last call failed; waiting before the next try */
	QKI_KME_UNKNOWN = 2,  /* not contacted yet */
};

/* Error codes: on the wire in QKI_A_ERROR, and returned by the client library. */
enum qki_error_code {
	QKI_OK = 0,
	QKI_ERR_PROTO = 1,       /* malformed message */
	QKI_ERR_VERSION = 2,     /* protocol version not supported */
	QKI_ERR_UNSUPPORTED = 3, /* unknown message type */
	QKI_ERR_INVALID = 4,     /* missing or invalid argument */
	QKI_ERR_NO_PEER = 5,     /* no such peer configured */
	QKI_ERR_NO_SA = 6,       /* SA not registered */
	QKI_ERR_EXISTS = 7,      /* SA already registered (by another connection) */
	QKI_ERR_NO_KEY = 8,      /* no key available within WAIT_MS */
	QKI_ERR_UNKNOWN_KEY = 9, /* key_ID unknown here, at the peer, or at the KME */
	QKI_ERR_KEY_USED = 10,   /* key_ID was already handed out / assigned to another use */
	QKI_ERR_KME = 11,        /* KME unreachable or failing (in back-off) */
	QKI_ERR_PEER_DOWN = 12,  /* peer qkid not connected and the request needs it */
	QKI_ERR_STALE = 13,      /* epoch no longer available (released or lost in a resync) */
	QKI_ERR_BUSY = 14,       /* too many parked requests */
	QKI_ERR_INTERNAL = 15,
	QKI_ERR_PERMISSION = 16, /* the caller may not (its role, or another client's SA) */
	/* client-side only */
	QKI_ERR_CONNECT = 64,    /* cannot connect to the socket */
	QKI_ERR_IO = 65,         /* read/write failed or connection closed */
	QKI_ERR_TIMEOUT = 66,    /* no reply within the client timeout */
	QKI_ERR_NOMEM = 67,
	QKI_ERR_REPLY = 68,      /* daemon's reply malformed */
};

const char *qki_strerror(int code);

/* --- big endian helpers --- */
static inline void qki_put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static inline void qki_put32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline void qki_put64(uint8_t *p, uint64_t v)
{
	qki_put32(p, v >> 32); qki_put32(p + 4, (uint32_t)v);
}
static inline uint16_t qki_get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static inline uint32_t qki_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint64_t qki_get64(const uint8_t *p)
{
	return (uint64_t)qki_get32(p) << 32 | qki_get32(p + 4);
}

/* --- building --- */
struct qki_msg {
	uint8_t *buf;
	size_t cap;
	size_t len;
	int overflow;           /* set when an attribute did not fit; finish() then fails */
};

void qki_msg_init(struct qki_msg *m, uint8_t *buf, size_t cap, uint8_t type, uint32_t seq);
void qki_msg_put(struct qki_msg *m, uint16_t attr, const void *val, size_t len);
void qki_msg_put_u8(struct qki_msg *m, uint16_t attr, uint8_t v);
void qki_msg_put_u32(struct qki_msg *m, uint16_t attr, uint32_t v);
void qki_msg_put_u64(struct qki_msg *m, uint16_t attr, uint64_t v);
void qki_msg_put_str(struct qki_msg *m, uint16_t attr, const char *s);
/* Nesting: begin returns a mark for end, which fills in the nested length. */
size_t qki_msg_nest_begin(struct qki_msg *m, uint16_t attr);
void qki_msg_nest_end(struct qki_msg *m, size_t mark);
/* Writes the payload length into the header; returns the total length or 0 on overflow. */
size_t qki_msg_finish(struct qki_msg *m);

/* --- parsing --- */
struct qki_hdr {
	uint8_t version;
	uint8_t type;
	uint32_t seq;
	uint32_t length;        /* payload bytes */
};

/* Parse a header from n >= QKI_HDR_LEN bytes. QKI_OK, QKI_ERR_PROTO (bad magic or length over
 * QKI_MSG_MAX) or QKI_ERR_VERSION (header readable, but another version; type/seq are valid). */
int qki_hdr_parse(const uint8_t *buf, size_t n, struct qki_hdr *h);

struct qki_attr {
	const uint8_t *val;
	uint16_t len;
	uint8_t present;
};

/* One level of parsed attributes indexed by type. Repeated attributes (EPOCH_KEY, PEER_INFO,
 * SA_INFO) are not collected here: walk them with qki_attr_next(). */
struct qki_attrs {
	struct qki_attr a[QKI_A_ATTR_MAX];
};

/* Validate a TLV list: every attribute complete, known types with the right fixed size, strings
 * within bounds, nested lists valid, no duplicate of a non-repeatable attribute. Unknown
 * attribute types are skipped (forward compatibility). Returns QKI_OK or QKI_ERR_PROTO with a
 * static reason in *why (if not NULL). */
int qki_attrs_parse(const uint8_t *p, size_t len, struct qki_attrs *out, const char **why);

/* The same validation for another attribute space (qkid's peer protocol uses it). */
enum qki_attr_kind { QKI_K_U8 = 1, QKI_K_U32, QKI_K_U64, QKI_K_STR, QKI_K_BYTES, QKI_K_NEST };
struct qki_attr_rule {
	uint8_t kind;           /* enum qki_attr_kind; 0 = unknown type, skipped */
	uint8_t repeat;         /* may occur more than once in one list */
	uint16_t min, max;      /* length bounds for strings and bytes */
};
/* out[] has nrules entries, indexed by attribute type. */
int qki_tlv_parse(const struct qki_attr_rule *rules, size_t nrules, const uint8_t *p,
		  size_t len, struct qki_attr *out, const char **why);

/* Iterate raw TLVs: returns 1 and fills type/val/len, 0 at the end, -1 if truncated. */
struct qki_iter {
	const uint8_t *p;
	const uint8_t *end;
};
void qki_iter_init(struct qki_iter *it, const uint8_t *p, size_t len);
int qki_iter_next(struct qki_iter *it, uint16_t *type, const uint8_t **val, uint16_t *len);

/* Typed access to parsed attributes; return 1 if present (validated by qki_attrs_parse). */
int qki_attr_u8(const struct qki_attrs *a, uint16_t t, uint8_t *v);
int qki_attr_u32(const struct qki_attrs *a, uint16_t t, uint32_t *v);
int qki_attr_u64(const struct qki_attrs *a, uint16_t t, uint64_t *v);
/* Copy a string attribute into buf (NUL terminated); 0 if absent or too long for buf. */
int qki_attr_str(const struct qki_attrs *a, uint16_t t, char *buf, size_t bufsize);

/* Wipe memory in a way the compiler cannot drop. */
void qki_wipe(void *p, size_t n);

#endif
