#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The path controller qkd-qscd on its own, its nodes played by curl with their KME certificates
# (the ring N1..N4 with the access node A5 of conf/qsc-topology.conf): topology check, mutual
# TLS, own-links-only (403, logged), malformed reports (400), routes over fewest hops at equal
# levels, a cut link re-routed, a link whose reports stop marked down after the report timeout,
# qkd-qscctl status, and a clean stop.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/qsc.sh"

code_is() { tail -n 1 | grep -qx "$1"; }
body_has() { head -n -1 | matches "$1"; }
route_is() { local got; got=$(qsc_route "$1" "$2"); echo "   $1 -> $2: $got"; [ "$got" = "$3" ]; }
no_cert_refused() { local c; c=$(qsc_curl - "$(qsc_url)/api/v1/status" 2>/dev/null | tail -n 1); echo "   HTTP $c"; [ "$c" = 401 ] || [ "$c" = 000 ]; }
ctl_json_ok() {
	qsc_ctl status --json | python3 -c 'import json, sys
d = json.load(sys.stdin)
assert d["controller"] == "QSC" and len(d["links"]) == 5 and len(d["nodes"]) == 5, d'
}
ctl_usage_exit_2() { "$QSCCTL" >/dev/null 2>&1; [ $? -eq 2 ]; }
printf 'node N1 backbone\nnode N2 backbone\nlink L N1 N3\n' > "$QSC_DIR/bad.conf"

# --- topology file --------------------------------------------------------------------------------
check "--check accepts the example topology and prints it" \
	bash -c "'$QSCD' --topology '$QSC_TOPOLOGY' --check | grep -qx 'link N1-A5 N1 A5'"
check "--check refuses a link to an undeclared node, naming file and line" \
	bash -c "'$QSCD' --topology '$QSC_DIR/bad.conf' --check 2>&1 | grep -q 'bad.conf: line 3: link L: node N3 is not declared'; [ \${PIPESTATUS[0]} -eq 1 ]"
check "a missing topology file is a clear error, exit 1" \
	bash -c "'$QSCD' --topology /nonexistent --cert x --key x --ca x 2>&1 | grep -q 'cannot open topology /nonexistent'"

# reports stay fresh 8 s: on this loaded machine a round of five curl reports can take seconds
fatal "qkd-qscd starts" qsc_start --report-timeout 8000
check "no client certificate: 401 or no TLS session" no_cert_refused
check "no routes before any report" route_is N1 N2 ""

# --- reports ------------------------------------------------------------------------------------
out=$(qsc_report N1 N1-N2:N2:true:1000)
check "N1 reports a link: 200" code_is 200 <<<"$out"
check "... with the routes version" body_has '^\{"routes_version":[0-9]+\}$' <<<"$out"
out=$(qsc_report N3 "N1-N2:N2:false:0")
check "N3 reporting N1's link: 403" code_is 403 <<<"$out"
check "... with the reason" body_has 'link N1-N2 joins N1 and N2, not N3' <<<"$out"
check "... and logged" grep -q 'refused a link report from N3: link N1-N2 joins N1 and N2, not N3' "$QSC_LOG"
out=$(qsc_curl N2 -X POST -d '{"node":"N1","links":[]}' "$(qsc_url)/api/v1/links")
check "N2 reporting as N1: 403" code_is 403 <<<"$out"
check "... logged" grep -q 'refused a link report from N2: N2 may report only its own links' "$QSC_LOG"
out=$(qsc_curl OPS -X POST -d '{"node":"OPS","links":[]}' "$(qsc_url)/api/v1/links")
check "a certificate that is no node: 403" code_is 403 <<<"$out"
out=$(qsc_curl N1 -X POST -d '{"node":"N1","links":[{"link":"N1-N2","peer":"N2","up":"yes"}]}' "$(qsc_url)/api/v1/links")
check "an ill-typed member: 400" code_is 400 <<<"$out"
check "... naming it" body_has 'link N1-N2: up is missing or not true/false' <<<"$out"
out=$(qsc_curl N1 -X POST -d '{"node":"N1","links":[' "$(qsc_url)/api/v1/links")
check "truncated JSON: 400" code_is 400 <<<"$out"
out=$(qsc_curl N1 -X POST -d '{"node":"N1","links":[{"link":"N1-N3","peer":"N3","up":true,"stored_bits":1,"rate_bps":1,"consumed_bits":0}]}' "$(qsc_url)/api/v1/links")
check "a link not in the topology: 400" code_is 400 <<<"$out"
out=$(qsc_curl N1 "$(qsc_url)/api/v1/links")
check "GET on links: 405" code_is 405 <<<"$out"
out=$(qsc_curl N1 "$(qsc_url)/api/v1/routes")
check "routes without node=: 400" code_is 400 <<<"$out"
out=$(qsc_curl N1 "$(qsc_url)/api/v1/routes?node=N9")
check "routes of an unknown node: 404" code_is 404 <<<"$out"
check "the controller still runs" kill -0 "$qsc_pid"

