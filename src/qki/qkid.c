/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "ipseq_config.h"

/*
 * qkid.c - the QKI middleware daemon: configuration, the single-threaded poll() loop, signals.
 * KME calls run in one worker thread per peer (qkid_kme.c); everything else happens here.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "qkid.h"
#include "qkid_log.h"
#include "ipseq_util.h"

#define DEFAULT_CONF "/etc/ipseq/qkid.conf"
#define TICK_MS 20

int64_t qkid_now_ms(void)
{
	return (int64_t)ipseq_now_ms();
}

void qkid_random(void *buf, size_t n)
{
	if (RAND_bytes(buf, (int)n) != 1) {
		/* without randomness there are no fresh nonces: refuse to go on */
		log_err("no randomness from OpenSSL");
		abort();
	}
}

struct qkid_peer *qkid_peer_by_name(struct qkid *d, const char *name)
{
	for (size_t i = 0; i < d->n_peers; i++)
		if (!strcmp(d->peers[i].conf->name, name))
			return &d->peers[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: qkid [options]\n"
		"The QKI middleware: draws quantum keys from the KME (ETSI GS QKD 014), keeps them in\n"
		"step with the peer gateway's qkid and serves them to charon and the ESP datapath.\n"
		"\n"
		"  -c, --config FILE     configuration (default " DEFAULT_CONF ")\n"
		"  -s, --socket PATH     local API socket (overrides 'socket')\n"
		"  -l, --listen H:P      peer port (overrides 'listen')\n"
		"  -o, --set KEY=VALUE   override a global setting of the config file\n"
		"  -d, --debug           log_level debug\n"
		"  -t, --check           check the configuration and exit\n"
		"  -V, --version         print the version\n"
		"  -h, --help            this text\n"
		"\n"
		"Runs in the foreground and logs to stderr (or syslog: log = syslog).\n"
		"Signals: TERM/INT stop (keys are wiped). See conf/qkid.conf and qkictl(8).\n");
}

enum { FD_LOCAL, FD_CONN, FD_LISTEN, FD_LINK, FD_NOTIFY, FD_SIGNAL };

struct slot {
	int kind;
	void *ptr;
};

