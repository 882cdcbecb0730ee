/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipseq_log.c - see ipseq_log.h. The log sink is process-wide by nature (one stderr, one
 * syslog); this is its only state. */
#include "ipseq_config.h"
#include "ipseq_log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <syslog.h>
#include <time.h>

static const char *log_prog = "ipseq";
static atomic_int log_level = IPSEQ_LOG_INFO;
static int log_syslog;

void ipseq_log_open(const char *prog, int level, int use_syslog)
{
	log_prog = prog;
	atomic_store(&log_level, level);
	log_syslog = use_syslog;
	if (use_syslog)
		openlog(prog, LOG_PID, LOG_DAEMON);
}

void ipseq_log_set_level(int level)
{
	atomic_store(&log_level, level);
}

int ipseq_log_level(void)
{
	return atomic_load(&log_level);
}

void ipseq_log(int level, const char *fmt, ...)
{
	static const char *const tags[] = {"error", "warning", "info", "debug"};
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char msg[1024];
	va_list ap;

	if (level < IPSEQ_LOG_ERR || level > atomic_load(&log_level))
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
		/* one write per line so lines from several threads do not interleave */
		fprintf(stderr, "%s.%03ld %s %s: %s\n", when, ts.tv_nsec / 1000000, log_prog,
			tags[level], msg);
	}
}
