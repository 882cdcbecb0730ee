/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkid_conf.h - qkid.conf: global settings and one [peer NAME] section per peer gateway.
 * Every key is documented in conf/qkid.conf.
 */
#ifndef QKID_CONF_H
#define QKID_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "qki_proto.h"

#define QKID_PATH_MAX 256
#define QKID_SAE_MAX 128
#define QKID_PEERS_MAX 64
#define QKID_AUTH_KEY_MIN 32
#define QKID_AUTH_KEY_MAX 64

enum qkid_role_conf { QKID_ROLE_AUTO = 0, QKID_ROLE_CONF_MASTER, QKID_ROLE_CONF_SLAVE };

struct qkid_peer_conf {
	char name[QKI_NAME_MAX];
	char local_sae[QKID_SAE_MAX];
	char peer_sae[QKID_SAE_MAX];
	enum qkid_role_conf role_conf;
	int role;               /* resolved: QKI_ROLE_MASTER / QKI_ROLE_SLAVE */
	char address[QKID_PATH_MAX];    /* peer qkid host:port (the slave dials the master) */
	char auth_key_file[QKID_PATH_MAX];
	uint8_t auth_key[QKID_AUTH_KEY_MAX];
	size_t auth_key_len;
	char kme_url[QKID_PATH_MAX];
	char kme_cert[QKID_PATH_MAX];
	char kme_key[QKID_PATH_MAX];
	char kme_ca[QKID_PATH_MAX];
	unsigned kme_connect_timeout_ms;
	unsigned kme_timeout_ms;
	unsigned key_size_bits;
	unsigned batch;         /* keys per enc_keys / dec_keys request */
	unsigned pool_target;   /* master: unassigned keys kept ready */
	unsigned ike_reserve;   /* master: pool keys SA refills may not take */
	unsigned ike_stash;     /* keys kept at the slave for its own IKE initiations */
	unsigned sa_buffer_total; /* keys shared by all SA buffers of this peer */
	unsigned sa_buffer_min, sa_buffer_max;
	unsigned fair_slack;    /* keys an SA may be ahead of the least-served one */
};

struct qkid_conf {
	char socket_path[QKID_PATH_MAX];
	char socket_group[64];
	char key_group[64];     /* key access besides root and qkid's own user */
	char status_group[64];  /* status only; empty: socket_group */
	unsigned socket_mode;
	char listen[QKID_PATH_MAX];     /* host:port for peer qkids ("" = do not listen) */
	char pid_file[QKID_PATH_MAX];
	int log_level;          /* 0 error, 1 warning, 2 info, 3 debug */
	int log_syslog;
	unsigned rpk_min, rpk_max;
	unsigned max_keys;      /* locked key slots in memory */
	unsigned client_max;    /* local connections */
	unsigned client_idle_timeout_s; /* partial message pending this long: disconnect */
	unsigned sa_orphan_timeout_s;
	unsigned ike_key_lifetime_s;
	unsigned peer_keepalive_s, peer_timeout_s;
	unsigned kme_backoff_min_ms, kme_backoff_max_ms;
	size_t n_peers;
	struct qkid_peer_conf peers[QKID_PEERS_MAX];
};

void qkid_conf_defaults(struct qkid_conf *c);
/* Parse a config text (already read). base_dir resolves relative paths of auth_key_file etc.
 * Returns 0 or -1 with a message "line N: ..." in err. Does not read key files. */
int qkid_conf_parse(struct qkid_conf *c, const char *text, size_t len, char *err, size_t errlen);
/* Read and parse a file, then check the whole config (roles, required keys) and load the peer
 * auth keys (which must be files of mode 0600 or stricter). */
int qkid_conf_load(struct qkid_conf *c, const char *path, char *err, size_t errlen);
/* Checks after parsing and flags: required keys, role resolution. */
int qkid_conf_finish(struct qkid_conf *c, char *err, size_t errlen);
/* Load each peer's auth key file. */
int qkid_conf_load_keys(struct qkid_conf *c, char *err, size_t errlen);
/* One setting "key = value" in the global section (used for command line overrides). */
int qkid_conf_set(struct qkid_conf *c, const char *key, const char *value, char *err,
		  size_t errlen);
/* Wipe auth keys. */
void qkid_conf_wipe(struct qkid_conf *c);

#endif
