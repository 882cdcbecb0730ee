/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * tx.c - the transmit path: TUN -> (segment) -> policy and SA lookup -> ESP seal -> UDP, in GSO
 * messages sent with sendmmsg. Runs on the loop thread.
 *
 * Back-pressure: the TX side only reads the TUN while its batch has room; when the UDP socket
 * says EAGAIN, the unsent part stays in the batch, TUN reads stop (the kernel queues or drops
 * at the TUN, before any work was spent) and the loop waits for POLLOUT. Nothing queues
 * without bound.
 */
#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "dp.h"
#include "keys.h"
#include "lifetime.h"
#include "tx.h"

static bool tx_room(struct iq_dp *dp)
{
	return !dp->tx_blocked && dp->tx_n + TX_ROOM_MSGS <= TX_MSGS &&
		   dp->tx_used + TX_ROOM_BYTES <= TX_BUF;
}

static size_t outer_hdr(const struct iq_sa *sa)
{
	return sa->dst.sa.sa_family == AF_INET6 ? 48 : 28;
}

/* Room for one ESP packet of esp_len bytes, appended to the current GSO message if it fits
 * (same SA, not larger than the message's segment size), else as a new message. */
static uint8_t *tx_reserve(struct iq_dp *dp, const struct iq_sa *sa, size_t esp_len)
{
	struct tx_msg *m = dp->tx_n > dp->tx_sent ? &dp->txm[dp->tx_n - 1] : NULL;
	uint8_t *p;

	if (dp->tx_blocked)
		return NULL;
	if (m && !m->closed && m->sa_uid == sa->uid && esp_len <= m->seg_size &&
		m->nseg < TX_GSO_SEGS && m->len + esp_len <= TX_GSO_BYTES) {
		p = dp->txbuf + m->off + m->len;
		m->len += esp_len;
		m->nseg++;
		if (esp_len < m->seg_size)
			m->closed = true;    /* only the last segment of a GSO message may be shorter */
		dp->tx_used += esp_len;
		return p;
	}
	if (dp->tx_n == TX_MSGS || dp->tx_used + esp_len > TX_BUF) {
		iq_tx_flush(dp);
		if (dp->tx_n)
			return NULL;
	}
	m = &dp->txm[dp->tx_n++];
	m->off = dp->tx_used;
	m->len = esp_len;
	m->seg_size = esp_len;
	m->nseg = 1;
	m->closed = !dp->gso_ok || esp_len + outer_hdr(sa) > (size_t)dp->cfg.wan_mtu;
	m->sa_uid = sa->uid;
	m->sock = sa->sock;
	m->dst = sa->dst;
	m->src = sa->src;
	dp->tx_used += esp_len;
	return dp->txbuf + m->off;
}

static void tx_unreserve(struct iq_dp *dp, size_t esp_len)
{
	struct tx_msg *m = &dp->txm[dp->tx_n - 1];

	m->len -= esp_len;
	dp->tx_used -= esp_len;
	if (--m->nseg == 0)
		dp->tx_n--;
}

static void build_msg(struct iq_dp *dp, int i)
{
	struct tx_msg *m = &dp->txm[i];
	struct msghdr *h = &dp->tx_mm[i].msg_hdr;

	dp->tx_iov[i].iov_base = dp->txbuf + m->off;
	dp->tx_iov[i].iov_len = m->len;
	memset(h, 0, sizeof(*h));
	h->msg_name = &m->dst;
	h->msg_namelen = iq_addr_len(&m->dst);
	h->msg_iov = &dp->tx_iov[i];
	h->msg_iovlen = 1;
	h->msg_control = dp->tx_cmsg[i];
	h->msg_controllen = iq_udp_cmsg(dp->tx_cmsg[i], sizeof(dp->tx_cmsg[i]), &m->src,
								   m->nseg > 1 ? m->seg_size : 0);
	if (!h->msg_controllen)
		h->msg_control = NULL;
}

