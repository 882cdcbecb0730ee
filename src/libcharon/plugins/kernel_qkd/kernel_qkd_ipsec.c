/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 *
 * Route and exclude-route handling follows strongSwan's kernel-libipsec plugin
 * (Copyright (C) 2012-2013 Tobias Brunner, Giuliano Grassi, Ralf Sager; secunet).
 */

#include "kernel_qkd_ipsec.h"
#include "kernel_qkd_datapath.h"

#include <daemon.h>
#include <threading/mutex.h>
#include <collections/linked_list.h>

/** Base of the pseudo-priority of policies (as libipsec and kernel-netlink) */
#define PRIO_BASE 384

typedef struct private_kernel_qkd_ipsec_t private_kernel_qkd_ipsec_t;

/**
 * Private data of the backend.
 */
struct private_kernel_qkd_ipsec_t {

	/**
	 * Public interface
	 */
	kernel_qkd_ipsec_t public;

	/**
	 * Datapath (TUN name, settings)
	 */
	kernel_qkd_datapath_t *datapath;

	/**
	 * libipsec-qkd datapath
	 */
	iq_dp_t *dp;

	/**
	 * Protects the lists below
	 */
	mutex_t *mutex;

	/**
	 * Installed SAs (sa_entry_t), for query_policy and logging
	 */
	linked_list_t *sas;

	/**
	 * Installed policies (policy_entry_t), with their routes
	 */
	linked_list_t *policies;

	/**
	 * Exclude routes (exclude_route_t)
	 */
	linked_list_t *excludes;

	/**
	 * Whether the remote TS may equal the IKE peer
	 */
	bool allow_peer_ts;
};

/**
 * An installed SA.
 */
typedef struct {
	/** SPI, host order */
	uint32_t spi;
	/** destination */
	host_t *dst;
	/** reqid */
	uint32_t reqid;
	/** inbound SA */
	bool inbound;
} sa_entry_t;

static void sa_entry_destroy(sa_entry_t *this)
{
	this->dst->destroy(this->dst);
	free(this);
}

CALLBACK(sa_entry_match, bool,
	sa_entry_t *entry, va_list args)
{
	uint32_t spi;
	host_t *dst;

	VA_ARGS_VGET(args, spi, dst);
	return entry->spi == spi && entry->dst->ip_equals(entry->dst, dst);
}

/**
 * Exclude route definition
 */
typedef struct {
	/** Destination address to exclude */
	host_t *dst;
	/** Source address for route */
	host_t *src;
	/** Nexthop exclude has been installed */
	host_t *gtw;
	/** References to this route */
	int refs;
} exclude_route_t;

static void exclude_route_destroy(exclude_route_t *this)
{
	this->dst->destroy(this->dst);
	this->src->destroy(this->src);
	this->gtw->destroy(this->gtw);
	free(this);
}

CALLBACK(exclude_route_match, bool,
	exclude_route_t *current, va_list args)
{
	host_t *dst;

	VA_ARGS_VGET(args, dst);
	return dst->ip_equals(dst, current->dst);
}

/**
 * Installed routing entry
 */
typedef struct {
	/** Name of the interface the route is bound to */
	char *if_name;
	/** Source IP of the route */
	host_t *src_ip;
	/** Destination net */
	chunk_t dst_net;
	/** Destination net prefixlen */
	uint8_t prefixlen;
	/** Reference to exclude route, if any */
	exclude_route_t *exclude;
} route_entry_t;

static void route_entry_destroy(route_entry_t *this)
{
	free(this->if_name);
	DESTROY_IF(this->src_ip);
	chunk_free(&this->dst_net);
	free(this);
}

static bool route_entry_equals(route_entry_t *a, route_entry_t *b)
{
	if ((!a->src_ip && !b->src_ip) || (a->src_ip && b->src_ip &&
		 a->src_ip->ip_equals(a->src_ip, b->src_ip)))
	{
		return a->if_name && b->if_name && streq(a->if_name, b->if_name) &&
			   chunk_equals(a->dst_net, b->dst_net) && a->prefixlen == b->prefixlen;
	}
	return FALSE;
}

/**
 * Installed policy
 */
typedef struct {
	/** Direction */
	policy_dir_t dir;
	/** Traffic selectors */
	traffic_selector_t *src_ts, *dst_ts;
	/** reqid of the SAs it refers to */
	uint32_t reqid;
	/** Route installed for it (outbound only) */
	route_entry_t *route;
	/** References */
	int refs;
} policy_entry_t;

static void policy_entry_destroy(policy_entry_t *this)
{
	if (this->route)
	{
		route_entry_destroy(this->route);
	}
	this->src_ts->destroy(this->src_ts);
	this->dst_ts->destroy(this->dst_ts);
	free(this);
}

