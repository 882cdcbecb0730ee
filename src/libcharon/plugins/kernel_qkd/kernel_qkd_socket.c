/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * The port-500 socket handling follows strongSwan's socket-default plugin.
 */

#include "kernel_qkd_socket.h"
#include "kernel_qkd_datapath.h"

#include <errno.h>
#include <poll.h>
#include <unistd.h>
#include <sys/eventfd.h>
#include <netinet/in.h>

#include <daemon.h>
#include <threading/thread.h>
#include <threading/mutex.h>
#include <collections/linked_list.h>

/** IKE datagrams from the NAT-T port waiting for charon's receiver */
#define DEFAULT_QUEUE_LIMIT 512

typedef struct private_kernel_qkd_socket_t private_kernel_qkd_socket_t;

/**
 * Private data of the socket.
 */
struct private_kernel_qkd_socket_t {

	/**
	 * Public interface
	 */
	kernel_qkd_socket_t public;

	/**
	 * The datapath owning the NAT-T port
	 */
	kernel_qkd_datapath_t *datapath;

	/**
	 * IKE port (500 or charon.port)
	 */
	uint16_t port;

	/**
	 * NAT-T port (owned by the datapath)
	 */
	uint16_t natt;

	/**
	 * Our IPv4 and IPv6 sockets on the IKE port, -1 if not open
	 */
	int ipv4, ipv6;

	/**
	 * Signals queued datagrams to the receiver thread
	 */
	int efd;

	/**
	 * Protects queue and counters
	 */
	mutex_t *mutex;

	/**
	 * IKE packets from the NAT-T port (packet_t*)
	 */
	linked_list_t *queue;

	/**
	 * Queue bound
	 */
	u_int queue_limit;

	/**
	 * Datagrams dropped because the queue was full
	 */
	uint64_t dropped;

	/**
	 * Maximum packet size to receive
	 */
	int max_packet;

	/**
	 * Alternates between the queue and the port-500 sockets
	 */
	u_int rr;
};

static const chunk_t marker = chunk_from_chars(0x00, 0x00, 0x00, 0x00);

/**
 * IKE datagram from the datapath's loop thread: queue it, never block.
 */
static void ike_handler(void *data, host_t *src, host_t *dst, chunk_t msg)
{
	private_kernel_qkd_socket_t *this = data;
	packet_t *packet;
	uint64_t one = 1;
	bool queued = FALSE;

	this->mutex->lock(this->mutex);
	if (this->queue->get_count(this->queue) < this->queue_limit)
	{
		/* charon's receiver expects the non-ESP marker unless a port is 500; it strips it */
		if (dst->get_port(dst) != IKEV2_UDP_PORT && src->get_port(src) != IKEV2_UDP_PORT)
		{
			msg = chunk_cat("cc", marker, msg);
		}
		else
		{
			msg = chunk_clone(msg);
		}
		packet = packet_create_from_data(src->clone(src), dst->clone(dst), msg);
		this->queue->insert_last(this->queue, packet);
		queued = TRUE;
	}
	else if (this->dropped++ % 100 == 0)
	{
		DBG1(DBG_NET, "kernel-qkd: IKE queue full (%u), dropped %llu IKE datagram(s) from "
			 "the NAT-T port", this->queue_limit, (unsigned long long)this->dropped);
	}
	this->mutex->unlock(this->mutex);
	if (queued && write(this->efd, &one, sizeof(one)) < 0)
	{
		/* counter saturated: the receiver wakes up anyway */
	}
}

/**
 * Take one queued IKE packet, NULL if none.
 */
static packet_t *dequeue(private_kernel_qkd_socket_t *this)
{
	packet_t *packet = NULL;

	this->mutex->lock(this->mutex);
	this->queue->remove_first(this->queue, (void**)&packet);
	this->mutex->unlock(this->mutex);
	return packet;
}

