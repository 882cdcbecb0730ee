# SPDX-License-Identifier: GPL-2.0-or-later
# scripts/demo-metro.sh: scripts/demo --metro, sourced by scripts/demo after bootstrap and build.
# The metro lab (scripts/lab metro: four DC gateways, a ring of four KMS nodes with a star access
# node, the path controller), six QKD tunnels rotating their ESP keys with relayed keys; traffic
# between every pair of DCs; the ring link N1-N2 cut and restored with the tunnels up; a report.
metro_demo() {
	local L=scripts/lab pair a b out mark t0 t1
	export LAB_RPK_MIN=${DEMO_RPK_MIN:-64} LAB_RPK_MAX=${DEMO_RPK_MAX:-64}
	ping_all() { # COUNT: one line per DC pair and direction
		for a in 1 2 3 4; do for b in 1 2 3 4; do
			[ "$a" = "$b" ] && continue
			out=$($L metro ping "dc$a" "dc$b" "$1" 2>&1 | grep -oE '[0-9]+ received, [0-9.]+% packet loss')
			printf '    dc%s -> dc%s  %s\n' "$a" "$b" "$out"
		done; done
	}
	routes() { $L metro qscctl status | grep -E '^route: (A5|N2|N3|N4) -> (A5|N2|N3|N4):' | sed 's/^/    /'; }
	step "metro lab up: 5 KMS nodes (qkd-kmsd), the path controller (qkd-qscd), 4 qkids, 4 charons"
	$L metro down >/dev/null 2>&1 || true
	[ "$keep" = yes ] || trap '$L metro down >/dev/null 2>&1 || true' EXIT
	$L metro up
	step "tunnels"
	$L metro status | grep -E '^==|INSTALLED'
	step "traffic between every pair of DCs (keys relayed over 1, 2 and 3 hops)"
	ping_all 50
	routes
	step "fault: cut the ring link N1-N2 (nftables at both ends)"
	mark=$(wc -l < "$LAB_DIR/wan/qscd.log")
	t0=$(date +%s%N)
	$L metro cut N1-N2
	for _ in $(seq 1 300); do
		tail -n +"$mark" "$LAB_DIR/wan/qscd.log" | grep -q 'replaces.*link N1-N2 down' && break
		sleep 0.1
	done
	t1=$(date +%s%N)
	tail -n +"$mark" "$LAB_DIR/wan/qscd.log" | grep -E 'link N1-N2|route (A5|N2|N3|N4) -> (A5|N2|N3|N4)' | sed 's/^/    /'
	step "traffic with N1-N2 cut"
	ping_all 100
	step "restore N1-N2"
	$L metro restore N1-N2
	sleep 5
	ping_all 50
	step "report"
	cat <<REPORT
  network         ring N1-N2-N3-N4 + access node A5 off N1; dc1 at A5, dc2..dc4 at N2..N4
  tunnels         $($L metro status | grep -c INSTALLED) CHILD_SAs installed (6 tunnels, both ends), kernel-qkd, rotation every ${LAB_RPK_MIN}..${LAB_RPK_MAX} packets, exhaust = stall
  re-route        controller decided $(( (t1 - t0) / 1000000 )) ms after the cut (nftables rule to the first route change in qkd-qscd's log)
  relays          $(cat "$LAB_DIR"/*/kmsd-*.log | grep -c ' relay ') relay lines logged by key_ID at the nodes; relays to N2 after the cut: $(grep -c 'path A5>N1>N4>N3>N2' "$LAB_DIR/dc1/kmsd-A5.log") from A5 over N4 and N3
  key windows     $(for dc in dc1 dc2 dc3 dc4; do $L qkictl "$dc" sas 2>/dev/null | awk 'NR > 1 && $2 == "out" && $9 > 0 { s += int($10 / $9) } END { printf "%d ", s }'; done)windows (packets / rpk) of the outbound SAs of dc1..dc4, each a fresh relayed key; packets past their window: $(for dc in dc1 dc2 dc3 dc4; do $L qkictl "$dc" sas 2>/dev/null | awk 'NR > 1 { print $13 }'; done | awk '{ s += $1 } END { print s + 0 }') packets
REPORT
	routes
}
