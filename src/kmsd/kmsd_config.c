/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * kmsd_config.c - one table of settings, read from a "key = value" file and from flags.
 *
 * Every setting has exactly one name: `name = value` in the file, `--name value` or
 * `--name=value` on the command line (dashes and underscores are interchangeable). Flags win
 * over the file; a list setting given as a flag replaces the file's list. --help prints the
 * table, so the documentation cannot drift from what is parsed.
 */
#include "kmsd.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etsi014_codec.h"
#include "ipseq_config.h"

enum opt_type {
	OPT_STR, OPT_UINT, OPT_DOUBLE, OPT_LIST, OPT_LINK_MODE, OPT_LOG_LEVEL,
	OPT_SAE_AT,  /* a list of SAE_ID@NODE */
	OPT_ROUTE,   /* a list of "DEST via NEXT" */
};

struct opt {
	const char *name;
	enum opt_type type;
	size_t offset;
	size_t count_offset;  /* OPT_LIST: where the count lives */
	const char *def;      /* default, applied before the file */
	const char *help;
};

#define OFF(f) offsetof(struct kmsd_config, f)

static const struct opt opts[] = {
	{"kme_id", OPT_STR, OFF(kme_id), 0, "KME_A",
	 "this KME's ID (source_KME_ID); the peer's link certificate must carry it as CN"},
	{"peer_kme_id", OPT_STR, OFF(peer_kme_id), 0, "KME_B",
	 "the peer KME's ID (target_KME_ID); its link certificate CN must equal it"},
	{"listen", OPT_STR, OFF(listen), 0, "127.0.0.1:8443",
	 "HTTPS address:port for SAEs ([v6addr]:port for IPv6)"},
	{"cert", OPT_STR, OFF(cert), 0, NULL,
	 "PEM server certificate of this KME (also its client certificate on the QKD link)"},
	{"key", OPT_STR, OFF(key), 0, NULL, "PEM private key of cert"},
	{"ca", OPT_STR, OFF(ca), 0, NULL,
	 "PEM CA that signs SAE client certificates and the peer KME's certificate"},
	{"sae", OPT_LIST, OFF(saes), OFF(n_saes), NULL,
	 "SAE ID (client certificate CN) attached to this KME; repeat for several"},
	{"peer_sae", OPT_LIST, OFF(peer_saes), OFF(n_peer_saes), NULL,
	 "SAE ID attached to the peer KME; local SAEs may share keys with these; repeat"},
	{"link_mode", OPT_LINK_MODE, OFF(link_mode), 0, "listen",
	 "listen: accept the QKD link and be its master (generates keys); connect: dial the master"},
	{"link_address", OPT_STR, OFF(link_address), 0, "127.0.0.1:8444",
	 "QKD link address:port: where the master listens / where the slave connects to"},
	{"link_timeout_ms", OPT_UINT, OFF(link_timeout_ms), 0, "2000",
	 "how long an API request waits for the peer KME before answering 503"},
	{"link_retry_ms", OPT_UINT, OFF(link_retry_ms), 0, "500",
	 "link slave: pause between connection attempts"},
	{"key_size", OPT_UINT, OFF(key_size), 0, "256",
	 "default key size in bits (stored block size, multiple of 8); the link master's value is used by both"},
	{"min_key_size", OPT_UINT, OFF(min_key_size), 0, "64", "smallest key size a request may ask (bits)"},
	{"max_key_size", OPT_UINT, OFF(max_key_size), 0, "8192",
	 "largest key size a request may ask (bits); keys above key_size consume several blocks"},
	{"max_key_count", OPT_UINT, OFF(max_key_count), 0, "100000",
	 "store bound in blocks of key_size; generation pauses when full (link master's value is used)"},
	{"max_key_per_request", OPT_UINT, OFF(max_key_per_request), 0, "128",
	 "most keys one enc_keys/dec_keys request may ask"},
	{"key_rate", OPT_DOUBLE, OFF(key_rate), 0, "0",
	 "secret key rate in bit/s (link master); 0 = derive it from the fibre model below"},
	{"fibre_length_km", OPT_DOUBLE, OFF(fibre_length_km), 0, "20",
	 "fibre model: link length in km"},
	{"attenuation_db_per_km", OPT_DOUBLE, OFF(attenuation_db_per_km), 0, "0.2",
	 "fibre model: loss in dB/km"},
	{"reference_rate", OPT_DOUBLE, OFF(reference_rate), 0, "100000",
	 "fibre model: secret key rate at 0 km in bit/s; rate = reference_rate * 10^(-loss_dB/10)"},
	{"reservation_lifetime", OPT_UINT, OFF(reservation_lifetime), 0, "300",
	 "seconds a key handed to a master SAE stays available for its slave"},
	{"fail_rate", OPT_DOUBLE, OFF(fail_rate), 0, "0",
	 "fault injection: probability (0..1) that an API request gets a simulated 503"},
	{"max_connections", OPT_UINT, OFF(max_connections), 0, "64", "concurrent HTTPS connections"},
	{"log_level", OPT_LOG_LEVEL, OFF(log_level), 0, "info", "error, warn, info or debug"},
	{"remote_sae", OPT_SAE_AT, OFF(remote_saes), OFF(n_remote_saes), NULL,
	 "SAE_ID@NODE: an SAE attached to another node; its keys are relayed there; repeat"},
	{"route", OPT_ROUTE, OFF(routes), OFF(n_routes), NULL,
	 "DEST via NEXT: static route for relays to node DEST (used without a controller route); "
	 "repeat"},
	{"controller", OPT_STR, OFF(controller), 0, "",
	 "path controller https://ADDR:PORT (empty: static routes only)"},
	{"controller_id", OPT_STR, OFF(controller_id), 0, "QSC",
	 "the CN the path controller's certificate must carry"},
	{"controller_interval", OPT_DOUBLE, OFF(controller_interval), 0, "1",
	 "seconds between link reports to the path controller"},
};