static bool queue_empty(private_kernel_qkd_socket_t *this)
{
	bool empty;

	this->mutex->lock(this->mutex);
	empty = this->queue->get_count(this->queue) == 0;
	this->mutex->unlock(this->mutex);
	return empty;
}

/**
 * Read one datagram from a port-500 socket.
 */
static status_t read_socket(private_kernel_qkd_socket_t *this, int fd, packet_t **packet)
{
	char buffer[this->max_packet];
	union {
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} src;
	char ancillary[64];
	struct iovec iov = {
		.iov_base = buffer,
		.iov_len = sizeof(buffer),
	};
	struct msghdr msg = {
		.msg_name = &src,
		.msg_namelen = sizeof(src),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ancillary,
		.msg_controllen = sizeof(ancillary),
	};
	struct cmsghdr *cmsg;
	host_t *source, *dest = NULL;
	ssize_t len;

	len = recvmsg(fd, &msg, MSG_DONTWAIT);
	if (len < 0)
	{
		if (errno != EAGAIN && errno != EWOULDBLOCK)
		{
			DBG1(DBG_NET, "error reading socket: %s", strerror(errno));
		}
		return FAILED;
	}
	if (msg.msg_flags & MSG_TRUNC)
	{
		DBG1(DBG_NET, "receive buffer too small, packet discarded");
		return FAILED;
	}
	for (cmsg = CMSG_FIRSTHDR(&msg); cmsg && !dest; cmsg = CMSG_NXTHDR(&msg, cmsg))
	{
		if (cmsg->cmsg_level == SOL_IP && cmsg->cmsg_type == IP_PKTINFO)
		{
			struct in_pktinfo *pktinfo = (struct in_pktinfo*)CMSG_DATA(cmsg);
			struct sockaddr_in dst = {
				.sin_family = AF_INET,
				.sin_port = htons(this->port),
				.sin_addr = pktinfo->ipi_addr,
			};
			dest = host_create_from_sockaddr((sockaddr_t*)&dst);
		}
		else if (cmsg->cmsg_level == SOL_IPV6 && cmsg->cmsg_type == IPV6_PKTINFO)
		{
			struct in6_pktinfo *pktinfo = (struct in6_pktinfo*)CMSG_DATA(cmsg);
			struct sockaddr_in6 dst = {
				.sin6_family = AF_INET6,
				.sin6_port = htons(this->port),
				.sin6_addr = pktinfo->ipi6_addr,
			};
			dest = host_create_from_sockaddr((sockaddr_t*)&dst);
		}
	}
	if (!dest)
	{
		DBG1(DBG_NET, "error reading IP header");
		return FAILED;
	}
	source = host_create_from_sockaddr((sockaddr_t*)&src);
	DBG2(DBG_NET, "received packet: from %#H to %#H", source, dest);
	*packet = packet_create_from_data(source, dest,
									  chunk_clone(chunk_create(buffer, len)));
	return SUCCESS;
}

