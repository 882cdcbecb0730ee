/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rotprof: a fixed packet count through two complete datapaths in one process, for instruction
 * counts under valgrind --tool=callgrind (scripts/bench rotation-profile). Load on a shared
 * machine changes time, not instructions, so this shows what rotation costs per packet and per
 * window switch where wall-clock figures drown in noise.
 *
 * Each "TUN" is a SOCK_SEQPACKET socketpair with virtio_net_hdr (as test_dp.c), ESP goes over
 * real UDP sockets on loopback, all offloads on, keys from the deterministic test provider
 * (helper thread, HKDF, eventfds: all as in qkd-espd). Lockstep rounds: hostA writes BURST TSO
 * super-packets of one TCP flow (48 segments of 1360 bytes each, the lab's TUN MTU 1400) and
 * waits until hostB has read every byte back; hostB answers each with one ACK. So batching is
 * the same in every run and the counts differ only by what rotation does.
 *
 *   rotprof [--rpk N|off] [--rounds R] [--burst B] [--aes128]
 *
 * Round 0 warms up (first windows, socket buffers) and is not counted in `packets`; a run with
 * --rounds 0 is set-up, warm-up and tear-down only, so the difference of two runs' instruction
 * counts is what R rounds cost. Prints key=value lines: packets (ESP packets A->B in the
 * counted rounds), the datapaths' counters (windows: window switches per gateway, both SAs),
 * drops.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <linux/virtio_net.h>
#include <sys/socket.h>

#include "csum.h"
#include "esp.h"
#include "ipsec_qkd.h"

#define SEG 1360                      /* TCP payload per segment: inner packet 1400 = TUN MTU */
#define SEGS 48                       /* segments per super-packet (as a TSO read gives) */

struct gw {
	iq_dp_t *dp;
	int tun_dp, tun;
	uint16_t port;
};

static void die(const char *what)
{
	fprintf(stderr, "rotprof: %s\n", what);
	exit(1);
}

static void quiet(void *user, enum iq_log_level l, const char *m)
{
	(void)user;
	if (l == IQ_LOG_ERROR)
		fprintf(stderr, "rotprof: datapath: %s\n", m);
}

static void gw_up(struct gw *g)
{
	struct iq_dp_cfg cfg = { 0 };
	iq_err_t err = { { 0 } };
	int sv[2], buf = 16 << 20;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv))
		die("socketpair");
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf));
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	cfg.tun_fd = sv[0];
	cfg.tun_fd_vnet = true;
	iq_addr_parse("127.0.0.1:0", 0, &cfg.bind4);
	cfg.offload = IQ_OFF_ALL;
	cfg.sock_buf = 16 << 20;
	cfg.keys = iq_test_provider_create("rotprof", 0, 0);
	cfg.log = quiet;
	if (!cfg.keys || iq_dp_create(&cfg, &g->dp, &err))
		die(err.msg[0] ? err.msg : "datapath create");
	g->tun_dp = sv[0];
	g->tun = sv[1];
	g->port = iq_dp_udp_port(g->dp);
}

static void add_sa(struct gw *g, bool inbound, uint32_t spi, uint16_t dport,
				   const struct iq_rotation *rot, const uint8_t *key, size_t key_len)
{
	struct iq_sa_cfg c = { 0 };
	iq_err_t err = { { 0 } };

	iq_addr_parse("127.0.0.1", g->port, inbound ? &c.dst : &c.src);
	iq_addr_parse("127.0.0.1", dport, inbound ? &c.src : &c.dst);
	c.spi = spi;
	c.reqid = 1;
	c.inbound = inbound;
	c.replay_window = 1024;
	c.enc_alg = IQ_ENC_AES_GCM_16;
	c.enc_key = key;
	c.enc_key_len = key_len;
	c.rotation = *rot;
	c.peer = "peer";
	if (iq_sa_add(g->dp, &c, &err))
		die(err.msg);
}

static void add_pol(struct gw *g, enum iq_policy_dir dir, const char *src, const char *dst)
{
	struct iq_policy_cfg p = { .dir = dir, .reqid = 1, .priority = 100 };
	iq_err_t err = { { 0 } };

	if (iq_ts_parse(src, &p.src) || iq_ts_parse(dst, &p.dst) || iq_policy_add(g->dp, &p, &err))
		die("policy");
}

