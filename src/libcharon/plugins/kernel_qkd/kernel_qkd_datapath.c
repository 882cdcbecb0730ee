/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "kernel_qkd_datapath.h"
#include "kernel_qkd_qkid.h"
#include "kernel_qkd_save_keys.h"

#include <daemon.h>
#include <threading/mutex.h>

/** Defaults */
#define DEFAULT_TUN_NAME "ipsecqkd%d"
#define DEFAULT_TUN_MTU 1400
#define DEFAULT_QKID_SOCKET "/run/qkid/qkid.sock"
#define DEFAULT_QKID_TIMEOUT 2000
#define DEFAULT_QKID_WAIT 200

typedef struct private_kernel_qkd_datapath_t private_kernel_qkd_datapath_t;

/**
 * Private data of the datapath.
 */
struct private_kernel_qkd_datapath_t {

	/**
	 * Public interface.
	 */
	kernel_qkd_datapath_t public;

	/**
	 * libipsec-qkd datapath
	 */
	iq_dp_t *dp;

	/**
	 * TUN device name
	 */
	char *tun_name;

	/**
	 * NAT-T port
	 */
	uint16_t natt_port;

	/**
	 * Listening on IPv6 too
	 */
	bool ipv6;

	/**
	 * Rotation per peer
	 */
	kernel_qkd_peers_t *peers;

	/**
	 * Rotation announcements of the peers, registered on the bus
	 */
	kernel_qkd_agreement_t *agreement;

	/**
	 * Test-only key export, NULL unless charon.plugins.kernel-qkd.save_keys is set
	 */
	kernel_qkd_save_keys_t *save_keys;

	/**
	 * Test and benchmark trace of the key economy, NULL unless
	 * charon.plugins.kernel-qkd.rpk_trace is set (written on the datapath's loop thread only)
	 */
	FILE *rpk_trace;

	/**
	 * Protects the IKE handler
	 */
	mutex_t *mutex;

	/**
	 * Receiver of IKE datagrams on the NAT-T port
	 */
	kernel_qkd_ike_handler_t ike_handler;

	/**
	 * Data for ike_handler
	 */
	void *ike_data;
};

/*
 * Described in header
 */
bool kernel_qkd_host2addr(host_t *host, iq_addr_t *addr)
{
	memset(addr, 0, sizeof(*addr));
	switch (host->get_family(host))
	{
		case AF_INET:
			memcpy(&addr->in4, host->get_sockaddr(host), sizeof(addr->in4));
			return TRUE;
		case AF_INET6:
			memcpy(&addr->in6, host->get_sockaddr(host), sizeof(addr->in6));
			return TRUE;
		default:
			return FALSE;
	}
}

/*
 * Described in header
 */
host_t *kernel_qkd_addr2host(const iq_addr_t *addr)
{
	switch (addr->sa.sa_family)
	{
		case AF_INET:
		case AF_INET6:
			return host_create_from_sockaddr((sockaddr_t*)&addr->sa);
		default:
			return NULL;
	}
}

/**
 * Library log lines go to charon's KNL log group.
 */
static void dp_log(void *user, enum iq_log_level level, const char *msg)
{
	switch (level)
	{
		case IQ_LOG_ERROR:
		case IQ_LOG_INFO:
			DBG1(DBG_KNL, "kernel-qkd: %s", msg);
			break;
		default:
			DBG2(DBG_KNL, "kernel-qkd: %s", msg);
			break;
	}
}

/**
 * One rpk_trace sample as a CSV line (the loop thread; a line-buffered file, ~10 lines/s per SA).
 */
static void dp_rpk_trace(void *user, const struct iq_rpk_sample *s)
{
	private_kernel_qkd_datapath_t *this = user;

	fprintf(this->rpk_trace, "%llu,%08x,%s,%llu,%u,%u,%u,%llu,%llu,%llu,%llu,%llu,%.3f,%.3f\n",
			(unsigned long long)s->t_ms, s->spi, s->inbound ? "in" : "out",
			(unsigned long long)s->packets, s->rpk, s->level, s->target,
			(unsigned long long)s->keys_stored, (unsigned long long)s->windows,
			(unsigned long long)s->beyond_rpk, (unsigned long long)s->stall_drops,
			(unsigned long long)s->nokey_drops, s->share_milli / 1000.0,
			s->pps_milli / 1000.0);
}

