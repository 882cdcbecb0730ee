#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# A qkid restart under a rotating SA, on the master side (gwA, SAE_A < SAE_B) and then on the
# slave side (gwB, which fetches the master's keys by key_ID): the restarted qkid has wiped the
# SA's epoch keys (no key is ever reused), so the datapath's next key request is answered
# "stale"; the datapath then asks charon for a CHILD_SA rekey, which starts new SAs at epoch 0
# with fresh quantum keys. Traffic keeps flowing through it (stall policy: no key beyond its
# window).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for b in src/qki/qkid src/kmsd/qkd-kmsd; do
	[ -x "$top/$b" ] || skip "$b not built"
done
export LAB_DATAPATH=kernel-qkd LAB_QKD=yes
child_of() { sw "$1" --list-sas | grep -oE 'net: #[0-9]+' | head -1; }
# pings_until_gone GW LINE: pings hostA -> hostB in rounds of 1500 until GW's datapath logs
# (after LINE) that its window keys are gone. The datapath asks its key provider only when a
# quarter of its lookahead (64 windows) is used, up to 16 x rpk_max 400 = 6400 packets after the
# restart, so one round of 1500 may pass before it asks (fresh-check: gwB did not, at rpk 100
# with its buffer full); at most 6 rounds (9000 packets). Sets sent and received.
pings_until_gone() {
	local i out r
	sent=0 received=0
	for i in 1 2 3 4 5 6; do
		out=$(ip netns exec "$LAB-hostA" ping -q -c 1500 -i 0.002 -W 2 192.0.2.130 2>&1)
		r=$(grep -oE '[0-9]+ received' <<<"$out" | grep -oE '[0-9]+')
		sent=$(( sent + 1500 )) received=$(( received + ${r:-0} ))
		since "$1" "$2" "window keys are gone at the key provider; asking for a rekey" && break
	done
}

fatal "QKD lab with kernel-qkd comes up" lab up
for gw in gwA gwB; do
	fatal "$gw restarts with rotation (rpk 100..400, stall)" quiet lab rotation "$gw" 100 400 stall
done
fatal "gwA initiates" lab initiate gwA net 20
check "gwA's qkid is the master for peer gwB" \
	bash -c "'$top/scripts/lab' qkictl gwA status | grep -qE '^  role: master'"
check "gwB's qkid is the slave for peer gwA" \
	bash -c "'$top/scripts/lab' qkictl gwB status | grep -qE '^  role: slave'"
check "traffic rotates keys before the restart" quiet ip netns exec "$LAB-hostA" ping -q -c 500 -i 0.002 -W 2 192.0.2.130
child_before=$(sw gwA --list-sas | grep -oE 'net: #[0-9]+' | head -1)

lab qkid-stop gwA
lab qkid-start gwA
fatal "gwA's qkid is back" wait_for 10 test -S "$LAB_DIR/gwA/qkid.sock"
pings_until_gone gwA 0
echo "# pings across the qkid restart: $received of $sent answered"
check "traffic flows across the qkid restart (>= 90 % answered)" test "$(( received * 10 ))" -ge "$(( sent * 9 ))"
check "the datapath saw its window keys were gone and asked for a rekey" \
	in_log gwA "window keys are gone at the key provider; asking for a rekey"
rekeyed() { [ "$(sw gwA --list-sas | grep -oE 'net: #[0-9]+' | head -1)" != "$child_before" ]; }
check "charon rekeyed the CHILD_SA" wait_for 10 rekeyed
check "traffic flows on the new SAs" ping_b 5
check "the new SAs rotate with keys of the restarted qkid" \
	wait_for 5 bash -c "'$top/scripts/lab' qkictl gwA sas | grep -qE '^[0-9a-f]{8} +out +gwB'"

echo "## the slave's qkid (gwB) restarts"
check "traffic rotates keys before the slave's restart" quiet ping_all hostA 500 0.002 192.0.2.130
child_before=$(child_of gwB)
na=$(log_lines gwA); nb=$(log_lines gwB)
lab qkid-stop gwB
lab qkid-start gwB
fatal "gwB's qkid is back" wait_for 10 test -S "$LAB_DIR/gwB/qkid.sock"
pings_until_gone gwB "$nb"
echo "# pings across the slave's qkid restart: $received of $sent answered"
check "traffic flows across the slave's qkid restart (>= 90 % answered)" test "$(( received * 10 ))" -ge "$(( sent * 9 ))"
check "gwB's datapath saw its window keys were gone and asked for a rekey" \
	since gwB "$nb" "window keys are gone at the key provider; asking for a rekey"
check "the rotating SAs before the restart used window keys (datapath counters)" \
	wait_for 10 windows_at_least gwB 5 "$nb"
check "charon rekeyed the CHILD_SA" wait_for 10 bash -c "[ \"\$('$top/scripts/lab' swanctl gwB --list-sas | grep -oE 'net: #[0-9]+' | head -1)\" != '$child_before' ]"
check "the new SAs rotate with keys of the restarted slave qkid" \
	wait_for 5 bash -c "'$top/scripts/lab' qkictl gwB sas | grep -qE '^[0-9a-f]{8} +out +gwA'"
check "no traffic lost on the new SAs across windows (300 pings)" ping_all hostA 300 0.002 192.0.2.130
finish
