/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libFuzzer entry point: the qkid.conf parser and its checks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "../qkid_conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qkid_conf c;
	char err[256];
	qkid_conf_defaults(&c);
	if (qkid_conf_parse(&c, (const char *)data, size, err, sizeof(err)) == 0)
		qkid_conf_finish(&c, err, sizeof(err));
	return 0;
}
