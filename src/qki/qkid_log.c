/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/* The log sink is process-wide by nature (one stderr, one syslog); this is its only state. */
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

#include "qkid_log.h"

static int log_level = QKID_LOG_INFO;
static int log_syslog;

void qkid_log_open(int level, int use_syslog)
{
	log_level = level;
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("qkid", LOG_PID, LOG_DAEMON);
}

int qkid_log_level(void)
{
	return log_level;
}

void qkid_log(int level, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char msg[1024];
	va_list ap;

	if (level > log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_syslog) {
		syslog(prio[level], "%s", msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];
		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld qkid %s: %s\n", when, ts.tv_nsec / 1000000, tags[level],
			msg);
	}
}
