/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dp.c - the datapath: one run-to-completion loop that moves packets
 *   TUN -> (segment) -> ESP seal -> UDP (GSO batches, sendmmsg)
 *   UDP (GRO, recvmmsg) -> ESP open -> (coalesce) -> TUN
 * and executes control commands between batches.
 * (tx.c and rx.c move the packets, keys.c feeds rotating SAs their window keys.)
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
#include <netinet/udp.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <linux/if_tun.h>

#include <openssl/crypto.h>

#include "dp.h"
#include "keys.h"
#include "lifetime.h"
#include "rx.h"
#include "tx.h"

/* ---- small helpers ---- */

uint64_t iq_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
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

/* ---- control commands ---- */

/* The SA a control command names, or NULL with the command's error set. */
static struct iq_sa *find_sa(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa = iq_sad_find(dp, c->id);

	if (!sa) {
		iq_seterr(c->err, "SA %08x not found", c->id->spi);
		c->ret = -ENOENT;
	}
	return sa;
}

/* A new outer address; port 0 keeps the old encapsulation port (same offset in IPv4/IPv6). */
static void move_addr(iq_addr_t *addr, const iq_addr_t *to)
{
	uint16_t port = addr->in4.sin_port;

	*addr = *to;
	if (!addr->in4.sin_port)
		addr->in4.sin_port = port;
}

static void exec_cmd(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa;

	c->ret = 0;
	switch (c->type) {
	case CMD_SA_ADD: {
		struct iq_sa_id id = { .dst = c->sa->dst, .spi = c->sa->spi };
		if (iq_sad_find(dp, &id) || (c->sa->inbound && iq_sad_in(dp, c->sa->spi))) {
			iq_seterr(c->err, "SA %08x exists", c->sa->spi);
			c->ret = -EEXIST;
			c->freelist = c->sa;
			break;
		}
		if (c->sa->rot.enabled && !dp->kp) {
			iq_seterr(c->err, "SA %08x: rotation needs a key provider", c->sa->spi);
			c->ret = -EINVAL;
			c->freelist = c->sa;
			break;
		}
		c->sa->installed_ms = dp->now_ms ? dp->now_ms : iq_now_ms();
		iq_sad_link(dp, c->sa);
		dp->keys_check = true;
		iq_keys_open(dp, c->sa);
		iq_log(dp, IQ_LOG_INFO, "SA %08x %s reqid %u installed%s", c->sa->spi,
			   c->sa->inbound ? "in" : "out", c->sa->reqid,
			   c->sa->rot.enabled ? " with key rotation" : "");
		break;
	}
	case CMD_SA_UPDATE:
		if (!(sa = find_sa(dp, c)))
			break;
		if ((c->new_src && c->new_src->sa.sa_family != AF_INET &&
			 c->new_src->sa.sa_family != AF_INET6) ||
			(c->new_dst && c->new_dst->sa.sa_family != AF_INET &&
			 c->new_dst->sa.sa_family != AF_INET6)) {
			iq_seterr(c->err, "SA %08x: bad new address", c->id->spi);
			c->ret = -EINVAL;
			break;
		}
		if (c->new_src)
			move_addr(&sa->src, c->new_src);
		if (c->new_dst) {
			move_addr(&sa->dst, c->new_dst);
			sa->sock = sa->dst.sa.sa_family == AF_INET6 ? 1 : 0;
		}
		if (c->new_reqid)
			sa->reqid = c->new_reqid;
		dp->sa_gen++;
		break;
	case CMD_SA_QUERY:
		if (!(sa = find_sa(dp, c)))
			break;
		iq_sa_fill_stats(sa, c->sa_stats);
		break;
	case CMD_SA_DEL:
		if (!(sa = find_sa(dp, c)))
			break;
		iq_sad_unlink(dp, sa);
		iq_keys_close(dp, sa);
		c->freelist = sa;
		break;
	case CMD_SA_FLUSH:
		c->freelist = iq_sad_flush(dp);
		for (sa = c->freelist; sa; sa = sa->next)
			iq_keys_close(dp, sa);
		break;
	case CMD_SPI_ALLOC: {
		int tries;
		for (tries = 0; tries < 100; tries++) {
			uint32_t spi;
			if (getrandom(&spi, sizeof(spi), 0) != sizeof(spi))
				break;
			if (spi >= 256 && !iq_sad_in(dp, spi)) {
				*c->spi = spi;
				return;
			}
		}
		iq_seterr(c->err, "no SPI available");
		c->ret = -EAGAIN;
		break;
	}
	case CMD_POL_ADD:
		iq_spd_add(dp, c->pol, &c->new_pol);
		break;
	case CMD_POL_DEL:
		c->ret = iq_spd_del(dp, c->pol, &c->polfree);
		if (c->ret)
			iq_seterr(c->err, "policy not found");
		break;
	case CMD_POL_FLUSH:
		c->polfree = iq_spd_flush(dp);
		break;
	case CMD_STATS:
		*c->dp_stats = dp->st;
		c->dp_stats->tun_tx_superpackets = dp->gro.superframes;
		break;
	case CMD_STOP:
		dp->stop_req = true;
		break;
	}
}

