/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qki-probe: a local API client for the end-to-end tests and the benchmark. It prints key
 * fingerprints (first 8 bytes of SHA-256 of the key), never keys.
 *
 *   qki-probe SOCK new PEER [N]                  N x KEY_NEW: "key_id fpr" per line
 *   qki-probe SOCK get PEER KEY_ID...            KEY_GET each: "key_id fpr" or "key_id ERR name"
 *   qki-probe SOCK epochs PEER SPI in|out FIRST COUNT [WAIT_MS]
 *                                                register, then keys of COUNT epochs:
 *                                                "epoch key_id fpr" per line
 *   qki-probe SOCK keys SPI in|out FIRST COUNT [WAIT_MS]
 *                                                like epochs, without registering the SA first
 *   qki-probe SOCK follow PEER SPI in|out FIRST COUNT [WAIT_MS]
 *                                                like epochs, but follows STALE answers to the
 *                                                next epoch ("# stale E next N" line)
 *   qki-probe SOCK sim PEER SPI0 in|out DURATION WARMUP RATE...
 *                                                one SA per RATE (epochs/s) consuming keys;
 *                                                prints per-SA results and Jain's indexes
 *   qki-probe fair SUPPLY DEMAND:GOT...          max-min fair shares of SUPPLY (keys/s, measured
 *                                                apart from qkid: the KME's counters) among the
 *                                                demands, and how close GOT came to them
 *   qki-probe SOCK bench PEER SECONDS            local API latency and keys/s (KEY_NEW, SA)
 *   qki-probe SOCK raw HEX|@FILE...              send raw bytes per argument, print replies
 *   qki-probe SOCK hold PEER SPI in|out SECONDS [N]
 *                                                register (N SAs: SPI, SPI+1, ...) and stay
 *                                                connected
 *
 * QKI_PROBE_TIMEOUT (ms, default 10000) sets the client timeout.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/sha.h>

#include "../qki_client.h"
#include "../qkid_fair.h"

static const char *errname(int code)
{
	static const char *const n[] = { "OK", "PROTO", "VERSION", "UNSUPPORTED", "INVALID",
		"NO_PEER", "NO_SA", "EXISTS", "NO_KEY", "UNKNOWN_KEY", "KEY_USED", "KME",
		"PEER_DOWN", "STALE", "BUSY", "INTERNAL", "PERMISSION" };
	if (code >= 0 && code < (int)(sizeof(n) / sizeof(n[0])))
		return n[code];
	switch (code) {
	case QKI_ERR_CONNECT: return "CONNECT";
	case QKI_ERR_IO: return "IO";
	case QKI_ERR_TIMEOUT: return "TIMEOUT";
	case QKI_ERR_REPLY: return "REPLY";
	}
	return "?";
}

static void fpr(const uint8_t *key, size_t len, char out[17])
{
	uint8_t h[SHA256_DIGEST_LENGTH];
	SHA256(key, len, h);
	for (int i = 0; i < 8; i++)
		sprintf(out + 2 * i, "%02x", h[i]);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_dir(const char *s, enum qki_dir *d)
{
	if (!strcmp(s, "in"))
		*d = QKI_DIR_IN;
	else if (!strcmp(s, "out"))
		*d = QKI_DIR_OUT;
	else
		return -1;
	return 0;
}

static int cmd_new(struct qki_client *c, int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1, rc = 0;
	for (int i = 0; i < n; i++) {
		uint8_t key[32];
		char id[QKI_KEY_ID_MAX], f[17];
		struct qki_error err;
		int r = qki_get_new_key(c, argv[0], sizeof(key), key, id, &err);
		if (r) {
			printf("- ERR %s %s\n", errname(r), err.message);
			return 1;       /* stop at the first error */
		}
		fpr(key, sizeof(key), f);
		qki_wipe(key, sizeof(key));
		printf("%s %s\n", id, f);
	}
	return rc;
}

static int cmd_get(struct qki_client *c, int argc, char **argv)
{
	int rc = 0;
	for (int i = 1; i < argc; i++) {
		uint8_t key[32];
		char f[17];
		struct qki_error err;
		int r = qki_get_key_by_id(c, argv[0], argv[i], sizeof(key), key, &err);
		if (r) {
			printf("%s ERR %s %s\n", argv[i], errname(r), err.message);
			rc = 1;
			continue;
		}
		fpr(key, sizeof(key), f);
		qki_wipe(key, sizeof(key));
		printf("%s %s\n", argv[i], f);
	}
	return rc;
}

/* argv: PEER SPI DIR FIRST COUNT [WAIT_MS]; PEER only matters with reg */
static int cmd_epochs(struct qki_client *c, int argc, char **argv, int follow, int reg)
{
	struct qki_error err;
	enum qki_dir dir;
	uint32_t spi = (uint32_t)strtoul(argv[1], NULL, 16), first, count, got = 0;
	unsigned wait = argc > 5 ? (unsigned)atoi(argv[5]) : 3000;
	int r;

	if (parse_dir(argv[2], &dir))
		return 2;
	first = (uint32_t)strtoul(argv[3], NULL, 10);
	count = (uint32_t)strtoul(argv[4], NULL, 10);
	r = reg ? qki_sa_register(c, argv[0], spi, dir, NULL, &err) : QKI_OK;
	if (r) {
		printf("ERR %s %s\n", errname(r), err.message);
		return 1;
	}
	qki_client_set_timeout(c, (int)wait + 1000);
	while (got < count) {
		struct qki_epoch_key keys[QKI_EPOCH_BATCH_MAX];
		unsigned n = 0;
		uint32_t next = 0;
		r = qki_sa_get_epoch_keys(c, spi, dir, first + got, count - got, wait, keys, &n, NULL,
					  &next, &err);
		if (r == QKI_ERR_STALE && follow && next > first + got) {
			printf("# stale %u next %u\n", first + got, next);
			first = next - got;
			continue;
		}
		if (r) {
			printf("ERR %s epoch %u next %u %s\n", errname(r), first + got, next,
			       err.message);
			return 1;
		}
		for (unsigned i = 0; i < n; i++) {
			char f[17];
			fpr(keys[i].key, keys[i].size, f);
			printf("%u %s %s\n", keys[i].epoch, keys[i].key_id, f);
		}
		qki_wipe(keys, sizeof(keys));
		got += n;
	}
	return 0;
}

static int cmd_hold(struct qki_client *c, int argc, char **argv)
{
	struct qki_error err;
	enum qki_dir dir;
	uint32_t spi = (uint32_t)strtoul(argv[1], NULL, 16);
	unsigned long n = argc > 4 ? strtoul(argv[4], NULL, 10) : 1;
	int r;
	if (parse_dir(argv[2], &dir) || n < 1 || n > 100000)
		return 2;
	for (unsigned long i = 0; i < n; i++) {
		r = qki_sa_register(c, argv[0], spi + (uint32_t)i, dir, NULL, &err);
		if (r) {
			printf("ERR %s %s\n", errname(r), err.message);
			return 1;
		}
	}
	printf("registered\n");
	fflush(stdout);
	sleep((unsigned)atoi(argv[3]));
	return 0;
}

/* Max-min fair shares of `supply` among demands (water filling). */
static void maxmin(const double *demand, size_t n, double supply, double *share)
{
	int done[64] = { 0 };
	size_t left = n;
	for (size_t i = 0; i < n; i++)
		share[i] = 0;
	while (left && supply > 1e-9) {
		double each = supply / left;
		int changed = 0;
		for (size_t i = 0; i < n; i++)
			if (!done[i] && demand[i] - share[i] <= each) {
				supply -= demand[i] - share[i];
				share[i] = demand[i];
				done[i] = 1;
				left--;
				changed = 1;
			}
		if (!changed) {
			for (size_t i = 0; i < n; i++)
				if (!done[i])
					share[i] += each;
			break;
		}
	}
}

static int cmd_sim(struct qki_client *c, int argc, char **argv)
{
	struct qki_error err;
	enum qki_dir dir;
	uint32_t spi0 = (uint32_t)strtoul(argv[1], NULL, 16);
	double duration = atof(argv[3]), warmup = atof(argv[4]);
	size_t n = (size_t)(argc - 5);
	double rate[64], tokens[64] = { 0 }, got[64] = { 0 }, demand[64], x[64], sat[64];
	uint32_t epoch[64] = { 0 };
	uint64_t misses[64] = { 0 };
	double t0, last, total = 0, sum_demand = 0;

	if (parse_dir(argv[2], &dir) || n == 0 || n > 64)
		return 2;
	for (size_t i = 0; i < n; i++) {
		rate[i] = atof(argv[5 + i]);
		if (qki_sa_register(c, argv[0], spi0 + (uint32_t)i, dir, NULL, &err)) {
			printf("ERR register: %s\n", err.message);
			return 1;
		}
	}
	t0 = last = now_s();
	while (now_s() - t0 < duration) {
		double t = now_s(), dt = t - last;
		int measuring = t - t0 >= warmup;
		last = t;
		for (size_t i = 0; i < n; i++) {
			struct qki_epoch_key keys[QKI_EPOCH_BATCH_MAX];
			unsigned want, got_n = 0;
			uint32_t next = 0;
			int r;
			tokens[i] += rate[i] * dt;
			/* a datapath does not bank demand for long: at most 0.2 s of it */
			if (tokens[i] > rate[i] * 0.2 + 1)
				tokens[i] = rate[i] * 0.2 + 1;
			if (tokens[i] < 1)
				continue;
			want = tokens[i] > QKI_EPOCH_BATCH_MAX ? QKI_EPOCH_BATCH_MAX : (unsigned)tokens[i];
			r = qki_sa_get_epoch_keys(c, spi0 + (uint32_t)i, dir, epoch[i], want, 0, keys,
						  &got_n, NULL, &next, &err);
			if (r == QKI_ERR_STALE) {
				epoch[i] = next;
				continue;
			}
			/* no key now (the KME may be away for a moment): a datapath waits and asks again */
			if (r == QKI_ERR_NO_KEY || r == QKI_ERR_KME) {
				if (measuring)
					misses[i]++;
				continue;
			}
			if (r) {
				printf("ERR %s %s\n", errname(r), err.message);
				return 1;
			}
			qki_wipe(keys, sizeof(keys));
			epoch[i] += got_n;
			tokens[i] -= got_n;
			if (measuring)
				got[i] += got_n;
		}
		usleep(5000);
	}
	duration -= warmup;
	for (size_t i = 0; i < n; i++) {
		x[i] = got[i] / duration;
		demand[i] = rate[i];
		sat[i] = x[i] / demand[i];
		total += x[i];
		sum_demand += demand[i];
	}
	/* No max-min share here: derived from what the SAs got, it would call any split fair.
	 * 'qki-probe fair' computes it from the supply measured at the KME. */
	for (size_t i = 0; i < n; i++)
		printf("sa %08x demand %.1f got %.2f keys/s satisfaction %.3f empty_polls %llu\n",
		       spi0 + (unsigned)i, demand[i], x[i], sat[i], (unsigned long long)misses[i]);
	printf("got %.2f keys/s demand %.2f keys/s\n", total, sum_demand);
	printf("jain_raw %.4f\n", qkid_jain_index(x, n));
	printf("jain_satisfaction %.4f\n", qkid_jain_index(sat, n));
	for (size_t i = 0; i < n; i++)
		qki_sa_unregister(c, spi0 + (uint32_t)i, dir, NULL);
	return 0;
}

/* fair SUPPLY DEMAND:GOT...: the max-min fair share of each SA from the supply and the demands
 * alone, got / share per SA, their minimum, Jain's index of them, and the share of the supply
 * the SAs got (efficiency). */
static int cmd_fair(int argc, char **argv)
{
	double supply = atof(argv[0]), demand[64], got[64], share[64], rel[64];
	double total = 0, min_rel = INFINITY;
	size_t n = (size_t)(argc - 1);

	if (!(supply > 0) || n == 0 || n > 64) {
		fprintf(stderr, "qki-probe fair: SUPPLY must be > 0, with 1..64 DEMAND:GOT pairs\n");
		return 2;
	}
	for (size_t i = 0; i < n; i++) {
		if (sscanf(argv[1 + i], "%lf:%lf", &demand[i], &got[i]) != 2 || !(demand[i] > 0)) {
			fprintf(stderr, "qki-probe fair: '%s' is not DEMAND:GOT\n", argv[1 + i]);
			return 2;
		}
		total += got[i];
	}
	maxmin(demand, n, supply, share);
	for (size_t i = 0; i < n; i++) {
		rel[i] = got[i] / share[i];
		if (rel[i] < min_rel)
			min_rel = rel[i];
		printf("sa %zu demand %.1f got %.2f maxmin_share %.2f got_of_share %.3f\n", i,
		       demand[i], got[i], share[i], rel[i]);
	}
	printf("supply %.2f keys/s got %.2f keys/s efficiency %.3f\n", supply, total, total / supply);
	printf("min_got_of_share %.3f\n", min_rel);
	printf("jain_vs_maxmin %.4f\n", qkid_jain_index(rel, n));
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, double *lat, size_t n, double elapsed, size_t keys)
{
	if (!n) {
		printf("%s: no samples\n", what);
		return;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("%s: calls %zu keys %zu keys_per_s %.0f latency_us median %.1f p95 %.1f p99 %.1f\n",
	       what, n, keys, keys / elapsed, lat[n / 2] * 1e6, lat[n * 95 / 100] * 1e6,
	       lat[n * 99 / 100] * 1e6);
}

static int cmd_bench(struct qki_client *c, int argc, char **argv)
{
	double secs = atof(argv[1]), t0, *lat;
	size_t n = 0, cap = 1 << 20, keys = 0;
	struct qki_error err;
	uint32_t epoch = 0, spi = 0xbe000001;

	lat = malloc(cap * sizeof(*lat));
	if (!lat)
		return 1;
	/* IKE: KEY_NEW one by one (each is a fresh key and an announcement to the peer) */
	t0 = now_s();
	while (now_s() - t0 < secs && n < cap) {
		uint8_t key[32];
		char id[QKI_KEY_ID_MAX];
		double t = now_s();
		int r = qki_get_new_key(c, argv[0], sizeof(key), key, id, &err);
		qki_wipe(key, sizeof(key));
		if (r) {
			printf("KEY_NEW: %s\n", err.message);
			break;
		}
		lat[n++] = now_s() - t;
	}
	report("key_new", lat, n, now_s() - t0, n);

	/* datapath: SA_KEYS of 1 and of 16 epochs, release as it goes */
	if (qki_sa_register(c, argv[0], spi, QKI_DIR_OUT, NULL, &err)) {
		printf("register: %s\n", err.message);
		return 1;
	}
	for (int batch = 1; batch <= 16; batch *= 16) {
		char what[32];
		n = 0;
		keys = 0;
		t0 = now_s();
		while (now_s() - t0 < secs && n < cap) {
			struct qki_epoch_key k[16];
			unsigned got = 0;
			uint32_t next;
			double t = now_s();
			int r = qki_sa_get_epoch_keys(c, spi, QKI_DIR_OUT, epoch, (unsigned)batch, 1000, k,
						      &got, NULL, &next, &err);
			if (r == QKI_ERR_STALE) {
				epoch = next;
				continue;
			}
			if (r) {
				printf("SA_KEYS: %s\n", err.message);
				break;
			}
			lat[n++] = now_s() - t;
			keys += got;
			epoch += got;
			qki_wipe(k, sizeof(k));
		}
		snprintf(what, sizeof(what), "sa_keys_batch%d", batch);
		report(what, lat, n, now_s() - t0, keys);
	}
	/* a call that needs no key: the floor of the socket round trip */
	n = 0;
	t0 = now_s();
	while (now_s() - t0 < secs / 2 && n < cap) {
		double t = now_s();
		struct qki_sa_counters cnt = { .packets = n, .bytes = n * 1400 };
		if (qki_sa_report(c, spi, QKI_DIR_OUT, &cnt, NULL, &err))
			break;
		lat[n++] = now_s() - t;
	}
	report("sa_report", lat, n, now_s() - t0, 0);
	qki_sa_unregister(c, spi, QKI_DIR_OUT, NULL);
	free(lat);
	return 0;
}

static int unhex(const char *s, uint8_t *out, size_t cap)
{
	size_t n = 0;
	while (*s && s[1] && n < cap) {
		unsigned v;
		if (sscanf(s, "%2x", &v) != 1)
			return -1;
		out[n++] = (uint8_t)v;
		s += 2;
	}
	return (int)n;
}

static int cmd_raw(const char *path, int argc, char **argv)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun))) {
		printf("connect failed\n");
		return 1;
	}
	for (int i = 0; i < argc; i++) {
		static uint8_t buf[2 * (QKI_HDR_LEN + QKI_MSG_MAX)], rx[QKI_HDR_LEN + QKI_MSG_MAX];
		static char hexbuf[4 * (QKI_HDR_LEN + QKI_MSG_MAX) + 1];
		const char *hex = argv[i];
		int n;
		if (hex[0] == '@') {    /* @FILE: the hex is in a file (argv is limited) */
			FILE *f = fopen(hex + 1, "r");
			size_t got = f ? fread(hexbuf, 1, sizeof(hexbuf) - 1, f) : 0;
			if (f)
				fclose(f);
			hexbuf[got] = 0;
			hex = hexbuf;
		}
		n = unhex(hex, buf, sizeof(buf));
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t got = 0;
		if (n < 0 || send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n) {
			printf("msg %d: send failed\n", i);
			return 1;
		}
		/* read whatever comes within 500 ms */
		while (poll(&pfd, 1, 500) == 1) {
			ssize_t r = recv(fd, rx + got, sizeof(rx) - (size_t)got, 0);
			if (r <= 0) {
				printf("msg %d: %s\n", i, got ? "reply then closed" : "closed");
				close(fd);
				return 0;
			}
			got += r;
			if (got >= QKI_HDR_LEN && got >= QKI_HDR_LEN + (ssize_t)qki_get32(rx + 8))
				break;
		}
		if (got >= QKI_HDR_LEN) {
			struct qki_attrs a;
			uint32_t code = 0;
			qki_attrs_parse(rx + QKI_HDR_LEN, (size_t)got - QKI_HDR_LEN, &a, NULL);
			qki_attr_u32(&a, QKI_A_ERROR, &code);
			printf("msg %d: reply type 0x%02x seq %u error %s\n", i, rx[3], qki_get32(rx + 4),
			       errname((int)code));
		} else {
			printf("msg %d: no reply\n", i);
		}
	}
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	struct qki_client *c;
	struct qki_error err;
	int rc;

	if (argc < 3) {
		fprintf(stderr, "usage: see the comment at the top of qki_probe.c\n");
		return 2;
	}
	if (!strcmp(argv[1], "fair"))
		return cmd_fair(argc - 2, argv + 2);
	if (!strcmp(argv[2], "raw"))
		return cmd_raw(argv[1], argc - 3, argv + 3);
	c = qki_client_connect(argv[1], getenv("QKI_PROBE_TIMEOUT") ?
			       atoi(getenv("QKI_PROBE_TIMEOUT")) : 10000, &err);
	if (!c) {
		printf("ERR %s %s\n", errname(err.code), err.message);
		return 1;
	}
	if (!strcmp(argv[2], "new") && argc >= 4)
		rc = cmd_new(c, argc - 3, argv + 3);
	else if (!strcmp(argv[2], "get") && argc >= 5)
		rc = cmd_get(c, argc - 3, argv + 3);
	else if (!strcmp(argv[2], "epochs") && argc >= 8)
		rc = cmd_epochs(c, argc - 3, argv + 3, 0, 1);
	else if (!strcmp(argv[2], "keys") && argc >= 7)
		rc = cmd_epochs(c, argc - 2, argv + 2, 0, 0);   /* argv[0] "keys" stands for PEER */
	else if (!strcmp(argv[2], "follow") && argc >= 8)
		rc = cmd_epochs(c, argc - 3, argv + 3, 1, 1);
	else if (!strcmp(argv[2], "sim") && argc >= 9)
		rc = cmd_sim(c, argc - 3, argv + 3);
	else if (!strcmp(argv[2], "bench") && argc >= 5)
		rc = cmd_bench(c, argc - 3, argv + 3);
	else if (!strcmp(argv[2], "hold") && argc >= 7)
		rc = cmd_hold(c, argc - 3, argv + 3);
	else {
		fprintf(stderr, "qki-probe: bad command\n");
		rc = 2;
	}
	qki_client_close(c);
	return rc;
}
