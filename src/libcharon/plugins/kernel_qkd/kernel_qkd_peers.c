/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "kernel_qkd_peers.h"

#include <daemon.h>
#include <collections/linked_list.h>

/** Defaults of charon.plugins.kernel-qkd.rotation */
#define ROTATION_RPK_MIN 1024
#define ROTATION_RPK_MAX 65536
#define ROTATION_RPK_LIMIT 0x7fffffff

typedef struct private_kernel_qkd_peers_t private_kernel_qkd_peers_t;

/**
 * Private data of the peer table.
 */
struct private_kernel_qkd_peers_t {

	/**
	 * Public interface.
	 */
	kernel_qkd_peers_t public;

	/**
	 * peer_t*
	 */
	linked_list_t *peers;
};

/**
 * One peer gateway.
 */
typedef struct {
	/** qkid peer name */
	char *name;
	/** remote outer addresses (host_t*) */
	linked_list_t *addrs;
	/** rotation settings of SAs with this peer */
	struct iq_rotation rotation;
} peer_t;

/*
 * Described in header
 */
bool kernel_qkd_parse_exhaust(const char *value, enum iq_exhaust *exhaust)
{
	if (streq(value, "reuse"))
	{
		*exhaust = IQ_EXHAUST_REUSE;
		return TRUE;
	}
	if (streq(value, "stall"))
	{
		*exhaust = IQ_EXHAUST_STALL;
		return TRUE;
	}
	return FALSE;
}

/*
 * Described in header
 */
const char *kernel_qkd_connection_name(ike_sa_t *ike_sa)
{
	peer_cfg_t *peer_cfg = ike_sa ? ike_sa->get_peer_cfg(ike_sa) : NULL;

	return peer_cfg ? peer_cfg->get_name(peer_cfg) : NULL;
}

static void peer_destroy(peer_t *peer)
{
	peer->addrs->destroy_offset(peer->addrs, offsetof(host_t, destroy));
	free(peer->name);
	free(peer);
}

/**
 * Settings key pattern of a rotation setting: charon.plugins.kernel-qkd.rotation.<key> for the
 * defaults (section NULL), charon.plugins.kernel-qkd.<section>.<name>.<key> for a peer
 * ("peers") or a swanctl connection ("connections"). Arguments: lib->ns, name. (strongSwan
 * formats a key pattern per dotted segment, so a section path must not be passed as a single %s
 * argument.)
 */
static char *key_pattern(char *buf, size_t len, const char *section, const char *key)
{
	if (section)
	{
		snprintf(buf, len, "%%s.plugins.kernel-qkd.%s.%%s.%s", section, key);
	}
	else
	{
		snprintf(buf, len, "%%s.plugins.kernel-qkd.rotation.%s", key);
	}
	return buf;
}

/**
 * Read rotation settings (global defaults, a peer's or a connection's), with defaults from def.
 * section is NULL (defaults), "peers" or "connections"; name the peer or connection.
 * Returns FALSE (logged) if they are invalid.
 */
static bool load_rotation(const char *section, const char *name, char *label,
						  struct iq_rotation *def, struct iq_rotation *rot)
{
	const char *peer = name;
	char key[128], *exhaust;

