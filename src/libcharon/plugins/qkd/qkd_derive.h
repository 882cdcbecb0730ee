/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup qkd_derive qkd_derive
 * @{ @ingroup qkd
 *
 * Every key the qkd plugin derives from a quantum key, in one place (docs/derivations.md
 * describes them for implementers). A quantum key is never used directly: each use gets its own
 * sub-key, HKDF-SHA256 (RFC 5869, no salt) with a label of its own, so that one use can never
 * stand in for another.
 */

#ifndef QKD_DERIVE_H_
#define QKD_DERIVE_H_

#include <library.h>

/** Version of the derivations and of the x25519qkd KE data; the first byte of KEi and KEr */
#define QKD_WIRE_VERSION 2

/** HKDF labels (info) of the sub-keys of the key exchange's quantum key */
#define QKD_LABEL_CONFIRM "IPSeQ x25519qkd v2 confirm"
#define QKD_LABEL_KE_SECRET "IPSeQ x25519qkd v2 ke secret"

/** HKDF labels of the sub-keys of the additional QKD key exchange's (qkd) quantum key */
#define QKD_LABEL_ADD_CONFIRM "IPSeQ qkd v2 additional ke confirm"
#define QKD_LABEL_ADD_SECRET "IPSeQ qkd v2 additional ke secret"

/** HKDF labels of the sub-keys of the AUTH phase's quantum key qkey2 */
#define QKD_LABEL_PPK "IPSeQ qkd v2 ppk"
#define QKD_LABEL_QPSK "IPSeQ qkd v2 qpsk"

/** Length of every sub-key (the SHA-256 output) */
#define QKD_SUBKEY_LEN 32

/**
 * HKDF-SHA256(IKM = ikm, salt = none, info = label), QKD_SUBKEY_LEN bytes.
 *
 * @param ikm		quantum key
 * @param label		one of the QKD_LABEL_* strings
 * @param out		allocated sub-key on success, to be cleared with chunk_clear()
 * @return			TRUE on success
 */
bool qkd_derive_subkey(chunk_t ikm, char *label, chunk_t *out);

/**
 * Key confirmation of KEr: HMAC-SHA256(K_confirm, KEi || X25519_r), first len bytes, with
 * K_confirm = qkd_derive_subkey(qkey, label).
 *
 * @param qkey		quantum key of the key exchange
 * @param label		QKD_LABEL_CONFIRM (x25519qkd) or QKD_LABEL_ADD_CONFIRM (qkd)
 * @param kei		initiator's complete KE data (version byte included)
 * @param pub_r		responder's X25519 public value, empty for qkd
 * @param confirm	len bytes out
 * @param len		at most 32
 * @return			TRUE on success
 */
bool qkd_derive_confirm(chunk_t qkey, char *label, chunk_t kei, chunk_t pub_r, u_char *confirm,
						size_t len);

/**
 * Shared secret of the hybrid key exchange: X25519 secret || K_ke, with
 * K_ke = qkd_derive_subkey(qkey, QKD_LABEL_KE_SECRET).
 *
 * @param x25519	X25519 shared secret
 * @param qkey		quantum key of the key exchange
 * @param secret	allocated secret on success, to be cleared with chunk_clear()
 * @return			TRUE on success
 */
bool qkd_derive_ke_secret(chunk_t x25519, chunk_t qkey, chunk_t *secret);

/**
 * The PPK of RFC 8784 handed to charon: qkd_derive_subkey(qkey2, QKD_LABEL_PPK).
 */
bool qkd_derive_ppk(chunk_t qkey2, chunk_t *ppk);

/**
 * QPSK = HMAC-SHA256(K_qpsk, base PSK), K_qpsk = qkd_derive_subkey(qkey2, QKD_LABEL_QPSK).
 *
 * @param qkey2		quantum key of the AUTH phase
 * @param psk		base PSK
 * @param qpsk		allocated QPSK on success, to be cleared with chunk_clear()
 * @return			TRUE on success
 */
bool qkd_derive_qpsk(chunk_t qkey2, chunk_t psk, chunk_t *qpsk);

#endif /** QKD_DERIVE_H_ @}*/
