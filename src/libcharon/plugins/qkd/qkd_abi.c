/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_abi.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <ctype.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <daemon.h>
#include <sa/ike_sa.h>
#include <config/peer_cfg.h>

#ifndef ME
#error "strongSwan headers configured without --enable-mediation (ME): Debian's charon has it"
#endif

/* Offsets proven against Debian's binaries on x86_64 (docs/facts.md): with ME,
 * ike_sa_t.get_keymat sits at 488, without at 416, in 5.9.8 and in 6.0.x alike. The members
 * used by the plugins follow. */
#if defined(__x86_64__)
_Static_assert(offsetof(ike_sa_t, get_keymat) == 488, "ike_sa_t layout differs from Debian's charon");
_Static_assert(offsetof(ike_sa_t, get_id) == 0, "ike_sa_t layout differs from Debian's charon");
#endif
_Static_assert(offsetof(daemon_t, bus) > offsetof(daemon_t, ike_sa_manager),
			   "daemon_t layout differs from Debian's charon");
_Static_assert(offsetof(daemon_t, mediation_manager) > offsetof(daemon_t, kernel),
			   "daemon_t lacks the mediation members Debian's charon has");

/* The banner every charon flavour prints, e.g. "(strongSwan 5.9.8, Linux ...)" */
#define BANNER "(strongSwan "

bool qkd_abi_check_program(const char *path, char running[32])
{
	struct stat st;
	const char *hit, *end, *v;
	void *map;
	size_t len;
	bool ok = FALSE;
	int fd;

	running[0] = '\0';
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		return FALSE;
	}
	if (fstat(fd, &st) < 0 || st.st_size <= 0)
	{
		close(fd);
		return FALSE;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
	{
		return FALSE;
	}
	hit = memmem(map, st.st_size, BANNER, strlen(BANNER));
	if (hit)
	{
		v = hit + strlen(BANNER);
		end = memchr(v, ',', (const char*)map + st.st_size - v);
		if (end && end - v > 0 && end - v < 32)
		{
			len = end - v;
			memcpy(running, v, len);
			running[len] = '\0';
			ok = streq(running, VERSION);
		}
	}
	munmap(map, st.st_size);
	return ok;
}

/*
 * Described in header
 */
bool qkd_abi_supported(const char *version)
{
	const char *patch;

	if (streq(version, "5.9.8"))
	{
		return TRUE;
	}
	if (strncmp(version, "6.0.", strlen("6.0.")) != 0)
	{
		return FALSE;
	}
	/* 6.0.x: one or two digits */
	patch = version + strlen("6.0.");
	return isdigit((unsigned char)patch[0]) &&
		   (patch[1] == '\0' || (isdigit((unsigned char)patch[1]) && patch[2] == '\0'));
}

/*
 * Described in header
 */
bool qkd_abi_check_running(const char *plugin)
{
	char running[32];

	if (qkd_abi_check_program("/proc/self/exe", running))
	{
		return TRUE;
	}
	if (running[0] && !qkd_abi_supported(running))
	{
		DBG1(DBG_CFG, "%s plugin refuses to load: the running charon is strongSwan %s, a "
			 "release the suite does not support (5.9.8 of Debian 12, 6.0.x of Debian 13); it "
			 "was built against strongSwan %s headers", plugin, running, VERSION);
		return FALSE;
	}
	DBG1(DBG_CFG, "%s plugin refuses to load: built against strongSwan %s headers, but the "
		 "running charon is %s; rebuild the suite against this charon", plugin, VERSION,
		 running[0] ? running : "of unknown version");
	return FALSE;
}