CALLBACK(policy_entry_match, bool,
	policy_entry_t *entry, va_list args)
{
	traffic_selector_t *src_ts, *dst_ts;
	policy_dir_t dir;

	VA_ARGS_VGET(args, src_ts, dst_ts, dir);
	return entry->dir == dir && entry->src_ts->equals(entry->src_ts, src_ts) &&
		   entry->dst_ts->equals(entry->dst_ts, dst_ts);
}

/**
 * Translate a traffic selector to the datapath's.
 */
static bool ts2iq(traffic_selector_t *ts, struct iq_ts *out)
{
	chunk_t from, to;

	memset(out, 0, sizeof(*out));
	switch (ts->get_type(ts))
	{
		case TS_IPV4_ADDR_RANGE:
			out->family = AF_INET;
			break;
		case TS_IPV6_ADDR_RANGE:
			out->family = AF_INET6;
			break;
		default:
			return FALSE;
	}
	from = ts->get_from_address(ts);
	to = ts->get_to_address(ts);
	if (from.len > sizeof(out->from) || to.len != from.len)
	{
		return FALSE;
	}
	memcpy(out->from, from.ptr, from.len);
	memcpy(out->to, to.ptr, to.len);
	out->proto = ts->get_protocol(ts);
	out->port_from = ts->get_from_port(ts);
	out->port_to = ts->get_to_port(ts);
	return TRUE;
}

/**
 * Pseudo-priority as libipsec and kernel-netlink compute it: lower value wins, more specific
 * selectors win.
 */
static uint32_t calculate_priority(policy_priority_t policy_priority,
								   traffic_selector_t *src, traffic_selector_t *dst)
{
	uint32_t priority = PRIO_BASE;
	uint16_t port;
	uint8_t mask, proto;
	host_t *net;

	switch (policy_priority)
	{
		case POLICY_PRIORITY_FALLBACK:
			priority <<= 1;
			/* fall-through */
		case POLICY_PRIORITY_ROUTED:
			priority <<= 1;
			/* fall-through */
		case POLICY_PRIORITY_DEFAULT:
			priority <<= 1;
			/* fall-through */
		case POLICY_PRIORITY_PASS:
			break;
	}
	src->to_subnet(src, &net, &mask);
	priority -= mask;
	proto = src->get_protocol(src);
	port = net->get_port(net);
	net->destroy(net);

	dst->to_subnet(dst, &net, &mask);
	priority -= mask;
	proto = max(proto, dst->get_protocol(dst));
	port = max(port, net->get_port(net));
	net->destroy(net);

	priority <<= 2;
	priority += port ? 0 : 2;
	priority += proto ? 0 : 1;
	return priority;
}

METHOD(kernel_ipsec_t, get_features, kernel_feature_t,
	private_kernel_qkd_ipsec_t *this)
{
	/* ESP travels in UDP on the datapath's socket, so charon floats IKE to the NAT-T port */
	return KERNEL_REQUIRE_UDP_ENCAPSULATION;
}

METHOD(kernel_ipsec_t, get_spi, status_t,
	private_kernel_qkd_ipsec_t *this, host_t *src, host_t *dst,
	uint8_t protocol, uint32_t *spi)
{
	iq_err_t err = {};
	uint32_t value;

	if (protocol != IPPROTO_ESP)
	{
		DBG1(DBG_KNL, "kernel-qkd: only ESP is supported, no SPI for protocol %u", protocol);
		return FAILED;
	}
	if (iq_spi_alloc(this->dp, &value, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: allocating SPI failed: %s", err.msg);
		return FAILED;
	}
	*spi = htonl(value);
	DBG2(DBG_KNL, "kernel-qkd: allocated SPI %.8x", value);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, get_cpi, status_t,
	private_kernel_qkd_ipsec_t *this, host_t *src, host_t *dst,
	uint16_t *cpi)
{
	return NOT_SUPPORTED;
}

/**
 * Check that the datapath can run an SA; logs why not.
 */
static bool sa_supported(kernel_ipsec_sa_id_t *id, kernel_ipsec_add_sa_t *data)
{
	uint32_t spi = ntohl(id->spi);

	if (id->proto != IPPROTO_ESP)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: only ESP is supported (not AH)", spi);
		return FALSE;
	}
	if (data->mode != MODE_TUNNEL)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: only tunnel mode is supported, not %N",
			 spi, ipsec_mode_names, data->mode);
		return FALSE;
	}
	if (data->ipcomp != IPCOMP_NONE)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: IPComp is not supported", spi);
		return FALSE;
	}
	if (data->enc_alg != ENCR_AES_GCM_ICV16 ||
		(data->int_alg != AUTH_UNDEFINED && data->int_alg != 0) ||
		(data->enc_key.len != 16 + 4 && data->enc_key.len != 32 + 4))
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: %N with %u-bit key%s%s is not supported; "
			 "the datapath runs AES-GCM-16 with 128 or 256-bit keys only (esp_proposals = "
			 "aes128gcm16 or aes256gcm16)", spi, encryption_algorithm_names, data->enc_alg,
			 data->enc_key.len > 4 ? (u_int)(data->enc_key.len - 4) * 8 : 0,
			 data->int_alg && data->int_alg != AUTH_UNDEFINED ? " and integrity " : "",
			 data->int_alg && data->int_alg != AUTH_UNDEFINED ?
				enum_to_name(integrity_algorithm_names, data->int_alg) ?: "?" : "");
		return FALSE;
	}
	if (id->if_id)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: interface IDs (if_id) are not supported",
			 spi);
		return FALSE;
	}
	if (data->label)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: security labels are not supported", spi);
		return FALSE;
	}
	if (id->src->get_family(id->src) != id->dst->get_family(id->dst))
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: mixed address families", spi);
		return FALSE;
	}
	return TRUE;
}