static int run(struct qkid *d, int sfd)
{
	size_t cap = 0;
	struct pollfd *pfd = NULL;
	struct slot *slots = NULL;
	int64_t next_tick = 0;

	for (;;) {
		size_t n = 0, need = 4 + d->n_conns + d->n_unbound + 2 * d->n_peers;
		int64_t now;
		int timeout, r;

		if (need > cap) {
			cap = need * 2;
			pfd = realloc(pfd, cap * sizeof(*pfd));
			slots = realloc(slots, cap * sizeof(*slots));
			if (!pfd || !slots) {
				log_err("out of memory");
				return 1;
			}
		}
#define ADD(fd_, ev_, kind_, ptr_) do { \
		pfd[n] = (struct pollfd){ .fd = (fd_), .events = (ev_) }; \
		slots[n++] = (struct slot){ (kind_), (ptr_) }; } while (0)
		ADD(sfd, POLLIN, FD_SIGNAL, NULL);
		ADD(d->notify_rd, POLLIN, FD_NOTIFY, NULL);
		ADD(d->local_fd, POLLIN, FD_LOCAL, NULL);
		if (d->listen_fd >= 0)
			ADD(d->listen_fd, POLLIN, FD_LISTEN, NULL);
		for (struct qkid_conn *c = d->conns; c; c = c->next) {
			short ev = (c->parked || c->closing ? 0 : POLLIN) |
				   (c->tx_off < c->tx_len ? POLLOUT : 0);
			if (c->fd >= 0)
				ADD(c->fd, ev, FD_CONN, c);
		}
		for (size_t i = 0; i < d->n_unbound; i++)
			ADD(d->unbound[i]->fd, POLLIN | (d->unbound[i]->tx_off < d->unbound[i]->tx_len ?
							 POLLOUT : 0), FD_LINK, d->unbound[i]);
		for (size_t i = 0; i < d->n_peers; i++) {
			struct qkid_peer *p = &d->peers[i];
			if (p->link) {
				short ev = POLLIN;
				if (p->link->state == QL_CONNECTING || p->link->tx_off < p->link->tx_len)
					ev |= POLLOUT;
				ADD(p->link->fd, ev, FD_LINK, p->link);
			}
			if (p->candidate)
				ADD(p->candidate->fd, POLLIN | (p->candidate->tx_off < p->candidate->tx_len ?
								POLLOUT : 0), FD_LINK, p->candidate);
		}
#undef ADD
		now = qkid_now_ms();
		timeout = next_tick > now ? (int)(next_tick - now) : 0;
		r = poll(pfd, n, timeout);
		if (r < 0 && errno != EINTR) {
			log_err("poll: %s", strerror(errno));
			return 1;
		}
		for (size_t i = 0; r > 0 && i < n; i++) {
			short re = pfd[i].revents;
			if (!re)
				continue;
			switch (slots[i].kind) {
			case FD_SIGNAL: {
				struct signalfd_siginfo si;
				if (read(sfd, &si, sizeof(si)) == sizeof(si) &&
				    (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
					log_info("signal %u: stopping", si.ssi_signo);
					free(pfd);
					free(slots);
					return 0;
				}
				break;
			}
			case FD_NOTIFY: {
				char buf[64];
				while (read(d->notify_rd, buf, sizeof(buf)) > 0)
					;
				for (size_t j = 0; j < d->n_peers; j++)
					qkid_peer_kme_done(&d->peers[j]);
				break;
			}
			case FD_LOCAL:
				qkid_local_accept(d);
				break;
			case FD_LISTEN:
				qkid_link_accept(d);
				break;
			case FD_CONN:
				qkid_local_io(d, slots[i].ptr, re);
				break;
			case FD_LINK: {
				/* the link may have been freed by an earlier event this round */
				struct qkid_link *l = slots[i].ptr;
				int alive = 0;
				for (size_t j = 0; j < d->n_unbound && !alive; j++)
					alive = d->unbound[j] == l;
				for (size_t j = 0; j < d->n_peers && !alive; j++)
					alive = d->peers[j].link == l || d->peers[j].candidate == l;
				if (alive)
					qkid_link_io(d, l, re);
				break;
			}
			}
		}
		now = qkid_now_ms();
		if (now >= next_tick) {
			for (size_t i = 0; i < d->n_peers; i++)
				qkid_peer_tick(&d->peers[i], now);
			qkid_link_sweep(d, now);
			next_tick = now + TICK_MS;
		} else {
			for (size_t i = 0; i < d->n_peers; i++)
				qkid_peer_work(&d->peers[i], now);
		}
		qkid_local_retry(d, now);
		/* requests answered just now may have emptied buffers: refill and fetch at once */
		for (size_t i = 0; i < d->n_peers; i++) {
			qkid_peer_work(&d->peers[i], now);
			qkid_peer_flush(&d->peers[i]);
		}
		qkid_local_reap(d);
	}
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "socket", required_argument, NULL, 's' },
		{ "listen", required_argument, NULL, 'l' },
		{ "set", required_argument, NULL, 'o' },
		{ "debug", no_argument, NULL, 'd' },
		{ "check", no_argument, NULL, 't' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	const char *conf_path = DEFAULT_CONF;
	char *overrides[64];
	size_t n_over = 0;
	int debug = 0, check = 0, opt, rc = 1, sfd = -1, pipefd[2] = { -1, -1 };
	struct qkid_conf *conf = calloc(1, sizeof(*conf));
	struct qkid *d = calloc(1, sizeof(*d));
	char err[512];
	sigset_t mask;

	if (!conf || !d) {
		fprintf(stderr, "qkid: out of memory\n");
		return 1;
	}
	while ((opt = getopt_long(argc, argv, "c:s:l:o:dtVh", opts, NULL)) != -1) {
		switch (opt) {
		case 'c': conf_path = optarg; break;
		case 's':
		case 'l':
			if (n_over + 1 >= 64) {
				fprintf(stderr, "qkid: too many overrides\n");
				return 1;
			}
			if (asprintf(&overrides[n_over++], "%s=%s",
				     opt == 's' ? "socket" : "listen", optarg) < 0)
				return 1;
			break;
		case 'o':
			if (n_over + 1 >= 64 || !strchr(optarg, '=')) {
				fprintf(stderr, "qkid: --set wants KEY=VALUE\n");
				return 1;
			}
			overrides[n_over++] = strdup(optarg);
			break;
		case 'd': debug = 1; break;
		case 't': check = 1; break;
		case 'V': printf("qkid %s (local API v%d)\n", PACKAGE_VERSION, QKI_PROTO_VERSION);
			return 0;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "qkid: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return 2;
	}

	qkid_conf_defaults(conf);
	if (qkid_conf_load(conf, conf_path, err, sizeof(err))) {
		fprintf(stderr, "qkid: %s\n", err);
		return 1;
	}
	for (size_t i = 0; i < n_over; i++) {
		char *eq = strchr(overrides[i], '=');
		*eq = 0;
		if (qkid_conf_set(conf, overrides[i], eq + 1, err, sizeof(err))) {
			fprintf(stderr, "qkid: %s\n", err);
			return 1;
		}
		free(overrides[i]);
	}
	if (debug)
		conf->log_level = QKID_LOG_DEBUG;
	if (qkid_conf_finish(conf, err, sizeof(err)) || qkid_conf_load_keys(conf, err, sizeof(err))) {
		fprintf(stderr, "qkid: %s: %s\n", conf_path, err);
		qkid_conf_wipe(conf);
		return 1;
	}
	if (check) {
		printf("qkid: %s: OK, %zu peer(s)\n", conf_path, conf->n_peers);
		for (size_t i = 0; i < conf->n_peers; i++)
			printf("  peer %s: %s, %s -> %s\n", conf->peers[i].name,
			       conf->peers[i].role == QKI_ROLE_MASTER ? "master" : "slave",
			       conf->peers[i].local_sae, conf->peers[i].peer_sae);
		qkid_conf_wipe(conf);
		return 0;
	}
	qkid_log_open(conf->log_level, conf->log_syslog);
	/* no core dumps and no ptrace by other users: keys live in this process */
	prctl(PR_SET_DUMPABLE, 0);

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (sfd < 0 || pipe2(pipefd, O_NONBLOCK | O_CLOEXEC)) {
		log_err("signalfd/pipe: %s", strerror(errno));
		return 1;
	}

	d->conf = conf;
	d->t_start = qkid_now_ms();
	d->notify_rd = pipefd[0];
	d->notify_wr = pipefd[1];
	d->local_fd = -1;
	d->listen_fd = -1;
	if (qkid_arena_init(&d->arena, conf->max_keys, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	d->peers = calloc(conf->n_peers ? conf->n_peers : 1, sizeof(*d->peers));
	if (!d->peers)
		goto out;
	for (size_t i = 0; i < conf->n_peers; i++) {
		if (qkid_peer_init(d, &d->peers[i], &conf->peers[i], err, sizeof(err))) {
			log_err("%s", err);
			goto out;
		}
		d->n_peers++;
	}
	if (qkid_local_open(d, err, sizeof(err)) || qkid_link_listen(d, err, sizeof(err))) {
		log_err("%s", err);
		goto out;
	}
	if (conf->pid_file[0]) {
		FILE *f = fopen(conf->pid_file, "we");
		if (f) {
			fprintf(f, "%d\n", (int)getpid());
			fclose(f);
		}
	}
	log_info("qkid %s started: %zu peer(s), %zu key slots%s", PACKAGE_VERSION, d->n_peers,
		 d->arena.n_slots, d->arena.locked ? " (locked)" : "");
	rc = run(d, sfd);
out:
	for (struct qkid_conn *c = d->conns; c; c = c->next)
		qkid_local_close(d, c);
	qkid_local_reap(d);
	for (size_t i = 0; i < d->n_unbound; i++)
		qkid_link_free(d->unbound[i]);
	free(d->unbound);
	for (size_t i = 0; i < d->n_peers; i++)
		qkid_peer_destroy(&d->peers[i]);
	free(d->peers);
	if (d->local_fd >= 0) {
		close(d->local_fd);
		unlink(conf->socket_path);
	}
	if (d->listen_fd >= 0)
		close(d->listen_fd);
	if (conf->pid_file[0])
		unlink(conf->pid_file);
	qkid_arena_destroy(&d->arena);
	OPENSSL_cleanse(d->reply, sizeof(d->reply));
	qkid_conf_wipe(conf);
	log_info("stopped; keys wiped");
	free(conf);
	free(d);
	return rc;
}
