/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit tests of qkd-qscd's logic: the topology parser, reports and link state, path computation
 * on a ring of four backbone nodes with a star access node (N1..N4, A5 off N1), re-routing.
 */
#include "ipseq_config.h"
#include "../qsc.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char ring[] =
	"# a ring of four with an access node\n"
	"node N1 backbone\nnode N2 backbone\nnode N3 backbone\nnode N4 backbone\n"
	"node A5 access   # one DC behind it\n"
	"link N1-N2 N1 N2\nlink N2-N3 N2 N3\nlink N3-N4 N3 N4\nlink N4-N1 N4 N1\n"
	"link N1-A5 N1 A5\n";

static struct qsc_topo topo;
static struct qsc_routes routes;
static struct qsc_link_cost lc[QSC_LINKS_MAX];

static void load(const char *text)
{
	char err[256] = "";

	ck_assert_msg(qsc_topo_parse(text, strlen(text), &topo, err, sizeof(err)) == 0, "%s", err);
	memset(&routes, 0, sizeof(routes));
}

/* every link up with the same level */
static void level_all(uint64_t bits)
{
	size_t i;

	for (i = 0; i < topo.n_links; i++) {
		lc[i].up = 1;
		lc[i].stored_bits = bits;
	}
}

static struct qsc_link_cost *link_named(const char *name)
{
	int l = qsc_topo_link(&topo, name);

	ck_assert_msg(l >= 0, "no link %s", name);
	return &lc[l];
}

/* the route src -> dst as "N1 -> N2 -> N3" */
static const char *route(const char *src, const char *dst)
{
	static char buf[512];
	int s = qsc_topo_node(&topo, src), d = qsc_topo_node(&topo, dst);

	ck_assert(s >= 0 && d >= 0);
	return qsc_path_text(&topo, &routes.path[s][d], buf, sizeof(buf));
}

static void parse_fails(const char *text, const char *expect)
{
	char err[256] = "";

	ck_assert_int_eq(qsc_topo_parse(text, strlen(text), &topo, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, expect), "error '%s' lacks '%s'", err, expect);
}

/* --- topology ----------------------------------------------------------------------------------- */

START_TEST(topo_ring_and_star)
{
	load(ring);
	ck_assert_int_eq(topo.n_nodes, 5);
	ck_assert_int_eq(topo.n_links, 5);
	ck_assert_str_eq(topo.nodes[4].name, "A5");
	ck_assert_int_eq(topo.nodes[4].role, QSC_ACCESS);
	ck_assert_int_eq(topo.nodes[0].role, QSC_BACKBONE);
	ck_assert_int_eq(topo.links[3].end[0], qsc_topo_node(&topo, "N4"));
	ck_assert_int_eq(topo.links[3].end[1], qsc_topo_node(&topo, "N1"));
	ck_assert_int_eq(qsc_topo_link_between(&topo, 0, 3), 3);
	ck_assert_int_eq(qsc_topo_link_between(&topo, 0, 2), -1);
}
END_TEST

START_TEST(topo_errors)
{
	char big[QSC_LINE_MAX + 40];
	char nul[] = "node N1 backbone\n\0node N2 backbone\n";
	char err[256] = "";

	parse_fails("node N1 backbone\nnode N1 access\n", "line 2: node N1 is declared twice");
	parse_fails("node N1 backbone\nnode N2 backbone\nlink L N1 N3\n",
		    "line 3: link L: node N3 is not declared");
	parse_fails("node N1 backbone\nlink L N1 N1\n", "line 2: link L joins node N1 to itself");
	parse_fails("node N1 core\n", "line 1: node N1: role 'core' is neither");
	parse_fails("node N1 backbone\nnode N2 backbone\nlink a N1 N2\nlink b N2 N1\n",
		    "line 4: link b: nodes N2 and N1 are already linked (by a)");
	parse_fails("node N1 backbone\nnode N2 backbone\nlink a N1 N2\nlink a N1 N2\n",
		    "line 4: link a is declared twice");
	parse_fails("nodes N1 backbone\n", "line 1: unknown keyword 'nodes'");
	parse_fails("node N1\n", "line 1: 'node' takes a name and a role");
	parse_fails("node N1 backbone extra words here\n", "line 1: too many words");
	parse_fails("node N/1 backbone\n", "line 1: node name 'N/1' is not");
	parse_fails("node N1 backbone\n", "at least two nodes and one link");
	parse_fails("", "at least two nodes and one link");
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	parse_fails(big, "line 1: longer than 512 characters");
	ck_assert_int_eq(qsc_topo_parse(nul, sizeof(nul) - 1, &topo, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "NUL byte"), "%s", err);
}
END_TEST