/**
 * Both gateways rotate, or neither: an SA that only one side rotates drops every packet, so
 * it is refused here with the reason, before it is installed.
 */
static bool rotation_agreed(private_kernel_qkd_ipsec_t *this, struct iq_sa_cfg *cfg,
							host_t *remote)
{
	kernel_qkd_agreement_t *agreement = this->datapath->get_agreement(this->datapath);
	/* SAs are installed by the thread that has their IKE_SA checked out */
	bool peer_rotates = agreement->peer_rotates(agreement, charon->bus->get_sa(charon->bus));
	char *dir = cfg->inbound ? "inbound" : "outbound";

	if (cfg->rotation.enabled && !peer_rotates)
	{
		DBG1(DBG_KNL, "kernel-qkd: %s SA %.8x refused: ESP key rotation is on for peer '%s' "
			 "here (charon.plugins.kernel-qkd.peers.%s.rotation), but %H did not announce it; "
			 "both gateways must rotate, or neither", dir, cfg->spi, cfg->peer, cfg->peer, remote);
		return FALSE;
	}
	if (!cfg->rotation.enabled && peer_rotates)
	{
		DBG1(DBG_KNL, "kernel-qkd: %s SA %.8x refused: %H rotates ESP keys, but rotation is "
			 "off here for it (%s%s%s); both gateways must rotate, or neither",
			 dir, cfg->spi, remote,
			 cfg->peer ? "charon.plugins.kernel-qkd.peers." : "no kernel-qkd peer section",
			 cfg->peer ? cfg->peer : "", cfg->peer ? ".rotation" : "");
		return FALSE;
	}
	return TRUE;
}

METHOD(kernel_ipsec_t, add_sa, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_add_sa_t *data)
{
	kernel_qkd_save_keys_t *save_keys;
	kernel_qkd_peers_t *peers;
	const char *connection;
	struct iq_sa_cfg cfg = {};
	iq_err_t err = {};
	sa_entry_t *entry;
	host_t *remote;
	int ret;

	if (!sa_supported(id, data))
	{
		return FAILED;
	}
	if (!kernel_qkd_host2addr(id->src, &cfg.src) ||
		!kernel_qkd_host2addr(id->dst, &cfg.dst))
	{
		return FAILED;
	}
	/* the datapath always encapsulates (we require it); port 0 means the NAT-T port */
	if (!id->src->get_port(id->src))
	{
		cfg.src.in4.sin_port = htons(this->datapath->get_natt_port(this->datapath));
	}
	if (!id->dst->get_port(id->dst))
	{
		cfg.dst.in4.sin_port = htons(this->datapath->get_natt_port(this->datapath));
	}
	cfg.spi = ntohl(id->spi);
	cfg.reqid = data->reqid;
	cfg.mark_value = id->mark.value;
	cfg.mark_mask = id->mark.mask;
	cfg.inbound = data->inbound;
	cfg.esn = data->esn;
	cfg.replay_window = data->replay_window;
	cfg.enc_alg = IQ_ENC_AES_GCM_16;
	cfg.enc_key = data->enc_key.ptr;
	cfg.enc_key_len = data->enc_key.len;
	if (data->lifetime)
	{
		cfg.lifetime = (struct iq_lifetime){
			.soft_bytes = data->lifetime->bytes.rekey,
			.hard_bytes = data->lifetime->bytes.life,
			.soft_packets = data->lifetime->packets.rekey,
			.hard_packets = data->lifetime->packets.life,
			.soft_time = data->lifetime->time.rekey,
			.hard_time = data->lifetime->time.life,
		};
	}
	remote = data->inbound ? id->src : id->dst;
	peers = this->datapath->get_peers(this->datapath);
	cfg.peer = peers->lookup(peers, remote, &cfg.rotation);
	/* SAs are installed by the thread that has their IKE_SA checked out */
	connection = kernel_qkd_connection_name(charon->bus->get_sa(charon->bus));
	if (!peers->override(peers, connection, &cfg.rotation))
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: invalid settings in "
			 "charon.plugins.kernel-qkd.connections.%s", cfg.spi, connection);
		return FAILED;
	}
	if (cfg.rotation.enabled && !cfg.peer)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x refused: connection '%s' rotates ESP keys, but no "
			 "charon.plugins.kernel-qkd.peers section matches %H (window keys need a qkid "
			 "peer)", cfg.spi, connection, remote);
		return FAILED;
	}
	if (!rotation_agreed(this, &cfg, remote))
	{
		return FAILED;
	}

	ret = iq_sa_add(this->dp, &cfg, &err);
	if (ret != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: adding %s SA %.8x (reqid {%u}) failed: %s",
			 data->inbound ? "inbound" : "outbound", cfg.spi, cfg.reqid, err.msg);
		return FAILED;
	}
	save_keys = this->datapath->get_save_keys(this->datapath);
	if (save_keys)
	{
		save_keys->save_sa(save_keys, id, data, cfg.rotation.enabled);
	}
	if (cfg.rotation.enabled)
	{
		DBG1(DBG_KNL, "kernel-qkd: %s SA %.8x (reqid {%u}) %H === %H: ESP key rotation with "
			 "key peer '%s', rpk %u..%u, on exhaustion %s",
			 data->inbound ? "inbound" : "outbound", cfg.spi, cfg.reqid, id->src, id->dst,
			 cfg.peer, cfg.rotation.rpk_min, cfg.rotation.rpk_max,
			 cfg.rotation.exhaust == IQ_EXHAUST_STALL ? "stall" : "reuse");
	}
	else
	{
		DBG1(DBG_KNL, "kernel-qkd: %s SA %.8x (reqid {%u}) %H === %H: %u-bit AES-GCM, no "
			 "key rotation%s", data->inbound ? "inbound" : "outbound", cfg.spi, cfg.reqid,
			 id->src, id->dst, (u_int)(cfg.enc_key_len - 4) * 8,
			 cfg.peer ? "" : " (no kernel-qkd peer for this address)");
	}
	INIT(entry,
		.spi = cfg.spi,
		.dst = id->dst->clone(id->dst),
		.reqid = data->reqid,
		.inbound = data->inbound,
	);
	this->mutex->lock(this->mutex);
	this->sas->insert_last(this->sas, entry);
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