/* What a [link NAME] section may set; everything else is the node's. */
static const char *const link_keys[] = {
	"peer_kme_id", "peer_sae", "link_mode", "link_address", "link_retry_ms", "key_size",
	"max_key_count", "key_rate", "fibre_length_km", "attenuation_db_per_km", "reference_rate",
};

#define N_OPTS (sizeof(opts) / sizeof(opts[0]))

static const struct opt *find_opt(const char *name, size_t len)
{
	size_t i, j;

	for (i = 0; i < N_OPTS; i++) {
		const char *n = opts[i].name;
		if (strlen(n) != len)
			continue;
		for (j = 0; j < len; j++) {
			char a = name[j] == '-' ? '_' : name[j];
			if (a != n[j])
				break;
		}
		if (j == len)
			return &opts[i];
	}
	return NULL;
}

static int is_list(const struct opt *o)
{
	return o->type == OPT_LIST || o->type == OPT_SAE_AT || o->type == OPT_ROUTE;
}

/* remote_sae: SAE_ID@NODE, split at the last '@' (an SAE ID may hold '@'). */
static int split_sae_at(const char *v, char sae[ETSI014_ID_MAX + 1], char node[ETSI014_ID_MAX + 1])
{
	const char *at = strrchr(v, '@');

	if (!at || !etsi014_sae_id_valid(v, (size_t)(at - v)) ||
	    !etsi014_sae_id_valid(at + 1, strlen(at + 1)))
		return 0;
	memcpy(sae, v, (size_t)(at - v));
	sae[at - v] = '\0';
	strcpy(node, at + 1);
	return 1;
}

/* route: "DEST via NEXT". */
static int split_route(const char *v, char dst[ETSI014_ID_MAX + 1], char next[ETSI014_ID_MAX + 1])
{
	char a[ETSI014_ID_MAX + 2], via[4], b[ETSI014_ID_MAX + 2], extra[2];

	if (strlen(v) > 3 * ETSI014_ID_MAX ||
	    sscanf(v, "%65s %3s %65s %1s", a, via, b, extra) != 3 || strcmp(via, "via") != 0 ||
	    !etsi014_sae_id_valid(a, strlen(a)) || !etsi014_sae_id_valid(b, strlen(b)))
		return 0;
	strcpy(dst, a);
	strcpy(next, b);
	return 1;
}

