/* SPDX-License-Identifier: GPL-2.0-or-later */
/* tun.c - open and configure the plaintext TUN device. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/if_tun.h>

#include "dp.h"

int iq_tun_open(const char *name, int mtu, bool vnet, unsigned *tunfp, char *ifname,
				size_t ifnamelen, iq_err_t *err)
{
	struct ifreq ifr;
	int fd, s, hdrsz = IQ_VNET_LEN;
	unsigned tunf = *tunfp;

	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		iq_seterr(err, "open /dev/net/tun: %s", strerror(errno));
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0);
	snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name ? name : "ipsecqkd%d");
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		iq_seterr(err, "TUNSETIFF %s: %s", ifr.ifr_name, strerror(errno));
		goto fail;
	}
	snprintf(ifname, ifnamelen, "%s", ifr.ifr_name);
	if (vnet) {
		if (ioctl(fd, TUNSETVNETHDRSZ, &hdrsz) < 0) {
			iq_seterr(err, "TUNSETVNETHDRSZ: %s", strerror(errno));
			goto fail;
		}
		/* USO appeared in Linux 6.2: retry without it on older kernels */
		if (ioctl(fd, TUNSETOFFLOAD, (unsigned long)tunf) < 0) {
			unsigned nouso = tunf & ~(TUN_F_USO4 | TUN_F_USO6);
			if (nouso == tunf || ioctl(fd, TUNSETOFFLOAD, (unsigned long)nouso) < 0) {
				iq_seterr(err, "TUNSETOFFLOAD 0x%x: %s", tunf, strerror(errno));
				goto fail;
			}
			*tunfp = nouso;
		}
	} else {
		*tunfp = 0;
	}
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		iq_seterr(err, "socket: %s", strerror(errno));
		goto fail;
	}
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0) {
		iq_seterr(err, "set MTU %d on %s: %s", mtu, ifname, strerror(errno));
		close(s);
		goto fail;
	}
	if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0 ||
		(ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) < 0)) {
		iq_seterr(err, "bring %s up: %s", ifname, strerror(errno));
		close(s);
		goto fail;
	}
	close(s);
	return fd;
fail:
	close(fd);
	return -1;
}