METHOD(kernel_ipsec_t, update_sa, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_update_sa_t *data)
{
	struct iq_sa_id sa_id = { .spi = ntohl(id->spi) };
	iq_addr_t new_src, new_dst;
	iq_err_t err = {};
	sa_entry_t *entry;

	if (!kernel_qkd_host2addr(id->dst, &sa_id.dst) ||
		!kernel_qkd_host2addr(data->new_src, &new_src) ||
		!kernel_qkd_host2addr(data->new_dst, &new_dst))
	{
		return FAILED;
	}
	if (!data->new_encap)
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x stays UDP encapsulated (the datapath always "
			 "encapsulates)", sa_id.spi);
	}
	if (iq_sa_update(this->dp, &sa_id, &new_src, &new_dst, data->new_reqid, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: updating SA %.8x failed: %s", sa_id.spi, err.msg);
		return FAILED;
	}
	DBG2(DBG_KNL, "kernel-qkd: SA %.8x moved to %#H === %#H", sa_id.spi, data->new_src,
		 data->new_dst);
	this->mutex->lock(this->mutex);
	if (this->sas->find_first(this->sas, sa_entry_match, (void**)&entry, sa_id.spi, id->dst))
	{
		entry->dst->destroy(entry->dst);
		entry->dst = data->new_dst->clone(data->new_dst);
		if (data->new_reqid)
		{
			entry->reqid = data->new_reqid;
		}
	}
	this->mutex->unlock(this->mutex);
	return SUCCESS;
}

/**
 * Query the datapath's counters of an SA.
 */
static bool query(private_kernel_qkd_ipsec_t *this, uint32_t spi, host_t *dst,
				  struct iq_sa_stats *st)
{
	struct iq_sa_id sa_id = { .spi = spi };
	iq_err_t err = {};

	if (!kernel_qkd_host2addr(dst, &sa_id.dst))
	{
		return FALSE;
	}
	if (iq_sa_query(this->dp, &sa_id, st, &err) != 0)
	{
		DBG2(DBG_KNL, "kernel-qkd: querying SA %.8x failed: %s", spi, err.msg);
		return FALSE;
	}
	return TRUE;
}

METHOD(kernel_ipsec_t, query_sa, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_query_sa_t *data, uint64_t *bytes, uint64_t *packets,
	time_t *time)
{
	struct iq_sa_stats st = {};

	if (!query(this, ntohl(id->spi), id->dst, &st))
	{
		return FAILED;
	}
	if (bytes)
	{
		*bytes = st.bytes;
	}
	if (packets)
	{
		*packets = st.packets;
	}
	if (time)
	{	/* both use CLOCK_MONOTONIC seconds */
		*time = st.last_use;
	}
	return SUCCESS;
}