static void list_clear(struct kmsd_config *cfg, const struct opt *o)
{
	char **list = (char **)((char *)cfg + o->offset);
	unsigned *n = (unsigned *)((char *)cfg + o->count_offset);
	unsigned i;

	for (i = 0; i < *n; i++) {
		free(list[i]);
		list[i] = NULL;
	}
	*n = 0;
}

static int set_opt(struct kmsd_config *cfg, const struct opt *o, const char *value,
		   const char *where)
{
	void *field = (char *)cfg + o->offset;
	char *end;

	switch (o->type) {
	case OPT_STR: {
		char **s = field;
		char *d = strdup(value);
		if (!d)
			return -1;
		free(*s);
		*s = d;
		return 0;
	}
	case OPT_UINT: {
		unsigned long v;
		errno = 0;
		v = strtoul(value, &end, 10);
		if (!*value || *end || errno || v > 0xffffffffUL || value[0] == '-') {
			fprintf(stderr, "qkd-kmsd: %s: %s: not an unsigned integer: '%s'\n", where,
				o->name, value);
			return -1;
		}
		*(unsigned *)field = (unsigned)v;
		return 0;
	}
	case OPT_DOUBLE: {
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (!*value || *end || errno || !isfinite(v) || v < 0) {
			fprintf(stderr, "qkd-kmsd: %s: %s: not a non-negative number: '%s'\n", where,
				o->name, value);
			return -1;
		}
		*(double *)field = v;
		return 0;
	}
	case OPT_LIST:
	case OPT_SAE_AT:
	case OPT_ROUTE: {
		char **list = field;
		unsigned *n = (unsigned *)((char *)cfg + o->count_offset);
		char a[ETSI014_ID_MAX + 1], b[ETSI014_ID_MAX + 1];
		if (*n >= KMSD_MAX_SAES) {
			fprintf(stderr, "qkd-kmsd: %s: too many %s entries (max %d)\n", where,
				o->name, KMSD_MAX_SAES);
			return -1;
		}
		if (o->type == OPT_LIST && !etsi014_sae_id_valid(value, strlen(value))) {
			fprintf(stderr, "qkd-kmsd: %s: %s: invalid SAE ID '%s'\n", where, o->name,
				value);
			return -1;
		}
		if (o->type == OPT_SAE_AT && !split_sae_at(value, a, b)) {
			fprintf(stderr, "qkd-kmsd: %s: %s: want SAE_ID@NODE, got '%s'\n", where,
				o->name, value);
			return -1;
		}
		if (o->type == OPT_ROUTE && !split_route(value, a, b)) {
			fprintf(stderr, "qkd-kmsd: %s: %s: want 'DEST via NEXT', got '%s'\n", where,
				o->name, value);
			return -1;
		}
		list[*n] = strdup(value);
		if (!list[*n])
			return -1;
		(*n)++;
		return 0;
	}
	case OPT_LINK_MODE:
		if (strcmp(value, "listen") == 0)
			*(enum kmsd_link_mode *)field = KMSD_LINK_LISTEN;
		else if (strcmp(value, "connect") == 0)
			*(enum kmsd_link_mode *)field = KMSD_LINK_CONNECT;
		else {
			fprintf(stderr, "qkd-kmsd: %s: link_mode must be listen or connect\n", where);
			return -1;
		}
		return 0;
	case OPT_LOG_LEVEL: {
		static const char *names[] = {"error", "warn", "info", "debug"};
		int i;
		for (i = 0; i < 4; i++) {
			if (strcmp(value, names[i]) == 0) {
				*(enum ipseq_log_level *)field = (enum ipseq_log_level)i;
				return 0;
			}
		}
		fprintf(stderr, "qkd-kmsd: %s: log_level must be error, warn, info or debug\n",
			where);
		return -1;
	}
	}
	return -1;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

static int is_link_key(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(link_keys) / sizeof(link_keys[0]); i++)
		if (strcmp(link_keys[i], name) == 0)
			return 1;
	return 0;
}

