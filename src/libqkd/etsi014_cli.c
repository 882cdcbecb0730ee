/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkd-etsi014 - command line ETSI GS QKD 014 client (libqkd), for operators, tests and the
 * `scripts/bench kms` benchmark.
 *
 *   qkd-etsi014 [options] status SLAVE_SAE_ID
 *   qkd-etsi014 [options] enc SLAVE_SAE_ID [-n NUMBER] [-s SIZE_BITS] [--get]
 *   qkd-etsi014 [options] dec MASTER_SAE_ID KEY_ID... [-s SIZE_BITS] [--get]
 *   qkd-etsi014 [options] bench SLAVE_SAE_ID MASTER_SAE_ID --peer-url URL --peer-cert F
 *                               --peer-key F [-n NUMBER] [-s SIZE] [--duration S] [--threads N]
 *
 * enc/dec print one line per key: "<key_ID> <bits>" (plus the key in hex with --show-keys,
 * meant for tests only). Exit status: 0 on success, 10 + enum etsi014_error_code on a KME or
 * transport error (16 = HTTP 400, 17 = 401, 18 = 503, 20 = malformed), 2 on usage errors.
 * Each subcommand is one *_main in the table below; `qkd-etsi014 SUBCOMMAND --help` shows its help.
 */
#include "etsi014_client.h"

#include <getopt.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct options {
	struct etsi014_client_config cfg;
	struct etsi014_client_config peer;
	unsigned number, size_bits;
	enum etsi014_method method;
	int show_keys;
	double duration;
	unsigned threads;
};

static int status_main(struct options *o, int argc, char **argv);
static int enc_main(struct options *o, int argc, char **argv);
static int dec_main(struct options *o, int argc, char **argv);
static int bench_main(struct options *o, int argc, char **argv);

/* One entry per subcommand: its positional arguments (min..max, -1 = any) and its help. */
static const struct subcommand {
	const char *name;
	const char *args;
	int min_args, max_args;
	const char *help;
	int (*main)(struct options *o, int argc, char **argv);
} subcommands[] = {
	{ "status", "SLAVE_SAE_ID", 1, 1,
	  "print the KME's status for the link to SLAVE_SAE_ID (key size, stored keys, limits)\n",
	  status_main },
	{ "enc", "SLAVE_SAE_ID", 1, 1,
	  "get new keys for SLAVE_SAE_ID (master side); one line per key: KEY_ID BITS\n"
	  "  -n, --number N, -s, --size BITS, -g, --get, --show-keys\n",
	  enc_main },
	{ "dec", "MASTER_SAE_ID KEY_ID...", 2, -1,
	  "get the keys with these key_IDs from MASTER_SAE_ID (slave side); one line per key\n"
	  "  -s, --size BITS, -g, --get, --show-keys\n",
	  dec_main },
	{ "bench", "SLAVE_SAE_ID MASTER_SAE_ID --peer-url URL\n"
	  "                   --peer-cert FILE --peer-key FILE", 2, 2,
	  "enc at --url, dec of the same key_IDs at --peer-url with the peer SAE's\n"
	  "--peer-cert/--peer-key, for --duration SECONDS (5) in --threads N (1); prints one line\n"
	  "of figures; exit status 1 if any key differed or a request failed\n"
	  "  -n, --number N, -s, --size BITS\n",
	  bench_main },
};

#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *f)
{
	fprintf(f, "usage: ");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(f, "%sqkd-etsi014 [options] %s %s\n", i ? "       " : "",
			subcommands[i].name, subcommands[i].args);
	fprintf(f,
		"options:\n"
		"  -u, --url URL           KME base URL (default https://127.0.0.1:8443)\n"
		"  -c, --cert FILE         SAE client certificate (PEM)\n"
		"  -k, --key FILE          SAE private key (PEM)\n"
		"  -C, --ca FILE           CA that signed the KME certificate (PEM)\n"
		"  -n, --number N          keys per request (enc, bench)\n"
		"  -s, --size BITS         key size in bits (enc, dec, bench)\n"
		"  -g, --get               use the GET form instead of POST\n"
		"      --connect-timeout MS, --timeout MS\n"
		"      --show-keys         also print key bytes in hex (testing only)\n"
		"  -h, --help              this text; after a subcommand, that subcommand's help\n"
		"bench: enc at --url, dec of the same key_IDs at --peer-url with the peer SAE's\n"
		"       --peer-cert/--peer-key; --duration SECONDS (5), --threads N (1)\n"
		"exit status: 0 ok, 10+error code on failure (16=400 17=401 18=503 20=malformed)\n");
}

