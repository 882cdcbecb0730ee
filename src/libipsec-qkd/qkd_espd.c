/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * qkd-espd - run the libipsec-qkd datapath with static SAs and policies, without charon.
 * For lab tests and benchmarks before (and besides) the kernel-qkd charon plugin.
 *
 *   qkd-espd --tun qkd0 --bind 198.51.100.1 \
 *     --sa "out spi=0x1001 src=198.51.100.1 dst=198.51.100.2 key=0x<40 hex> reqid=1" \
 *     --sa "in  spi=0x2001 src=198.51.100.2 dst=198.51.100.1 key=0x<40 hex> reqid=1" \
 *     --policy "out src=192.0.2.0/25 dst=192.0.2.128/25 reqid=1" \
 *     --policy "in  src=192.0.2.128/25 dst=192.0.2.0/25 reqid=1"
 *
 * SIGUSR1 writes the counters to --stats FILE, SIGTERM/SIGINT stop (and write them too).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>

#include <openssl/crypto.h>

#include "ipsec_qkd.h"
#include "keyprov_qki.h"

#define MAX_SAS 64

struct sa_entry {
	struct iq_sa_cfg cfg;
	uint8_t key[36];
	char peer[64];
};

struct espd {
	struct iq_dp_cfg dp;
	struct sa_entry sas[MAX_SAS];
	int nsas;
	struct iq_policy_cfg pols[MAX_SAS];
	int npols;
	const char *stats_file, *pid_file, *keys_spec;
	int stats_interval;
	bool verbose;
};

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "qkd-espd: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
	exit(2);
}

static void log_cb(void *user, enum iq_log_level lvl, const char *msg)
{
	fprintf(stderr, "qkd-espd: %s%s\n", lvl == IQ_LOG_ERROR ? "error: " : "", msg);
}

static unsigned long parse_num(const char *what, const char *s, unsigned long max)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || !*s || *end || v > max)
		die("bad %s '%s'", what, s);
	return v;
}

/* "rotation=off" or "rotation=RPKMIN[:RPKMAX[:reuse|stall[:LOOKAHEAD]]]" */
static void parse_rotation(const char *s, struct iq_rotation *r)
{
	char buf[128], *tok, *save;
	int i = 0;

	memset(r, 0, sizeof(*r));
	if (!strcmp(s, "off"))
		return;
	snprintf(buf, sizeof(buf), "%s", s);
	r->enabled = true;
	for (tok = strtok_r(buf, ":", &save); tok; tok = strtok_r(NULL, ":", &save), i++) {
		switch (i) {
		case 0:
			r->rpk_min = r->rpk_max = parse_num("rpk_min", tok, 1u << 30);
			break;
		case 1:
			r->rpk_max = parse_num("rpk_max", tok, 1u << 30);
			break;
		case 2:
			if (!strcmp(tok, "reuse"))
				r->exhaust = IQ_EXHAUST_REUSE;
			else if (!strcmp(tok, "stall"))
				r->exhaust = IQ_EXHAUST_STALL;
			else
				die("exhaustion policy must be reuse or stall, not '%s'", tok);
			break;
		case 3:
			r->lookahead = parse_num("lookahead", tok, 64);
			break;
		default:
			die("bad rotation '%s'", s);
		}
	}
	if (r->rpk_min < 1 || r->rpk_max < r->rpk_min)
		die("rotation needs 1 <= rpk_min <= rpk_max ('%s')", s);
}