START_TEST(topo_load_missing_file)
{
	char err[256] = "";

	ck_assert_int_eq(qsc_topo_load("/nonexistent/topology", &topo, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "cannot open topology /nonexistent/topology"), "%s", err);
}
END_TEST

/* --- reports and link state ------------------------------------------------------------------- */

static const char report_n1[] =
	"{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":true,"
	"\"stored_bits\":123456,\"rate_bps\":1000.0,\"consumed_bits\":789},"
	"{\"link\":\"N4-N1\",\"peer\":\"N4\",\"up\":true,\"stored_bits\":5000,\"rate_bps\":10,"
	"\"consumed_bits\":0,\"future_member\":[1]}]}";

static struct qsc_report rep;

START_TEST(report_parse_ok)
{
	char err[300] = "";

	ck_assert_int_eq(qsc_report_parse(report_n1, strlen(report_n1), &rep, err, sizeof(err)), 0);
	ck_assert_str_eq(rep.node, "N1");
	ck_assert_int_eq(rep.n, 2);
	ck_assert_str_eq(rep.links[0].link, "N1-N2");
	ck_assert_str_eq(rep.links[0].peer, "N2");
	ck_assert_int_eq(rep.links[0].up, 1);
	ck_assert_int_eq(rep.links[0].stored_bits, 123456);
	ck_assert_int_eq(rep.links[0].consumed_bits, 789);
	ck_assert(rep.links[0].rate_bps == 1000.0);
	ck_assert(rep.links[1].rate_bps == 10.0);
}
END_TEST

static void report_fails(const char *body, const char *expect)
{
	char err[300] = "";

	ck_assert_int_eq(qsc_report_parse(body, strlen(body), &rep, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, expect), "error '%s' lacks '%s'", err, expect);
}

START_TEST(report_parse_errors)
{
	report_fails("", "empty body");
	report_fails("{\"node\":\"N1\",\"links\":[]} x", "not valid JSON");
	report_fails("{\"links\":[]}", "node is missing");
	report_fails("{\"node\":\"N1\"}", "links is missing");
	report_fails("{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":1,"
		     "\"stored_bits\":1,\"rate_bps\":1,\"consumed_bits\":1}]}",
		     "link N1-N2: up is missing or not true/false");
	report_fails("{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":true,"
		     "\"stored_bits\":-5,\"rate_bps\":1,\"consumed_bits\":1}]}",
		     "link N1-N2: stored_bits is missing or not an integer");
	report_fails("{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":true,"
		     "\"stored_bits\":5,\"rate_bps\":\"fast\",\"consumed_bits\":1}]}",
		     "link N1-N2: rate_bps is missing");
	report_fails("{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\",\"up\":true,"
		     "\"stored_bits\":5,\"rate_bps\":1,\"consumed_bits\":1},{\"link\":\"N1-N2\","
		     "\"peer\":\"N2\",\"up\":true,\"stored_bits\":5,\"rate_bps\":1,"
		     "\"consumed_bits\":1}]}",
		     "link N1-N2 is reported twice");
}
END_TEST

static enum qsc_apply_result apply(const char *caller, const char *body, uint64_t now, char *err)
{
	char perr[300] = "";

	ck_assert_msg(qsc_report_parse(body, strlen(body), &rep, perr, sizeof(perr)) == 0, "%s", perr);
	return qsc_links_apply(&topo, caller, &rep, now, err, 300);
}

