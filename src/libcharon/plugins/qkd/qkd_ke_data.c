/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_ke_data.h"
#include "qkd_derive.h"

/**
 * Length and version of KE data; a peer of another derivation version is told apart from
 * garbage, so the operator learns which side to update. Version 1 existed for x25519qkd only
 * (len_v1 0: none).
 */
static qkd_ke_data_t check_version(chunk_t value, size_t len, size_t len_v1)
{
	if (len_v1 && value.len == len_v1)
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
qkd_ke_data_t qkd_ke_data_parse_kei(chunk_t value, size_t pub_len, chunk_t *pub,
									char key_id[QKD_KEY_ID_LEN + 1])
{
	qkd_ke_data_t status;

	status = check_version(value, 1 + pub_len + QKD_KEY_ID_LEN,
						   pub_len ? QKD_KEI_LEN_V1 : 0);
	if (status != QKD_KE_DATA_OK)
	{
		return status;
	}
	value = chunk_skip(value, 1);
	if (!qkd_key_id_valid(value.ptr + pub_len, QKD_KEY_ID_LEN))
	{
		return QKD_KE_DATA_KEY_ID;
	}
	*pub = chunk_create(value.ptr, pub_len);
	memcpy(key_id, value.ptr + pub_len, QKD_KEY_ID_LEN);
	key_id[QKD_KEY_ID_LEN] = '\0';
	return QKD_KE_DATA_OK;
}

/*
 * Described in header
 */
qkd_ke_data_t qkd_ke_data_parse_ker(chunk_t value, size_t pub_len, chunk_t *pub,
									chunk_t *confirm)
{
	qkd_ke_data_t status;

	status = check_version(value, 1 + pub_len + QKD_CONFIRM_LEN,
						   pub_len ? QKD_KER_LEN_V1 : 0);
	if (status != QKD_KE_DATA_OK)
	{
		return status;
	}
	value = chunk_skip(value, 1);
	*pub = chunk_create(value.ptr, pub_len);
	*confirm = chunk_create(value.ptr + pub_len, QKD_CONFIRM_LEN);
	return QKD_KE_DATA_OK;
}
