/* SPDX-License-Identifier: GPL-2.0-or-later */
/* ctl.h - control commands and the mailbox that runs them on the loop thread. */
#ifndef IQ_CTL_H
#define IQ_CTL_H

#include "dp.h"

enum iq_cmd_type {
	CMD_SA_ADD, CMD_SA_UPDATE, CMD_SA_QUERY, CMD_SA_DEL, CMD_SA_FLUSH, CMD_SPI_ALLOC,
	CMD_POL_ADD, CMD_POL_DEL, CMD_POL_FLUSH, CMD_STATS, CMD_STOP, CMD_N
};

struct iq_cmd {
	enum iq_cmd_type type;
	struct iq_sa *sa;                   /* CMD_SA_ADD: prepared SA; DEL: unlinked SA back */
	const struct iq_sa_id *id;
	const iq_addr_t *new_src, *new_dst;
	uint32_t new_reqid;
	struct iq_sa_stats *sa_stats;
	const struct iq_policy_cfg *pol;
	struct iq_policy *new_pol;
	struct iq_dp_stats *dp_stats;
	uint32_t *spi;
	struct iq_sa *freelist;             /* SAs to free in the caller's thread */
	struct iq_policy *polfree;
	int ret;
	iq_err_t *err;
	bool done;
};

/* Run a command on the loop (or directly when the loop does not run or we are the loop), then
 * free what it unlinked; returns c->ret. */
int iq_ctl_call(struct iq_dp *dp, struct iq_cmd *c);
/* loop thread, the mailbox's eventfd is readable: run the posted command */
void iq_ctl_run(struct iq_dp *dp);
/* with ctl_lock held: run the posted command, if any, and wake its caller */
void iq_ctl_serve_locked(struct iq_dp *dp);

#endif
