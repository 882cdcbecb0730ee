#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# ESP key rotation behind a NAT: gwA's namespace source-NATs its IKE and ESP (nftables) to
# 198.51.100.3 while both kernel-qkd gateways rotate every 100 packets (window keys from the
# datapath's test provider; gwB knows its key peer gwA by the NAT's addresses). Then the NAT
# mapping changes to 198.51.100.4: gwB follows (DPD, implicit update, kernel-qkd's update_sa)
# and the moved SAs keep rotating with the same key peer, without a rekey. The IV epoch on the
# wire (GSO off) and the datapath's window counters advance on both sides of the move, and no
# ping outside the move is lost. NAT without rotation is 58-kernel-qkd-nat.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v nft >/dev/null || skip "nft (nftables) not installed"
command -v conntrack >/dev/null || skip "conntrack not installed"
export LAB_DATAPATH=kernel-qkd


mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
for gw in gwA gwB; do
	lab test-rotation "$gw" yes 100 100 stall lab-seed-nat
done
# gwB meets gwA only at the NAT's public addresses
sed -i 's/remote_addrs = .*/remote_addrs = 198.51.100.3, 198.51.100.4/' "$LAB_DIR/gwB/plugins.conf"
fatal "lab comes up with rotating kernel-qkd gateways" lab up
ip -n "$LAB-gwA" addr add 198.51.100.3/32 dev lo
ip -n "$LAB-gwA" addr add 198.51.100.4/32 dev lo
sed -i 's/^\t\tremote_addrs = .*/\t\tremote_addrs = %any/; s/^\t\tversion = 2$/&\n\t\tmobike = no/' "$LAB_DIR/gwB/swanctl.conf"
sed -i 's/^\t\tversion = 2$/&\n\t\tmobike = no\n\t\tdpd_delay = 2s/' "$LAB_DIR/gwA/swanctl.conf"
lab load gwA; lab load gwB
fatal "nftables source NAT in gwA's namespace" nat_gwA_to 198.51.100.3
fatal "gwA initiates through the NAT" lab initiate gwA
check "gwA knows it is behind a NAT" in_log gwA "local host is behind NAT"
check "gwB: both SAs with gwA at the NAT's address rotate with key peer gwA" \
	test "$(grep -cE "kernel-qkd: (in|out)bound SA .* 198\.51\.100\.[23] === 198\.51\.100\.[23]: ESP key rotation with key peer 'gwA', rpk 100..100" \
		"$LAB_DIR/gwB/charon.log")" -eq 2

for gw in gwA gwB; do no_gso "$LAB-$gw" wan; done
pcap=$LAB_DIR/wan.pcap
fatal "tcpdump listens on gwB's WAN" capture_start gwB wan "$pcap" 'udp port 4500 and udp[8:4] != 0'
check "500 pings through the NAT while keys rotate, none lost" ping_all hostA 500 0.002 192.0.2.130

echo "## the NAT mapping changes"
nat_gwA_to 198.51.100.4
check "gwB follows gwA to the new address (DPD, implicit update)" \
	wait_for 20 bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -qF '198.51.100.4[4500]'"
check "traffic flows again after the NAT change" wait_for 10 ping_b 1
check "500 pings after the move while keys rotate, none lost" ping_all hostA 500 0.002 192.0.2.130
capture_stop
check_epochs "$pcap" 198.51.100.3 198.51.100.4
check "no SA was deleted or rekeyed for the move" not in_log gwB "kernel-qkd: SA [0-9a-f]+ deleted"

check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
for gw in gwA gwB; do
	check "$gw: the datapath counted >= 9 key windows on one SA (1000 packets), across the move" \
		wait_for 5 windows_at_least "$gw" 9
	check "$gw: no packet failed authentication" test "$(sa_auth_failures "$gw")" -eq 0
done
finish
