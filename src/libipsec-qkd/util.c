/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util.c - parsing helpers for addresses, traffic selectors and keys (tool and tests). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include "ipsec_qkd.h"

int iq_addr_parse(const char *str, uint16_t default_port, iq_addr_t *a)
{
	char buf[INET6_ADDRSTRLEN + 16], *host = buf, *port = NULL, *end;
	unsigned long p = default_port;

	memset(a, 0, sizeof(*a));
	if (!str || strlen(str) >= sizeof(buf))
		return -1;
	strcpy(buf, str);
	if (buf[0] == '[') {
		host = buf + 1;
		end = strchr(host, ']');
		if (!end)
			return -1;
		*end = '\0';
		if (end[1] == ':')
			port = end + 2;
		else if (end[1])
			return -1;
	} else if (strchr(buf, ':') == strrchr(buf, ':') && strchr(buf, ':')) {
		port = strchr(buf, ':');
		*port++ = '\0';
	}
	if (port) {
		p = strtoul(port, &end, 10);
		if (!*port || *end || p > 65535)
			return -1;
	}
	if (inet_pton(AF_INET, host, &a->in4.sin_addr) == 1) {
		a->in4.sin_family = AF_INET;
		a->in4.sin_port = htons(p);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &a->in6.sin6_addr) == 1) {
		a->in6.sin6_family = AF_INET6;
		a->in6.sin6_port = htons(p);
		return 0;
	}
	return -1;
}

static int prefix_range(int family, const uint8_t *addr, int plen, uint8_t *from, uint8_t *to)
{
	int alen = family == AF_INET ? 4 : 16, i;

	if (plen < 0 || plen > alen * 8)
		return -1;
	for (i = 0; i < alen; i++) {
		int bits = plen - i * 8;
		uint8_t mask = bits >= 8 ? 0xff : bits <= 0 ? 0 : (uint8_t)(0xff << (8 - bits));
		from[i] = addr[i] & mask;
		to[i] = addr[i] | ~mask;
	}
	return 0;
}

static int parse_proto(const char *s)
{
	char *end;
	long v;

	if (!strcmp(s, "any"))
		return 0;
	if (!strcmp(s, "tcp"))
		return IPPROTO_TCP;
	if (!strcmp(s, "udp"))
		return IPPROTO_UDP;
	if (!strcmp(s, "icmp"))
		return IPPROTO_ICMP;
	if (!strcmp(s, "icmpv6") || !strcmp(s, "ipv6-icmp"))
		return IPPROTO_ICMPV6;
	v = strtol(s, &end, 10);
	if (!*s || *end || v < 0 || v > 255)
		return -1;
	return v;
}

int iq_ts_parse(const char *str, struct iq_ts *ts)
{
	char buf[160], *net, *proto, *ports, *dash, *slash, *end;
	uint8_t addr[16], addr2[16];

	memset(ts, 0, sizeof(*ts));
	ts->port_to = 0xffff;
	if (!str || strlen(str) >= sizeof(buf))
		return -1;
	strcpy(buf, str);
	net = buf;
	proto = strchr(buf, ',');
	ports = NULL;
	if (proto) {
		*proto++ = '\0';
		ports = strchr(proto, ',');
		if (ports)
			*ports++ = '\0';
		int pr = parse_proto(proto);
		if (pr < 0)
			return -1;
		ts->proto = pr;
	}
	if (ports) {
		unsigned long a, b;
		a = strtoul(ports, &end, 10);
		if (end == ports)
			return -1;
		b = a;
		if (*end == '-') {
			char *e2;
			b = strtoul(end + 1, &e2, 10);
			if (e2 == end + 1 || *e2)
				return -1;
		} else if (*end) {
			return -1;
		}
		if (a > b || b > 65535)
			return -1;
		ts->port_from = a;
		ts->port_to = b;
	}
	if (!strcmp(net, "any4") || !strcmp(net, "0.0.0.0/0")) {
		ts->family = AF_INET;
		memset(ts->to, 0xff, 4);
		return 0;
	}
	if (!strcmp(net, "any6") || !strcmp(net, "::/0")) {
		ts->family = AF_INET6;
		memset(ts->to, 0xff, 16);
		return 0;
	}
	slash = strchr(net, '/');
	dash = strchr(net, '-');
	if (slash) {
		long plen;
		*slash = '\0';
		plen = strtol(slash + 1, &end, 10);
		if (!slash[1] || *end)
			return -1;
		if (inet_pton(AF_INET, net, addr) == 1)
			ts->family = AF_INET;
		else if (inet_pton(AF_INET6, net, addr) == 1)
			ts->family = AF_INET6;
		else
			return -1;
		return prefix_range(ts->family, addr, plen, ts->from, ts->to);
	}
	if (dash) {
		*dash = '\0';
		if (inet_pton(AF_INET, net, addr) == 1 && inet_pton(AF_INET, dash + 1, addr2) == 1) {
			ts->family = AF_INET;
			memcpy(ts->from, addr, 4);
			memcpy(ts->to, addr2, 4);
		} else if (inet_pton(AF_INET6, net, addr) == 1 &&
				   inet_pton(AF_INET6, dash + 1, addr2) == 1) {
			ts->family = AF_INET6;
			memcpy(ts->from, addr, 16);
			memcpy(ts->to, addr2, 16);
		} else {
			return -1;
		}
		return memcmp(ts->from, ts->to, 16) <= 0 ? 0 : -1;
	}
	if (inet_pton(AF_INET, net, addr) == 1) {
		ts->family = AF_INET;
		memcpy(ts->from, addr, 4);
		memcpy(ts->to, addr, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, net, addr) == 1) {
		ts->family = AF_INET6;
		memcpy(ts->from, addr, 16);
		memcpy(ts->to, addr, 16);
		return 0;
	}
	return -1;
}

int iq_hex_parse(const char *hex, uint8_t *buf, size_t buflen)
{
	size_t n = 0;

	if (!hex)
		return -1;
	if (hex[0] == '0' && (hex[1] == 'x' || hex[1] == 'X'))
		hex += 2;
	while (*hex) {
		int hi, lo;
		if (*hex == ':' || *hex == ' ') {
			hex++;
			continue;
		}
		if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) || n >= buflen)
			return -1;
		hi = isdigit((unsigned char)hex[0]) ? hex[0] - '0' : (tolower(hex[0]) - 'a' + 10);
		lo = isdigit((unsigned char)hex[1]) ? hex[1] - '0' : (tolower(hex[1]) - 'a' + 10);
		buf[n++] = hi << 4 | lo;
		hex += 2;
	}
	return n;
}