/* Run a command on the loop (or directly when the loop does not run or we are the loop). */
static int call(struct iq_dp *dp, struct iq_cmd *c)
{
	bool on_loop;

	pthread_mutex_lock(&dp->ctl_lock);
	on_loop = dp->running && pthread_equal(pthread_self(), dp->loop_tid);
	pthread_mutex_unlock(&dp->ctl_lock);
	if (on_loop) {
		exec_cmd(dp, c);
	} else {
		pthread_mutex_lock(&dp->call_lock);
		pthread_mutex_lock(&dp->ctl_lock);
		if (!dp->running) {
			exec_cmd(dp, c);
		} else {
			uint64_t one = 1;
			dp->cmd = c;
			if (write(dp->ctl_efd, &one, sizeof(one)) < 0) {
				/* counter saturated: the loop is awake */
			}
			while (!c->done)
				pthread_cond_wait(&dp->ctl_cond, &dp->ctl_lock);
		}
		pthread_mutex_unlock(&dp->ctl_lock);
		pthread_mutex_unlock(&dp->call_lock);
	}
	iq_sa_free_list(c->freelist);
	iq_policy_free_list(c->polfree);
	free(c->new_pol);          /* unused when an identical policy was only counted */
	return c->ret;
}

static void ctl_run(struct iq_dp *dp)
{
	uint64_t v;

	if (read(dp->ctl_efd, &v, sizeof(v)) < 0) {
		/* spurious */
	}
	pthread_mutex_lock(&dp->ctl_lock);
	if (dp->cmd) {
		exec_cmd(dp, dp->cmd);
		dp->cmd->done = true;
		dp->cmd = NULL;
		pthread_cond_broadcast(&dp->ctl_cond);
	}
	pthread_mutex_unlock(&dp->ctl_lock);
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
				ctl_run(dp);
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
	}
	pthread_mutex_lock(&dp->ctl_lock);
	if (dp->cmd) {
		exec_cmd(dp, dp->cmd);
		dp->cmd->done = true;
		dp->cmd = NULL;
		pthread_cond_broadcast(&dp->ctl_cond);
	}
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

	call(dp, &c);
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
			iq_seterr(err, "tun_fd %d: %s", cfg->tun_fd, strerror(errno));
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

/* ---- public control calls ---- */

int iq_sa_add(iq_dp_t *dp, const struct iq_sa_cfg *cfg, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_ADD, .err = err };

	c.sa = iq_sa_prepare(cfg, err);     /* allocation and key setup outside the loop */
	if (!c.sa)
		return -EINVAL;
	return call(dp, &c);
}

int iq_sa_update(iq_dp_t *dp, const struct iq_sa_id *id, const iq_addr_t *new_src,
				 const iq_addr_t *new_dst, uint32_t new_reqid, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_UPDATE, .id = id, .new_src = new_src,
						.new_dst = new_dst, .new_reqid = new_reqid, .err = err };
	return call(dp, &c);
}

int iq_sa_query(iq_dp_t *dp, const struct iq_sa_id *id, struct iq_sa_stats *st, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_QUERY, .id = id, .sa_stats = st, .err = err };
	return call(dp, &c);
}

int iq_sa_del(iq_dp_t *dp, const struct iq_sa_id *id, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_DEL, .id = id, .err = err };
	return call(dp, &c);
}

int iq_sa_flush(iq_dp_t *dp, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_FLUSH, .err = err };
	return call(dp, &c);
}

int iq_spi_alloc(iq_dp_t *dp, uint32_t *spi, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SPI_ALLOC, .spi = spi, .err = err };
	return call(dp, &c);
}

static bool ts_valid(const struct iq_ts *ts)
{
	size_t alen = ts->family == AF_INET ? 4 : 16;

	return (ts->family == AF_INET || ts->family == AF_INET6) &&
		   memcmp(ts->from, ts->to, alen) <= 0 && ts->port_from <= ts->port_to;
}

int iq_policy_add(iq_dp_t *dp, const struct iq_policy_cfg *pol, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_POL_ADD, .pol = pol, .err = err };

	if ((pol->dir != IQ_DIR_IN && pol->dir != IQ_DIR_OUT) || !ts_valid(&pol->src) ||
		!ts_valid(&pol->dst) || pol->src.family != pol->dst.family) {
		iq_seterr(err, "invalid policy (direction, family or ranges)");
		return -EINVAL;
	}
	c.new_pol = calloc(1, sizeof(*c.new_pol));
	if (!c.new_pol) {
		iq_seterr(err, "out of memory");
		return -ENOMEM;
	}
	return call(dp, &c);
}

int iq_policy_del(iq_dp_t *dp, const struct iq_policy_cfg *pol, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_POL_DEL, .pol = pol, .err = err };

	if (pol->dir != IQ_DIR_IN && pol->dir != IQ_DIR_OUT) {
		iq_seterr(err, "invalid policy direction");
		return -EINVAL;
	}
	return call(dp, &c);
}

int iq_policy_flush(iq_dp_t *dp, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_POL_FLUSH, .err = err };
	return call(dp, &c);
}

int iq_dp_get_stats(iq_dp_t *dp, struct iq_dp_stats *st, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_STATS, .dp_stats = st, .err = err };
	return call(dp, &c);
}