METHOD(socket_t, receiver, status_t,
	private_kernel_qkd_socket_t *this, packet_t **packet)
{
	struct pollfd pfd[3];
	packet_t *queued;
	int n, i, fd;
	bool oldstate, pending;
	uint64_t count;

	/* bounded: every round either returns or has waited for an event */
	for (;;)
	{
		pending = !queue_empty(this);
		n = 0;
		pfd[n++] = (struct pollfd){ .fd = this->efd, .events = POLLIN };
		if (this->ipv4 != -1)
		{
			pfd[n++] = (struct pollfd){ .fd = this->ipv4, .events = POLLIN };
		}
		if (this->ipv6 != -1)
		{
			pfd[n++] = (struct pollfd){ .fd = this->ipv6, .events = POLLIN };
		}
		oldstate = thread_cancelability(TRUE);
		if (poll(pfd, n, pending ? 0 : -1) < 0)
		{
			thread_cancelability(oldstate);
			if (errno == EINTR)
			{
				continue;
			}
			DBG1(DBG_NET, "kernel-qkd: poll failed: %s", strerror(errno));
			return FAILED;
		}
		thread_cancelability(oldstate);

		if (pfd[0].revents & POLLIN && read(this->efd, &count, sizeof(count)) < 0)
		{
			/* EAGAIN: nothing to clear */
		}
		/* serve the port-500 sockets and the NAT-T queue in turn */
		if (!pending || this->rr++ % 2)
		{
			for (i = 1; i < n; i++)
			{
				if (pfd[i].revents & POLLIN)
				{
					fd = pfd[i].fd;
					if (read_socket(this, fd, packet) == SUCCESS)
					{
						return SUCCESS;
					}
				}
			}
		}
		queued = dequeue(this);
		if (queued)
		{
			DBG2(DBG_NET, "received packet: from %#H to %#H", queued->get_source(queued),
				 queued->get_destination(queued));
			*packet = queued;
			return SUCCESS;
		}
	}
}

/**
 * Send on a port-500 socket, from the packet's source address.
 */
static status_t send_socket(private_kernel_qkd_socket_t *this, host_t *src, host_t *dst,
							chunk_t data)
{
	char buf[CMSG_SPACE(sizeof(struct in6_pktinfo))] = {};
	struct iovec iov = {
		.iov_base = data.ptr,
		.iov_len = data.len,
	};
	struct msghdr msg = {
		.msg_name = dst->get_sockaddr(dst),
		.msg_namelen = *dst->get_sockaddr_len(dst),
		.msg_iov = &iov,
		.msg_iovlen = 1,
	};
	struct cmsghdr *cmsg;
	int fd;

	fd = dst->get_family(dst) == AF_INET ? this->ipv4 : this->ipv6;
	if (fd == -1)
	{
		DBG1(DBG_NET, "no socket found to send IPv%d packet from port %d",
			 dst->get_family(dst) == AF_INET ? 4 : 6, src->get_port(src));
		return FAILED;
	}
	if (!src->is_anyaddr(src))
	{
		msg.msg_control = buf;
		cmsg = (struct cmsghdr*)buf;
		if (dst->get_family(dst) == AF_INET)
		{
			struct in_pktinfo *pktinfo;

			msg.msg_controllen = CMSG_SPACE(sizeof(struct in_pktinfo));
			cmsg->cmsg_level = SOL_IP;
			cmsg->cmsg_type = IP_PKTINFO;
			cmsg->cmsg_len = CMSG_LEN(sizeof(struct in_pktinfo));
			pktinfo = (struct in_pktinfo*)CMSG_DATA(cmsg);
			pktinfo->ipi_spec_dst = ((struct sockaddr_in*)src->get_sockaddr(src))->sin_addr;
		}
		else
		{
			struct in6_pktinfo *pktinfo;

			msg.msg_controllen = CMSG_SPACE(sizeof(struct in6_pktinfo));
			cmsg->cmsg_level = SOL_IPV6;
			cmsg->cmsg_type = IPV6_PKTINFO;
			cmsg->cmsg_len = CMSG_LEN(sizeof(struct in6_pktinfo));
			pktinfo = (struct in6_pktinfo*)CMSG_DATA(cmsg);
			pktinfo->ipi6_addr = ((struct sockaddr_in6*)src->get_sockaddr(src))->sin6_addr;
		}
	}
	if (sendmsg(fd, &msg, 0) != data.len)
	{
		DBG1(DBG_NET, "error writing to socket: %s", strerror(errno));
		return FAILED;
	}
	return SUCCESS;
}

/**
 * Send through the datapath on the NAT-T port.
 */
