/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ctl.c - control of the datapath: the public SA, policy and statistics calls, each a command
 * that runs on the loop thread through a one-slot mailbox (ctl_lock + eventfd, see dp.h), and
 * one function per command type, found through a table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>

#include "ctl.h"
#include "dp.h"
#include "keys.h"

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

static void sa_add(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa_id id = { .dst = c->sa->dst, .spi = c->sa->spi };

	if (iq_sad_find(dp, &id) || (c->sa->inbound && iq_sad_in(dp, c->sa->spi))) {
		iq_seterr(c->err, "SA %08x exists", c->sa->spi);
		c->ret = -EEXIST;
		c->freelist = c->sa;
		return;
	}
	if (c->sa->rot.enabled && !dp->kp) {
		iq_seterr(c->err, "SA %08x: rotation needs a key provider", c->sa->spi);
		c->ret = -EINVAL;
		c->freelist = c->sa;
		return;
	}
	c->sa->installed_ms = dp->now_ms ? dp->now_ms : iq_now_ms();
	iq_sad_link(dp, c->sa);
	dp->keys_check = true;
	iq_keys_open(dp, c->sa);
	iq_log(dp, IQ_LOG_INFO, "SA %08x %s reqid %u installed%s", c->sa->spi,
		   c->sa->inbound ? "in" : "out", c->sa->reqid,
		   c->sa->rot.enabled ? " with key rotation" : "");
}

static void sa_update(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa = find_sa(dp, c);

	if (!sa)
		return;
	if ((c->new_src && c->new_src->sa.sa_family != AF_INET &&
		 c->new_src->sa.sa_family != AF_INET6) ||
		(c->new_dst && c->new_dst->sa.sa_family != AF_INET &&
		 c->new_dst->sa.sa_family != AF_INET6)) {
		iq_seterr(c->err, "SA %08x: bad new address", c->id->spi);
		c->ret = -EINVAL;
		return;
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
}

static void sa_query(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa = find_sa(dp, c);

	if (sa)
		iq_sa_fill_stats(sa, c->sa_stats);
}

static void sa_del(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa = find_sa(dp, c);

	if (!sa)
		return;
	iq_sad_unlink(dp, sa);
	iq_keys_close(dp, sa);
	c->freelist = sa;
}

static void sa_flush(struct iq_dp *dp, struct iq_cmd *c)
{
	struct iq_sa *sa;

	c->freelist = iq_sad_flush(dp);
	for (sa = c->freelist; sa; sa = sa->next)
		iq_keys_close(dp, sa);
}

static void spi_alloc(struct iq_dp *dp, struct iq_cmd *c)
{
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
}

static void pol_add(struct iq_dp *dp, struct iq_cmd *c)
{
	iq_spd_add(dp, c->pol, &c->new_pol);
}

static void pol_del(struct iq_dp *dp, struct iq_cmd *c)
{
	c->ret = iq_spd_del(dp, c->pol, &c->polfree);
	if (c->ret)
		iq_seterr(c->err, "policy not found");
}

static void pol_flush(struct iq_dp *dp, struct iq_cmd *c)
{
	c->polfree = iq_spd_flush(dp);
}

static void stats(struct iq_dp *dp, struct iq_cmd *c)
{
	*c->dp_stats = dp->st;
	c->dp_stats->tun_tx_superpackets = dp->gro.superframes;
}

static void stop(struct iq_dp *dp, struct iq_cmd *c)
{
	(void)c;
	dp->stop_req = true;
}

static void (*const exec[CMD_N])(struct iq_dp *dp, struct iq_cmd *c) = {
	[CMD_SA_ADD] = sa_add,
	[CMD_SA_UPDATE] = sa_update,
	[CMD_SA_QUERY] = sa_query,
	[CMD_SA_DEL] = sa_del,
	[CMD_SA_FLUSH] = sa_flush,
	[CMD_SPI_ALLOC] = spi_alloc,
	[CMD_POL_ADD] = pol_add,
	[CMD_POL_DEL] = pol_del,
	[CMD_POL_FLUSH] = pol_flush,
	[CMD_STATS] = stats,
	[CMD_STOP] = stop,
};

static void exec_cmd(struct iq_dp *dp, struct iq_cmd *c)
{
	c->ret = 0;
	exec[c->type](dp, c);
}

int iq_ctl_call(struct iq_dp *dp, struct iq_cmd *c)
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

void iq_ctl_serve_locked(struct iq_dp *dp)
{
	if (dp->cmd) {
		exec_cmd(dp, dp->cmd);
		dp->cmd->done = true;
		dp->cmd = NULL;
		pthread_cond_broadcast(&dp->ctl_cond);
	}
}

void iq_ctl_run(struct iq_dp *dp)
{
	uint64_t v;

	if (read(dp->ctl_efd, &v, sizeof(v)) < 0) {
		/* spurious */
	}
	pthread_mutex_lock(&dp->ctl_lock);
	iq_ctl_serve_locked(dp);
	pthread_mutex_unlock(&dp->ctl_lock);
}

/* ---- public control calls ---- */

int iq_sa_add(iq_dp_t *dp, const struct iq_sa_cfg *cfg, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_ADD, .err = err };

	c.sa = iq_sa_prepare(cfg, err);     /* allocation and key setup outside the loop */
	if (!c.sa)
		return -EINVAL;
	return iq_ctl_call(dp, &c);
}

int iq_sa_update(iq_dp_t *dp, const struct iq_sa_id *id, const iq_addr_t *new_src,
				 const iq_addr_t *new_dst, uint32_t new_reqid, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_UPDATE, .id = id, .new_src = new_src,
						.new_dst = new_dst, .new_reqid = new_reqid, .err = err };
	return iq_ctl_call(dp, &c);
}

int iq_sa_query(iq_dp_t *dp, const struct iq_sa_id *id, struct iq_sa_stats *st, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_QUERY, .id = id, .sa_stats = st, .err = err };
	return iq_ctl_call(dp, &c);
}

int iq_sa_del(iq_dp_t *dp, const struct iq_sa_id *id, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_DEL, .id = id, .err = err };
	return iq_ctl_call(dp, &c);
}

int iq_sa_flush(iq_dp_t *dp, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SA_FLUSH, .err = err };
	return iq_ctl_call(dp, &c);
}

int iq_spi_alloc(iq_dp_t *dp, uint32_t *spi, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_SPI_ALLOC, .spi = spi, .err = err };
	return iq_ctl_call(dp, &c);
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
	return iq_ctl_call(dp, &c);
}

int iq_policy_del(iq_dp_t *dp, const struct iq_policy_cfg *pol, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_POL_DEL, .pol = pol, .err = err };

	if (pol->dir != IQ_DIR_IN && pol->dir != IQ_DIR_OUT) {
		iq_seterr(err, "invalid policy direction");
		return -EINVAL;
	}
	return iq_ctl_call(dp, &c);
}

int iq_policy_flush(iq_dp_t *dp, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_POL_FLUSH, .err = err };
	return iq_ctl_call(dp, &c);
}

int iq_dp_get_stats(iq_dp_t *dp, struct iq_dp_stats *st, iq_err_t *err)
{
	struct iq_cmd c = { .type = CMD_STATS, .dp_stats = st, .err = err };
	return iq_ctl_call(dp, &c);
}