/**
 * Open the rpk_trace file if the setting asks for one: appended to, created with mode 0600.
 */
static FILE *open_rpk_trace()
{
	char *path;
	FILE *f;
	int fd;

	path = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.rpk_trace", NULL,
								  lib->ns);
	if (!path || !*path)
	{
		return NULL;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	f = fd >= 0 ? fdopen(fd, "a") : NULL;
	if (!f)
	{
		DBG1(DBG_KNL, "kernel-qkd: cannot open rpk_trace file %s: %s; no trace", path,
			 strerror(errno));
		if (fd >= 0)
		{
			close(fd);
		}
		return NULL;
	}
	setlinebuf(f);
	if (ftell(f) == 0)
	{
		fprintf(f, "t_ms,spi,dir,packets,rpk,level,target,keys_stored,windows,beyond_rpk,"
				"stall_drops,nokey_drops,share,pps\n");
	}
	DBG1(DBG_KNL, "kernel-qkd: tracing the key economy of rotating SAs every 100 ms to %s "
		 "(rpk_trace, for tests and benchmarks)", path);
	return f;
}

/**
 * A lifetime ran out: charon rekeys (soft) or deletes (hard) the CHILD_SA.
 */
static void dp_expire(void *user, uint32_t reqid, uint32_t spi, const iq_addr_t *dst, bool hard)
{
	host_t *host;

	host = kernel_qkd_addr2host(dst);
	if (!host)
	{
		return;
	}
	DBG1(DBG_KNL, "kernel-qkd: %s lifetime of SA %.8x (reqid {%u}) reached",
		 hard ? "hard" : "soft", spi, reqid);
	charon->kernel->expire(charon->kernel, IPPROTO_ESP, htonl(spi), host, hard);
	host->destroy(host);
}

/**
 * Traffic for a policy without SA (a trap policy): charon negotiates the CHILD_SA.
 */
static void dp_acquire(void *user, uint32_t reqid)
{
	kernel_acquire_data_t data = {};

	charon->kernel->acquire(charon->kernel, reqid, &data);
}

/**
 * IKE datagram on the NAT-T port: hand it to the registered socket.
 */
static void dp_ike_recv(void *user, const iq_addr_t *src, const iq_addr_t *dst,
						const uint8_t *data, size_t len)
{
	private_kernel_qkd_datapath_t *this = user;
	host_t *from, *to;

	from = kernel_qkd_addr2host(src);
	to = kernel_qkd_addr2host(dst);
	if (from && to)
	{
		if (!to->get_port(to))
		{	/* datagram to the socket's own port */
			to->set_port(to, this->natt_port);
		}
		this->mutex->lock(this->mutex);
		if (this->ike_handler)
		{
			this->ike_handler(this->ike_data, from, to, chunk_create((u_char*)data, len));
		}
		this->mutex->unlock(this->mutex);
	}
	DESTROY_IF(from);
	DESTROY_IF(to);
}

/**
 * Parse the offload setting: "all", "none" or a list of steps, each optionally prefixed with
 * '!' to switch it off ("all, !udp_gro").
 */
static bool parse_offload(char *value, uint32_t *offload)
{
	static const struct {
		char *name;
		uint32_t bit;
	} steps[] = {
		{ "all", IQ_OFF_ALL },
		{ "none", 0 },
		{ "mmsg", IQ_OFF_MMSG },
		{ "tun_tso", IQ_OFF_TUN_TSO },
		{ "tun_uso", IQ_OFF_TUN_USO },
		{ "udp_gso", IQ_OFF_UDP_GSO },
		{ "udp_gro", IQ_OFF_UDP_GRO },
		{ "tun_gro", IQ_OFF_TUN_GRO },
	};
	enumerator_t *enumerator;
	char *token;
	bool ok = TRUE, off;
	int i;

	*offload = 0;
	enumerator = enumerator_create_token(value, ",", " ");
	while (ok && enumerator->enumerate(enumerator, &token))
	{
		off = token[0] == '!';
		if (off)
		{
			token++;
		}
		ok = FALSE;
		for (i = 0; i < countof(steps); i++)
		{
			if (streq(token, steps[i].name))
			{
				if (off)
				{
					*offload &= ~steps[i].bit;
				}
				else
				{
					*offload |= steps[i].bit;
				}
				ok = TRUE;
				break;
			}
		}
	}
	enumerator->destroy(enumerator);
	return ok;
}