/* "[link NAME]": start a section; its lines are kept for apply_links. */
static int section_start(struct kmsd_config *cfg, char *s, const char *where)
{
	char *end = s + strlen(s) - 1, *name;
	unsigned i;

	if (*end != ']' || strncmp(s, "[link", 5) != 0 || (s[5] != ' ' && s[5] != '\t')) {
		fprintf(stderr, "qkd-kmsd: %s: expected '[link NAME]'\n", where);
		return -1;
	}
	*end = '\0';
	name = trim(s + 5);
	if (!etsi014_sae_id_valid(name, strlen(name))) {
		fprintf(stderr, "qkd-kmsd: %s: invalid link name '%s'\n", where, name);
		return -1;
	}
	for (i = 0; i < cfg->n_links; i++) {
		if (strcmp(cfg->links[i].name, name) == 0) {
			fprintf(stderr, "qkd-kmsd: %s: link %s defined twice\n", where, name);
			return -1;
		}
	}
	if (cfg->n_links >= KMSD_MAX_LINKS) {
		fprintf(stderr, "qkd-kmsd: %s: more than %d links\n", where, KMSD_MAX_LINKS);
		return -1;
	}
	cfg->links[cfg->n_links].name = strdup(name);
	if (!cfg->links[cfg->n_links].name)
		return -1;
	cfg->n_links++;
	return 0;
}

static int section_line(struct kmsd_link_conf *lc, const char *name, const char *value,
			const char *where)
{
	char **k, **v;

	if (!find_opt(name, strlen(name))) {
		fprintf(stderr, "qkd-kmsd: %s: unknown setting '%s'\n", where, name);
		return -1;
	}
	if (!is_link_key(name)) {
		fprintf(stderr, "qkd-kmsd: %s: %s is a node setting, not one of a [link]\n", where,
			name);
		return -1;
	}
	k = realloc(lc->keys, (lc->n + 1) * sizeof(*k));
	if (k)
		lc->keys = k;
	v = realloc(lc->values, (lc->n + 1) * sizeof(*v));
	if (v)
		lc->values = v;
	if (!k || !v)
		return -1;
	lc->keys[lc->n] = strdup(name);
	lc->values[lc->n] = strdup(value);
	lc->n++;
	return lc->keys[lc->n - 1] && lc->values[lc->n - 1] ? 0 : -1;
}

