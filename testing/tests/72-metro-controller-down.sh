#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 1500
# The metro lab with its path controller stopped: the nodes log it once and keep their last
# routes, relayed keys keep flowing on them (every tunnel stays up and keeps rotating, no packet
# lost); started again, the controller gets every node's reports and gives routes again.
# A5 -> N3 has two ways round the ring of three hops each (over N2 or over N4): the link levels
# decide, and they depend on the order the links came up in, so the test reads the controller's
# choice and checks the node follows it, not one fixed way.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/metro-lab.sh"

metro_lab_up
three_hops() { case "$(metro_route A5 N3)" in "A5 N1 N2 N3"|"A5 N1 N4 N3") return 0;; esac; return 1; }
check "the controller routes A5 -> N3 over N1, three hops one way round the ring" wait_for 30 three_hops
route=$(metro_route A5 N3); echo "   A5 -> N3: $route"
e0=$(metro_epochs)

fatal "stop the controller" lab metro qsc-stop
held() { grep -q 'path controller https://198.51.100.254:8450 unreachable.*keeping the last' "$LAB_DIR/dc1/kmsd-A5.log"; }
check "the node logs the controller unreachable and keeps its routes" wait_for 60 held
check "... once, not every second" test "$(grep -c 'path controller https://198.51.100.254:8450 unreachable' "$LAB_DIR/dc1/kmsd-A5.log")" -le 2
mark=$(wc -l < "$LAB_DIR/dc1/kmsd-A5.log")
check "every host reaches every other through the tunnels, no packet lost" metro_ping_all 200
check "every tunnel kept rotating" metro_rotated "$e0"
id=$(metro_relay dc1 dc3); path=$(metro_relay_path "$id"); echo "   key $id: path $path"
check "a key relayed dc1 -> dc3 now arrives, the same at both ends" test -n "$id"
check "... over the controller's last path ($route)" test "$path" = "${route// />}"
check "every tunnel is still up" metro_tunnels_up

fatal "start the controller again" lab metro qsc-start
back() { tail -n +"$mark" "$LAB_DIR/dc1/kmsd-A5.log" | matches 'path controller https://198.51.100.254:8450 reachable'; }
check "the node finds it back (logged)" wait_for 60 back
all_fresh() { metro qscctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if all(n["report_age_ms"] is not None and n["report_age_ms"] < 5000 for n in d["nodes"]) else 1)'; }
check "every node reports to it again" wait_for 60 all_fresh
# a restarted controller keeps no routes: it computes them again from the levels reported now
check "it routes A5 -> N3 again, three hops" wait_for 30 three_hops
route=$(metro_route A5 N3); echo "   A5 -> N3: $route"
taken() { tail -n +"$mark" "$LAB_DIR/dc1/kmsd-A5.log" | grep -qF "route to N3: ${route// />} (controller"; }
check "... and the node takes it" wait_for 30 taken
b=$(metro_beyond_rpk); echo "   packets beyond their window: $b"
check "no window key was used past its window" test "$b" = 0
finish
