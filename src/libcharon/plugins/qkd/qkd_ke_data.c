/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_ke_data.h"
#include "qkd_derive.h"

/**
 * Length and version of KE data; a peer of another derivation version is told apart from
 * garbage, so the operator learns which side to update.
 */
static qkd_ke_data_t check_version(chunk_t value, size_t len, size_t len_v1)
{
	if (value.len == len_v1)
	{
		return QKD_KE_DATA_V1;
	}
	if (value.len != len)
	{
		return QKD_KE_DATA_LENGTH;
	}
	if (value.ptr[0] != QKD_WIRE_VERSION)
	{
		return QKD_KE_DATA_VERSION;
	}
	return QKD_KE_DATA_OK;
}

/*
 * Described in header
 */
qkd_ke_data_t qkd_ke_data_parse_kei(chunk_t value, chunk_t *pub,
									char key_id[QKD_KEY_ID_LEN + 1])
{
	qkd_ke_data_t status;

	status = check_version(value, QKD_KEI_LEN, QKD_KEI_LEN_V1);
	if (status != QKD_KE_DATA_OK)
	{
		return status;
	}
	value = chunk_skip(value, 1);
	if (!qkd_key_id_valid(value.ptr + QKD_X25519_LEN, QKD_KEY_ID_LEN))
	{
		return QKD_KE_DATA_KEY_ID;
	}
	*pub = chunk_create(value.ptr, QKD_X25519_LEN);
	memcpy(key_id, value.ptr + QKD_X25519_LEN, QKD_KEY_ID_LEN);
	key_id[QKD_KEY_ID_LEN] = '\0';
	return QKD_KE_DATA_OK;
}

/*
 * Described in header
 */
qkd_ke_data_t qkd_ke_data_parse_ker(chunk_t value, chunk_t *pub, chunk_t *confirm)
{
	qkd_ke_data_t status;

	status = check_version(value, QKD_KER_LEN, QKD_KER_LEN_V1);
	if (status != QKD_KE_DATA_OK)
	{
		return status;
	}
	value = chunk_skip(value, 1);
	*pub = chunk_create(value.ptr, QKD_X25519_LEN);
	*confirm = chunk_create(value.ptr + QKD_X25519_LEN, QKD_CONFIRM_LEN);
	return QKD_KE_DATA_OK;
}