static int load_file(struct kmsd_config *cfg, const char *path)
{
	char line[1024], where[1100];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	struct kmsd_link_conf *section = NULL;
	int rc = 0;

	if (!f) {
		fprintf(stderr, "qkd-kmsd: cannot open config %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *s, *eq, *name, *value;
		const struct opt *o;

		lineno++;
		snprintf(where, sizeof(where), "%s:%u", path, lineno);
		if (!strchr(line, '\n') && !feof(f)) {
			fprintf(stderr, "qkd-kmsd: %s: line too long\n", where);
			rc = -1;
			break;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		if (*s == '[') {
			if (section_start(cfg, s, where) < 0) {
				rc = -1;
				break;
			}
			section = &cfg->links[cfg->n_links - 1];
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			fprintf(stderr, "qkd-kmsd: %s: expected 'name = value'\n", where);
			rc = -1;
			break;
		}
		*eq = '\0';
		name = trim(s);
		value = trim(eq + 1);
		if (section) {
			if (section_line(section, name, value, where) < 0) {
				rc = -1;
				break;
			}
			continue;
		}
		o = find_opt(name, strlen(name));
		if (!o) {
			fprintf(stderr, "qkd-kmsd: %s: unknown setting '%s'\n", where, name);
			rc = -1;
			break;
		}
		if (set_opt(cfg, o, value, where) < 0) {
			rc = -1;
			break;
		}
	}
	fclose(f);
	return rc;
}

static void print_help(void)
{
	size_t i;

	printf("usage: qkd-kmsd [--config FILE] [--SETTING VALUE]...\n"
	       "ETSI GS QKD 014 KME simulator: serves /api/v1/keys/{SAE_ID}/{status,enc_keys,"
	       "dec_keys}\n"
	       "over HTTPS with mandatory client certificates (SAE ID = certificate CN), and\n"
	       "shares keys with one peer qkd-kmsd over a simulated QKD link.\n\n"
	       "  --config FILE   read settings from FILE (lines 'name = value', # comments)\n"
	       "  --help, --version\n\n"
	       "settings (file name / flag name, default):\n");
	for (i = 0; i < N_OPTS; i++) {
		char flag[64];
		size_t j;

		snprintf(flag, sizeof(flag), "%s", opts[i].name);
		for (j = 0; flag[j]; j++)
			if (flag[j] == '_')
				flag[j] = '-';
		printf("  --%-24s %s%s%s%s\n", flag, opts[i].help, opts[i].def ? " (default " : "",
		       opts[i].def ? opts[i].def : "", opts[i].def ? ")" : "");
	}
	printf("\nsignals: SIGUSR1 toggles a simulated outage (every request answers 503);\n"
	       "SIGHUP reads the settings again (file and flags) and applies the links' key rates\n"
	       "(key_rate, fibre model); other changes need a restart;\n"
	       "SIGTERM/SIGINT stop cleanly (all key material is wiped).\n");
}

/* The settings of a node or of one of its links. need_peer: this settings' link is used (its
 * peer_kme_id must be valid); need_peer_sae: a one-link KME without remote SAEs, as before
 * there were nodes (its SAEs can only pair with the peer's). */
static int check(const struct kmsd_config *cfg, int need_peer, int need_peer_sae)
{
	if (!etsi014_sae_id_valid(cfg->kme_id, strlen(cfg->kme_id))) {
		fprintf(stderr, "qkd-kmsd: kme_id must be a valid ID\n");
		return -1;
	}
	if (need_peer && (!etsi014_sae_id_valid(cfg->peer_kme_id, strlen(cfg->peer_kme_id)) ||
		       strcmp(cfg->kme_id, cfg->peer_kme_id) == 0)) {
		fprintf(stderr, "qkd-kmsd: kme_id and peer_kme_id must be valid and different\n");
		return -1;
	}
	if (need_peer_sae && (cfg->n_saes == 0 || cfg->n_peer_saes == 0)) {
		fprintf(stderr, "qkd-kmsd: at least one sae and one peer_sae are required\n");
		return -1;
	}
	if (cfg->key_size == 0 || cfg->key_size % 8 || cfg->key_size > KMSD_BLOCK_BITS_MAX ||
	    cfg->min_key_size == 0 || cfg->min_key_size % 8 || cfg->max_key_size % 8 ||
	    cfg->min_key_size > cfg->key_size || cfg->key_size > cfg->max_key_size ||
	    cfg->max_key_size > ETSI014_KEY_BITS_MAX) {
		fprintf(stderr, "qkd-kmsd: need multiples of 8 with min_key_size <= key_size <= "
				"max_key_size, key_size <= %d, max_key_size <= %d\n",
			KMSD_BLOCK_BITS_MAX, ETSI014_KEY_BITS_MAX);
		return -1;
	}
	if (cfg->max_key_count == 0 || cfg->max_key_count > KMSD_KEY_COUNT_MAX ||
	    (uint64_t)cfg->max_key_count * (cfg->key_size / 8) > (512ull << 20)) {
		fprintf(stderr, "qkd-kmsd: max_key_count must be 1..%u and the store at most "
				"512 MiB\n", KMSD_KEY_COUNT_MAX);
		return -1;
	}
	if (cfg->max_key_per_request == 0 || cfg->max_key_per_request > KMSD_PER_REQUEST_MAX) {
		fprintf(stderr, "qkd-kmsd: max_key_per_request must be 1..%d\n",
			KMSD_PER_REQUEST_MAX);
		return -1;
	}
	if (cfg->fail_rate > 1) {
		fprintf(stderr, "qkd-kmsd: fail_rate must be within 0..1\n");
		return -1;
	}
	if (cfg->link_timeout_ms == 0 || cfg->reservation_lifetime == 0 ||
	    cfg->max_connections == 0) {
		fprintf(stderr, "qkd-kmsd: link_timeout_ms, reservation_lifetime and "
				"max_connections must be positive\n");
		return -1;
	}
	return 0;
}

/* A copy of the node's settings that owns its strings (a link's starting point). */
static int clone(struct kmsd_config *dst, const struct kmsd_config *src)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	for (i = 0; i < N_OPTS; i++) {
		const struct opt *o = &opts[i];
		void *to = (char *)dst + o->offset;
		const void *from = (const char *)src + o->offset;

		if (o->type == OPT_STR) {
			const char *v = *(char *const *)from;
			if (v && !(*(char **)to = strdup(v)))
				return -1;
		} else if (is_list(o)) {
			unsigned n = *(const unsigned *)((const char *)src + o->count_offset), j;
			for (j = 0; j < n; j++)
				if (set_opt(dst, o, ((char *const *)from)[j], "link") < 0)
					return -1;
		} else if (o->type == OPT_DOUBLE) {
			*(double *)to = *(const double *)from;
		} else {
			memcpy(to, from, sizeof(unsigned)); /* uint, link mode, log level */
		}
	}
	return 0;
}

/* Each [link NAME]: the node's settings, then the section's lines; a link's own peer_sae list
 * replaces the node's. */
static int build_links(struct kmsd_config *cfg)
{
	unsigned i, j;
	char where[160];

	for (i = 0; i < cfg->n_links; i++) {
		struct kmsd_link_conf *lc = &cfg->links[i];
		int peer_sae_seen = 0;

		snprintf(where, sizeof(where), "[link %s]", lc->name);
		lc->cfg = calloc(1, sizeof(*lc->cfg));
		if (!lc->cfg || clone(lc->cfg, cfg) < 0)
			return -1;
		free(lc->cfg->peer_kme_id);
		lc->cfg->peer_kme_id = NULL;
		list_clear(lc->cfg, find_opt("peer_sae", 8));
		for (j = 0; j < lc->n; j++) {
			const struct opt *o = find_opt(lc->keys[j], strlen(lc->keys[j]));
			if (is_list(o) && !peer_sae_seen++)
				list_clear(lc->cfg, o);
			if (set_opt(lc->cfg, o, lc->values[j], where) < 0)
				return -1;
		}
		if (!lc->cfg->peer_kme_id) {
			fprintf(stderr, "qkd-kmsd: %s: peer_kme_id (the neighbour node) is required\n",
				where);
			return -1;
		}
		if (check(lc->cfg, 1, 0) < 0) {
			fprintf(stderr, "qkd-kmsd: %s: the settings above are of this link\n", where);
			return -1;
		}
		for (j = 0; j < i; j++) {
			if (strcmp(cfg->links[j].cfg->peer_kme_id, lc->cfg->peer_kme_id) == 0) {
				fprintf(stderr, "qkd-kmsd: %s: a second link to %s\n", where,
					lc->cfg->peer_kme_id);
				return -1;
			}
		}
	}
	return 0;
}

int kmsd_config_load(struct kmsd_config *cfg, int argc, char **argv)
{
	size_t i;
	int a;
	int list_from_flags[N_OPTS] = {0};

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < N_OPTS; i++)
		if (opts[i].def && set_opt(cfg, &opts[i], opts[i].def, "default") < 0)
			return -1;

	/* First pass: --help, --version, --config. */
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			print_help();
			return 1;
		}
		if (strcmp(argv[a], "--version") == 0) {
			printf("qkd-kmsd %s\n", PACKAGE_VERSION);
			return 1;
		}
		if (strcmp(argv[a], "--config") == 0 && a + 1 < argc)
			cfg->config_file = strdup(argv[++a]);
		else if (strncmp(argv[a], "--config=", 9) == 0)
			cfg->config_file = strdup(argv[a] + 9);
	}
	if (cfg->config_file && load_file(cfg, cfg->config_file) < 0)
		return -1;

	for (a = 1; a < argc; a++) {
		const char *arg = argv[a], *eq, *value;
		const struct opt *o;
		size_t nlen;

		if (strncmp(arg, "--", 2) != 0) {
			fprintf(stderr, "qkd-kmsd: unexpected argument '%s' (see --help)\n", arg);
			return -1;
		}
		arg += 2;
		eq = strchr(arg, '=');
		nlen = eq ? (size_t)(eq - arg) : strlen(arg);
		if (nlen == 6 && strncmp(arg, "config", 6) == 0) {
			if (!eq)
				a++;
			continue;
		}
		o = find_opt(arg, nlen);
		if (!o) {
			fprintf(stderr, "qkd-kmsd: unknown option '--%.*s' (see --help)\n", (int)nlen,
				arg);
			return -1;
		}
		if (eq) {
			value = eq + 1;
		} else {
			if (a + 1 >= argc) {
				fprintf(stderr, "qkd-kmsd: --%s needs a value\n", arg);
				return -1;
			}
			value = argv[++a];
		}
		if (is_list(o) && !list_from_flags[o - opts]) {
			list_clear(cfg, o);
			list_from_flags[o - opts] = 1;
		}
		if (set_opt(cfg, o, value, "command line") < 0)
			return -1;
	}

	if (!cfg->cert || !cfg->key || !cfg->ca) {
		fprintf(stderr, "qkd-kmsd: cert, key and ca are required\n");
		return -1;
	}
	if (check(cfg, cfg->n_links == 0, cfg->n_links == 0 && cfg->n_remote_saes == 0) < 0)
		return -1;
	if (cfg->controller_interval <= 0 || cfg->controller_interval > 3600 ||
	    !etsi014_sae_id_valid(cfg->controller_id, strlen(cfg->controller_id)) ||
	    (cfg->controller[0] && strncmp(cfg->controller, "https://", 8) != 0)) {
		fprintf(stderr, "qkd-kmsd: controller must be https://ADDR:PORT, controller_id a "
				"valid ID and controller_interval within 0..3600 s\n");
		return -1;
	}
	return build_links(cfg);
}