/**
 * Create the key provider for rotating SAs, NULL if none rotates (or on error, logged).
 */
static struct iq_key_provider *create_key_provider(private_kernel_qkd_datapath_t *this)
{
	struct iq_key_provider *keys;
	char *type, *socket, *seed;
	int timeout, wait;

	if (!this->peers->any_rotation(this->peers))
	{
		return NULL;
	}
	type = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.key_provider", "qkid",
								  lib->ns);
	if (streq(type, "test"))
	{
		seed = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.test_seed", NULL,
									  lib->ns);
		if (!seed || !*seed)
		{
			DBG1(DBG_CFG, "kernel-qkd: key_provider = test needs test_seed; rotating SAs "
				 "will get no keys");
			return NULL;
		}
		DBG1(DBG_CFG, "kernel-qkd: WARNING: window keys come from the deterministic TEST "
			 "provider, not from QKD: for benchmarks only");
		keys = iq_test_provider_create(seed, 0, 0);
		if (keys && this->save_keys)
		{
			this->save_keys->hook(this->save_keys, keys);
		}
		return keys;
	}
	if (!streq(type, "qkid"))
	{
		DBG1(DBG_CFG, "kernel-qkd: unknown key_provider '%s' (qkid or test); rotating SAs "
			 "will get no keys", type);
		return NULL;
	}
	socket = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.qkid_socket",
					lib->settings->get_str(lib->settings, "%s.plugins.qkd.socket",
										   DEFAULT_QKID_SOCKET, lib->ns), lib->ns);
	timeout = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.qkid_timeout",
									 DEFAULT_QKID_TIMEOUT, lib->ns);
	wait = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.qkid_wait",
								  DEFAULT_QKID_WAIT, lib->ns);
	keys = kernel_qkd_qkid_provider_create(socket, timeout, wait);
	if (keys)
	{
		DBG1(DBG_CFG, "kernel-qkd: window keys from qkid at %s", socket);
		if (this->save_keys)
		{
			this->save_keys->hook(this->save_keys, keys);
		}
	}
	return keys;
}

METHOD(kernel_qkd_datapath_t, get_dp, iq_dp_t*,
	private_kernel_qkd_datapath_t *this)
{
	return this->dp;
}

METHOD(kernel_qkd_datapath_t, get_tun_name, char*,
	private_kernel_qkd_datapath_t *this)
{
	return this->tun_name;
}

METHOD(kernel_qkd_datapath_t, get_natt_port, uint16_t,
	private_kernel_qkd_datapath_t *this)
{
	return this->natt_port;
}

METHOD(kernel_qkd_datapath_t, has_ipv6, bool,
	private_kernel_qkd_datapath_t *this)
{
	return this->ipv6;
}

METHOD(kernel_qkd_datapath_t, get_peers, kernel_qkd_peers_t*,
	private_kernel_qkd_datapath_t *this)
{
	return this->peers;
}

METHOD(kernel_qkd_datapath_t, get_save_keys, kernel_qkd_save_keys_t*,
	private_kernel_qkd_datapath_t *this)
{
	return this->save_keys;
}

METHOD(kernel_qkd_datapath_t, get_agreement, kernel_qkd_agreement_t*,
	private_kernel_qkd_datapath_t *this)
{
	return this->agreement;
}

METHOD(kernel_qkd_datapath_t, set_ike_handler, void,
	private_kernel_qkd_datapath_t *this, kernel_qkd_ike_handler_t handler, void *data)
{
	this->mutex->lock(this->mutex);
	this->ike_handler = handler;
	this->ike_data = data;
	this->mutex->unlock(this->mutex);
}

METHOD(kernel_qkd_datapath_t, destroy, void,
	private_kernel_qkd_datapath_t *this)
{
	if (this->dp)
	{
		iq_dp_stop(this->dp);
		iq_dp_destroy(this->dp);
	}
	if (this->agreement)
	{
		charon->bus->remove_listener(charon->bus, &this->agreement->listener);
		this->agreement->destroy(this->agreement);
	}
	DESTROY_IF(this->peers);
	DESTROY_IF(this->save_keys);      /* after the datapath: its key helper calls the hook */
	if (this->rpk_trace)              /* after the datapath: its loop writes the trace */
	{
		fclose(this->rpk_trace);
	}
	this->mutex->destroy(this->mutex);
	free(this->tun_name);
	free(this);
}

/*
 * Described in header
 */
