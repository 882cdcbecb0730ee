/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qkd_qki.h"

#include <ctype.h>

#include <daemon.h>
#include <threading/mutex.h>
#include <collections/linked_list.h>

#include <qki_client.h>

typedef struct private_qkd_qki_t private_qkd_qki_t;

/**
 * Private data of the qkid connection.
 */
struct private_qkd_qki_t {

	/**
	 * Public interface.
	 */
	qkd_qki_t public;

	/**
	 * qkid's socket path
	 */
	char *socket;

	/**
	 * Bound of every call, in ms
	 */
	int timeout_ms;

	/**
	 * Idle connections (struct qki_client*). A call takes one, or opens a new one if none is
	 * idle, so no thread waits for another's call (qkid may hold a key request for up to the
	 * timeout while it fetches from the KME).
	 */
	linked_list_t *idle;

	/**
	 * Protects idle (never held during a call)
	 */
	mutex_t *mutex;
};

/** Idle connections kept open; more are closed after their call */
#define IDLE_MAX 4

/*
 * Described in header
 */
bool qkd_key_id_valid(const char *id, size_t len)
{
	size_t i;

	if (len != QKD_KEY_ID_LEN)
	{
		return FALSE;
	}
	for (i = 0; i < len; i++)
	{
		if (i == 8 || i == 13 || i == 18 || i == 23)
		{
			if (id[i] != '-')
			{
				return FALSE;
			}
		}
		else if (!isxdigit((unsigned char)id[i]))
		{
			return FALSE;
		}
	}
	return TRUE;
}

/*
 * Described in header
 */
void qkd_key_id_lower(char *id)
{
	for (; *id; id++)
	{
		*id = tolower((unsigned char)*id);
	}
}

/**
 * Open a new connection
 */
static struct qki_client *connect_client(private_qkd_qki_t *this)
{
	struct qki_client *client;
	struct qki_error err;

	client = qki_client_connect(this->socket, this->timeout_ms, &err);
	if (!client)
	{
		DBG1(DBG_CFG, "qkd: cannot reach qkid at %s: %s", this->socket, err.message);
	}
	return client;
}

/**
 * Take an idle connection, or open one
 */
static struct qki_client *take_client(private_qkd_qki_t *this)
{
	struct qki_client *client = NULL;

	this->mutex->lock(this->mutex);
	this->idle->remove_first(this->idle, (void**)&client);
	this->mutex->unlock(this->mutex);
	return client ?: connect_client(this);
}

/**
 * Give a working connection back for the next call
 */
static void return_client(private_qkd_qki_t *this, struct qki_client *client)
{
	this->mutex->lock(this->mutex);
	if (this->idle->get_count(this->idle) < IDLE_MAX)
	{
		this->idle->insert_last(this->idle, client);
		client = NULL;
	}
	this->mutex->unlock(this->mutex);
	qki_client_close(client);
}

/**
 * Whether an error means the connection is gone (qkid restarted, timed out, garbled reply)
 */
static bool is_transport(struct qki_error *err)
{
	return err->code == QKI_ERR_IO || err->code == QKI_ERR_TIMEOUT ||
		   err->code == QKI_ERR_REPLY;
}

/**
 * Log a failed call in operator words
 */
static void log_failure(private_qkd_qki_t *this, struct qki_error *err, char *what, char *peer)
{
	if (is_transport(err))
	{
		DBG1(DBG_IKE, "qkd: cannot reach qkid at %s for %s of peer '%s': %s", this->socket,
			 what, peer, err->message);
	}
	else
	{
		DBG1(DBG_IKE, "qkd: qkid has no %s for peer '%s': %s", what, peer, err->message);
	}
}

/**
 * One key request to qkid: a new key (key_id_in NULL) or the key of a key_ID.
 */
typedef struct {
	char *peer;
	char *key_id_in;
	size_t size;
	u_char *key;
	char key_id_out[QKI_KEY_ID_MAX];
} request_t;

/**
 * Run a request on a connection of its own; a connection that went stale (qkid restarted)
 * gets one fresh attempt.
 */
