/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_log.h - qkid's log calls, over libipseq's log (ipseq_log.h): stderr with a timestamp, or
 * syslog. Never pass key bytes here; key_IDs are fine.
 */
#ifndef QKID_LOG_H
#define QKID_LOG_H

#include "ipseq_log.h"

/* qkid's levels (log_level in qkid.conf) are libipseq's */
enum {
	QKID_LOG_ERR = IPSEQ_LOG_ERR,
	QKID_LOG_WARN = IPSEQ_LOG_WARN,
	QKID_LOG_INFO = IPSEQ_LOG_INFO,
	QKID_LOG_DEBUG = IPSEQ_LOG_DEBUG,
};

static inline void qkid_log_open(int level, int use_syslog)
{
	ipseq_log_open("qkid", level, use_syslog);
}

#define log_err(...)   ipseq_log(IPSEQ_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  ipseq_log(IPSEQ_LOG_WARN, __VA_ARGS__)
#define log_info(...)  ipseq_log(IPSEQ_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (ipseq_log_level() >= IPSEQ_LOG_DEBUG) \
	ipseq_log(IPSEQ_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
