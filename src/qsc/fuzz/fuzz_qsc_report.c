/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer entry point: a node's link report, the body of POST /api/v1/links
 * (qsc_report_parse), applied to a ring of four nodes as the node it names, then routed.
 */
#include "ipseq_config.h"
#include "../qsc.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char ring[] =
	"node N1 backbone\nnode N2 backbone\nnode N3 backbone\nnode N4 backbone\n"
	"node A5 access\nlink N1-N2 N1 N2\nlink N2-N3 N2 N3\nlink N3-N4 N3 N4\n"
	"link N4-N1 N4 N1\nlink N1-A5 N1 A5\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct qsc_topo t;
	static struct qsc_report r;
	static struct qsc_routes routes;
	struct qsc_link_cost lc[QSC_LINKS_MAX];
	char err[300];
	char *body = malloc(size ? size : 1); /* exactly size bytes: a read past the end shows */

	if (!body)
		return 0;
	memcpy(body, data, size);
	if (qsc_report_parse(body, size, &r, err, sizeof(err)) == 0 &&
	    qsc_topo_parse(ring, sizeof(ring) - 1, &t, err, sizeof(err)) == 0 &&
	    qsc_links_apply(&t, r.node, &r, 1000, err, sizeof(err)) == QSC_APPLY_OK) {
		qsc_links_costs(&t, 1000, 3000, lc);
		memset(&routes, 0, sizeof(routes));
		qsc_routes_update(&routes, &t, lc);
	}
	free(body);
	return 0;
}

/* Built-in seeds for the driver (make check without libFuzzer): '=' + text. */
const char *const fuzz_seeds[] = {
	"={\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":true,"
	"\"stored_bits\":123456,\"rate_bps\":1000.0,\"consumed_bits\":789},"
	"{\"link\":\"N4-N1\",\"peer\":\"N4\",\"up\":false,\"stored_bits\":0,\"rate_bps\":0,"
	"\"consumed_bits\":0}]}",
	"={\"node\":\"N2\",\"links\":[]}",
	"={\"node\":\"N1\",\"links\":[{\"link\":\"N2-N3\",\"peer\":\"N3\",\"up\":true,"
	"\"stored_bits\":1,\"rate_bps\":1,\"consumed_bits\":1}]}",
	"={\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":1,"
	"\"stored_bits\":-1,\"rate_bps\":1e400,\"consumed_bits\":1}]}",
	"=[1,2,3]",
};
const size_t fuzz_seed_count = sizeof(fuzz_seeds) / sizeof(fuzz_seeds[0]);