START_TEST(links_apply_own_only)
{
	char err[300] = "";
	struct qsc_link_view v;

	load(ring);
	/* the certificate says N2, the body N1 */
	ck_assert_int_eq(apply("N2", report_n1, 1000, err), QSC_APPLY_FORBIDDEN);
	ck_assert_msg(strstr(err, "N2 may report only its own links, not node N1's"), "%s", err);
	/* N3 reports N1-N2, which is not its link */
	ck_assert_int_eq(apply("N3", "{\"node\":\"N3\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\","
			       "\"up\":false,\"stored_bits\":0,\"rate_bps\":0,\"consumed_bits\":0}]}",
			       1000, err), QSC_APPLY_FORBIDDEN);
	ck_assert_msg(strstr(err, "link N1-N2 joins N1 and N2, not N3"), "%s", err);
	ck_assert_int_eq(apply("X9", "{\"node\":\"X9\",\"links\":[]}", 1000, err),
			 QSC_APPLY_FORBIDDEN);
	/* unknown link, wrong peer */
	ck_assert_int_eq(apply("N1", "{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N9\",\"peer\":\"N2\","
			       "\"up\":true,\"stored_bits\":0,\"rate_bps\":0,\"consumed_bits\":0}]}",
			       1000, err), QSC_APPLY_BAD);
	/* all or nothing: the good first link is not applied either */
	ck_assert_int_eq(apply("N1", "{\"node\":\"N1\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N2\","
			       "\"up\":true,\"stored_bits\":7,\"rate_bps\":0,\"consumed_bits\":0},"
			       "{\"link\":\"N4-N1\",\"peer\":\"N3\",\"up\":true,\"stored_bits\":7,"
			       "\"rate_bps\":0,\"consumed_bits\":0}]}", 1000, err), QSC_APPLY_BAD);
	ck_assert_msg(strstr(err, "link N4-N1: the peer of N1 is N4, not N3"), "%s", err);
	qsc_link_view(&topo, 0, 1000, 3000, &v);
	ck_assert_int_eq(v.up, 0);
	ck_assert_str_eq(v.why, "never reported");
	/* N1's own report goes through */
	ck_assert_int_eq(apply("N1", report_n1, 1000, err), QSC_APPLY_OK);
	qsc_link_view(&topo, 0, 1000, 3000, &v);
	ck_assert_int_eq(v.up, 1);
	ck_assert_int_eq(v.stored_bits, 123456);
}
END_TEST

START_TEST(links_view_timeout_and_down)
{
	char err[300] = "";
	struct qsc_link_view v;

	load(ring);
	ck_assert_int_eq(apply("N1", report_n1, 1000, err), QSC_APPLY_OK);
	ck_assert_int_eq(apply("N2", "{\"node\":\"N2\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N1\","
			       "\"up\":true,\"stored_bits\":100000,\"rate_bps\":1000,"
			       "\"consumed_bits\":0}]}", 1500, err), QSC_APPLY_OK);
	/* the smaller of the two ends' levels */
	qsc_link_view(&topo, 0, 2000, 3000, &v);
	ck_assert_int_eq(v.up, 1);
	ck_assert_int_eq(v.fresh_ends, 2);
	ck_assert_int_eq(v.stored_bits, 100000);
	/* N1's report is stale at 4001, N2's still fresh */
	qsc_link_view(&topo, 0, 4001, 3000, &v);
	ck_assert_int_eq(v.up, 1);
	ck_assert_int_eq(v.fresh_ends, 1);
	ck_assert_int_eq(v.stored_bits, 100000);
	/* both stale: down */
	qsc_link_view(&topo, 0, 4501, 3000, &v);
	ck_assert_int_eq(v.up, 0);
	ck_assert_str_eq(v.why, "no report for 3001 ms");
	/* one end says down while the other says up: down */
	ck_assert_int_eq(apply("N2", "{\"node\":\"N2\",\"links\":[{\"link\":\"N1-N2\",\"peer\":\"N1\","
			       "\"up\":false,\"stored_bits\":0,\"rate_bps\":1000,"
			       "\"consumed_bits\":0}]}", 5000, err), QSC_APPLY_OK);
	ck_assert_int_eq(apply("N1", report_n1, 5000, err), QSC_APPLY_OK);
	qsc_link_view(&topo, 0, 5000, 3000, &v);
	ck_assert_int_eq(v.up, 0);
	ck_assert_str_eq(v.why, "reported down by N2");
}
END_TEST