/* IPv4/TCP from hostA to hostB (or back when ack), with a virtio header: a TSO super-packet of
 * nseg segments, or a bare ACK */
static size_t tcp_pkt(uint8_t *buf, bool ack, uint32_t seq, int nseg)
{
	struct virtio_net_hdr vh = { 0 };
	uint8_t *p = buf + sizeof(vh);
	size_t payload = ack ? 0 : (size_t)nseg * SEG, len = 40 + payload, i;
	uint16_t c;

	memset(p, 0, 40);
	p[0] = 0x45;
	iq_put16(p + 2, len > 0xffff ? 0xffff : len);
	p[6] = 0x40;
	p[8] = 64;
	p[9] = IPPROTO_TCP;
	inet_pton(AF_INET, ack ? "192.0.2.130" : "192.0.2.10", p + 12);
	inet_pton(AF_INET, ack ? "192.0.2.10" : "192.0.2.130", p + 16);
	c = iq_csum_ip4(p, 20);
	memcpy(p + 10, &c, 2);
	iq_put16(p + 20, ack ? 5201 : 40000);
	iq_put16(p + 22, ack ? 40000 : 5201);
	iq_put32(p + 24, ack ? 1 : seq);
	iq_put32(p + 28, ack ? seq : 1);
	p[32] = 5 << 4;
	p[33] = 0x10;
	iq_put16(p + 34, 65000);
	for (i = 0; i < payload; i++)
		p[40 + i] = (uint8_t)(i * 7);
	if (!ack) {
		vh.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
		vh.gso_type = VIRTIO_NET_HDR_GSO_TCPV4;
		vh.gso_size = SEG;
		vh.hdr_len = 40;
		vh.csum_start = 20;
		vh.csum_offset = 16;
	}
	memcpy(buf, &vh, sizeof(vh));
	return sizeof(vh) + len;
}

/* read what arrives on fd until want bytes of TCP payload came (or 30 s of silence) */
static size_t drain_payload(int fd, size_t want)
{
	static uint8_t in[70000];
	size_t got = 0;

	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&p, 1, 30000) <= 0)
			break;
		n = recv(fd, in, sizeof(in), MSG_DONTWAIT);
		if (n > (ssize_t)(sizeof(struct virtio_net_hdr) + 40))
			got += n - sizeof(struct virtio_net_hdr) - 40;
	}
	return got;
}

static void drain_acks(int fd, int want)
{
	static uint8_t in[2048];
	int got = 0;

	while (got < want) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, 30000) <= 0)
			break;
		if (recv(fd, in, sizeof(in), MSG_DONTWAIT) > 0)
			got++;
	}
}

static uint32_t keys_ready(struct gw *g, uint32_t spi)
{
	struct iq_sa_id id = { .spi = spi };
	struct iq_sa_stats st;
	iq_err_t err = { { 0 } };

	iq_addr_parse("127.0.0.1", 0, &id.dst);
	if (iq_sa_query(g->dp, &id, &st, &err))
		die("SA query");
	return st.keys_ready;
}