void kmsd_config_free(struct kmsd_config *cfg)
{
	size_t i;

	for (i = 0; i < N_OPTS; i++) {
		if (opts[i].type == OPT_STR) {
			char **s = (char **)((char *)cfg + opts[i].offset);
			free(*s);
			*s = NULL;
		} else if (is_list(&opts[i])) {
			list_clear(cfg, &opts[i]);
		}
	}
	free(cfg->config_file);
	cfg->config_file = NULL;
	for (i = 0; i < cfg->n_links; i++) {
		struct kmsd_link_conf *lc = &cfg->links[i];
		unsigned j;

		for (j = 0; j < lc->n; j++) {
			free(lc->keys[j]);
			free(lc->values[j]);
		}
		free(lc->keys);
		free(lc->values);
		free(lc->name);
		if (lc->cfg) {
			kmsd_config_free(lc->cfg);
			free(lc->cfg);
		}
		memset(lc, 0, sizeof(*lc));
	}
	cfg->n_links = 0;
}

double kmsd_config_effective_rate(const struct kmsd_config *cfg)
{
	if (cfg->key_rate > 0)
		return cfg->key_rate;
	return cfg->reference_rate *
	       pow(10.0, -cfg->attenuation_db_per_km * cfg->fibre_length_km / 10.0);
}