	rot->enabled = lib->settings->get_bool(lib->settings,
						key_pattern(key, sizeof(key), section, section ? "rotation" : "enabled"),
						def->enabled, lib->ns, peer);
	rot->rpk_min = lib->settings->get_int(lib->settings,
						key_pattern(key, sizeof(key), section, "rpk_min"), def->rpk_min,
						lib->ns, peer);
	rot->rpk_max = lib->settings->get_int(lib->settings,
						key_pattern(key, sizeof(key), section, "rpk_max"), def->rpk_max,
						lib->ns, peer);
	rot->lookahead = lib->settings->get_int(lib->settings,
						key_pattern(key, sizeof(key), section, "lookahead"), def->lookahead,
						lib->ns, peer);
	rot->exhaust = def->exhaust;
	exhaust = lib->settings->get_str(lib->settings,
						key_pattern(key, sizeof(key), section, "exhaust"), NULL, lib->ns, peer);
	if (exhaust && !kernel_qkd_parse_exhaust(exhaust, &rot->exhaust))
	{
		DBG1(DBG_CFG, "kernel-qkd: %s: exhaust = '%s' is neither 'reuse' nor 'stall'",
			 label, exhaust);
		return FALSE;
	}
	if ((int32_t)rot->rpk_min < 1 || (int32_t)rot->rpk_max < 1 ||
		rot->rpk_max < rot->rpk_min || rot->rpk_max > ROTATION_RPK_LIMIT)
	{
		DBG1(DBG_CFG, "kernel-qkd: %s: need 1 <= rpk_min <= rpk_max < 2^31 (have %u, %u)",
			 label, rot->rpk_min, rot->rpk_max);
		return FALSE;
	}
	if (rot->lookahead > 64)
	{
		DBG1(DBG_CFG, "kernel-qkd: %s: lookahead %u above 64", label, rot->lookahead);
		return FALSE;
	}
	return TRUE;
}

/**
 * Add the addresses of a comma separated list to a peer
 */
static void add_addrs(peer_t *peer, char *addrs)
{
	enumerator_t *enumerator;
	host_t *host;
	char *addr;

	enumerator = enumerator_create_token(addrs, ",", " ");
	while (enumerator->enumerate(enumerator, &addr))
	{
		host = host_create_from_string(addr, 0);
		if (!host)
		{
			DBG1(DBG_CFG, "kernel-qkd: peer '%s': invalid remote address '%s'",
				 peer->name, addr);
			continue;
		}
		peer->addrs->insert_last(peer->addrs, host);
	}
	enumerator->destroy(enumerator);
}

/**
 * Load one peer section; the addresses default to the qkd plugin's section of the same name.
 */
static peer_t *load_peer(char *name, struct iq_rotation *def)
{
	char label[128];
	char *addrs;
	peer_t *peer;

	INIT(peer,
		.name = strdup(name),
		.addrs = linked_list_create(),
	);
	snprintf(label, sizeof(label), "peer '%s'", name);

	addrs = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.peers.%s.remote_addrs",
								   NULL, lib->ns, name);
	if (!addrs)
	{
		addrs = lib->settings->get_str(lib->settings, "%s.plugins.qkd.peers.%s.remote_addrs",
									   NULL, lib->ns, name);
	}
	if (addrs)
	{
		add_addrs(peer, addrs);
	}
	if (!peer->addrs->get_count(peer->addrs))
	{
		DBG1(DBG_CFG, "kernel-qkd: peer '%s' has no remote_addrs (neither in kernel-qkd nor "
			 "in qkd peers); ignored", name);
		peer_destroy(peer);
		return NULL;
	}
	if (!load_rotation("peers", name, label, def, &peer->rotation))
	{
		DBG1(DBG_CFG, "kernel-qkd: peer '%s' ignored: its SAs will not rotate", name);
		peer_destroy(peer);
		return NULL;
	}
	DBG1(DBG_CFG, "kernel-qkd: peer '%s' (addrs %s): ESP key rotation %s", name, addrs,
		 peer->rotation.enabled ? "on" : "off");
	if (peer->rotation.enabled)
	{
		DBG1(DBG_CFG, "kernel-qkd: peer '%s': rpk %u..%u packets per key, on key exhaustion "
			 "%s", name, peer->rotation.rpk_min, peer->rotation.rpk_max,
			 peer->rotation.exhaust == IQ_EXHAUST_STALL ? "stall" : "reuse up to rpk_max");
	}
	return peer;
}

