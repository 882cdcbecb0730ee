/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: a topology file for qkd-qscd (qsc_topo_parse). A topology that parses
 * is then routed once with every link up, so the path computation sees what the parser let in.
 */
#include "ipseq_config.h"
#include "../qsc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qsc_topo t;
	static struct qsc_path out[QSC_NODES_MAX];
	struct qsc_link_cost lc[QSC_LINKS_MAX];
	char err[256];
	char *text = malloc(size ? size : 1); /* exactly size bytes: a read past the end shows */
	size_t i;

	if (!text)
		return 0;
	memcpy(text, data, size);
	if (qsc_topo_parse(text, size, &t, err, sizeof(err)) == 0) {
		for (i = 0; i < t.n_links; i++) {
			lc[i].up = 1;
			lc[i].stored_bits = i * 1000;
		}
		qsc_path_from(&t, lc, 0, out);
	}
	free(text);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer): '=' + text. */
const char *const fuzz_seeds[] = {
	"=node N1 backbone\nnode N2 backbone\nnode N3 backbone\nnode N4 backbone\n"
	"node A5 access\nlink N1-N2 N1 N2\nlink N2-N3 N2 N3\nlink N3-N4 N3 N4\n"
	"link N4-N1 N4 N1\nlink N1-A5 N1 A5\n",
	"=# comment\n\nnode a backbone # trailing\nnode b access\nlink ab a b\n",
	"=node N1 backbone\nnode N1 access\n",
	"=node N1 backbone\nlink L N1 N2\n",
	"=node x core\n",
	"=link\n",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