/* Read a hex key from a file that only its owner may read. */
static int read_keyfile(const char *path, uint8_t *key, size_t keylen)
{
	char buf[256];
	struct stat st;
	FILE *f;
	int n;

	f = fopen(path, "r");
	if (!f)
		die("keyfile %s: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) < 0 || (st.st_mode & 077))
		die("keyfile %s: must not be accessible to group or others (chmod 600)", path);
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	buf[strcspn(buf, "\r\n")] = '\0';
	n = iq_hex_parse(buf, key, keylen);
	OPENSSL_cleanse(buf, sizeof(buf));
	return n;
}

/* Overwrite the key's hex digits in the original argument, so /proc/PID/cmdline (ps) does not
 * show it once parsed. */
static void scrub_key(char *spec)
{
	char *k = strstr(spec, "key=");

	for (; k; k = strstr(k + 4, "key=")) {
		char *v = k + 4;
		if (k != spec && k[-1] != ' ' && k[-1] != '\t')
			continue;                   /* e.g. the "key" in "keyfile=" is not it */
		while (*v && *v != ' ' && *v != '\t')
			*v++ = 'x';
	}
}

static void parse_sa(struct espd *e, char *spec)
{
	struct sa_entry *s;
	struct iq_sa_cfg *c;
	char buf[1024], *tok, *save;
	bool have_spi = false, have_key = false, have_src = false, have_dst = false, dir = false;

	if (e->nsas == MAX_SAS)
		die("too many SAs");
	s = &e->sas[e->nsas];
	c = &s->cfg;
	memset(s, 0, sizeof(*s));
	c->enc_alg = IQ_ENC_AES_GCM_16;
	c->replay_window = IQ_REPLAY_MIN;
	c->reqid = 1;
	if (strlen(spec) >= sizeof(buf))
		die("SA spec too long");
	strcpy(buf, spec);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *v = strchr(tok, '=');
		if (!v) {
			if (!strcmp(tok, "in") || !strcmp(tok, "out")) {
				c->inbound = !strcmp(tok, "in");
				dir = true;
				continue;
			}
			die("SA: expected key=value, got '%s'", tok);
		}
		*v++ = '\0';
		if (!strcmp(tok, "spi")) {
			c->spi = parse_num("spi", v, 0xffffffffu);
			have_spi = true;
		} else if (!strcmp(tok, "src")) {
			if (iq_addr_parse(v, 4500, &c->src))
				die("SA: bad src '%s'", v);
			have_src = true;
		} else if (!strcmp(tok, "dst")) {
			if (iq_addr_parse(v, 4500, &c->dst))
				die("SA: bad dst '%s'", v);
			have_dst = true;
		} else if (!strcmp(tok, "key") || !strcmp(tok, "keyfile")) {
			int n = !strcmp(tok, "key") ? iq_hex_parse(v, s->key, sizeof(s->key))
										: read_keyfile(v, s->key, sizeof(s->key));
			if (n != 20 && n != 36)
				die("SA: key must be 20 (AES-128-GCM) or 36 (AES-256-GCM) bytes incl. salt");
			c->enc_key = s->key;
			c->enc_key_len = n;
			have_key = true;
			OPENSSL_cleanse(v, strlen(v));
		} else if (!strcmp(tok, "reqid")) {
			c->reqid = parse_num("reqid", v, 0xffffffffu);
		} else if (!strcmp(tok, "esn")) {
			c->esn = !strcmp(v, "yes") || !strcmp(v, "1");
		} else if (!strcmp(tok, "replay")) {
			c->replay_window = parse_num("replay", v, IQ_REPLAY_MAX);
		} else if (!strcmp(tok, "rotation")) {
			parse_rotation(v, &c->rotation);
		} else if (!strcmp(tok, "peer")) {
			snprintf(s->peer, sizeof(s->peer), "%s", v);
			c->peer = s->peer;
		} else if (!strcmp(tok, "soft-packets")) {
			c->lifetime.soft_packets = parse_num("soft-packets", v, ~0ul);
		} else if (!strcmp(tok, "hard-packets")) {
			c->lifetime.hard_packets = parse_num("hard-packets", v, ~0ul);
		} else if (!strcmp(tok, "soft-bytes")) {
			c->lifetime.soft_bytes = parse_num("soft-bytes", v, ~0ul);
		} else if (!strcmp(tok, "hard-bytes")) {
			c->lifetime.hard_bytes = parse_num("hard-bytes", v, ~0ul);
		} else if (!strcmp(tok, "soft-time")) {
			c->lifetime.soft_time = parse_num("soft-time", v, ~0ul);
		} else if (!strcmp(tok, "hard-time")) {
			c->lifetime.hard_time = parse_num("hard-time", v, ~0ul);
		} else {
			die("SA: unknown option '%s'", tok);
		}
	}
	OPENSSL_cleanse(buf, sizeof(buf));
	scrub_key(spec);
	if (!dir || !have_spi || !have_key || !have_src || !have_dst)
		die("SA needs in|out, spi=, src=, dst= and key= (or keyfile=)");
	e->nsas++;
}