static const struct subcommand *subcommand(const char *name)
{
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		if (strcmp(name, subcommands[i].name) == 0)
			return &subcommands[i];
	return NULL;
}

static void subcommand_usage(FILE *f, const struct subcommand *s)
{
	fprintf(f, "usage: qkd-etsi014 [options] %s %s\n%s"
		"(qkd-etsi014 --help lists the common options)\n", s->name, s->args, s->help);
}

static int fail_exit(const char *what, enum etsi014_error_code rc, const struct etsi014_error *e)
{
	fprintf(stderr, "qkd-etsi014: %s: %s: %s%s%s\n", what, etsi014_strerror(rc), e->message,
		e->details[0] ? " details=" : "", e->details);
	return 10 + (int)rc;
}

static struct etsi014_client *client_new(const struct etsi014_client_config *cfg, int *ret)
{
	struct etsi014_error e;
	struct etsi014_client *c = etsi014_client_new(cfg, &e);
	if (!c)
		*ret = fail_exit("client", e.code, &e);
	return c;
}

static void print_keys(const struct etsi014_key_container *kc, int show)
{
	size_t i, j;

	for (i = 0; i < kc->count; i++) {
		printf("%s %zu", kc->keys[i].key_id, kc->keys[i].len * 8);
		if (show) {
			putchar(' ');
			for (j = 0; j < kc->keys[i].len; j++)
				printf("%02x", kc->keys[i].key[j]);
		}
		putchar('\n');
	}
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* --- bench ------------------------------------------------------------------------------------- */

struct bench {
	struct etsi014_client *master, *slave;
	const char *slave_id, *master_id;
	unsigned number, size_bits;
	double end;
	pthread_mutex_t lock;
	unsigned long requests, keys, bits, unavailable, errors, mismatches;
	double latency_sum;
};

static void *bench_thread(void *arg)
{
	struct bench *b = arg;
	unsigned long requests = 0, keys = 0, bits = 0, unavailable = 0, errors = 0, mismatch = 0;
	double lat = 0;

	while (now_s() < b->end) {
		struct etsi014_key_container *enc = NULL, *dec = NULL;
		struct etsi014_error e;
		const char *ids[ETSI014_KEYS_MAX];
		double t0 = now_s();
		enum etsi014_error_code rc;
		size_t i;

		rc = etsi014_get_enc_keys(b->master, b->slave_id, b->number, b->size_bits, &enc, &e);
		requests++;
		if (rc == ETSI014_ERR_HTTP_503) {
			unavailable++;
			struct timespec ts = {0, 1000000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (rc) {
			errors++;
			if (errors < 5)
				fprintf(stderr, "bench: enc: %s: %s\n", etsi014_strerror(rc), e.message);
			continue;
		}
		for (i = 0; i < enc->count; i++)
			ids[i] = enc->keys[i].key_id;
		rc = etsi014_get_dec_keys_ex(b->slave, b->master_id, ids, enc->count, b->size_bits,
					     ETSI014_POST, &dec, &e);
		requests++;
		if (rc) {
			errors++;
			if (errors < 5)
				fprintf(stderr, "bench: dec: %s: %s\n", etsi014_strerror(rc), e.message);
		} else {
			for (i = 0; i < enc->count; i++) {
				if (enc->keys[i].len != dec->keys[i].len ||
				    memcmp(enc->keys[i].key, dec->keys[i].key, enc->keys[i].len))
					mismatch++;
				keys++;
				bits += enc->keys[i].len * 8;
			}
			lat += now_s() - t0;
		}
		etsi014_key_container_free(enc);
		etsi014_key_container_free(dec);
	}
	pthread_mutex_lock(&b->lock);
	b->requests += requests;
	b->keys += keys;
	b->bits += bits;
	b->unavailable += unavailable;
	b->errors += errors;
	b->mismatches += mismatch;
	b->latency_sum += lat;
	pthread_mutex_unlock(&b->lock);
	return NULL;
}

static int bench_main(struct options *o, int argc, char **argv)
{
	const char *slave_id = argv[1], *master_id = argv[2];
	struct bench b = {0};
	struct etsi014_error e;
	pthread_t tids[64];
	unsigned i, n = o->threads ? o->threads : 1;
	double t0, el;

	(void)argc;
	if (n > 64 || !o->peer.kme_url || !o->peer.cert_file || !o->peer.key_file) {
		subcommand_usage(stderr, subcommand("bench"));
		return 2;
	}
	o->peer.connect_timeout_ms = o->cfg.connect_timeout_ms;
	o->peer.total_timeout_ms = o->cfg.total_timeout_ms;
	b.master = etsi014_client_new(&o->cfg, &e);
	if (!b.master)
		return fail_exit("client", e.code, &e);
	o->peer.ca_file = o->cfg.ca_file;
	b.slave = etsi014_client_new(&o->peer, &e);
	if (!b.slave) {
		etsi014_client_free(b.master);
		return fail_exit("peer client", e.code, &e);
	}
	b.slave_id = slave_id;
	b.master_id = master_id;
	b.number = o->number ? o->number : 1;
	b.size_bits = o->size_bits;
	pthread_mutex_init(&b.lock, NULL);
	t0 = now_s();
	b.end = t0 + (o->duration > 0 ? o->duration : 5);
	for (i = 0; i < n; i++)
		pthread_create(&tids[i], NULL, bench_thread, &b);
	for (i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	el = now_s() - t0;
	printf("threads=%u number=%u seconds=%.2f requests=%lu requests_per_s=%.1f keys=%lu "
	       "key_bits_per_s=%.0f unavailable_503=%lu errors=%lu mismatches=%lu "
	       "pair_latency_ms=%.3f\n",
	       n, b.number, el, b.requests, b.requests / el, b.keys, b.bits / el, b.unavailable,
	       b.errors, b.mismatches,
	       b.keys ? b.latency_sum * 1000 / (b.keys / (double)b.number) : 0.0);
	etsi014_client_free(b.master);
	etsi014_client_free(b.slave);
	pthread_mutex_destroy(&b.lock);
	return b.mismatches || b.errors ? 1 : 0;
}

/* --- status, enc, dec ------------------------------------------------------------------------- */

static int status_main(struct options *o, int argc, char **argv)
{
	struct etsi014_client *c;
	struct etsi014_status st;
	struct etsi014_error e;
	enum etsi014_error_code rc;
	int ret = 0;

	(void)argc;
	if (!(c = client_new(&o->cfg, &ret)))
		return ret;
	rc = etsi014_get_status(c, argv[1], &st, &e);
	if (rc) {
		ret = fail_exit("status", rc, &e);
	} else {
		printf("source_KME_ID=%s\ntarget_KME_ID=%s\nmaster_SAE_ID=%s\n"
		       "slave_SAE_ID=%s\nkey_size=%u\nstored_key_count=%u\n"
		       "max_key_count=%u\nmax_key_per_request=%u\nmax_key_size=%u\n"
		       "min_key_size=%u\nmax_SAE_ID_count=%u\n",
		       st.source_kme_id, st.target_kme_id, st.master_sae_id, st.slave_sae_id,
		       st.key_size, st.stored_key_count, st.max_key_count,
		       st.max_key_per_request, st.max_key_size, st.min_key_size,
		       st.max_sae_id_count);
	}
	etsi014_client_free(c);
	return ret;
}

static int enc_main(struct options *o, int argc, char **argv)
{
	struct etsi014_enc_request req = {
		.number = o->number, .size_bits = o->size_bits, .method = o->method,
	};
	struct etsi014_client *c;
	struct etsi014_key_container *kc;
	struct etsi014_error e;
	enum etsi014_error_code rc;
	int ret = 0;

	(void)argc;
	if (!(c = client_new(&o->cfg, &ret)))
		return ret;
	rc = etsi014_get_enc_keys_ex(c, argv[1], &req, &kc, &e);
	if (rc) {
		ret = fail_exit("enc_keys", rc, &e);
	} else {
		print_keys(kc, o->show_keys);
		etsi014_key_container_free(kc);
	}
	etsi014_client_free(c);
	return ret;
}

static int dec_main(struct options *o, int argc, char **argv)
{
	struct etsi014_client *c;
	struct etsi014_key_container *kc;
	struct etsi014_error e;
	enum etsi014_error_code rc;
	int ret = 0;

	if (!(c = client_new(&o->cfg, &ret)))
		return ret;
	rc = etsi014_get_dec_keys_ex(c, argv[1], (const char *const *)&argv[2], (size_t)(argc - 2),
				     o->size_bits, o->method, &kc, &e);
	if (rc) {
		ret = fail_exit("dec_keys", rc, &e);
	} else {
		print_keys(kc, o->show_keys);
		etsi014_key_container_free(kc);
	}
	etsi014_client_free(c);
	return ret;
}

/* --- main -------------------------------------------------------------------------------------- */

static unsigned parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (!*s || *end || v > 0xffffffffUL) {
		fprintf(stderr, "qkd-etsi014: bad %s '%s'\n", what, s);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"url", required_argument, NULL, 'u'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"ca", required_argument, NULL, 'C'},
		{"number", required_argument, NULL, 'n'},
		{"size", required_argument, NULL, 's'},
		{"get", no_argument, NULL, 'g'},
		{"show-keys", no_argument, NULL, 'S'},
		{"connect-timeout", required_argument, NULL, 'T'},
		{"timeout", required_argument, NULL, 't'},
		{"peer-url", required_argument, NULL, 'U'},
		{"peer-cert", required_argument, NULL, 'P'},
		{"peer-key", required_argument, NULL, 'K'},
		{"duration", required_argument, NULL, 'd'},
		{"threads", required_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct options o = {0};
	const struct subcommand *s = NULL;
	int opt, help = 0, n_args;

	signal(SIGPIPE, SIG_IGN); /* a KME closing mid-request fails the call (see etsi014_client.h) */
	o.cfg.kme_url = "https://127.0.0.1:8443";
	while ((opt = getopt_long(argc, argv, "u:c:k:C:n:s:gh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'u': o.cfg.kme_url = optarg; break;
		case 'c': o.cfg.cert_file = optarg; break;
		case 'k': o.cfg.key_file = optarg; break;
		case 'C': o.cfg.ca_file = optarg; break;
		case 'n': o.number = parse_uint(optarg, "number"); break;
		case 's': o.size_bits = parse_uint(optarg, "size"); break;
		case 'g': o.method = ETSI014_GET; break;
		case 'S': o.show_keys = 1; break;
		case 'T': o.cfg.connect_timeout_ms = parse_uint(optarg, "timeout"); break;
		case 't': o.cfg.total_timeout_ms = parse_uint(optarg, "timeout"); break;
		case 'U': o.peer.kme_url = optarg; break;
		case 'P': o.peer.cert_file = optarg; break;
		case 'K': o.peer.key_file = optarg; break;
		case 'd': o.duration = atof(optarg); break;
		case 'j': o.threads = parse_uint(optarg, "threads"); break;
		case 'h': help = 1; break;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc)
		s = subcommand(argv[optind]);
	if (help) {
		if (s)
			subcommand_usage(stdout, s);
		else
			usage(stdout);
		return 0;
	}
	if (!s) {
		usage(stderr);
		return 2;
	}
	n_args = argc - optind - 1;
	if (n_args < s->min_args || (s->max_args >= 0 && n_args > s->max_args)) {
		subcommand_usage(stderr, s);
		return 2;
	}
	return s->main(&o, argc - optind, argv + optind);
}