kernel_qkd_datapath_t *kernel_qkd_datapath_create()
{
	private_kernel_qkd_datapath_t *this;
	struct iq_dp_cfg cfg = {
		.tun_fd = -1,
		.ike_recv = dp_ike_recv,
		.expire = dp_expire,
		.acquire = dp_acquire,
		.log = dp_log,
	};
	iq_err_t err = {};
	char *offload;

	INIT(this,
		.public = {
			.get_dp = _get_dp,
			.get_tun_name = _get_tun_name,
			.get_natt_port = _get_natt_port,
			.has_ipv6 = _has_ipv6,
			.get_peers = _get_peers,
			.get_agreement = _get_agreement,
			.get_save_keys = _get_save_keys,
			.set_ike_handler = _set_ike_handler,
			.destroy = _destroy,
		},
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.natt_port = lib->settings->get_int(lib->settings, "%s.port_nat_t",
											CHARON_NATT_PORT, lib->ns),
		.ipv6 = lib->settings->get_bool(lib->settings, "%s.plugins.kernel-qkd.ipv6", TRUE,
										lib->ns),
		.peers = kernel_qkd_peers_create(),
		.save_keys = kernel_qkd_save_keys_create(),
		.rpk_trace = open_rpk_trace(),
	);
	this->agreement = kernel_qkd_agreement_create(this->peers);
	charon->bus->add_listener(charon->bus, &this->agreement->listener);
	cfg.user = this;
	if (this->rpk_trace)
	{
		cfg.rpk_trace = dp_rpk_trace;
	}

	if (!this->natt_port)
	{
		DBG1(DBG_KNL, "kernel-qkd: charon.port_nat_t = 0 (random) is not supported; using %d",
			 CHARON_NATT_PORT);
		this->natt_port = CHARON_NATT_PORT;
	}
	cfg.tun_name = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.tun_name",
										  DEFAULT_TUN_NAME, lib->ns);
	cfg.tun_mtu = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.tun_mtu",
										 DEFAULT_TUN_MTU, lib->ns);
	cfg.wan_mtu = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.wan_mtu", 0,
										 lib->ns);
	cfg.sock_buf = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.socket_buffer",
										  0, lib->ns);
	cfg.log_level = lib->settings->get_int(lib->settings, "%s.plugins.kernel-qkd.log_level",
										   IQ_LOG_INFO, lib->ns);
	offload = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.offload", "all",
									 lib->ns);
	if (!parse_offload(offload, &cfg.offload))
	{
		DBG1(DBG_CFG, "kernel-qkd: invalid offload '%s' (all, none or a list of mmsg, "
			 "tun_tso, tun_uso, udp_gso, udp_gro, tun_gro, each may be prefixed with '!'); "
			 "using all", offload);
		cfg.offload = IQ_OFF_ALL;
	}
	cfg.bind4.in4.sin_family = AF_INET;
	cfg.bind4.in4.sin_port = htons(this->natt_port);
	if (this->ipv6)
	{
		cfg.bind6.in6.sin6_family = AF_INET6;
		cfg.bind6.in6.sin6_port = htons(this->natt_port);
	}
	cfg.keys = create_key_provider(this);

	if (iq_dp_create(&cfg, &this->dp, &err) != 0 && this->ipv6)
	{
		DBG1(DBG_KNL, "kernel-qkd: %s; trying again without IPv6", err.msg);
		this->ipv6 = FALSE;
		memset(&cfg.bind6, 0, sizeof(cfg.bind6));
		cfg.keys = create_key_provider(this);
		this->dp = NULL;
		iq_dp_create(&cfg, &this->dp, &err);
	}
	if (!this->dp)
	{
		DBG1(DBG_KNL, "kernel-qkd: creating the datapath failed: %s", err.msg);
		destroy(this);
		return NULL;
	}
	this->tun_name = strdup(iq_dp_tun_name(this->dp));
	if (iq_dp_start(this->dp, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: starting the datapath failed: %s", err.msg);
		destroy(this);
		return NULL;
	}
	DBG1(DBG_KNL, "kernel-qkd: datapath up: TUN %s (MTU %d), ESP and IKE on UDP port %u%s, "
		 "offload 0x%x", this->tun_name, cfg.tun_mtu, this->natt_port,
		 this->ipv6 ? " (IPv4 and IPv6)" : " (IPv4)", cfg.offload);
	return &this->public;
}