/* --- paths ------------------------------------------------------------------------------------ */

START_TEST(path_equal_levels_fewest_hops)
{
	load(ring);
	level_all(1000);
	ck_assert_int_eq(qsc_routes_update(&routes, &topo, lc), 20);
	ck_assert_int_eq(routes.version, 1);
	/* adjacent: direct, not the three-hop way round the ring */
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N2");
	ck_assert_str_eq(route("N2", "N1"), "N2 -> N1");
	ck_assert_str_eq(route("N4", "N1"), "N4 -> N1");
	/* opposite: two hops either way (the first found in topology order) */
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	ck_assert_str_eq(route("A5", "N2"), "A5 -> N1 -> N2");
	ck_assert_int_eq(routes.path[qsc_topo_node(&topo, "A5")][qsc_topo_node(&topo, "N3")].n, 4);
	/* nothing changed: same version */
	ck_assert_int_eq(qsc_routes_update(&routes, &topo, lc), 0);
	ck_assert_int_eq(routes.version, 1);
}
END_TEST

START_TEST(path_equal_cost_fewer_hops)
{
	/* N1-N3 direct at 1000 bits costs 1/1000; N1-N2-N3 at 2000 each costs the same: fewer hops */
	load("node N1 backbone\nnode N2 backbone\nnode N3 backbone\n"
	     "link N1-N2 N1 N2\nlink N2-N3 N2 N3\nlink N1-N3 N1 N3\n");
	level_all(2000);
	link_named("N1-N3")->stored_bits = 1000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N3");
	/* with more key on the two-hop way it wins */
	memset(&routes, 0, sizeof(routes));
	level_all(2100);
	link_named("N1-N3")->stored_bits = 1000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	/* equal cost where the longer path reaches D first (its last link is the expensive one):
	 * S-X-Y-D costs 1/10000 + 1/10000 + 1/1250 = S-Z-D 1/2000 + 1/2000; fewer hops win */
	load("node S backbone\nnode X backbone\nnode Y backbone\nnode Z backbone\n"
	     "node D backbone\nlink S-X S X\nlink X-Y X Y\nlink Y-D Y D\nlink S-Z S Z\n"
	     "link Z-D Z D\n");
	level_all(10000);
	link_named("Y-D")->stored_bits = 1250;
	link_named("S-Z")->stored_bits = 2000;
	link_named("Z-D")->stored_bits = 2000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("S", "D"), "S -> Z -> D");
}
END_TEST

START_TEST(path_prefers_stored_key)
{
	load(ring);
	level_all(1000);
	link_named("N3-N4")->stored_bits = 5000;
	link_named("N4-N1")->stored_bits = 5000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N4 -> N3");
	ck_assert_str_eq(route("N3", "N1"), "N3 -> N4 -> N1");
	ck_assert_str_eq(route("A5", "N3"), "A5 -> N1 -> N4 -> N3");
	/* an empty link is avoided while a longer path has key */
	level_all(100000);
	link_named("N1-N2")->stored_bits = 0;
	memset(&routes, 0, sizeof(routes));
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N4 -> N3 -> N2");
}
END_TEST

