/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: what the peer KME sends over the KME-to-KME link, through
 * kmsd_link_process on a link without socket, TLS or thread (as tests/test_kmsd.c drives it).
 * Input byte 0: bit 0 makes this side the link master (KME_A, SAE_A) or the slave (KME_B,
 * SAE_B); the rest is the byte stream (frames: u32 big-endian length of type + payload, u8 type,
 * payload). The master's store holds a few blocks, so ALLOC_REQ and RESERVE find keys.
 */
#include "ipseq_config.h"
#include "../kmsd.h"
#include "ipseq_log.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct kmsd_config cfg;
	static struct kmsd_kme kme;
	struct kmsd_link *l = &kme.link;
	uint8_t id[16], key[32];
	unsigned i;
	int master;

	if (size < 1)
		return 0;
	ipseq_log_set_level(-1); /* every malformed frame would log a line */
	master = data[0] & 1;
	memset(&cfg, 0, sizeof(cfg));
	memset(&kme, 0, sizeof(kme));
	cfg.kme_id = master ? "KME_A" : "KME_B";
	cfg.peer_kme_id = master ? "KME_B" : "KME_A";
	cfg.saes[0] = master ? "SAE_A" : "SAE_B";
	cfg.n_saes = 1;
	cfg.peer_saes[0] = master ? "SAE_B" : "SAE_A";
	cfg.n_peer_saes = 1;
	cfg.reservation_lifetime = 100;
	kme.cfg = &cfg;
	kme.is_link_master = master;
	if (kmsd_store_init(&kme.store, 256, 16) != 0)
		return 0;
	for (i = 1; i <= 4; i++) { /* block IDs 00 0i 00.. 5a, key bytes all i */
		memset(id, 0, sizeof(id));
		id[1] = (uint8_t)i;
		id[15] = 0x5a;
		memset(key, (int)i, sizeof(key));
		kmsd_store_push(&kme.store, id, key);
	}
	l->kme = &kme;
	l->fd = l->listen_fd = -1;
	if (pipe2(l->wake, O_NONBLOCK) != 0) {
		kmsd_store_destroy(&kme.store);
		return 0;
	}
	pthread_mutex_init(&l->qlock, NULL);
	pthread_mutex_init(&l->plock, NULL);
	atomic_store(&l->up, 1);
	/* the receive buffer as read_available fills it: exactly the bytes read */
	l->rlen = l->rcap = size - 1;
	l->rbuf = l->rlen ? malloc(l->rlen) : NULL;
	if (l->rbuf) {
		memcpy(l->rbuf, data + 1, l->rlen);
		kmsd_link_process(l);
	}
	kmsd_link_free_msgs(l->qhead);
	free(l->rbuf);
	close(l->wake[0]);
	close(l->wake[1]);
	pthread_mutex_destroy(&l->qlock);
	pthread_mutex_destroy(&l->plock);
	kmsd_store_destroy(&kme.store);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer), hex: byte 0 (00 slave, 01
 * master), then frames. */
const char *const fuzz_seeds[] = {
	/* slave: KEYS with 1 block (id 00 0a .. 5a, 32 key bytes) */
	"00 00000033 02 0001 000a0000000000000000000000000000005a"
	"0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a",
	/* master: ALLOC_REQ req 77, 2 keys of 256 bits, master SAE_B, slave SAE_A */
	"01 00000019 03 0000004d 0002 00000100 0005 5341455f42 0005 5341455f41",
	/* slave: CONSUMED of one block */
	"00 00000013 07 0001 00010000000000000000000000000000005a",
	/* slave: RESERVE req 5, 1 key of 256 bits in 1 block, master SAE_A, slave SAE_B, block 1 */
	"00 0000002b 05 00000005 0001 00000100 0001 0005 5341455f41 0005 5341455f42"
	"00010000000000000000000000000000005a",
	/* a frame longer than the buffer holds, and one of length 0 */
	"00 000fffff 02 00",
	"01 00000000",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
