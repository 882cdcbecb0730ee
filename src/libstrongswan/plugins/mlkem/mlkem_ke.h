/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

/**
 * @defgroup mlkem_ke mlkem_ke
 * @{ @ingroup mlkem
 *
 * ML-KEM-512/768/1024 (FIPS 203) as IKEv2 key exchange methods, on OpenSSL's EVP KEM API.
 *
 * The encoding of the IETF ML-KEM-in-IKEv2 draft (draft-ietf-ipsecme-ikev2-mlkem): the
 * initiator's KE data is its encapsulation key, the responder's the ciphertext, and the shared
 * secret is ML-KEM's 32-byte K. Call order as strongSwan 6 defines it for KEMs (key_exchange.h):
 * initiator get_public_key(); responder set_public_key() (encapsulates), get_public_key()
 * (the ciphertext); initiator set_public_key() (decapsulates); both get_shared_secret().
 */

#ifndef MLKEM_KE_H_
#define MLKEM_KE_H_

#include <library.h>

/**
 * Sizes of one ML-KEM parameter set on the wire (FIPS 203, table 3).
 */
typedef struct {
	/** the IKEv2 transform ID */
	key_exchange_method_t method;
	/** OpenSSL's algorithm name, e.g. "ML-KEM-768" */
	const char *name;
	/** encapsulation key: the initiator's KE data */
	size_t ek_len;
	/** ciphertext: the responder's KE data */
	size_t ct_len;
} mlkem_params_t;

/**
 * The sizes of an ML-KEM method.
 *
 * @param method	ML_KEM_512, ML_KEM_768 or ML_KEM_1024
 * @return			its parameters, NULL for any other method
 */
const mlkem_params_t *mlkem_params_get(key_exchange_method_t method);

/**
 * Create an ML-KEM key exchange.
 *
 * @param method	ML_KEM_512, ML_KEM_768 or ML_KEM_1024
 * @return			key_exchange_t object, NULL for another method
 */
key_exchange_t *mlkem_ke_create(key_exchange_method_t method);

#endif /** MLKEM_KE_H_ @}*/