START_TEST(path_cut_reroutes)
{
	uint64_t v;

	load(ring);
	level_all(1000);
	qsc_routes_update(&routes, &topo, lc);
	v = routes.version;
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N2");
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	link_named("N1-N2")->up = 0;
	ck_assert_uint_gt(qsc_routes_update(&routes, &topo, lc), 0);
	ck_assert_uint_eq(routes.version, v + 1);
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N4 -> N3 -> N2");
	ck_assert_str_eq(route("N2", "N1"), "N2 -> N3 -> N4 -> N1");
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N4 -> N3");
	ck_assert_str_eq(route("A5", "N2"), "A5 -> N1 -> N4 -> N3 -> N2");
	ck_assert_str_eq(route("N3", "N4"), "N3 -> N4");
	/* restored, but empty (a link flushes its store when it drops): the detour stays */
	link_named("N1-N2")->up = 1;
	link_named("N1-N2")->stored_bits = 0;
	ck_assert_uint_eq(qsc_routes_update(&routes, &topo, lc), 0);
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N4 -> N3 -> N2");
	/* refilled: back to the direct link */
	link_named("N1-N2")->stored_bits = 1000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N2"), "N1 -> N2");
	/* a second cut leaves N1 <-> N2 without a path, the access node too */
	link_named("N1-N2")->up = 0;
	link_named("N3-N4")->up = 0;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N2"), "");
	ck_assert_str_eq(route("A5", "N3"), "");
	ck_assert_str_eq(route("A5", "N4"), "A5 -> N1 -> N4");
}
END_TEST

START_TEST(path_sticky)
{
	load(ring);
	level_all(1000);
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	/* the other way is a little better: the route stays */
	link_named("N3-N4")->stored_bits = 1200;
	link_named("N4-N1")->stored_bits = 1200;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	/* markedly better (cost 2/1300 < 0.8 x 2/1000): it switches */
	link_named("N3-N4")->stored_bits = 1300;
	link_named("N4-N1")->stored_bits = 1300;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N4 -> N3");
}
END_TEST

START_TEST(path_equal_cost_order_independent)
{
	load(ring);
	level_all(1000);
	/* N1-N2 comes up last: A5 -> N3 goes round over N4 meanwhile */
	link_named("N1-N2")->up = 0;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("A5", "N3"), "A5 -> N1 -> N4 -> N3");
	/* up at the same level: the route is the one of a controller that saw every link at once */
	link_named("N1-N2")->up = 1;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("A5", "N3"), "A5 -> N1 -> N2 -> N3");
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	/* and it stays: equal cost does not flip it back */
	ck_assert_int_eq(qsc_routes_update(&routes, &topo, lc), 0);
}
END_TEST

START_TEST(path_access_never_relays)
{
	/* A5 hangs off N1 and N3: a path N1 -> A5 -> N3 would use it as a relay */
	load("node N1 backbone\nnode N2 backbone\nnode N3 backbone\nnode A5 access\n"
	     "link N1-N2 N1 N2\nlink N2-N3 N2 N3\nlink N1-A5 N1 A5\nlink A5-N3 A5 N3\n");
	level_all(1000);
	link_named("N1-A5")->stored_bits = 1000000;
	link_named("A5-N3")->stored_bits = 1000000;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "N1 -> N2 -> N3");
	ck_assert_str_eq(route("A5", "N2"), "A5 -> N1 -> N2");
	link_named("N1-N2")->up = 0;
	qsc_routes_update(&routes, &topo, lc);
	ck_assert_str_eq(route("N1", "N3"), "");
	ck_assert_str_eq(route("A5", "N2"), "A5 -> N3 -> N2");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("qsc");
	TCase *tc = tcase_create("qsc");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, topo_ring_and_star);
	tcase_add_test(tc, topo_errors);
	tcase_add_test(tc, topo_load_missing_file);
	tcase_add_test(tc, report_parse_ok);
	tcase_add_test(tc, report_parse_errors);
	tcase_add_test(tc, links_apply_own_only);
	tcase_add_test(tc, links_view_timeout_and_down);
	tcase_add_test(tc, path_equal_levels_fewest_hops);
	tcase_add_test(tc, path_equal_cost_fewer_hops);
	tcase_add_test(tc, path_prefers_stored_key);
	tcase_add_test(tc, path_cut_reroutes);
	tcase_add_test(tc, path_sticky);
	tcase_add_test(tc, path_equal_cost_order_independent);
	tcase_add_test(tc, path_access_never_relays);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