# --- paths ------------------------------------------------------------------------------------
# From here the nodes report every second in the background, as real nodes do.
route_becomes() { wait_for 60 test "$(qsc_route "$1" "$2")" = "$3"; route_is "$@"; }
qsc_set N1 "N1-N2:N2:true:100000" "N4-N1:N4:true:100000" "N1-A5:A5:true:100000"
qsc_set N2 "N1-N2:N1:true:100000" "N2-N3:N3:true:100000"
qsc_set N3 "N2-N3:N2:true:100000" "N3-N4:N4:true:100000"
qsc_set N4 "N3-N4:N3:true:100000" "N4-N1:N1:true:100000"
qsc_set A5 "N1-A5:N1:true:100000"
qsc_nodes_start N1 N2 N3 N4 A5
check "every link up, equal levels: the access node reaches N3 through N1 and N2" route_becomes A5 N3 "A5 N1 N2 N3"
check "adjacent: the direct link" route_is N1 N2 "N1 N2"
check "opposite: two hops" route_is N1 N3 "N1 N2 N3"
v1=$(qsc_version)
qsc_set N2 "N1-N2:N1:false:0" "N2-N3:N3:true:100000"
check "N1-N2 reported down by N2: N1 -> N2 round the ring" route_becomes N1 N2 "N1 N4 N3 N2"
check "... N1 -> N3 the other way" route_is N1 N3 "N1 N4 N3"
check "... the routes version moved" test "$(qsc_version)" -gt "$v1"
check "... the decision is logged by names" grep -q 'route N1 -> N2: N1 -> N4 -> N3 -> N2 (3 hops, least stored 100000 bits) replaces N1 -> N2: link N1-N2 down' "$QSC_LOG"
check "... the link's state change too" grep -q 'link N1-N2 (N1 - N2) down: reported down by N2' "$QSC_LOG"

# N3 and N4 go silent; the others keep reporting: N3-N4 is down after the report timeout
qsc_set N3; qsc_set N4
n34_down() { grep -qE 'link N3-N4 \(N3 - N4\) down: no report for [0-9]+ ms' "$QSC_LOG"; }
check "N3-N4 without reports is down, the reason logged" wait_for 60 n34_down
check "... not before the 8 s timeout" not grep -qE 'link N3-N4 \(N3 - N4\) down: no report for [0-7][0-9]{0,3} ms' "$QSC_LOG"
check "A5 -> N4 through N1" route_becomes A5 N4 "A5 N1 N4"
check "N1 -> N2 has no path left (N1-N2 and N3-N4 down)" route_is N1 N2 ""
check "N1 -> N3 neither" route_is N1 N3 ""

# --- operator view ------------------------------------------------------------------------------
qsc_ctl status > "$QSC_DIR/status.txt" 2>&1
check "qkd-qscctl status shows the link down with its reason" grep -qE 'state: down \(no report for' "$QSC_DIR/status.txt"
check "... each end's report" grep -q 'end N1: up, 100000 bits stored, 1000 bit/s, 0 bits consumed, report' "$QSC_DIR/status.txt"
check "... the routes" grep -qx 'route: A5 -> N4: A5 -> N1 -> N4 (2 hops)' "$QSC_DIR/status.txt"
check "qkd-qscctl status --json is the controller's JSON" ctl_json_ok
check "qkd-qscctl without a command: usage, exit 2" ctl_usage_exit_2
check "no key material is ever in the log (names and levels only)" not grep -qiE 'key_ID|[0-9a-f]{32}' "$QSC_LOG"
check "SIGTERM: a clean stop" qsc_stop
[ "$failures" -gt 0 ] && sed 's/^/# qscd: /' "$QSC_LOG"
finish
