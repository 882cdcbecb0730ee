/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ipseq_addr.c - "host:port" and "[v6]:port" to a socket address (see ipseq_addr.h). */
#include "ipseq_config.h"
#include "ipseq_addr.h"

#include <netdb.h>
#include <string.h>

int ipseq_resolve(const char *hostport, int passive, struct sockaddr_storage *ss, socklen_t *sl)
{
	char host[256], *port;
	struct addrinfo hints = {0}, *ai;
	size_t n = strlen(hostport);
	int rc;

	if (n >= sizeof(host))
		return -1;
	memcpy(host, hostport, n + 1);
	if (host[0] == '[') {
		char *close = strchr(host, ']');
		if (!close || close[1] != ':')
			return -1;
		*close = '\0';
		port = close + 2;
		memmove(host, host + 1, strlen(host + 1) + 1);
	} else {
		port = strrchr(host, ':');
		if (!port)
			return -1;
		*port++ = '\0';
	}
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0);
	rc = getaddrinfo(host[0] ? host : NULL, port, &hints, &ai);
	if (rc != 0)
		return -1;
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	*sl = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}