int main(int argc, char **argv)
{
	static const uint8_t key256[36] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 0xaa, 0xbb, 0xcc, 0xdd };
	struct iq_rotation rot = { .exhaust = IQ_EXHAUST_STALL };
	struct iq_dp_stats sa_, sb;
	static uint8_t out[SEGS * SEG + 100], ackb[100];
	size_t key_len = 36, len, alen, payload = 0, got;
	int rounds = 200, burst = 4, r, i;
	uint32_t seq = 1;
	struct gw a, b;
	iq_err_t err = { { 0 } };

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--rpk") && i + 1 < argc) {
			i++;
			if (strcmp(argv[i], "off")) {
				rot.enabled = true;
				rot.rpk_min = rot.rpk_max = (uint32_t)strtoul(argv[i], NULL, 10);
			}
		} else if (!strcmp(argv[i], "--rounds") && i + 1 < argc) {
			rounds = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--burst") && i + 1 < argc) {
			burst = atoi(argv[++i]);
		} else if (!strcmp(argv[i], "--aes128")) {
			key_len = 20;
		} else {
			fprintf(stderr, "usage: rotprof [--rpk N|off] [--rounds R] [--burst B] [--aes128]\n");
			return 2;
		}
	}
	if (rounds < 0 || burst < 1 || burst > 64 || (rot.enabled && rot.rpk_min < 1))
		die("bad arguments");

	gw_up(&a);
	gw_up(&b);
	/* AES-128: the first 16 key bytes and a salt */
	add_sa(&a, false, 0x1001, b.port, &rot, key_len == 36 ? key256 : key256 + 16, key_len);
	add_sa(&b, true, 0x1001, a.port, &rot, key_len == 36 ? key256 : key256 + 16, key_len);
	add_sa(&b, false, 0x2001, a.port, &rot, key_len == 36 ? key256 : key256 + 16, key_len);
	add_sa(&a, true, 0x2001, b.port, &rot, key_len == 36 ? key256 : key256 + 16, key_len);
	add_pol(&a, IQ_DIR_OUT, "192.0.2.0/25", "192.0.2.128/25");
	add_pol(&b, IQ_DIR_IN, "192.0.2.0/25", "192.0.2.128/25");
	add_pol(&b, IQ_DIR_OUT, "192.0.2.128/25", "192.0.2.0/25");
	add_pol(&a, IQ_DIR_IN, "192.0.2.128/25", "192.0.2.0/25");
	if (iq_dp_start(a.dp, &err) || iq_dp_start(b.dp, &err))
		die(err.msg);
	if (rot.enabled) {
		for (i = 0; i < 1000 && (!keys_ready(&a, 0x1001) || !keys_ready(&b, 0x1001) ||
								 !keys_ready(&b, 0x2001) || !keys_ready(&a, 0x2001)); i++)
			usleep(10000);
		if (i == 1000)
			die("no window keys");
	}

	/* round 0 warms up (first windows, socket buffers); counting starts after it */
	for (r = 0; r <= rounds; r++) {
		for (i = 0; i < burst; i++) {
			len = tcp_pkt(out, false, seq, SEGS);
			seq += SEGS * SEG;
			if (send(a.tun, out, len, 0) != (ssize_t)len)
				die("write to hostA's TUN");
		}
		got = drain_payload(b.tun, (size_t)burst * SEGS * SEG);
		if (got != (size_t)burst * SEGS * SEG) {
			fprintf(stderr, "rotprof: round %d: %zu of %zu bytes arrived\n", r, got,
					(size_t)burst * SEGS * SEG);
			die("packets lost");
		}
		for (i = 0; i < burst; i++) {
			alen = tcp_pkt(ackb, true, seq, 0);
			if (send(b.tun, ackb, alen, 0) != (ssize_t)alen)
				die("write to hostB's TUN");
		}
		drain_acks(a.tun, burst);
		if (r >= 1)
			payload += got;
	}
	if (iq_dp_get_stats(a.dp, &sa_, &err) || iq_dp_get_stats(b.dp, &sb, &err))
		die(err.msg);
	printf("rpk=%u\nrounds=%d\nburst=%d\ncipher=aes%zu\n", rot.enabled ? rot.rpk_min : 0,
		   rounds, burst, (key_len - 4) * 8);
	printf("packets=%zu\n", payload / SEG);
	/* totals since creation (round 0 included), per gateway */
	printf("esp_tx_a=%llu\nesp_tx_b=%llu\n", (unsigned long long)sa_.esp_tx_packets,
		   (unsigned long long)sb.esp_tx_packets);
	printf("windows_a=%llu\nwindows_b=%llu\n", (unsigned long long)sa_.windows,
		   (unsigned long long)sb.windows);
	printf("udp_tx_msgs_a=%llu\nudp_rx_msgs_b=%llu\ntun_tx_superpackets_b=%llu\n",
		   (unsigned long long)sa_.udp_tx_msgs, (unsigned long long)sb.udp_rx_msgs,
		   (unsigned long long)sb.tun_tx_superpackets);
	printf("keys_delivered=%llu\n", (unsigned long long)(sa_.keys_delivered + sb.keys_delivered));
	printf("drop_stall=%llu\ndrop_nokey=%llu\n",
		   (unsigned long long)(sa_.drop_stall + sb.drop_stall),
		   (unsigned long long)(sa_.drop_nokey + sb.drop_nokey));
	iq_dp_destroy(a.dp);
	iq_dp_destroy(b.dp);
	close(a.tun_dp);
	close(a.tun);
	close(b.tun_dp);
	close(b.tun);
	return 0;
}
