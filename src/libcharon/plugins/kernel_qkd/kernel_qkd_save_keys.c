/*
 * Copyright (C) 2026 The IPSeQ authors
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "kernel_qkd_save_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/stat.h>

#include <daemon.h>
#include <threading/mutex.h>

/** Files in the directory (one record per line, see README.md) */
#define SA_FILE "esp_sa"
#define WINDOW_FILE "window_keys"

typedef struct private_kernel_qkd_save_keys_t private_kernel_qkd_save_keys_t;

/**
 * Private data.
 */
struct private_kernel_qkd_save_keys_t {

	/**
	 * Public interface.
	 */
	kernel_qkd_save_keys_t public;

	/**
	 * Directory the files go to
	 */
	char *dir;

	/**
	 * Serializes appends (charon's threads and the datapath's key helper)
	 */
	mutex_t *mutex;
};

/**
 * Append a line to a file of the directory (created 0600), wipe the line.
 */
static void append(private_kernel_qkd_save_keys_t *this, const char *file, char *line,
				   size_t len)
{
	char path[PATH_MAX];
	ssize_t done;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", this->dir, file);
	this->mutex->lock(this->mutex);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0 || fchmod(fd, 0600) != 0)
	{
		DBG1(DBG_CFG, "kernel-qkd: save_keys: writing %s failed: %s", path, strerror(errno));
	}
	else
	{
		done = write(fd, line, len);
		if (done != (ssize_t)len)
		{
			DBG1(DBG_CFG, "kernel-qkd: save_keys: writing %s failed", path);
		}
	}
	if (fd >= 0)
	{
		close(fd);
	}
	this->mutex->unlock(this->mutex);
	memwipe(line, len);
}

/**
 * Hex of len bytes into out (2 * len + 1 bytes).
 */
static void to_hex(const uint8_t *in, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < len; i++)
	{
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/**
 * Numeric address of a host (no port).
 */
static void addr_str(host_t *host, char *buf, size_t len)
{
	chunk_t addr = host->get_address(host);

	if (!inet_ntop(host->get_family(host), addr.ptr, buf, len))
	{
		snprintf(buf, len, "?");
	}
}

METHOD(kernel_qkd_save_keys_t, save_sa, void,
	private_kernel_qkd_save_keys_t *this, kernel_ipsec_sa_id_t *id,
	kernel_ipsec_add_sa_t *data, bool rotating)
{
	char hex[2 * 64 + 1], line[512], src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
	int len;

	if (data->enc_key.len > 64)
	{
		return;
	}
	addr_str(id->src, src, sizeof(src));
	addr_str(id->dst, dst, sizeof(dst));
	to_hex(data->enc_key.ptr, data->enc_key.len, hex);
	len = snprintf(line, sizeof(line), "%.8x %s %s %s esn=%d rotating=%d %s\n",
				   ntohl(id->spi), data->inbound ? "in" : "out", src, dst,
				   data->esn ? 1 : 0, rotating ? 1 : 0, hex);
	memwipe(hex, sizeof(hex));
	if (len > 0 && len < (int)sizeof(line))
	{
		DBG1(DBG_CFG, "kernel-qkd: WARNING: save_keys: writing the key of %s SA %.8x to "
			 "%s/%s: for tests only", data->inbound ? "inbound" : "outbound",
			 ntohl(id->spi), this->dir, SA_FILE);
		append(this, SA_FILE, line, len);
	}
	memwipe(line, sizeof(line));
}

/**
 * The provider's export hook: called on the datapath's key helper thread with each quantum key.
 */
static void export_qkey(void *ctx, const struct iq_key_sa *sa, uint32_t epoch,
						const uint8_t *qkey, size_t qkey_len)
{
	private_kernel_qkd_save_keys_t *this = ctx;
	char hex[2 * IQ_QKEY_MAX + 1], line[2 * IQ_QKEY_MAX + 64];
	int len;

	if (qkey_len > IQ_QKEY_MAX)
	{
		return;
	}
	to_hex(qkey, qkey_len, hex);
	len = snprintf(line, sizeof(line), "%.8x %s %u %s\n", sa->spi,
				   sa->inbound ? "in" : "out", epoch, hex);
	memwipe(hex, sizeof(hex));
	if (len > 0 && len < (int)sizeof(line))
	{
		DBG1(DBG_CFG, "kernel-qkd: WARNING: save_keys: writing the quantum key of SA %.8x "
			 "epoch %u to %s/%s: for tests only", sa->spi, epoch, this->dir, WINDOW_FILE);
		append(this, WINDOW_FILE, line, len);
	}
	memwipe(line, sizeof(line));
}

METHOD(kernel_qkd_save_keys_t, hook, void,
	private_kernel_qkd_save_keys_t *this, struct iq_key_provider *keys)
{
	if (keys)
	{
		keys->export_qkey = export_qkey;
		keys->export_ctx = this;
	}
}

METHOD(kernel_qkd_save_keys_t, destroy, void,
	private_kernel_qkd_save_keys_t *this)
{
	this->mutex->destroy(this->mutex);
	free(this->dir);
	free(this);
}

/*
 * Described in header
 */
kernel_qkd_save_keys_t *kernel_qkd_save_keys_create()
{
	private_kernel_qkd_save_keys_t *this;
	struct stat st;
	char *dir;

	dir = lib->settings->get_str(lib->settings, "%s.plugins.kernel-qkd.save_keys", NULL,
								 lib->ns);
	if (!dir || !*dir)
	{
		return NULL;
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST)
	{
		DBG1(DBG_CFG, "kernel-qkd: save_keys: creating directory %s failed: %s; no keys "
			 "are saved", dir, strerror(errno));
		return NULL;
	}
	if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || (st.st_mode & 077))
	{
		DBG1(DBG_CFG, "kernel-qkd: save_keys: %s is not a directory of mode 0700; no keys "
			 "are saved", dir);
		return NULL;
	}
	INIT(this,
		.public = {
			.save_sa = _save_sa,
			.hook = _hook,
			.destroy = _destroy,
		},
		.dir = strdup(dir),
		.mutex = mutex_create(MUTEX_TYPE_DEFAULT),
	);
	DBG1(DBG_CFG, "kernel-qkd: WARNING: save_keys: CHILD_SA keys and quantum window keys are "
		 "written to %s: for tests only, never on a production gateway", dir);
	return &this->public;
}
