/* SPDX-License-Identifier: GPL-2.0-or-later */
/* udp.c - the ESP-in-UDP socket (RFC 3948): opening it, source address and GSO control
 * messages, and the non-ESP sends on it (IKE with the non-ESP marker, NAT-T keepalives). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "dp.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

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

static bool addr_is_any(const iq_addr_t *a)
{
	static const struct in6_addr any6 = IN6ADDR_ANY_INIT;

	if (a->sa.sa_family == AF_INET)
		return a->in4.sin_addr.s_addr == INADDR_ANY;
	if (a->sa.sa_family == AF_INET6)
		return !memcmp(&a->in6.sin6_addr, &any6, 16);
	return true;
}

/* control messages: source address (pktinfo) and, for batches, UDP_SEGMENT */
/* one control message at cbuf + used; returns the bytes used after it */
static size_t put_cmsg(uint8_t *cbuf, size_t used, int level, int type, const void *data,
					   size_t len)
{
	struct cmsghdr *c = (struct cmsghdr *)(cbuf + used);

	c->cmsg_level = level;
	c->cmsg_type = type;
	c->cmsg_len = CMSG_LEN(len);
	memcpy(CMSG_DATA(c), data, len);
	return used + CMSG_SPACE(len);
}

size_t iq_udp_cmsg(uint8_t *cbuf, size_t cap, const iq_addr_t *src, uint16_t gso)
{
	size_t used = 0;

	memset(cbuf, 0, cap);
	if (gso)
		used = put_cmsg(cbuf, used, SOL_UDP, UDP_SEGMENT, &gso, sizeof(gso));
	if (!src || addr_is_any(src))
		return used;
	if (src->sa.sa_family == AF_INET) {
		struct in_pktinfo pi = { .ipi_spec_dst = src->in4.sin_addr };
		return put_cmsg(cbuf, used, IPPROTO_IP, IP_PKTINFO, &pi, sizeof(pi));
	} else {
		struct in6_pktinfo pi = { .ipi6_addr = src->in6.sin6_addr };
		return put_cmsg(cbuf, used, IPPROTO_IPV6, IPV6_PKTINFO, &pi, sizeof(pi));
	}
}

/* Send one datagram of iovecs on the NAT-T socket of dst's family, from src (port 0: the
 * socket's). sendmsg is atomic per datagram, no lock with the loop needed; if ESP fills the
 * socket buffer, wait a little for room rather than dropping IKE or a keepalive. */
static int natt_send(iq_dp_t *dp, const iq_addr_t *src, const iq_addr_t *dst, struct iovec *iov,
					 size_t iovlen, const char *what, iq_err_t *err)
{
	int s = dst->sa.sa_family == AF_INET6 ? 1 : 0, tries;
	uint8_t cbuf[64];
	struct msghdr h = { .msg_name = (void *)dst, .msg_namelen = iq_addr_len(dst),
						.msg_iov = iov, .msg_iovlen = iovlen, .msg_control = cbuf };

	if (dp->udp[s] < 0) {
		iq_seterr(err, "no %s socket for %s", s ? "IPv6" : "IPv4", what);
		return -EAFNOSUPPORT;
	}
	h.msg_controllen = iq_udp_cmsg(cbuf, sizeof(cbuf), src, 0);
	if (!h.msg_controllen)
		h.msg_control = NULL;
	for (tries = 0; tries < 20; tries++) {
		struct pollfd p = { .fd = dp->udp[s], .events = POLLOUT };
		if (sendmsg(dp->udp[s], &h, MSG_DONTWAIT) >= 0)
			return 0;
		if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOBUFS && errno != EINTR)
			break;
		poll(&p, 1, 5);
	}
	iq_seterr(err, "sending %s: %s", what, strerror(errno));
	return -errno;
}

int iq_ike_send(iq_dp_t *dp, const iq_addr_t *src, const iq_addr_t *dst, const void *data,
				size_t len, iq_err_t *err)
{
	static const uint8_t marker[4] = { 0, 0, 0, 0 };
	struct iovec iov[2] = { { (void *)marker, 4 }, { (void *)data, len } };

	return natt_send(dp, src, dst, iov, 2, "IKE", err);
}

int iq_keepalive_send(iq_dp_t *dp, const iq_addr_t *src, const iq_addr_t *dst, iq_err_t *err)
{
	static const uint8_t keepalive[1] = { 0xff };
	struct iovec iov[1] = { { (void *)keepalive, 1 } };

	return natt_send(dp, src, dst, iov, 1, "NAT-T keepalive", err);
}
