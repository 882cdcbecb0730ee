/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_peers.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <sys/stat.h>

#include <daemon.h>
#include <collections/linked_list.h>

typedef struct private_qkd_peers_t private_qkd_peers_t;

/**
 * Private data of the peer table.
 */
struct private_qkd_peers_t {

	/**
	 * Public interface.
	 */
	qkd_peers_t public;

	/**
	 * qkd_peer_t*
	 */
	linked_list_t *peers;
};

/*
 * Described in header
 */
bool qkd_psk_load(char *path, chunk_t *psk)
{
	struct stat st;
	char buf[1024];
	chunk_t text;
	ssize_t len;
	int fd;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
	{
		DBG1(DBG_CFG, "qkd: cannot open base PSK file '%s': %s", path, strerror(errno));
		return FALSE;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
	{
		DBG1(DBG_CFG, "qkd: base PSK file '%s' is not a regular file", path);
		close(fd);
		return FALSE;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO))
	{
		DBG1(DBG_CFG, "qkd: base PSK file '%s' is accessible by group or others (mode %04o); "
			 "refusing it, chmod 600 it", path, st.st_mode & 07777);
		close(fd);
		return FALSE;
	}
	len = read(fd, buf, sizeof(buf));
	close(fd);
	if (len <= 0 || len == sizeof(buf))
	{
		DBG1(DBG_CFG, "qkd: base PSK file '%s' is empty or too large", path);
		memwipe(buf, sizeof(buf));
		return FALSE;
	}
	text = chunk_create(buf, len);
	while (text.len && isspace(text.ptr[text.len - 1]))
	{
		text.len--;
	}
	if (text.len > 2 && strncaseeq(text.ptr, "0x", 2))
	{
		*psk = chunk_from_hex(chunk_skip(text, 2), NULL);
	}
	else if (text.len > 2 && strncaseeq(text.ptr, "0s", 2))
	{
		*psk = chunk_from_base64(chunk_skip(text, 2), NULL);
	}
	else
	{
		*psk = chunk_clone(text);
	}
	memwipe(buf, sizeof(buf));
	if (psk->len < 16)
	{
		DBG1(DBG_CFG, "qkd: base PSK in '%s' is shorter than 16 bytes; refusing it", path);
		chunk_clear(psk);
		return FALSE;
	}
	return TRUE;
}

/*
 * Described in header
 */
bool qkd_peer_required(qkd_peer_t *peer, ike_sa_t *ike_sa)
{
	peer_cfg_t *peer_cfg = ike_sa ? ike_sa->get_peer_cfg(ike_sa) : NULL;

	if (!peer_cfg)
	{
		return peer->required;
	}
	return lib->settings->get_bool(lib->settings, "%s.plugins.qkd.connections.%s.required",
								   peer->required, lib->ns, peer_cfg->get_name(peer_cfg));
}

/**
 * Destroy a peer entry
 */
static void peer_destroy(qkd_peer_t *peer)
{
	DESTROY_IF(peer->id);
	peer->addrs->destroy_offset(peer->addrs, offsetof(host_t, destroy));
	chunk_clear(&peer->psk);
	free(peer->name);
	free(peer);
}

/**
 * Load one peer section
 */