static bool request(private_qkd_qki_t *this, request_t *req, struct qki_error *err)
{
	struct qki_client *client;
	int try, rc;

	err->code = QKI_ERR_CONNECT;
	for (try = 0; try < 2 && (client = try ? connect_client(this) : take_client(this)); try++)
	{
		if (req->key_id_in)
		{
			rc = qki_get_key_by_id(client, req->peer, req->key_id_in, req->size, req->key,
								   err);
		}
		else
		{
			rc = qki_get_new_key(client, req->peer, req->size, req->key, req->key_id_out,
								 err);
		}
		if (rc == QKI_OK || !is_transport(err))
		{
			return_client(this, client);
			return rc == QKI_OK;
		}
		qki_client_close(client);
	}
	return FALSE;
}

/**
 * Run a key request into a fresh chunk of req->size bytes. On failure the chunk is cleared and
 * err says why (code QKI_ERR_CONNECT: already logged).
 */
static bool request_key(private_qkd_qki_t *this, request_t *req, chunk_t *key,
						struct qki_error *err)
{
	bool ok;

	if (req->size == 0 || req->size > QKI_KEY_MAX)
	{
		err->code = QKI_ERR_INVALID;
		snprintf(err->message, sizeof(err->message), "key size %zu out of range 1..%d",
				 req->size, QKI_KEY_MAX);
		*key = chunk_empty;
		return FALSE;
	}
	*key = chunk_alloc(req->size);
	req->key = key->ptr;
	ok = request(this, req, err);
	if (!ok)
	{
		chunk_clear(key);
	}
	return ok;
}

METHOD(qkd_qki_t, get_new_key, bool,
	private_qkd_qki_t *this, char *peer, size_t size, chunk_t *key,
	char key_id[QKD_KEY_ID_LEN + 1])
{
	struct qki_error err;
	request_t req = {
		.peer = peer,
		.size = size,
	};

	if (!request_key(this, &req, key, &err))
	{
		if (err.code != QKI_ERR_CONNECT)
		{
			log_failure(this, &err, "new key", peer);
		}
		return FALSE;
	}
	if (!qkd_key_id_valid(req.key_id_out, strlen(req.key_id_out)))
	{
		DBG1(DBG_IKE, "qkd: qkid returned a malformed key_ID for peer '%s'", peer);
		chunk_clear(key);
		return FALSE;
	}
	memcpy(key_id, req.key_id_out, QKD_KEY_ID_LEN + 1);
	return TRUE;
}

METHOD(qkd_qki_t, get_key_by_id, bool,
	private_qkd_qki_t *this, char *peer, char *key_id, size_t size, chunk_t *key)
{
	struct qki_error err;
	char id[QKI_KEY_ID_MAX];
	request_t req = {
		.peer = peer,
		.key_id_in = id,
		.size = size,
	};

	/* an upper-case copy of a used key_ID must meet its tombstone in qkid, not a fetch */
	snprintf(id, sizeof(id), "%s", key_id);
	qkd_key_id_lower(id);
	if (!request_key(this, &req, key, &err))
	{
		if (err.code != QKI_ERR_CONNECT)
		{
			DBG1(DBG_IKE, "qkd: qkid cannot resolve key_ID %s of peer '%s': %s",
				 key_id, peer, err.message);
		}
		return FALSE;
	}
	return TRUE;
}

METHOD(qkd_qki_t, destroy, void,
	private_qkd_qki_t *this)
{
	this->idle->destroy_function(this->idle, (void*)qki_client_close);
	this->mutex->destroy(this->mutex);
	free(this->socket);
	free(this);
}

/*
 * Described in header
 */
qkd_qki_t *qkd_qki_create(char *socket, int timeout_ms)
{
	private_qkd_qki_t *this;

	INIT(this,
		.public = {
			.get_new_key = _get_new_key,
			.get_key_by_id = _get_key_by_id,
			.destroy = _destroy,
		},
		.socket = strdup(socket),
		.timeout_ms = timeout_ms,
		.idle = linked_list_create(),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	return &this->public;
}
