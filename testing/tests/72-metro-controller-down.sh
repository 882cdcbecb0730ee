#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 1500
# The metro lab with its path controller stopped: the nodes log it once and keep their last
# routes, relayed keys keep flowing on them (every tunnel stays up and keeps rotating, no packet
# lost); started again, the controller gets every node's reports and the same routes.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/metro-lab.sh"

metro_lab_up
check "the controller routes A5 -> N3 over N1 and N2" test "$(metro_route A5 N3)" = "A5 N1 N2 N3"
e0=$(metro_epochs)

fatal "stop the controller" lab metro qsc-stop
held() { grep -q 'path controller https://198.51.100.254:8450 unreachable.*keeping the last' "$LAB_DIR/dc1/kmsd-A5.log"; }
check "the node logs the controller unreachable and keeps its routes" wait_for 60 held
check "... once, not every second" test "$(grep -c 'path controller https://198.51.100.254:8450 unreachable' "$LAB_DIR/dc1/kmsd-A5.log")" -le 2
mark=$(wc -l < "$LAB_DIR/dc1/kmsd-A5.log")
check "every host reaches every other through the tunnels, no packet lost" metro_ping_all 200
check "every tunnel kept rotating" metro_rotated "$e0"
check "relays still follow the controller's last path (A5 N1 N2 N3)" \
	bash -c "tail -n +$mark '$LAB_DIR/dc1/kmsd-A5.log' | grep -qE 'path A5>N1>N2>N3'"
check "every tunnel is still up" metro_tunnels_up

fatal "start the controller again" lab metro qsc-start
back() { tail -n +"$mark" "$LAB_DIR/dc1/kmsd-A5.log" | matches 'path controller https://198.51.100.254:8450 reachable'; }
check "the node finds it back (logged)" wait_for 60 back
all_fresh() { metro qscctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if all(n["report_age_ms"] is not None and n["report_age_ms"] < 5000 for n in d["nodes"]) else 1)'; }
check "every node reports to it again" wait_for 60 all_fresh
check "the same route A5 -> N3" test "$(metro_route A5 N3)" = "A5 N1 N2 N3"
b=$(metro_beyond_rpk); echo "   packets beyond their window: $b"
check "no window key was used past its window" test "$b" = 0
finish
