/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "kernel_qkd_qkid.h"

#include <keyprov_qki.h>

#include <daemon.h>

typedef struct private_kernel_qkd_qkid_t private_kernel_qkd_qkid_t;

/**
 * The library's qkid provider, with charon logging around SA registration.
 */
struct private_kernel_qkd_qkid_t {

	/**
	 * Provider interface handed to the datapath (ctx points here).
	 */
	struct iq_key_provider public;

	/**
	 * libipsec-qkd's qkid provider
	 */
	struct iq_key_provider *qki;
};

static int sa_open(void *ctx, const struct iq_key_sa *sa, iq_err_t *err)
{
	private_kernel_qkd_qkid_t *this = ctx;
	int ret;

	ret = this->qki->sa_open(this->qki->ctx, sa, err);
	if (ret == 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: %s SA %.8x registered with qkid for peer '%s'",
			 sa->inbound ? "inbound" : "outbound", sa->spi, sa->peer ?: "");
	}
	else
	{
		DBG1(DBG_KNL, "kernel-qkd: registering %s SA %.8x with qkid (peer '%s') failed: %s",
			 sa->inbound ? "inbound" : "outbound", sa->spi, sa->peer ?: "",
			 err ? err->msg : "");
	}
	return ret;
}

static int get_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	private_kernel_qkd_qkid_t *this = ctx;

	return this->qki->get_keys(this->qki->ctx, sa, first, count, keys, key_len, got, err);
}

static int peek_keys(void *ctx, const struct iq_key_sa *sa, uint32_t first, uint32_t count,
					 uint8_t *keys, size_t *key_len, uint32_t *got, iq_err_t *err)
{
	private_kernel_qkd_qkid_t *this = ctx;

	return this->qki->peek_keys(this->qki->ctx, sa, first, count, keys, key_len, got, err);
}

static int sa_report(void *ctx, const struct iq_key_sa *sa, struct iq_key_answer *ans)
{
	private_kernel_qkd_qkid_t *this = ctx;

	return this->qki->sa_report(this->qki->ctx, sa, ans);
}

static void sa_close(void *ctx, const struct iq_key_sa *sa)
{
	private_kernel_qkd_qkid_t *this = ctx;

	this->qki->sa_close(this->qki->ctx, sa);
	DBG2(DBG_KNL, "kernel-qkd: %s SA %.8x unregistered from qkid",
		 sa->inbound ? "inbound" : "outbound", sa->spi);
}

static void provider_destroy(void *ctx)
{
	private_kernel_qkd_qkid_t *this = ctx;

	this->qki->destroy(this->qki->ctx);
	free(this);
}

/*
 * Described in header
 */
struct iq_key_provider *kernel_qkd_qkid_provider_create(const char *socket, int timeout_ms,
														int wait_ms)
{
	private_kernel_qkd_qkid_t *this;
	struct iq_key_provider *qki;

	qki = iq_qki_provider_create(socket, timeout_ms, wait_ms);
	if (!qki)
	{
		return NULL;
	}
	INIT(this,
		.public = {
			.sa_open = sa_open,
			.get_keys = get_keys,
			.peek_keys = peek_keys,
			.sa_report = sa_report,
			.sa_close = sa_close,
			.destroy = provider_destroy,
		},
		.qki = qki,
	);
	this->public.ctx = this;
	return &this->public;
}
