/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dp.c - the datapath: one run-to-completion loop that moves packets
 *   TUN -> (segment) -> ESP seal -> UDP (GSO batches, sendmmsg)
 *   UDP (GRO, recvmmsg) -> ESP open -> (coalesce) -> TUN
 * and executes control commands between batches; its thread, creation and destruction.
 * tx.c and rx.c move the packets, keys.c feeds rotating SAs their window keys, lifetime.c
 * expires SAs, ctl.c runs the control calls; sad.c holds the SA and policy tables.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <linux/if_tun.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "dp.h"
#include "economy.h"
#include "ipseq_util.h"
#include "keys.h"
#include "lifetime.h"
#include "rx.h"
#include "tx.h"

/* ---- small helpers ---- */

uint64_t iq_now_ms(void)
{
	return ipseq_now_ms();
}

void iq_seterr(iq_err_t *err, const char *fmt, ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

void iq_log(struct iq_dp *dp, enum iq_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (lvl > dp->cfg.log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (dp->cfg.log)
		dp->cfg.log(dp->cfg.user, lvl, msg);
	else
		fprintf(stderr, "libipsec-qkd: %s\n", msg);
}

/* ---- the loop ---- */

int iq_dp_run(iq_dp_t *dp, iq_err_t *err)
{
	enum { P_CTL, P_TUN, P_UDP4, P_UDP6, P_KEYS, P_N };
	struct pollfd pfd[P_N];

	pthread_mutex_lock(&dp->ctl_lock);
	if (dp->running) {
		pthread_mutex_unlock(&dp->ctl_lock);
		iq_seterr(err, "datapath loop already runs");
		return -EBUSY;
	}
	dp->running = true;
	dp->loop_tid = pthread_self();
	pthread_mutex_unlock(&dp->ctl_lock);
	dp->now_ms = iq_now_ms();
	dp->last_rate_ms = dp->now_ms;
	iq_log(dp, IQ_LOG_INFO, "datapath on %s running, offloads 0x%x%s%s", dp->tun_name,
		   dp->cfg.offload, dp->gso_ok ? " udp-gso" : "", dp->gro_ok ? " udp-gro" : "");

	while (!dp->stop_req) {
		int n, t;

		pfd[P_CTL] = (struct pollfd){ .fd = dp->ctl_efd, .events = POLLIN };
		pfd[P_TUN] = (struct pollfd){ .fd = dp->tx_blocked ? -1 : dp->tun_fd, .events = POLLIN };
		for (t = 0; t < 2; t++)
			pfd[P_UDP4 + t] = (struct pollfd){ .fd = dp->udp[t],
				.events = POLLIN | (dp->tx_blocked ? POLLOUT : 0) };
		pfd[P_KEYS] = (struct pollfd){ .fd = dp->kp ? iq_kp_fd(dp->kp) : -1, .events = POLLIN };
		n = poll(pfd, P_N, 100);
		if (n < 0 && errno != EINTR) {
			iq_seterr(err, "poll: %s", strerror(errno));
			break;
		}
		dp->now_ms = iq_now_ms();
		dp->now_s = dp->now_ms / 1000;
		if (n > 0) {
			if (pfd[P_CTL].revents)
				iq_ctl_run(dp);
			if (pfd[P_KEYS].revents)
				iq_keys_take(dp, true);
			if (dp->tx_blocked &&
				((pfd[P_UDP4].revents & POLLOUT) || (pfd[P_UDP6].revents & POLLOUT)))
				iq_tx_flush(dp);
			if (pfd[P_TUN].revents & POLLIN)
				iq_tx_drain(dp);
			for (t = 0; t < 2; t++)
				if (pfd[P_UDP4 + t].revents & POLLIN)
					iq_rx_drain(dp, t);
		}
		/* prefetch when a window moved; every 100 ms anyway (retries after failures) */
		if (dp->now_ms - dp->last_maint_ms >= 100) {
			iq_keys_prefetch(dp);
			iq_lifetime_check(dp);
		} else if (dp->keys_check) {
			iq_keys_prefetch(dp);
		}
		if (dp->kp && dp->now_ms - dp->last_econ_ms >= IQ_ECON_CTL_MS)
			iq_economy_control(dp);
	}
	pthread_mutex_lock(&dp->ctl_lock);
	iq_ctl_serve_locked(dp);
	dp->running = false;
	pthread_mutex_unlock(&dp->ctl_lock);
	iq_log(dp, IQ_LOG_INFO, "datapath on %s stopped", dp->tun_name);
	return 0;
}

static void *loop_thread(void *arg)
{
	iq_dp_t *dp = arg;
	iq_err_t err = { { 0 } };

	if (iq_dp_run(dp, &err))
		iq_log(dp, IQ_LOG_ERROR, "datapath loop failed: %s", err.msg);
	return NULL;
}

int iq_dp_start(iq_dp_t *dp, iq_err_t *err)
{
	int ret;

	if (dp->threaded) {
		iq_seterr(err, "datapath already started");
		return -EBUSY;
	}
	dp->stop_req = false;
	ret = pthread_create(&dp->thread, NULL, loop_thread, dp);
	if (ret) {
		iq_seterr(err, "pthread_create: %s", strerror(ret));
		return -ret;
	}
	dp->threaded = true;
	/* wait until the loop owns the tables, so later calls go through the mailbox */
	for (int i = 0; i < 5000; i++) {
		bool r;
		pthread_mutex_lock(&dp->ctl_lock);
		r = dp->running;
		pthread_mutex_unlock(&dp->ctl_lock);
		if (r)
			return 0;
		usleep(1000);
	}
	iq_seterr(err, "datapath loop did not start");
	return -ETIMEDOUT;
}

void iq_dp_stop(iq_dp_t *dp)
{
	struct iq_cmd c = { .type = CMD_STOP };

	iq_ctl_call(dp, &c);
	if (dp->threaded) {
		pthread_join(dp->thread, NULL);
		dp->threaded = false;
	}
}

/* ---- create / destroy ---- */

int iq_dp_create(const struct iq_dp_cfg *cfg, iq_dp_t **out, iq_err_t *err)
{
	struct iq_dp *dp = calloc(1, sizeof(*dp));
	bool vnet;
	int ret = -EINVAL;

	if (!dp) {
		iq_seterr(err, "out of memory");
		if (cfg->keys && cfg->keys->destroy)
			cfg->keys->destroy(cfg->keys->ctx);
		return -ENOMEM;
	}
	dp->cfg = *cfg;
	dp->tun_fd = -1;
	dp->udp[0] = dp->udp[1] = -1;
	dp->ctl_efd = -1;
	pthread_mutex_init(&dp->ctl_lock, NULL);
	pthread_mutex_init(&dp->call_lock, NULL);
	pthread_cond_init(&dp->ctl_cond, NULL);
	if (!dp->cfg.tun_mtu)
		dp->cfg.tun_mtu = 1400;
	if (!dp->cfg.wan_mtu)
		dp->cfg.wan_mtu = 1500;
	if (!dp->cfg.sock_buf)
		dp->cfg.sock_buf = 4 << 20;
	if (!dp->cfg.bind4.sa.sa_family) {
		dp->cfg.bind4.in4.sin_family = AF_INET;
		dp->cfg.bind4.in4.sin_port = htons(4500);
	}
	if (!(dp->cfg.offload & IQ_OFF_TUN_TSO))
		dp->cfg.offload &= ~IQ_OFF_TUN_USO;

	/* the key provider first: from here on the datapath owns it */
	if (cfg->keys) {
		ret = iq_kp_create(cfg->keys, &dp->kp);
		if (ret) {
			iq_seterr(err, "key provider helper: %s", strerror(-ret));
			if (cfg->keys->destroy)
				cfg->keys->destroy(cfg->keys->ctx);
			goto fail;
		}
	}
	if (cfg->tun_fd >= 0) {
		int fl = fcntl(cfg->tun_fd, F_GETFL);
		if (fl < 0 || fcntl(cfg->tun_fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			ret = -errno;
			iq_seterr(err, "tun_fd %d: %s", cfg->tun_fd, strerror(-ret));
			goto fail;
		}
		dp->tun_fd = cfg->tun_fd;
		dp->tun_vnet = cfg->tun_fd_vnet;
		dp->tun_uso = cfg->tun_fd_vnet;
		snprintf(dp->tun_name, sizeof(dp->tun_name), "fd%d", cfg->tun_fd);
		if (!dp->tun_vnet)
			dp->cfg.offload &= ~(IQ_OFF_TUN_TSO | IQ_OFF_TUN_USO | IQ_OFF_TUN_GRO);
	} else {
		unsigned tunf = 0;
		vnet = dp->cfg.offload & (IQ_OFF_TUN_TSO | IQ_OFF_TUN_GRO);
		if (dp->cfg.offload & IQ_OFF_TUN_TSO)
			tunf |= TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
		if (dp->cfg.offload & IQ_OFF_TUN_USO)
			tunf |= TUN_F_USO4 | TUN_F_USO6;
		dp->tun_fd = iq_tun_open(cfg->tun_name, dp->cfg.tun_mtu, vnet, &tunf, dp->tun_name,
								 sizeof(dp->tun_name), err);
		dp->tun_uso = (tunf & TUN_F_USO4) != 0;
		if (dp->tun_fd < 0) {
			ret = -EIO;
			goto fail;
		}
		dp->tun_vnet = vnet;
		dp->own_tun = true;
	}
	dp->udp[0] = iq_udp_open(&dp->cfg.bind4, dp->cfg.sock_buf,
							 iq_offload(dp, IQ_OFF_UDP_GRO), &dp->gro_ok, err);
	if (dp->udp[0] < 0) {
		ret = -EIO;
		goto fail;
	}
	if (dp->cfg.bind6.sa.sa_family == AF_INET6) {
		bool g6;
		dp->udp[1] = iq_udp_open(&dp->cfg.bind6, dp->cfg.sock_buf,
								 iq_offload(dp, IQ_OFF_UDP_GRO), &g6, err);
		if (dp->udp[1] < 0) {
			ret = -EIO;
			goto fail;
		}
	}
	dp->gso_ok = iq_offload(dp, IQ_OFF_UDP_GSO);
	dp->ctl_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	dp->rbuf = malloc(RBUF_LEN);
	dp->txbuf = malloc(TX_BUF);
	dp->tx_mm = calloc(TX_MSGS, sizeof(*dp->tx_mm));
	dp->tx_iov = calloc(TX_MSGS, sizeof(*dp->tx_iov));
	dp->tx_cmsg = calloc(TX_MSGS, sizeof(*dp->tx_cmsg));
	dp->rxbuf = malloc((size_t)RX_SLOTS * RX_SLOT_LEN);
	if (dp->ctl_efd < 0 || !dp->rbuf || !dp->txbuf || !dp->tx_mm || !dp->tx_iov ||
		!dp->tx_cmsg || !dp->rxbuf ||
		iq_gro_init(&dp->gro, dp->tun_vnet && iq_offload(dp, IQ_OFF_TUN_GRO), iq_rx_tun_write,
				dp)) {
		iq_seterr(err, "out of memory");
		ret = -ENOMEM;
		goto fail;
	}
	/* UDP coalescing writes GSO_UDP_L4 frames: only where the TUN took USO (Linux >= 6.2) */
	dp->gro.udp = dp->gro.enabled && iq_offload(dp, IQ_OFF_TUN_USO) && dp->tun_uso;
	*out = dp;
	return 0;
fail:
	iq_dp_destroy(dp);
	return ret;
}

void iq_dp_destroy(iq_dp_t *dp)
{
	int d;

	if (!dp)
		return;
	if (dp->threaded)
		iq_dp_stop(dp);
	iq_kp_destroy(dp->kp);          /* joins the helper before SAs go */
	iq_sa_free_list(iq_sad_flush(dp));
	iq_policy_free_list(iq_spd_flush(dp));
	if (dp->own_tun && dp->tun_fd >= 0)
		close(dp->tun_fd);
	for (d = 0; d < 2; d++)
		if (dp->udp[d] >= 0)
			close(dp->udp[d]);
	if (dp->ctl_efd >= 0)
		close(dp->ctl_efd);
	iq_gro_free(&dp->gro);
	if (dp->txbuf) {
		OPENSSL_cleanse(dp->txbuf, TX_BUF);  /* may hold plaintext of in-flight packets */
		free(dp->txbuf);
	}
	if (dp->rbuf) {
		OPENSSL_cleanse(dp->rbuf, RBUF_LEN);
		free(dp->rbuf);
	}
	if (dp->rxbuf) {
		OPENSSL_cleanse(dp->rxbuf, (size_t)RX_SLOTS * RX_SLOT_LEN);
		free(dp->rxbuf);
	}
	free(dp->tx_mm);
	free(dp->tx_iov);
	free(dp->tx_cmsg);
	pthread_mutex_destroy(&dp->ctl_lock);
	pthread_mutex_destroy(&dp->call_lock);
	pthread_cond_destroy(&dp->ctl_cond);
	free(dp);
}

const char *iq_dp_tun_name(iq_dp_t *dp)
{
	return dp->tun_name;
}

uint16_t iq_dp_udp_port(iq_dp_t *dp)
{
	iq_addr_t a;
	socklen_t l = sizeof(a);

	if (getsockname(dp->udp[0], &a.sa, &l) < 0)
		return 0;
	return ntohs(a.in4.sin_port);
}

uint16_t iq_dp_udp_port6(iq_dp_t *dp)
{
	iq_addr_t a;
	socklen_t l = sizeof(a);

	if (dp->udp[1] < 0 || getsockname(dp->udp[1], &a.sa, &l) < 0)
		return 0;
	return ntohs(a.in6.sin6_port);
}

