#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# Both gateways rotate the ESP keys of a CHILD_SA, or neither: each announces rotation with a
# private status notify in IKE_AUTH and CREATE_CHILD_SA, and a gateway refuses (with the reason
# in its log) a CHILD_SA on which only one side would rotate, instead of installing an SA that
# drops every packet. Agreement in both directions, CHILD_SA rekeys keep the agreement, and a
# mismatch is refused whichever side initiates. Window keys come from the datapath's test
# provider (the qkid path is 52-kernel-qkd-rotation-qkid).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd

# set_rotation GW yes|no: rotation every 64 packets with test window keys (restarts a running GW)
set_rotation() { lab test-rotation "$1" "$2" 64 64 reuse agreement-seed; }
child_up() { sw "$1" --list-sas 2>/dev/null | matches 'net: #[0-9]+, reqid [0-9]+, INSTALLED'; }
ping_fast() { ip netns exec "$LAB-hostA" ping -q -c "$1" -i 0.005 -W 2 192.0.2.130; }
mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
set_rotation gwA yes; set_rotation gwB yes

echo "## 1. both rotate: they agree, traffic flows, a CHILD_SA rekey keeps rotating"
fatal "lab comes up with rotation on both gateways" lab up
fatal "gwA initiates" lab initiate gwA
for gw in gwA gwB; do
	check "$gw: the peer's IKE_AUTH carries the rotation notify (47481)" \
		in_log "$gw" "parsed IKE_AUTH (request|response) .*N\\(\\(47481\\)\\)"
	check "$gw: both SAs rotate" test "$(grep -cE 'kernel-qkd: (in|out)bound SA .* ESP key rotation' \
		"$LAB_DIR/$gw/charon.log")" -eq 2
done
check "traffic flows across windows (200 pings, rpk 64)" quiet ping_fast 200
n=$(log_lines gwA); nb=$(log_lines gwB)
child=$(sw gwA --list-sas | grep -oE 'net: #[0-9]+' | head -1 | grep -oE '[0-9]+')
check "gwA rekeys the CHILD_SA" quiet lab swanctl gwA --rekey --child-id "${child:-0}"
check "the rekey's CREATE_CHILD_SA request carries the notify" \
	wait_for 10 since gwB "$nb" "parsed CREATE_CHILD_SA request .*N\\(\\(47481\\)\\)"
check "... and its response" \
	wait_for 10 since gwA "$n" "parsed CREATE_CHILD_SA response .*N\\(\\(47481\\)\\)"
check "the rekeyed SAs rotate too" \
	wait_for 10 bash -c "[ \$(tail -n +$((n + 1)) '$LAB_DIR/gwA/charon.log' | grep -cE 'kernel-qkd: (in|out)bound SA .* ESP key rotation') -ge 2 ]"
check "traffic flows after the rekey" quiet ping_fast 150
terminate_all

echo "## 2. only gwA rotates; gwA initiates: gwB refuses"
quiet set_rotation gwB no
nb=$(log_lines gwB)
check "no CHILD_SA comes up" not quiet lab initiate gwA net 10
check "gwB says why: the peer rotates, rotation is off here" \
	since gwB "$nb" "kernel-qkd: inbound SA [0-9a-f]+ refused: 198\\.51\\.100\\.1.* rotates ESP keys, but rotation is off here for it \\(charon\\.plugins\\.kernel-qkd\\.peers\\.gwA\\.rotation\\)"
check "no CHILD_SA on gwA" not child_up gwA
check "no CHILD_SA on gwB" not child_up gwB
terminate_all

echo "## 3. only gwA rotates; gwB initiates: gwA refuses"
na=$(log_lines gwA)
check "no CHILD_SA comes up" not quiet lab initiate gwB net 10
check "gwA says why: rotation on here, the peer did not announce it" \
	since gwA "$na" "kernel-qkd: inbound SA [0-9a-f]+ refused: ESP key rotation is on for peer 'gwB' here \\(charon\\.plugins\\.kernel-qkd\\.peers\\.gwB\\.rotation\\), but 198\\.51\\.100\\.2.* did not announce it"
check "no CHILD_SA on gwB" not child_up gwB
check "charon runs on both gateways" bash -c "kill -0 \$(cat '$LAB_DIR/gwA/run/charon.pid') && kill -0 \$(cat '$LAB_DIR/gwB/run/charon.pid')"
sw gwB --terminate --ike lab --timeout 5 >/dev/null 2>&1 || true

echo "## 4. neither rotates: no notify, plain ESP"
quiet set_rotation gwA no
na=$(log_lines gwA); nb=$(log_lines gwB)
fatal "gwA initiates" lab initiate gwA
check "traffic flows" ping_b 5
check "no rotation notify either way" not since gwA "$na" "N\\(\\(47481\\)\\)"
check "... nor on gwB" not since gwB "$nb" "N\\(\\(47481\\)\\)"
check "the SAs do not rotate" since gwA "$na" "kernel-qkd: outbound SA .* no key rotation"
finish
