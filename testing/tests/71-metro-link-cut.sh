#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 1500
# The metro lab (scripts/lab metro): four DC gateways on a ring of four KMS nodes with a star
# access node, six QKD tunnels rotating their ESP keys every 64 packets with keys relayed by the
# nodes on the controller's paths. A ring link (N1-N2) is cut with tunnels up: the controller
# re-routes the relay (dc1 <-> dc2 over A5 N1 N4 N3 N2), every tunnel stays up and keeps rotating
# with relayed keys, no packet is lost; the link is restored and comes back into use. No window
# key is used past its window (exhaust = stall) and the logs hold key_IDs, never keys.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/metro-lab.sh"

metro_lab_up
two_hops() { test "$(metro_route A5 N2)" = "A5 N1 N2"; }
check "the controller routes A5 -> N2 over N1 (2 hops)" wait_for 30 two_hops
check "every host reaches every other through the tunnels" metro_ping_all 100
e0=$(metro_epochs); echo "   epochs: $e0"
# hop counts of the relays the source nodes logged (A5 -> N3 is three hops either way round)
hops() { cat "$LAB_DIR"/*/kmsd-*.log | sed -nE 's/.* stored at .* \(path ([A-Z0-9>]+), first hop .*/\1/p' |
	awk -F'>' '{ print NF - 1 }' | sort -un | tr '\n' ' '; }
echo "   hops relayed: $(hops)"
has_hops() { local h=" $(hops)"; [[ $h == *" 1 "* && $h == *" 2 "* && $h == *" 3 "* ]]; }
check "relayed keys were delivered over 1, 2 and 3 hops" has_hops

# --- cut N1-N2 ------------------------------------------------------------------------------------
qsc_mark=$(wc -l < "$LAB_DIR/wan/qscd.log")
fatal "cut the ring link N1-N2" lab metro cut N1-N2
rerouted() { tail -n +"$qsc_mark" "$LAB_DIR/wan/qscd.log" | matches 'route A5 -> N2: A5 -> N1 -> N4 -> N3 -> N2 \(4 hops.*replaces A5 -> N1 -> N2: link N1-N2 down'; }
check "the controller sees N1-N2 down and re-routes A5 -> N2 round the ring (logged)" wait_for 60 rerouted
check "... and N1 -> N3 over N4" test "$(metro_route N1 N3)" = "N1 N4 N3"
check "every tunnel stays up" metro_tunnels_up
check "every host still reaches every other, no packet lost" metro_ping_all 200
# the tunnels' buffers may not ask for a key yet: ask for one (A5 may try the old path once
# before its next report brings the new routes: that relay fails, the next takes the new one)
id=""; for i in $(seq 1 10); do id=$(metro_relay dc1 dc2) && break; sleep 1; done
check "a key relayed dc1 -> dc2 arrives, the same at both ends" test -n "$id"
path=$(metro_relay_path "$id"); echo "   key $id: path $path"
check "... over the new path" test "$path" = "A5>N1>N4>N3>N2"
check "every tunnel kept rotating (every outbound SA at a later epoch)" metro_rotated "$e0"
e1=$(metro_epochs); echo "   epochs: $e1"

# --- restore --------------------------------------------------------------------------------------
fatal "restore N1-N2" lab metro restore N1-N2
link_up() { metro qscctl status | awk '/^link: N1-N2/ { f = 1 } f && /state:/ { print; exit }' | matches 'state: up'; }
check "the link comes back up at the controller" wait_for 120 link_up
check "every tunnel is still up" metro_tunnels_up
check "every host reaches every other, no packet lost" metro_ping_all 100
check "... and every tunnel rotated again" metro_rotated "$e1"
b=$(metro_beyond_rpk); echo "   packets beyond their window: $b"
check "no window key was used past its window" test "$b" = 0
check "no key bytes in the controller's log" not grep -qE '[0-9a-f]{32}' "$LAB_DIR/wan/qscd.log"
check "controller and nodes never crashed" bash -c "for p in $LAB_DIR/*/kmsd-*.pid $LAB_DIR/wan/qscd.pid; do kill -0 \$(cat \$p) || exit 1; done"
metro qscctl status | sed 's/^/# /'
finish
