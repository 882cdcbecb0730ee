#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# ESP key rotation across a MOBIKE move: both kernel-qkd gateways rotate every 100 packets
# (window keys from the datapath's test provider) when gwA's WAN address changes from
# 198.51.100.1 to 198.51.100.5. After UPDATE_SA_ADDRESSES both move their SAs with update_sa;
# the SAs keep rotating with the same key peer, without a rekey. The IV epoch on the wire (GSO
# off) and the datapath's window counters advance before and after the move, and no ping
# outside the move is lost. MOBIKE without rotation is 59-kernel-qkd-mobike.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd

mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
for gw in gwA gwB; do
	lab test-rotation "$gw" yes 100 100 stall lab-seed-mobike
done
# gwB knows key peer gwA at both of its addresses
sed -i 's/remote_addrs = .*/remote_addrs = 198.51.100.1, 198.51.100.5/' "$LAB_DIR/gwB/plugins.conf"
fatal "lab comes up with rotating kernel-qkd gateways" lab up
sed -i 's/^\t\tlocal_addrs = .*/\t\tlocal_addrs = %any/' "$LAB_DIR/gwA/swanctl.conf"
sed -i 's/^\t\tremote_addrs = .*/\t\tremote_addrs = %any/' "$LAB_DIR/gwB/swanctl.conf"
lab load gwA; lab load gwB
fatal "gwA initiates" lab initiate gwA
check "MOBIKE is in use" in_log gwA "peer supports MOBIKE$"
for gw in gwA gwB; do
	check "$gw: both SAs rotate (rpk 100)" \
		test "$(grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer 'gw[AB]', rpk 100..100" \
			"$LAB_DIR/$gw/charon.log")" -eq 2
done

for gw in gwA gwB; do no_gso "$LAB-$gw" wan; done
pcap=$LAB_DIR/wan.pcap
fatal "tcpdump listens on gwB's WAN" capture_start gwB wan "$pcap" 'udp port 4500 and udp[8:4] != 0'
check "500 pings while keys rotate, none lost" ping_all hostA 500 0.002 192.0.2.130

echo "## gwA's WAN address changes"
ip netns exec "$LAB-gwA" sysctl -qw net.ipv4.conf.wan.promote_secondaries=1
ip -n "$LAB-gwA" addr add 198.51.100.5/24 dev wan
ip -n "$LAB-gwA" addr del 198.51.100.1/24 dev wan
check "gwB follows gwA to the new address (UPDATE_SA_ADDRESSES)" \
	wait_for 20 bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -qF '198.51.100.5[4500]'"
check "traffic flows again after the move" wait_for 10 ping_b 1
check "500 pings after the move while keys rotate, none lost" ping_all hostA 500 0.002 192.0.2.130
capture_stop
check_epochs "$pcap" 198.51.100.1 198.51.100.5
for gw in gwA gwB; do
	check "$gw: no SA was deleted or rekeyed for the move" not in_log "$gw" "kernel-qkd: SA [0-9a-f]+ deleted"
done

check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
for gw in gwA gwB; do
	check "$gw: the datapath counted >= 9 key windows on one SA (1000 packets), across the move" \
		wait_for 5 windows_at_least "$gw" 9
	check "$gw: no packet failed authentication" test "$(sa_auth_failures "$gw")" -eq 0
done
finish