static void parse_policy(struct espd *e, const char *spec)
{
	struct iq_policy_cfg *p;
	char buf[512], *tok, *save;
	bool dir = false, src = false, dst = false;

	if (e->npols == MAX_SAS)
		die("too many policies");
	p = &e->pols[e->npols];
	memset(p, 0, sizeof(*p));
	p->reqid = 1;
	p->priority = 1000;
	if (strlen(spec) >= sizeof(buf))
		die("policy spec too long");
	strcpy(buf, spec);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *v = strchr(tok, '=');
		if (!v) {
			if (!strcmp(tok, "in") || !strcmp(tok, "out")) {
				p->dir = strcmp(tok, "in") ? IQ_DIR_OUT : IQ_DIR_IN;
				dir = true;
				continue;
			}
			die("policy: expected key=value, got '%s'", tok);
		}
		*v++ = '\0';
		if (!strcmp(tok, "src")) {
			if (iq_ts_parse(v, &p->src))
				die("policy: bad src '%s' (NET/LEN or A-B, optional ,proto,port[-port])", v);
			src = true;
		} else if (!strcmp(tok, "dst")) {
			if (iq_ts_parse(v, &p->dst))
				die("policy: bad dst '%s'", v);
			dst = true;
		} else if (!strcmp(tok, "reqid")) {
			p->reqid = parse_num("reqid", v, 0xffffffffu);
		} else if (!strcmp(tok, "prio")) {
			p->priority = parse_num("prio", v, 0xffffffffu);
		} else {
			die("policy: unknown option '%s'", tok);
		}
	}
	if (!dir || !src || !dst)
		die("policy needs in|out, src= and dst=");
	e->npols++;
}

/* "all", "none", or a list like "all,-gro" / "mmsg,tso,gso" */
static uint32_t parse_offload(const char *s)
{
	static const struct { const char *name; uint32_t bit; } names[] = {
		{ "mmsg", IQ_OFF_MMSG }, { "tso", IQ_OFF_TUN_TSO }, { "uso", IQ_OFF_TUN_USO },
		{ "gso", IQ_OFF_UDP_GSO }, { "gro", IQ_OFF_UDP_GRO }, { "coalesce", IQ_OFF_TUN_GRO },
		{ "all", IQ_OFF_ALL }, { "none", 0 },
	};
	char buf[256], *tok, *save;
	uint32_t v = 0;
	size_t i;

	snprintf(buf, sizeof(buf), "%s", s);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		bool minus = tok[0] == '-';
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			if (!strcmp(tok + minus, names[i].name))
				break;
		if (i == sizeof(names) / sizeof(names[0]))
			die("unknown offload '%s' (mmsg,tso,uso,gso,gro,coalesce,all,none)", tok);
		if (minus)
			v &= ~names[i].bit;
		else
			v |= names[i].bit;
	}
	return v;
}

static struct iq_key_provider *make_provider(const char *spec)
{
	char buf[256], *a, *b, *c;
	struct iq_key_provider *p;

	snprintf(buf, sizeof(buf), "%s", spec);
	if (!strncmp(buf, "test:", 5)) {
		/* test:SEED[:BUDGET[:LATENCY_MS]] */
		a = buf + 5;
		b = strchr(a, ':');
		c = NULL;
		if (b) {
			*b++ = '\0';
			c = strchr(b, ':');
			if (c)
				*c++ = '\0';
		}
		p = iq_test_provider_create(a, b ? parse_num("budget", b, ~0ul) : 0,
									c ? parse_num("latency", c, 10000) : 0);
		if (!p)
			die("out of memory");
		fprintf(stderr, "qkd-espd: WARNING: deterministic test keys (not quantum keys)\n");
		return p;
	}
	if (!strncmp(buf, "qkid:", 5)) {
		/* qkid:SOCKET[:WAIT_MS] */
		a = buf + 5;
		b = strrchr(a, ':');
		if (b)
			*b++ = '\0';
		p = iq_qki_provider_create(*a ? a : NULL, 2000, b ? (int)parse_num("wait", b, 10000) : 50);
		if (!p)
			die("out of memory");
		return p;
	}
	die("--keys must be test:SEED[:BUDGET[:LATENCY_MS]] or qkid:SOCKET[:WAIT_MS]");
	return NULL;
}