int kmsd_config_is_local_sae(const struct kmsd_config *cfg, const char *id)
{
	unsigned i;

	for (i = 0; i < cfg->n_saes; i++)
		if (strcmp(cfg->saes[i], id) == 0)
			return 1;
	return 0;
}

int kmsd_config_is_peer_sae(const struct kmsd_config *cfg, const char *id)
{
	unsigned i;

	for (i = 0; i < cfg->n_peer_saes; i++)
		if (strcmp(cfg->peer_saes[i], id) == 0)
			return 1;
	return 0;
}

int kmsd_config_remote_sae_node(const struct kmsd_config *cfg, const char *sae,
				char node[ETSI014_ID_MAX + 1])
{
	char s[ETSI014_ID_MAX + 1];
	unsigned i;

	for (i = 0; i < cfg->n_remote_saes; i++)
		if (split_sae_at(cfg->remote_saes[i], s, node) && strcmp(s, sae) == 0)
			return 1;
	return 0;
}

int kmsd_config_static_next(const struct kmsd_config *cfg, const char *dst,
			    char next[ETSI014_ID_MAX + 1])
{
	char d[ETSI014_ID_MAX + 1];
	unsigned i;

	for (i = 0; i < cfg->n_routes; i++)
		if (split_route(cfg->routes[i], d, next) && strcmp(d, dst) == 0)
			return 1;
	return 0;
}