static qkd_peer_t *load_peer(char *name)
{
	enumerator_t *enumerator;
	qkd_peer_t *peer;
	char *id, *addrs, *addr, *psk_file;
	host_t *host;

	INIT(peer,
		.name = strdup(name),
		.addrs = linked_list_create(),
		.required = lib->settings->get_bool(lib->settings,
							"%s.plugins.qkd.peers.%s.required", TRUE, lib->ns, name),
	);
	id = lib->settings->get_str(lib->settings, "%s.plugins.qkd.peers.%s.remote_id", NULL,
								lib->ns, name);
	if (id)
	{
		peer->id = identification_create_from_string(id);
	}
	addrs = lib->settings->get_str(lib->settings, "%s.plugins.qkd.peers.%s.remote_addrs", NULL,
								   lib->ns, name);
	if (addrs)
	{
		enumerator = enumerator_create_token(addrs, ",", " ");
		while (enumerator->enumerate(enumerator, &addr))
		{
			host = host_create_from_string(addr, 0);
			if (!host)
			{
				DBG1(DBG_CFG, "qkd: peer '%s': invalid remote address '%s'", name, addr);
				continue;
			}
			peer->addrs->insert_last(peer->addrs, host);
		}
		enumerator->destroy(enumerator);
	}
	if (!peer->id && !peer->addrs->get_count(peer->addrs))
	{
		DBG1(DBG_CFG, "qkd: peer '%s' has neither remote_id nor remote_addrs; ignored", name);
		peer_destroy(peer);
		return NULL;
	}
	psk_file = lib->settings->get_str(lib->settings, "%s.plugins.qkd.peers.%s.psk_file", NULL,
									  lib->ns, name);
	if (psk_file && !qkd_psk_load(psk_file, &peer->psk))
	{
		DBG1(DBG_CFG, "qkd: peer '%s' has no usable base PSK: QPSK authentication with it "
			 "will fail", name);
	}
	DBG1(DBG_CFG, "qkd: peer '%s' (id %s, addrs %s), QKD %s, QPSK %s", name,
		 id ?: "any", addrs ?: "any",
		 peer->required ? "required" : "optional", peer->psk.len ? "configured" : "off");
	return peer;
}

/**
 * Match an IKE_SA's remote address against a peer
 */
static bool match_addr(qkd_peer_t *peer, host_t *other)
{
	enumerator_t *enumerator;
	host_t *host;
	bool found = FALSE;

	enumerator = peer->addrs->create_enumerator(peer->addrs);
	while (!found && enumerator->enumerate(enumerator, &host))
	{
		found = host->ip_equals(host, other);
	}
	enumerator->destroy(enumerator);
	return found;
}

METHOD(qkd_peers_t, find, qkd_peer_t*,
	private_qkd_peers_t *this, ike_sa_t *ike_sa)
{
	enumerator_t *enumerator;
	qkd_peer_t *peer, *found = NULL;
	identification_t *other_id = NULL;
	host_t *other;

	if (!ike_sa)
	{
		return NULL;
	}
	if (ike_sa->get_peer_cfg(ike_sa))
	{
		other_id = ike_sa->get_other_id(ike_sa);
		if (other_id && other_id->get_type(other_id) == ID_ANY)
		{
			other_id = NULL;
		}
	}
	other = ike_sa->get_other_host(ike_sa);

	enumerator = this->peers->create_enumerator(this->peers);
	while (enumerator->enumerate(enumerator, &peer))
	{
		if (peer->id && other_id)
		{	/* a known identity decides, whatever the address */
			if (other_id->matches(other_id, peer->id))
			{
				found = peer;
				break;
			}
			continue;
		}
		if (other && match_addr(peer, other))
		{
			found = peer;
			break;
		}
	}
	enumerator->destroy(enumerator);
	return found;
}

METHOD(qkd_peers_t, count, int,
	private_qkd_peers_t *this)
{
	return this->peers->get_count(this->peers);
}

METHOD(qkd_peers_t, destroy, void,
	private_qkd_peers_t *this)
{
	this->peers->destroy_function(this->peers, (void*)peer_destroy);
	free(this);
}

/*
 * Described in header
 */
qkd_peers_t *qkd_peers_create()
{
	private_qkd_peers_t *this;
	enumerator_t *enumerator;
	qkd_peer_t *peer;
	char *name;

	INIT(this,
		.public = {
			.find = _find,
			.count = _count,
			.destroy = _destroy,
		},
		.peers = linked_list_create(),
	);

	enumerator = lib->settings->create_section_enumerator(lib->settings,
											"%s.plugins.qkd.peers", lib->ns);
	while (enumerator->enumerate(enumerator, &name))
	{
		peer = load_peer(name);
		if (peer)
		{
			this->peers->insert_last(this->peers, peer);
		}
	}
	enumerator->destroy(enumerator);
	return &this->public;
}