METHOD(kernel_ipsec_t, del_sa, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_del_sa_t *data)
{
	struct iq_sa_id sa_id = { .spi = ntohl(id->spi) };
	struct iq_sa_stats st = {};
	iq_err_t err = {};
	sa_entry_t *entry;
	status_t status = SUCCESS;

	if (!kernel_qkd_host2addr(id->dst, &sa_id.dst))
	{
		return FAILED;
	}
	if (!query(this, sa_id.spi, id->dst, &st))
	{
		memset(&st, 0, sizeof(st));
	}
	if (iq_sa_del(this->dp, &sa_id, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: deleting SA %.8x failed: %s", sa_id.spi, err.msg);
		status = NOT_FOUND;
	}
	else
	{
		DBG1(DBG_KNL, "kernel-qkd: SA %.8x deleted after %llu packets (%llu replayed, %llu "
			 "failed authentication)", sa_id.spi, (unsigned long long)st.packets,
			 (unsigned long long)st.replay_drops, (unsigned long long)st.auth_drops);
		if (st.windows)
		{
			DBG1(DBG_KNL, "kernel-qkd: SA %.8x used %llu key windows (last epoch %u, %llu "
				 "keys requested, %llu key failures, %llu packets beyond rpk, %llu stall "
				 "drops, %llu packets without key, %llu with an epoch out of bounds, %llu "
				 "catch-up moves)", sa_id.spi,
				 (unsigned long long)st.windows, st.epoch,
				 (unsigned long long)st.key_requests, (unsigned long long)st.key_failures,
				 (unsigned long long)st.reuse_packets, (unsigned long long)st.stall_drops,
				 (unsigned long long)st.nokey_drops, (unsigned long long)st.epoch_drops,
				 (unsigned long long)st.jumps);
		}
	}
	this->mutex->lock(this->mutex);
	if (this->sas->find_first(this->sas, sa_entry_match, (void**)&entry, sa_id.spi, id->dst))
	{
		this->sas->remove(this->sas, entry, NULL);
		sa_entry_destroy(entry);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, flush_sas, status_t,
	private_kernel_qkd_ipsec_t *this)
{
	iq_err_t err = {};

	this->mutex->lock(this->mutex);
	this->sas->destroy_function(this->sas, (void*)sa_entry_destroy);
	this->sas = linked_list_create();
	this->mutex->unlock(this->mutex);
	if (iq_sa_flush(this->dp, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: flushing SAs failed: %s", err.msg);
		return FAILED;
	}
	return SUCCESS;
}

/**
 * Add an explicit exclude route to a routing entry
 */
static void add_exclude_route(private_kernel_qkd_ipsec_t *this,
							  route_entry_t *route, host_t *src, host_t *dst)
{
	exclude_route_t *exclude;
	host_t *gtw;

	if (this->excludes->find_first(this->excludes, exclude_route_match,
								   (void**)&exclude, dst))
	{
		route->exclude = exclude;
		exclude->refs++;
	}

	if (!route->exclude)
	{
		DBG2(DBG_KNL, "installing new exclude route for %H src %H", dst, src);
		gtw = charon->kernel->get_nexthop(charon->kernel, dst, -1, NULL, NULL);
		if (gtw)
		{
			char *if_name = NULL;

			if (charon->kernel->get_interface(charon->kernel, src, &if_name) &&
				charon->kernel->add_route(charon->kernel, dst->get_address(dst),
									dst->get_family(dst) == AF_INET ? 32 : 128,
									gtw, src, if_name, TRUE) == SUCCESS)
			{
				INIT(exclude,
					.dst = dst->clone(dst),
					.src = src->clone(src),
					.gtw = gtw->clone(gtw),
					.refs = 1,
				);
				route->exclude = exclude;
				this->excludes->insert_last(this->excludes, exclude);
			}
			else
			{
				DBG1(DBG_KNL, "installing exclude route for %H failed", dst);
			}
			gtw->destroy(gtw);
			free(if_name);
		}
		else
		{
			DBG1(DBG_KNL, "gateway lookup for %H failed", dst);
		}
	}
}

/**
 * Remove an exclude route attached to a routing entry
 */
static void remove_exclude_route(private_kernel_qkd_ipsec_t *this,
								 route_entry_t *route)
{
	char *if_name = NULL;
	host_t *dst;

	if (!route->exclude || --route->exclude->refs > 0)
	{
		return;
	}
	this->excludes->remove(this->excludes, route->exclude, NULL);

	dst = route->exclude->dst;
	DBG2(DBG_KNL, "uninstalling exclude route for %H src %H",
		 dst, route->exclude->src);
	if (charon->kernel->get_interface(charon->kernel, route->exclude->src,
									  &if_name) &&
		charon->kernel->del_route(charon->kernel, dst->get_address(dst),
								  dst->get_family(dst) == AF_INET ? 32 : 128,
								  route->exclude->gtw, route->exclude->src,
								  if_name, TRUE) != SUCCESS)
	{
		DBG1(DBG_KNL, "uninstalling exclude route for %H failed", dst);
	}
	exclude_route_destroy(route->exclude);
	route->exclude = NULL;
	free(if_name);
}

/**
 * Install the route into the TUN device for an outbound policy. Call with mutex held.
 */
static bool install_route(private_kernel_qkd_ipsec_t *this, host_t *src, host_t *dst,
						  traffic_selector_t *src_ts, traffic_selector_t *dst_ts,
						  policy_entry_t *policy)
{
	route_entry_t *route, *old;
	host_t *src_ip, *net;
	uint8_t prefixlen;
	bool is_virtual;

	if (charon->kernel->get_address_by_ts(charon->kernel, src_ts, &src_ip,
										  &is_virtual) != SUCCESS)
	{
		traffic_selector_t *multicast, *broadcast = NULL;
		bool ignore;

		switch (src_ts->get_type(src_ts))
		{
			case TS_IPV4_ADDR_RANGE:
				multicast = traffic_selector_create_from_cidr("224.0.0.0/4", 0, 0, 0xffff);
				broadcast = traffic_selector_create_from_cidr("255.255.255.255/32",
															  0, 0, 0xffff);
				break;
			case TS_IPV6_ADDR_RANGE:
				multicast = traffic_selector_create_from_cidr("ff00::/8", 0, 0, 0xffff);
				break;
			default:
				return FALSE;
		}
		ignore = src_ts->is_contained_in(src_ts, multicast);
		ignore |= broadcast && src_ts->is_contained_in(src_ts, broadcast);
		multicast->destroy(multicast);
		DESTROY_IF(broadcast);
		if (!ignore)
		{
			DBG1(DBG_KNL, "error installing route with policy %R === %R %N: no local "
				 "address in %R", src_ts, dst_ts, policy_dir_names, policy->dir, src_ts);
		}
		return ignore;
	}

	dst_ts->to_subnet(dst_ts, &net, &prefixlen);
	INIT(route,
		.if_name = strdup(this->datapath->get_tun_name(this->datapath)),
		.src_ip = src_ip,
		.dst_net = chunk_clone(net->get_address(net)),
		.prefixlen = prefixlen,
	);
	net->destroy(net);

	if (policy->route)
	{
		old = policy->route;
		if (route_entry_equals(old, route))
		{
			route_entry_destroy(route);
			return TRUE;
		}
		if (charon->kernel->del_route(charon->kernel, old->dst_net, old->prefixlen, NULL,
									  old->src_ip, old->if_name, FALSE) != SUCCESS)
		{
			DBG1(DBG_KNL, "error uninstalling route installed with policy %R === %R %N",
				 src_ts, dst_ts, policy_dir_names, policy->dir);
		}
		remove_exclude_route(this, old);
		route_entry_destroy(old);
		policy->route = NULL;
	}

	if (!this->allow_peer_ts && dst_ts->is_host(dst_ts, dst))
	{
		DBG1(DBG_KNL, "can't install route for %R === %R %N, conflicts with IKE traffic",
			 src_ts, dst_ts, policy_dir_names, policy->dir);
		route_entry_destroy(route);
		return FALSE;
	}
	if (!this->allow_peer_ts && dst_ts->includes(dst_ts, dst))
	{	/* the remote TS covers the IKE peer: keep ESP and IKE off the TUN device */
		add_exclude_route(this, route, src, dst);
	}

	DBG2(DBG_KNL, "installing route: %R src %H dev %s", dst_ts, route->src_ip, route->if_name);
	switch (charon->kernel->add_route(charon->kernel, route->dst_net, route->prefixlen, NULL,
									  route->src_ip, route->if_name, FALSE))
	{
		case ALREADY_DONE:
			remove_exclude_route(this, route);
			route_entry_destroy(route);
			return TRUE;
		case SUCCESS:
			policy->route = route;
			return TRUE;
		default:
			DBG1(DBG_KNL, "installing route failed: %R src %H dev %s",
				 dst_ts, route->src_ip, route->if_name);
			remove_exclude_route(this, route);
			route_entry_destroy(route);
			return FALSE;
	}
}

/**
 * Remove a policy's route. Call with mutex held.
 */
static void uninstall_route(private_kernel_qkd_ipsec_t *this, policy_entry_t *policy)
{
	route_entry_t *route = policy->route;

	if (!route)
	{
		return;
	}
	if (charon->kernel->del_route(charon->kernel, route->dst_net, route->prefixlen, NULL,
								  route->src_ip, route->if_name, FALSE) != SUCCESS)
	{
		DBG1(DBG_KNL, "error uninstalling route installed with policy %R === %R %N",
			 policy->src_ts, policy->dst_ts, policy_dir_names, policy->dir);
	}
	remove_exclude_route(this, route);
	route_entry_destroy(route);
	policy->route = NULL;
}

/**
 * Translate a charon policy to the datapath's (IN and OUT only).
 */
static bool policy2iq(kernel_ipsec_policy_id_t *id, kernel_ipsec_manage_policy_t *data,
					  struct iq_policy_cfg *pol)
{
	memset(pol, 0, sizeof(*pol));
	pol->dir = id->dir == POLICY_OUT ? IQ_DIR_OUT : IQ_DIR_IN;
	pol->reqid = data->sa ? data->sa->reqid : 0;
	if (id->dir == POLICY_OUT && data->sa && data->sa->esp.use)
	{	/* the outbound SA of this CHILD_SA: charon may give one reqid to CHILD_SAs of
		 * different selectors (explicit reqids after a DPD restart are shared unchecked) */
		pol->spi = ntohl(data->sa->esp.spi);
	}
	pol->priority = data->manual_prio ?: calculate_priority(data->prio, id->src_ts,
															id->dst_ts);
	if (!ts2iq(id->src_ts, &pol->src) || !ts2iq(id->dst_ts, &pol->dst))
	{
		DBG1(DBG_KNL, "kernel-qkd: unsupported traffic selectors %R === %R", id->src_ts,
			 id->dst_ts);
		return FALSE;
	}
	return TRUE;
}

METHOD(kernel_ipsec_t, add_policy, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	policy_entry_t *policy;
	struct iq_policy_cfg pol;
	iq_err_t err = {};
	bool ok = TRUE;

	if (data->type != POLICY_IPSEC)
	{	/* bypass and drop policies need no datapath entry: traffic not routed into the
		 * TUN device never meets the datapath */
		DBG2(DBG_KNL, "kernel-qkd: ignoring %s policy %R === %R",
			 data->type == POLICY_PASS ? "bypass" : "drop", id->src_ts, id->dst_ts);
		return SUCCESS;
	}
	if (id->if_id || id->label)
	{
		DBG1(DBG_KNL, "kernel-qkd: policy %R === %R refused: interface IDs and security "
			 "labels are not supported", id->src_ts, id->dst_ts);
		return FAILED;
	}
	if (id->dir != POLICY_FWD)
	{	/* the datapath checks inbound packets against IN policies; FWD is the kernel's */
		if (!policy2iq(id, data, &pol))
		{
			return FAILED;
		}
		if (iq_policy_add(this->dp, &pol, &err) != 0)
		{
			DBG1(DBG_KNL, "kernel-qkd: adding policy %R === %R %N failed: %s", id->src_ts,
				 id->dst_ts, policy_dir_names, id->dir, err.msg);
			return FAILED;
		}
	}

	this->mutex->lock(this->mutex);
	if (!this->policies->find_first(this->policies, policy_entry_match, (void**)&policy,
									id->src_ts, id->dst_ts, id->dir))
	{
		INIT(policy,
			.dir = id->dir,
			.src_ts = id->src_ts->clone(id->src_ts),
			.dst_ts = id->dst_ts->clone(id->dst_ts),
		);
		this->policies->insert_last(this->policies, policy);
	}
	policy->refs++;
	if (data->sa && data->sa->reqid)
	{
		policy->reqid = data->sa->reqid;
	}
	if (id->dir == POLICY_OUT)
	{
		ok = install_route(this, data->src, data->dst, id->src_ts, id->dst_ts, policy);
	}
	this->mutex->unlock(this->mutex);
	return ok ? SUCCESS : FAILED;
}

METHOD(kernel_ipsec_t, query_policy, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_query_policy_t *data, time_t *use_time)
{
	enumerator_t *enumerator;
	policy_entry_t *policy;
	sa_entry_t *entry, *sas[8];
	struct iq_sa_stats st;
	bool inbound = id->dir != POLICY_OUT;
	uint32_t reqid = 0;
	time_t last = 0;
	int i, n = 0;

	/* the datapath counts per SA: a policy was last used when one of its SAs was */
	this->mutex->lock(this->mutex);
	if (this->policies->find_first(this->policies, policy_entry_match, (void**)&policy,
								   id->src_ts, id->dst_ts, id->dir))
	{
		reqid = policy->reqid;
	}
	if (reqid)
	{
		enumerator = this->sas->create_enumerator(this->sas);
		while (n < countof(sas) && enumerator->enumerate(enumerator, &entry))
		{
			if (entry->reqid == reqid && entry->inbound == inbound)
			{
				INIT(sas[n],
					.spi = entry->spi,
					.dst = entry->dst->clone(entry->dst),
				);
				n++;
			}
		}
		enumerator->destroy(enumerator);
	}
	this->mutex->unlock(this->mutex);

	for (i = 0; i < n; i++)
	{
		memset(&st, 0, sizeof(st));
		if (query(this, sas[i]->spi, sas[i]->dst, &st))
		{
			last = max(last, st.last_use);
		}
		sa_entry_destroy(sas[i]);
	}
	if (!last)
	{
		return NOT_FOUND;
	}
	*use_time = last;
	return SUCCESS;
}

METHOD(kernel_ipsec_t, del_policy, status_t,
	private_kernel_qkd_ipsec_t *this, kernel_ipsec_policy_id_t *id,
	kernel_ipsec_manage_policy_t *data)
{
	policy_entry_t *policy;
	struct iq_policy_cfg pol;
	iq_err_t err = {};
	status_t status = SUCCESS;

	if (data->type != POLICY_IPSEC)
	{
		return SUCCESS;
	}
	if (id->dir != POLICY_FWD && policy2iq(id, data, &pol) &&
		iq_policy_del(this->dp, &pol, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: deleting policy %R === %R %N failed: %s", id->src_ts,
			 id->dst_ts, policy_dir_names, id->dir, err.msg);
		status = NOT_FOUND;
	}

	this->mutex->lock(this->mutex);
	if (this->policies->find_first(this->policies, policy_entry_match, (void**)&policy,
								   id->src_ts, id->dst_ts, id->dir) &&
		--policy->refs <= 0)
	{
		uninstall_route(this, policy);
		this->policies->remove(this->policies, policy, NULL);
		policy_entry_destroy(policy);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, flush_policies, status_t,
	private_kernel_qkd_ipsec_t *this)
{
	policy_entry_t *policy;
	iq_err_t err = {};
	status_t status = SUCCESS;

	if (iq_policy_flush(this->dp, &err) != 0)
	{
		DBG1(DBG_KNL, "kernel-qkd: flushing policies failed: %s", err.msg);
		status = FAILED;
	}
	this->mutex->lock(this->mutex);
	while (this->policies->remove_first(this->policies, (void**)&policy) == SUCCESS)
	{
		uninstall_route(this, policy);
		policy_entry_destroy(policy);
	}
	this->mutex->unlock(this->mutex);
	return status;
}

METHOD(kernel_ipsec_t, bypass_socket, bool,
	private_kernel_qkd_ipsec_t *this, int fd, int family)
{
	/* nothing to do: IKE never enters the TUN device (exclude routes keep it off) */
	return TRUE;
}

METHOD(kernel_ipsec_t, enable_udp_decap, bool,
	private_kernel_qkd_ipsec_t *this, int fd, int family, uint16_t port)
{
	/* the datapath owns the NAT-T port and decapsulates itself; a foreign socket on another
	 * port cannot deliver ESP to it */
	return FALSE;
}

METHOD(kernel_ipsec_t, destroy, void,
	private_kernel_qkd_ipsec_t *this)
{
	policy_entry_t *policy;

	while (this->policies->remove_first(this->policies, (void**)&policy) == SUCCESS)
	{
		uninstall_route(this, policy);
		policy_entry_destroy(policy);
	}
	this->policies->destroy(this->policies);
	this->excludes->destroy_function(this->excludes, (void*)exclude_route_destroy);
	this->sas->destroy_function(this->sas, (void*)sa_entry_destroy);
	this->mutex->destroy(this->mutex);
	free(this);
}

/*
 * Described in header.
 */
kernel_qkd_ipsec_t *kernel_qkd_ipsec_create()
{
	private_kernel_qkd_ipsec_t *this;
	kernel_qkd_datapath_t *datapath;

	datapath = lib->get(lib, KERNEL_QKD_DATAPATH);
	if (!datapath)
	{
		DBG1(DBG_KNL, "kernel-qkd: no datapath, IPsec backend unavailable");
		return NULL;
	}
	INIT(this,
		.public = {
			.interface = {
				.get_features = _get_features,
				.get_spi = _get_spi,
				.get_cpi = _get_cpi,
				.add_sa  = _add_sa,
				.update_sa = _update_sa,
				.query_sa = _query_sa,
				.del_sa = _del_sa,
				.flush_sas = _flush_sas,
				.add_policy = _add_policy,
				.query_policy = _query_policy,
				.del_policy = _del_policy,
				.flush_policies = _flush_policies,
				.bypass_socket = _bypass_socket,
				.enable_udp_decap = _enable_udp_decap,
				.destroy = _destroy,
			},
		},
		.datapath = datapath,
		.dp = datapath->get_dp(datapath),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
		.sas = linked_list_create(),
		.policies = linked_list_create(),
		.excludes = linked_list_create(),
		.allow_peer_ts = lib->settings->get_bool(lib->settings,
						"%s.plugins.kernel-qkd.allow_peer_ts", FALSE, lib->ns),
	);
	return &this->public;
}