static void write_stats(struct espd *e, iq_dp_t *dp)
{
	struct iq_dp_stats st;
	char tmp[512];
	iq_err_t err;
	FILE *f;
	int i;

	if (!e->stats_file)
		return;
	if (iq_dp_get_stats(dp, &st, &err)) {
		fprintf(stderr, "qkd-espd: stats: %s\n", err.msg);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s.tmp", e->stats_file);
	f = fopen(tmp, "w");
	if (!f) {
		fprintf(stderr, "qkd-espd: %s: %s\n", tmp, strerror(errno));
		return;
	}
#define P(x) fprintf(f, #x "=%llu\n", (unsigned long long)st.x)
	P(tun_rx_packets); P(tun_rx_superpackets); P(tun_tx_packets); P(tun_tx_superpackets);
	P(esp_tx_packets); P(esp_rx_packets); P(udp_tx_msgs); P(udp_rx_msgs);
	P(ike_rx); P(keepalive_rx);
	P(drop_no_policy); P(drop_no_sa); P(drop_bad_packet); P(drop_seq_overflow);
	P(drop_hard_limit); P(drop_replay); P(drop_auth); P(drop_nokey); P(drop_stall);
	P(drop_policy_in); P(drop_pad); P(drop_epoch); P(drop_tun_write); P(drop_udp_send); P(tx_blocked);
	P(windows); P(reuse_packets); P(keys_delivered); P(key_failures);
#undef P
	for (i = 0; i < e->nsas; i++) {
		struct iq_sa_cfg *c = &e->sas[i].cfg;
		struct iq_sa_id id = { .dst = c->dst, .spi = c->spi };
		struct iq_sa_stats s;
		const char *d = c->inbound ? "in" : "out";

		if (iq_sa_query(dp, &id, &s, &err))
			continue;
#define S(x) fprintf(f, "sa.%08x.%s." #x "=%llu\n", c->spi, d, (unsigned long long)s.x)
		S(bytes); S(packets); S(epoch); S(rpk); S(keys_ready); S(windows);
		S(reuse_packets); S(stall_drops); S(key_requests); S(key_failures);
		S(replay_drops); S(auth_drops); S(nokey_drops); S(policy_drops); S(pad_drops);
		S(epoch_drops); S(peeks); S(jumps); S(pps); S(key_rate_milli); S(share_milli);
		S(level_target); S(episodes);
#undef S
	}
	fclose(f);
	if (rename(tmp, e->stats_file) < 0)
		fprintf(stderr, "qkd-espd: %s: %s\n", e->stats_file, strerror(errno));
}

static void usage(void)
{
	printf("usage: qkd-espd [options]\n"
		   "  --tun NAME            TUN device name (default ipsecqkd%%d)\n"
		   "  --mtu N               TUN MTU (default 1400)\n"
		   "  --bind ADDR[:PORT]    IPv4 address/port of the ESP-in-UDP socket (0.0.0.0:4500)\n"
		   "  --bind6 ADDR[:PORT]   also an IPv6 socket\n"
		   "  --wan-mtu N           outer MTU (default 1500)\n"
		   "  --offload LIST        all|none|mmsg,tso,uso,gso,gro,coalesce (all; '-x' removes)\n"
		   "  --sa SPEC             in|out spi= src= dst= key=|keyfile= [reqid= esn=yes replay=N\n"
		   "                        rotation=off|RPKMIN[:RPKMAX[:reuse|stall[:LOOKAHEAD]]]\n"
		   "                        peer=NAME soft-/hard-packets|bytes|time=N]\n"
		   "  --policy SPEC         in|out src=TS dst=TS [reqid=N prio=N]\n"
		   "                        TS: NET/LEN, A-B, any4, any6, optional ,proto[,port[-port]]\n"
		   "  --keys SPEC           qkid:SOCKET[:WAIT_MS] | test:SEED[:BUDGET[:LATENCY_MS]]\n"
		   "  --stats FILE          counters as key=value on SIGUSR1, every --stats-interval s,\n"
		   "                        and at exit\n"
		   "  --pidfile FILE        written once the datapath runs\n"
		   "  -v                    verbose\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tun", 1, NULL, 't' }, { "mtu", 1, NULL, 'm' }, { "bind", 1, NULL, 'b' },
		{ "bind6", 1, NULL, '6' }, { "wan-mtu", 1, NULL, 'w' }, { "offload", 1, NULL, 'o' },
		{ "sa", 1, NULL, 's' }, { "policy", 1, NULL, 'p' }, { "keys", 1, NULL, 'k' },
		{ "stats", 1, NULL, 'S' }, { "stats-interval", 1, NULL, 'I' },
		{ "pidfile", 1, NULL, 'P' }, { "help", 0, NULL, 'h' }, { NULL, 0, NULL, 0 },
	};
	static struct espd e;
	iq_dp_t *dp;
	iq_err_t err = { { 0 } };
	sigset_t sigs;
	int opt, i;
	bool running = true;

	e.dp.tun_fd = -1;
	e.dp.offload = IQ_OFF_ALL;
	e.dp.log = log_cb;
	e.dp.log_level = IQ_LOG_INFO;
	while ((opt = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (opt) {
		case 't': e.dp.tun_name = optarg; break;
		case 'm': e.dp.tun_mtu = parse_num("mtu", optarg, 65000); break;
		case 'b':
			if (iq_addr_parse(optarg, 4500, &e.dp.bind4) || e.dp.bind4.sa.sa_family != AF_INET)
				die("bad --bind '%s'", optarg);
			break;
		case '6':
			if (iq_addr_parse(optarg, 4500, &e.dp.bind6) || e.dp.bind6.sa.sa_family != AF_INET6)
				die("bad --bind6 '%s'", optarg);
			break;
		case 'w': e.dp.wan_mtu = parse_num("wan-mtu", optarg, 65535); break;
		case 'o': e.dp.offload = parse_offload(optarg); break;
		case 's': parse_sa(&e, optarg); break;
		case 'p': parse_policy(&e, optarg); break;
		case 'k': e.keys_spec = optarg; break;
		case 'S': e.stats_file = optarg; break;
		case 'I': e.stats_interval = parse_num("stats-interval", optarg, 3600); break;
		case 'P': e.pid_file = optarg; break;
		case 'v': e.dp.log_level = IQ_LOG_DEBUG; break;
		case 'h': usage(); return 0;
		default: usage(); return 2;
		}
	}
	if (optind != argc)
		die("unexpected argument '%s'", argv[optind]);
	for (i = 0; i < e.nsas; i++)
		if (e.sas[i].cfg.rotation.enabled && !e.keys_spec)
			die("SA %08x rotates keys: --keys is required", e.sas[i].cfg.spi);
	if (e.keys_spec)
		e.dp.keys = make_provider(e.keys_spec);

	/* signals are taken by sigwait in this thread; the loop thread inherits the mask */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGUSR1);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (iq_dp_create(&e.dp, &dp, &err))
		die("%s", err.msg);
	for (i = 0; i < e.nsas; i++) {
		if (iq_sa_add(dp, &e.sas[i].cfg, &err))
			die("%s", err.msg);
		OPENSSL_cleanse(e.sas[i].key, sizeof(e.sas[i].key));
	}
	for (i = 0; i < e.npols; i++)
		if (iq_policy_add(dp, &e.pols[i], &err))
			die("policy %d: %s", i + 1, err.msg);
	if (iq_dp_start(dp, &err))
		die("%s", err.msg);
	if (e.pid_file) {
		FILE *f = fopen(e.pid_file, "w");
		if (!f)
			die("%s: %s", e.pid_file, strerror(errno));
		fprintf(f, "%d\n", (int)getpid());
		fclose(f);
	}
	printf("qkd-espd: running on %s, UDP port %u, %d SAs, %d policies\n", iq_dp_tun_name(dp),
		   iq_dp_udp_port(dp), e.nsas, e.npols);
	fflush(stdout);

	while (running) {
		struct timespec to = { e.stats_interval ? e.stats_interval : 3600, 0 };
		int sig = sigtimedwait(&sigs, NULL, &to);

		switch (sig) {
		case SIGINT:
		case SIGTERM:
			running = false;
			break;
		case SIGUSR1:
		case SIGHUP:
			write_stats(&e, dp);
			break;
		default:
			if (e.stats_interval)
				write_stats(&e, dp);
			break;
		}
	}
	write_stats(&e, dp);
	iq_dp_stop(dp);
	iq_dp_destroy(dp);
	if (e.pid_file)
		unlink(e.pid_file);
	return 0;
}
