/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rx.c - the receive path: UDP (recvmmsg, GRO) -> demultiplex per RFC 3948 (IKE, keepalive,
 * ESP) -> anti-replay, ESP open, inbound policy -> (coalesce) -> TUN. Runs on the loop thread.
 */
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sys/socket.h>

#include "dp.h"
#include "keys.h"
#include "rx.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif

void iq_rx_tun_write(void *user, uint8_t *frame, size_t len)
{
	struct iq_dp *dp = user;

	if (!dp->tun_vnet) {
		frame += IQ_VNET_LEN;
		len -= IQ_VNET_LEN;
	}
	if (write(dp->tun_fd, frame, len) < 0)
		dp->st.drop_tun_write++;
	else
		dp->st.tun_tx_packets++;
}

static void rx_esp(struct iq_dp *dp, uint8_t *esp, size_t len)
{
	uint32_t spi, seq_lo, epoch = 0;
	struct iq_aead *a;
	struct iq_flow f;
	struct iq_sa *sa;
	uint64_t seq;
	uint8_t nh, *inner;
	int ilen;

	if (len < IQ_ESP_OFF + 2 + IQ_ESP_ICV) {
		dp->st.drop_bad_packet++;
		return;
	}
	spi = iq_get32(esp);
	seq_lo = iq_get32(esp + 4);
	sa = iq_sad_in(dp, spi);
	if (!sa) {
		dp->st.drop_no_sa++;
		return;
	}
	if (iq_replay_check(&sa->replay, seq_lo, sa->esn, &seq) != IQ_REPLAY_OK) {
		sa->replay_drops++;
		dp->st.drop_replay++;
		return;
	}
	if (sa->rot.enabled) {
		uint64_t out_of_bounds = sa->rot.epoch_drops;

		/* the epoch is not authenticated yet: it selects a key, it moves nothing */
		epoch = iq_get32(esp + IQ_ESP_HDR);
		a = iq_rot_rx(&sa->rot, epoch);
		if (!a) {
			if (sa->rot.epoch_drops != out_of_bounds)
				dp->st.drop_epoch++;
			else
				dp->st.drop_nokey++;
			/* time for a peek (keys.c); once per IQ_FAR_PEEK such packets, so a flood
			 * of them costs no per-packet walk over the SAs (the 100 ms prefetch retries) */
			if (sa->rot.far_count == IQ_FAR_PEEK)
				dp->keys_check = true;
			return;
		}
	} else {
		a = &sa->aead;
	}
	ilen = iq_esp_open(a, esp, len, seq, sa->esn, &nh);
	if (ilen == IQ_ESP_EAUTH || ilen == IQ_ESP_ELEN) {
		sa->auth_drops++;
		dp->st.drop_auth++;
		return;
	}
	/* authentic from here on: the window moves even if the content is unusable */
	iq_replay_update(&sa->replay, seq);
	if (sa->rot.enabled) {
		uint64_t w = sa->rot.windows;
		iq_rot_rx_ok(&sa->rot, epoch);
		if (sa->rot.windows != w) {
			dp->st.windows += sa->rot.windows - w;
			dp->keys_check = true;
		}
	}
	if (ilen < 0) {
		sa->pad_drops++;
		dp->st.drop_pad++;
		return;
	}
	if (nh == IQ_NH_NONE)            /* TFC dummy packet */
		return;
	inner = esp + IQ_ESP_OFF;
	if (!((nh == IQ_NH_IPV4 && ilen >= 20 && (inner[0] >> 4) == 4 &&
		   iq_get16(inner + 2) <= ilen) ||
		  (nh == IQ_NH_IPV6 && ilen >= 40 && (inner[0] >> 4) == 6 &&
		   iq_get16(inner + 4) + 40 <= ilen)) ||
		iq_flow_parse(inner, ilen, &f)) {
		dp->st.drop_bad_packet++;
		return;
	}
	/* TFC padding may follow the inner packet */
	ilen = nh == IQ_NH_IPV4 ? iq_get16(inner + 2) : iq_get16(inner + 4) + 40;
	if (!iq_spd_in_ok(dp, sa, &f)) {
		sa->policy_drops++;
		dp->st.drop_policy_in++;
		return;
	}
	dp->st.esp_rx_packets++;
	sa->bytes += ilen;
	sa->packets++;
	sa->last_use = dp->now_s;
	iq_gro_offer(&dp->gro, inner, ilen);
}

