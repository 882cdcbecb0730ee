/* SPDX-License-Identifier: GPL-2.0-or-later */
/* kmsd_log.c - timestamped lines on stderr. Never pass key bytes here: key_IDs only. */
#include "ipseq_config.h"
#include "kmsd.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>

static atomic_int current_level = KMSD_LOG_INFO;

void kmsd_log_set_level(enum kmsd_log_level level)
{
	atomic_store(&current_level, level);
}

int kmsd_log_enabled(enum kmsd_log_level level)
{
	return (int)level <= atomic_load(&current_level);
}

void kmsd_log(enum kmsd_log_level level, const char *fmt, ...)
{
	static const char *names[] = {"error", "warn", "info", "debug"};
	char line[1024], stamp[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	if (!kmsd_log_enabled(level))
		return;
	gettimeofday(&tv, NULL);
	localtime_r(&tv.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* one write per line so lines from several threads do not interleave */
	fprintf(stderr, "%s.%03ld qkd-kmsd[%s] %s\n", stamp, (long)(tv.tv_usec / 1000),
		names[level], line);
}
