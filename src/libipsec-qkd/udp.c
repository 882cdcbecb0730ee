/* SPDX-License-Identifier: GPL-2.0-or-later */
/* udp.c - the ESP-in-UDP socket (RFC 3948). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "dp.h"

int iq_udp_open(const iq_addr_t *bind_addr, int bufsize, bool gro, bool *gro_ok, iq_err_t *err)
{
	int fd, on = 1, fam = bind_addr->sa.sa_family;
	char ab[INET6_ADDRSTRLEN] = "?";

	*gro_ok = false;
	fd = socket(fam, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0) {
		iq_seterr(err, "UDP socket: %s", strerror(errno));
		return -1;
	}
	if (fam == AF_INET6) {
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
		setsockopt(fd, IPPROTO_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on));
	} else {
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &on, sizeof(on));
	}
	/* large buffers absorb bursts; FORCE works as root beyond rmem_max */
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof(bufsize));
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &bufsize, sizeof(bufsize)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof(bufsize));
	if (bind(fd, &bind_addr->sa, iq_addr_len(bind_addr)) < 0) {
		if (fam == AF_INET)
			inet_ntop(fam, &bind_addr->in4.sin_addr, ab, sizeof(ab));
		else
			inet_ntop(fam, &bind_addr->in6.sin6_addr, ab, sizeof(ab));
		iq_seterr(err, "bind UDP %s port %u: %s", ab,
				  ntohs(bind_addr->in4.sin_port), strerror(errno));
		close(fd);
		return -1;
	}
	if (gro && setsockopt(fd, IPPROTO_UDP, UDP_GRO, &on, sizeof(on)) == 0)
		*gro_ok = true;
	return fd;
}