static void rx_datagram(struct iq_dp *dp, int k, const iq_addr_t *local)
{
	struct msghdr *h = &dp->rx_mm[k].msg_hdr;
	uint8_t *buf = dp->rxbuf + (size_t)k * RX_SLOT_LEN;
	size_t len = dp->rx_mm[k].msg_len, gso = len, o;
	iq_addr_t dst = *local;
	struct cmsghdr *c;

	if (h->msg_flags & MSG_TRUNC) {
		dp->st.drop_bad_packet++;
		return;
	}
	for (c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
		if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
			int v;
			memcpy(&v, CMSG_DATA(c), sizeof(v));
			if (v > 0)
				gso = v;
		} else if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
			struct in_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			dst.in4.sin_addr = pi.ipi_addr;
		} else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
			struct in6_pktinfo pi;
			memcpy(&pi, CMSG_DATA(c), sizeof(pi));
			dst.in6.sin6_addr = pi.ipi6_addr;
		}
	}
	dp->st.udp_rx_msgs++;
	for (o = 0; o < len; o += gso) {
		uint8_t *p = buf + o;
		size_t l = len - o < gso ? len - o : gso;

		if (l == 1 && p[0] == 0xff) {
			dp->st.keepalive_rx++;
		} else if (l >= 4 && iq_get32(p) == 0) {
			dp->st.ike_rx++;
			if (dp->cfg.ike_recv)
				dp->cfg.ike_recv(dp->cfg.user, &dp->rx_from[k], &dst, p + 4, l - 4);
		} else {
			rx_esp(dp, p, l);
		}
	}
}

void iq_rx_drain(struct iq_dp *dp, int s)
{
	int budget = iq_offload(dp, IQ_OFF_MMSG) ? RX_BUDGET : 1, slots = iq_offload(dp, IQ_OFF_MMSG) ? RX_SLOTS : 1;
	iq_addr_t local;
	socklen_t sl = sizeof(local);
	int b, k, n;

	memset(&local, 0, sizeof(local));
	getsockname(dp->udp[s], &local.sa, &sl);
	for (b = 0; b < budget; b++) {
		for (k = 0; k < slots; k++) {
			struct msghdr *h = &dp->rx_mm[k].msg_hdr;
			dp->rx_iov[k].iov_base = dp->rxbuf + (size_t)k * RX_SLOT_LEN;
			dp->rx_iov[k].iov_len = RX_SLOT_LEN;
			h->msg_name = &dp->rx_from[k];
			h->msg_namelen = sizeof(dp->rx_from[k]);
			h->msg_iov = &dp->rx_iov[k];
			h->msg_iovlen = 1;
			h->msg_control = dp->rx_cmsg[k];
			h->msg_controllen = sizeof(dp->rx_cmsg[k]);
			h->msg_flags = 0;
		}
		if (iq_offload(dp, IQ_OFF_MMSG)) {
			n = recvmmsg(dp->udp[s], dp->rx_mm, slots, MSG_DONTWAIT, NULL);
		} else {
			ssize_t r = recvmsg(dp->udp[s], &dp->rx_mm[0].msg_hdr, MSG_DONTWAIT);
			n = r < 0 ? -1 : 1;
			if (r >= 0)
				dp->rx_mm[0].msg_len = r;
		}
		if (n <= 0)
			break;
		for (k = 0; k < n; k++) {
			rx_datagram(dp, k, &local);
			iq_keys_between_packets(dp);
		}
		if (n < slots)
			break;
	}
	iq_gro_flush(&dp->gro);
}