static status_t send_natt(private_kernel_qkd_socket_t *this, host_t *src, host_t *dst,
						  chunk_t data)
{
	iq_addr_t from, to;
	iq_err_t err = {};

	if (!kernel_qkd_host2addr(src, &from) || !kernel_qkd_host2addr(dst, &to))
	{
		return FAILED;
	}
	if (src->is_anyaddr(src))
	{
		memset(&from, 0, sizeof(from));
	}
	if (data.len == 1 && data.ptr[0] == 0xFF)
	{	/* NAT-T keepalive: no marker */
		if (iq_keepalive_send(this->datapath->get_dp(this->datapath), &from, &to, &err) != 0)
		{
			DBG1(DBG_NET, "kernel-qkd: sending a NAT-T keepalive to %#H failed: %s", dst,
				 err.msg);
			return FAILED;
		}
		return SUCCESS;
	}
	if (dst->get_port(dst) == IKEV2_UDP_PORT)
	{	/* the datapath always adds the marker, which a peer on port 500 does not expect */
		DBG1(DBG_NET, "kernel-qkd: cannot send IKE from the NAT-T port to %#H", dst);
		return FAILED;
	}
	/* charon's sender added the non-ESP marker, the datapath adds its own */
	if (data.len < marker.len || !memeq(data.ptr, marker.ptr, marker.len))
	{
		DBG1(DBG_NET, "kernel-qkd: refusing to send a non-IKE datagram on the NAT-T port");
		return FAILED;
	}
	data = chunk_skip(data, marker.len);
	if (iq_ike_send(this->datapath->get_dp(this->datapath), &from, &to, data.ptr, data.len,
					&err) != 0)
	{
		DBG1(DBG_NET, "kernel-qkd: sending IKE to %#H failed: %s", dst, err.msg);
		return FAILED;
	}
	return SUCCESS;
}

METHOD(socket_t, sender, status_t,
	private_kernel_qkd_socket_t *this, packet_t *packet)
{
	host_t *src, *dst;
	uint16_t sport;

	src = packet->get_source(packet);
	dst = packet->get_destination(packet);
	DBG2(DBG_NET, "sending packet: from %#H to %#H", src, dst);

	sport = src->get_port(src);
	if (sport == this->natt)
	{
		return send_natt(this, src, dst, packet->get_data(packet));
	}
	if (sport == 0 || sport == this->port)
	{
		return send_socket(this, src, dst, packet->get_data(packet));
	}
	DBG1(DBG_NET, "no socket found to send IPv%d packet from port %d",
		 dst->get_family(dst) == AF_INET ? 4 : 6, sport);
	return FAILED;
}

METHOD(socket_t, get_port, uint16_t,
	private_kernel_qkd_socket_t *this, bool nat_t)
{
	return nat_t ? this->natt : this->port;
}

METHOD(socket_t, supported_families, socket_family_t,
	private_kernel_qkd_socket_t *this)
{
	socket_family_t families = SOCKET_FAMILY_IPV4;

	if (this->ipv6 != -1 && this->datapath->has_ipv6(this->datapath))
	{
		families |= SOCKET_FAMILY_IPV6;
	}
	return families;
}

/**
 * Open a UDP socket on the IKE port.
 */
