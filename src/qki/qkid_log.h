/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_log.h - qkid's log: stderr with a timestamp, or syslog. Never pass key bytes here;
 * key_IDs are fine.
 */
#ifndef QKID_LOG_H
#define QKID_LOG_H

enum { QKID_LOG_ERR = 0, QKID_LOG_WARN, QKID_LOG_INFO, QKID_LOG_DEBUG };

void qkid_log_open(int level, int use_syslog);
int qkid_log_level(void);
void qkid_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...)   qkid_log(QKID_LOG_ERR, __VA_ARGS__)
#define log_warn(...)  qkid_log(QKID_LOG_WARN, __VA_ARGS__)
#define log_info(...)  qkid_log(QKID_LOG_INFO, __VA_ARGS__)
#define log_debug(...) do { if (qkid_log_level() >= QKID_LOG_DEBUG) \
	qkid_log(QKID_LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
