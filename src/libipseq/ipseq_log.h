/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ipseq_log.h - the daemons' log (libipseq): lines on stderr with a timestamp, or syslog. Never
 * pass key bytes here; key_IDs are fine. Names are prefixed so they clash with nothing
 * (<syslog.h> owns LOG_*).
 */
#ifndef IPSEQ_LOG_H
#define IPSEQ_LOG_H

enum ipseq_log_level {
	IPSEQ_LOG_ERR = 0,
	IPSEQ_LOG_WARN = 1,
	IPSEQ_LOG_INFO = 2,
	IPSEQ_LOG_DEBUG = 3,
};

/* Once, before threads start: the program name in each line, the most verbose level logged, and
 * syslog (LOG_DAEMON) instead of stderr. The level may change later (atomic). */
void ipseq_log_open(const char *prog, int level, int use_syslog);
void ipseq_log_set_level(int level);
int ipseq_log_level(void);
void ipseq_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