static int open_socket(private_kernel_qkd_socket_t *this, int family)
{
	union {
		struct sockaddr sa;
		struct sockaddr_in in4;
		struct sockaddr_in6 in6;
	} addr = {};
	socklen_t addrlen;
	int fd, on = 1;

	fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
	{
		DBG1(DBG_NET, "could not open socket: %s", strerror(errno));
		return -1;
	}
	if (family == AF_INET)
	{
		addr.in4.sin_family = AF_INET;
		addr.in4.sin_port = htons(this->port);
		addrlen = sizeof(addr.in4);
		if (setsockopt(fd, SOL_IP, IP_PKTINFO, &on, sizeof(on)) < 0)
		{
			DBG1(DBG_NET, "unable to set IP_PKTINFO on socket: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	else
	{
		addr.in6.sin6_family = AF_INET6;
		addr.in6.sin6_port = htons(this->port);
		addrlen = sizeof(addr.in6);
		if (setsockopt(fd, SOL_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0 ||
			setsockopt(fd, SOL_IPV6, IPV6_RECVPKTINFO, &on, sizeof(on)) < 0)
		{
			DBG1(DBG_NET, "unable to set IPv6 socket options: %s", strerror(errno));
			close(fd);
			return -1;
		}
	}
	if (bind(fd, &addr.sa, addrlen) < 0)
	{
		DBG1(DBG_NET, "unable to bind socket: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!this->port)
	{	/* random port: learn it */
		if (getsockname(fd, &addr.sa, &addrlen) < 0)
		{
			close(fd);
			return -1;
		}
		this->port = ntohs(family == AF_INET ? addr.in4.sin_port : addr.in6.sin6_port);
	}
	return fd;
}

METHOD(socket_t, destroy, void,
	private_kernel_qkd_socket_t *this)
{
	this->datapath->set_ike_handler(this->datapath, NULL, NULL);
	if (this->ipv4 != -1)
	{
		close(this->ipv4);
	}
	if (this->ipv6 != -1)
	{
		close(this->ipv6);
	}
	if (this->efd != -1)
	{
		close(this->efd);
	}
	this->queue->destroy_offset(this->queue, offsetof(packet_t, destroy));
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header
 */
kernel_qkd_socket_t *kernel_qkd_socket_create()
{
	private_kernel_qkd_socket_t *this;
	kernel_qkd_datapath_t *datapath;

	datapath = lib->get(lib, KERNEL_QKD_DATAPATH);
	if (!datapath)
	{
		DBG1(DBG_NET, "kernel-qkd: no datapath, socket unavailable");
		return NULL;
	}
	INIT(this,
		.public = {
			.socket = {
				.send = _sender,
				.receive = _receiver,
				.get_port = _get_port,
				.supported_families = _supported_families,
				.destroy = _destroy,
			},
		},
		.datapath = datapath,
		.port = lib->settings->get_int(lib->settings, "%s.port", CHARON_UDP_PORT, lib->ns),
		.natt = datapath->get_natt_port(datapath),
		.ipv4 = -1,
		.ipv6 = -1,
		.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.queue = linked_list_create(),
		.queue_limit = lib->settings->get_int(lib->settings,
							"%s.plugins.kernel-qkd.ike_queue", DEFAULT_QUEUE_LIMIT, lib->ns),
		.max_packet = lib->settings->get_int(lib->settings, "%s.max_packet",
											 PACKET_MAX_DEFAULT, lib->ns),
	);

	if (this->efd == -1 || this->max_packet < 1 || this->max_packet > 65536 ||
		this->queue_limit < 1)
	{
		DBG1(DBG_NET, "kernel-qkd: socket setup failed (eventfd, max_packet or ike_queue)");
		destroy(this);
		return NULL;
	}
	if (this->port == this->natt)
	{
		DBG1(DBG_NET, "kernel-qkd: charon.port equals the NAT-T port %u; refusing",
			 this->natt);
		destroy(this);
		return NULL;
	}
	this->ipv4 = open_socket(this, AF_INET);
	if (datapath->has_ipv6(datapath))
	{
		this->ipv6 = open_socket(this, AF_INET6);
		if (this->ipv6 == -1)
		{
			DBG1(DBG_NET, "kernel-qkd: could not open IPv6 socket on port %u, IPv6 disabled",
				 this->port);
		}
	}
	if (this->ipv4 == -1)
	{
		DBG1(DBG_NET, "kernel-qkd: could not open IPv4 socket on port %u", this->port);
		destroy(this);
		return NULL;
	}
	datapath->set_ike_handler(datapath, ike_handler, this);
	DBG1(DBG_NET, "kernel-qkd: IKE on UDP port %u (own sockets) and %u (datapath)",
		 this->port, this->natt);
	return &this->public;
}