/* A GSO send failed (e.g. a device without checksum offload): send segments one by one. */
static void tx_send_split(struct iq_dp *dp, struct tx_msg *m)
{
	uint8_t cbuf[64];
	size_t o;

	for (o = 0; o < m->len; o += m->seg_size) {
		size_t l = m->len - o < m->seg_size ? m->len - o : m->seg_size;
		struct iovec iov = { dp->txbuf + m->off + o, l };
		struct msghdr h = { .msg_name = &m->dst, .msg_namelen = iq_addr_len(&m->dst),
							.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
		h.msg_controllen = iq_udp_cmsg(cbuf, sizeof(cbuf), &m->src, 0);
		if (!h.msg_controllen)
			h.msg_control = NULL;
		if (sendmsg(dp->udp[m->sock], &h, MSG_DONTWAIT) < 0)
			dp->st.drop_udp_send++;
		else {
			dp->st.udp_tx_msgs++;
			dp->st.esp_tx_packets++;
		}
	}
}

void iq_tx_flush(struct iq_dp *dp)
{
	while (dp->tx_sent < dp->tx_n) {
		int i = dp->tx_sent, j = i, r, k, sock = dp->txm[i].sock;

		while (j < dp->tx_n && dp->txm[j].sock == sock) {
			build_msg(dp, j);
			j++;
		}
		if (iq_offload(dp, IQ_OFF_MMSG))
			r = sendmmsg(dp->udp[sock], &dp->tx_mm[i], j - i, MSG_DONTWAIT);
		else
			r = sendmsg(dp->udp[sock], &dp->tx_mm[i].msg_hdr, MSG_DONTWAIT) < 0 ? -1 : 1;
		if (r > 0) {
			for (k = i; k < i + r; k++)
				dp->st.esp_tx_packets += dp->txm[k].nseg;
			dp->st.udp_tx_msgs += r;
			dp->tx_sent += r;
			continue;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
			/* back-pressure: keep the rest, stop reading the TUN until POLLOUT */
			dp->tx_blocked = true;
			dp->st.tx_blocked++;
			return;
		}
		if (errno == EINTR)
			continue;
		if (dp->txm[i].nseg > 1 && (errno == EIO || errno == EINVAL || errno == EMSGSIZE)) {
			iq_log(dp, IQ_LOG_INFO, "UDP GSO send failed (%s), sending single packets",
				   strerror(errno));
			dp->gso_ok = false;
			tx_send_split(dp, &dp->txm[i]);
		} else {
			dp->st.drop_udp_send += dp->txm[i].nseg;
		}
		dp->tx_sent++;
	}
	dp->tx_n = dp->tx_sent = 0;
	dp->tx_used = 0;
	dp->tx_blocked = false;
}

static void acquire(struct iq_dp *dp, uint32_t reqid)
{
	int i, slot = 0;

	if (!dp->cfg.acquire)
		return;
	for (i = 0; i < 16; i++) {
		if (dp->acq[i].reqid == reqid) {
			if (dp->now_ms - dp->acq[i].at_ms < 1000)
				return;
			slot = i;
			break;
		}
		if (dp->acq[i].at_ms < dp->acq[slot].at_ms)
			slot = i;
	}
	dp->acq[slot].reqid = reqid;
	dp->acq[slot].at_ms = dp->now_ms;
	dp->cfg.acquire(dp->cfg.user, reqid);
}

static void tx_packet(struct iq_dp *dp, uint8_t *buf, size_t n)
{
	struct virtio_net_hdr vh, *vhp = NULL;
	uint8_t *pkt = buf, nh;
	size_t len = n;
	struct iq_seg seg;
	struct iq_flow f;
	struct iq_policy *pol;
	struct iq_sa *sa;
	int nseg, i;

	if (dp->tun_vnet) {
		if (n < (size_t)IQ_VNET_LEN) {
			dp->st.drop_bad_packet++;
			return;
		}
		memcpy(&vh, buf, IQ_VNET_LEN);
		vhp = &vh;
		pkt += IQ_VNET_LEN;
		len -= IQ_VNET_LEN;
	}
	nseg = iq_seg_begin(&seg, vhp, pkt, len);
	if (nseg < 0 || iq_flow_parse(pkt, seg.len, &f)) {
		dp->st.drop_bad_packet++;
		return;
	}
	dp->st.tun_rx_packets++;
	if (seg.gso_size)
		dp->st.tun_rx_superpackets++;
	pol = iq_spd_out(dp, &f);
	if (!pol) {
		dp->st.drop_no_policy += nseg;
		return;
	}
	sa = iq_policy_sa(dp, pol);
	if (!sa) {
		dp->st.drop_no_sa += nseg;
		acquire(dp, pol->cfg.reqid);
		return;
	}
	nh = f.family == AF_INET ? IQ_NH_IPV4 : IQ_NH_IPV6;
	for (i = 0; i < nseg; i++) {
		size_t ilen = iq_seg_len(&seg, i), esp_len = iq_esp_len(ilen);
		struct iq_aead *a;
		uint8_t iv[8], *e;
		uint64_t seq;

		if (iq_sa_hard_limit(sa)) {
			dp->st.drop_hard_limit++;
			continue;
		}
		if (!sa->esn && sa->seq >= UINT32_MAX) {
			dp->st.drop_seq_overflow++;
			continue;
		}
		if (sa->rot.enabled) {
			uint32_t epoch, before = sa->rot.windows;
			uint64_t reuse = sa->rot.reuse_packets;

			a = iq_rot_tx(&sa->rot, &epoch);
			if (!a) {
				dp->st.drop_stall++;
				continue;
			}
			if (sa->rot.windows != before) {
				dp->st.windows += sa->rot.windows - before;
				dp->keys_check = true;
			}
			dp->st.reuse_packets += sa->rot.reuse_packets - reuse;
			seq = ++sa->seq;
			/* the IV names the window: epoch || low 32 bits of the sequence number */
			iq_put32(iv, epoch);
			iq_put32(iv + 4, (uint32_t)seq);
		} else {
			a = &sa->aead;
			seq = ++sa->seq;
			iq_put32(iv, seq >> 32);
			iq_put32(iv + 4, (uint32_t)seq);
		}
		e = tx_reserve(dp, sa, esp_len);
		if (!e) {
			dp->st.drop_udp_send++;
			continue;
		}
		iq_seg_write(&seg, i, e + IQ_ESP_OFF);
		if (!iq_esp_seal(a, e, ilen, nh, sa->spi, seq, sa->esn, iv)) {
			tx_unreserve(dp, esp_len);
			dp->st.drop_bad_packet++;
			continue;
		}
		sa->bytes += ilen;
		sa->packets++;
		sa->last_use = dp->now_s;
	}
}

void iq_tx_drain(struct iq_dp *dp)
{
	int budget = iq_offload(dp, IQ_OFF_MMSG) ? TUN_BUDGET : 1, i;
	ssize_t n;

	for (i = 0; i < budget; i++) {
		if (!tx_room(dp)) {
			iq_tx_flush(dp);
			if (dp->tx_blocked)
				break;
		}
		n = read(dp->tun_fd, dp->rbuf, RBUF_LEN);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				iq_log(dp, IQ_LOG_ERROR, "TUN read: %s", strerror(errno));
			break;
		}
		if (n == 0)
			break;
		tx_packet(dp, dp->rbuf, n);
		iq_keys_between_packets(dp);
	}
	iq_tx_flush(dp);
}
