/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: the local API codec as qkid and the client library use it - header,
 * attribute list, typed getters, nested lists (EPOCH_KEY, PEER_INFO, SA_INFO).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../qki_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct qki_hdr h;
	struct qki_attrs a, inner;
	struct qki_iter it;
	uint16_t t, l;
	const uint8_t *v;
	char s[QKI_TEXT_MAX];
	uint8_t u8;
	uint32_t u32;
	uint64_t u64;
	int r;

	if (size < QKI_HDR_LEN)
		return 0;
	r = qki_hdr_parse(data, size, &h);
	if (r == QKI_ERR_PROTO)
		return 0;
	if (h.length > size - QKI_HDR_LEN)
		h.length = (uint32_t)(size - QKI_HDR_LEN);     /* what a short read would leave */
	if (qki_attrs_parse(data + QKI_HDR_LEN, h.length, &a, NULL) != QKI_OK)
		return 0;
	for (uint16_t i = 0; i < QKI_A_ATTR_MAX; i++) {
		qki_attr_u8(&a, i, &u8);
		qki_attr_u32(&a, i, &u32);
		qki_attr_u64(&a, i, &u64);
		qki_attr_str(&a, i, s, sizeof(s));
	}
	qki_iter_init(&it, data + QKI_HDR_LEN, h.length);
	while (qki_iter_next(&it, &t, &v, &l) == 1) {
		if (t != QKI_A_EPOCH_KEY && t != QKI_A_PEER_INFO && t != QKI_A_SA_INFO)
			continue;
		/* a valid outer list has valid nested lists */
		if (qki_attrs_parse(v, l, &inner, NULL) != QKI_OK)
			__builtin_trap();
		qki_attr_str(&inner, QKI_A_KEY_ID, s, sizeof(s));
	}
	/* re-encoding what was parsed must give a parseable message */
	{
		static uint8_t out[QKI_HDR_LEN + QKI_MSG_MAX];
		struct qki_msg m;
		size_t n;
		qki_msg_init(&m, out, sizeof(out), h.type, h.seq);
		qki_iter_init(&it, data + QKI_HDR_LEN, h.length);
		while (qki_iter_next(&it, &t, &v, &l) == 1)
			qki_msg_put(&m, t, v, l);
		n = qki_msg_finish(&m);
		if (!n || qki_attrs_parse(out + QKI_HDR_LEN, n - QKI_HDR_LEN, &a, NULL) != QKI_OK)
			__builtin_trap();
	}
	return 0;
}