METHOD(kernel_qkd_peers_t, lookup, const char*,
	private_kernel_qkd_peers_t *this, host_t *remote, struct iq_rotation *rotation)
{
	enumerator_t *enumerator, *addrs;
	peer_t *peer, *found = NULL;
	host_t *host;

	*rotation = (struct iq_rotation){ .enabled = FALSE };
	enumerator = this->peers->create_enumerator(this->peers);
	while (!found && enumerator->enumerate(enumerator, &peer))
	{
		addrs = peer->addrs->create_enumerator(peer->addrs);
		while (addrs->enumerate(addrs, &host))
		{
			if (host->ip_equals(host, remote))
			{
				found = peer;
				break;
			}
		}
		addrs->destroy(addrs);
	}
	enumerator->destroy(enumerator);
	if (!found)
	{
		return NULL;
	}
	*rotation = found->rotation;
	return found->name;
}

/**
 * Whether charon.plugins.kernel-qkd.connections.<name> holds any setting
 */
static bool has_connection_section(const char *name)
{
	enumerator_t *enumerator;
	char *key, *value;
	bool found;

	enumerator = lib->settings->create_key_value_enumerator(lib->settings,
							"%s.plugins.kernel-qkd.connections.%s", lib->ns, name);
	found = enumerator->enumerate(enumerator, &key, &value);
	enumerator->destroy(enumerator);
	return found;
}

METHOD(kernel_qkd_peers_t, override, bool,
	private_kernel_qkd_peers_t *this, const char *connection, struct iq_rotation *rotation)
{
	struct iq_rotation def = *rotation;
	char label[128];

	if (!connection || !has_connection_section(connection))
	{
		return TRUE;
	}
	snprintf(label, sizeof(label), "connection '%s'", connection);
	return load_rotation("connections", connection, label, &def, rotation);
}

METHOD(kernel_qkd_peers_t, any_rotation, bool,
	private_kernel_qkd_peers_t *this)
{
	enumerator_t *enumerator;
	peer_t *peer;
	char *name;
	bool any = FALSE;

	enumerator = this->peers->create_enumerator(this->peers);
	while (!any && enumerator->enumerate(enumerator, &peer))
	{
		any = peer->rotation.enabled;
	}
	enumerator->destroy(enumerator);
	/* a connection may turn rotation on for a peer whose default is off */
	enumerator = lib->settings->create_section_enumerator(lib->settings,
							"%s.plugins.kernel-qkd.connections", lib->ns);
	while (!any && enumerator->enumerate(enumerator, &name))
	{
		any = lib->settings->get_bool(lib->settings,
							"%s.plugins.kernel-qkd.connections.%s.rotation", FALSE, lib->ns, name);
	}
	enumerator->destroy(enumerator);
	return any;
}

METHOD(kernel_qkd_peers_t, destroy, void,
	private_kernel_qkd_peers_t *this)
{
	this->peers->destroy_function(this->peers, (void*)peer_destroy);
	free(this);
}

/*
 * Described in header
 */
kernel_qkd_peers_t *kernel_qkd_peers_create()
{
	private_kernel_qkd_peers_t *this;
	struct iq_rotation def, builtin = {
		.enabled = FALSE,
		.rpk_min = ROTATION_RPK_MIN,
		.rpk_max = ROTATION_RPK_MAX,
		.exhaust = IQ_EXHAUST_REUSE,
		.lookahead = 0,
	};
	enumerator_t *enumerator;
	char *name;
	peer_t *peer;

	INIT(this,
		.public = {
			.lookup = _lookup,
			.override = _override,
			.any_rotation = _any_rotation,
			.destroy = _destroy,
		},
		.peers = linked_list_create(),
	);

	if (!load_rotation(NULL, NULL, "rotation", &builtin, &def))
	{
		DBG1(DBG_CFG, "kernel-qkd: invalid rotation defaults, using rpk %u..%u, reuse",
			 ROTATION_RPK_MIN, ROTATION_RPK_MAX);
		def = builtin;
	}
	enumerator = lib->settings->create_section_enumerator(lib->settings,
							"%s.plugins.kernel-qkd.peers", lib->ns);
	while (enumerator->enumerate(enumerator, &name))
	{
		peer = load_peer(name, &def);
		if (peer)
		{
			this->peers->insert_last(this->peers, peer);
		}
	}
	enumerator->destroy(enumerator);
	return &this->public;
}
