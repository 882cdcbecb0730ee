#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd behind a NAT: gwA's own namespace source-NATs its IKE and ESP (nftables) from
# 198.51.100.1 to 198.51.100.3, so gwB sees gwA behind a NAT. gwA then sends NAT-T keepalives
# through the datapath's socket, and traffic flows. Then the NAT mapping changes (to
# 198.51.100.4, conntrack flushed): gwB learns the new address from gwA's next IKE message
# (DPD; MOBIKE off, so charon updates implicitly), kernel-qkd's update_sa moves the SAs, and
# traffic flows again with gwB's ESP going to the new address.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v nft >/dev/null || skip "nft (nftables) not installed"
command -v conntrack >/dev/null || skip "conntrack not installed"
export LAB_DATAPATH=kernel-qkd LAB_CHARON_OPTS="keep_alive = 2s"

remote_of_gwA() { sw gwB --list-sas 2>/dev/null | grep -oE 'remote .*198\.51\.100\.[0-9]+\[[0-9]+\]' | head -1; }

fatal "lab comes up with kernel-qkd on both gateways" lab up
# gwA answers ARP for the NAT's public addresses; gwB accepts gwA from any address; MOBIKE off
# (so gwB follows a NAT mapping change implicitly), DPD every 2 s from gwA
ip -n "$LAB-gwA" addr add 198.51.100.3/32 dev lo
ip -n "$LAB-gwA" addr add 198.51.100.4/32 dev lo
sed -i 's/^\t\tremote_addrs = .*/\t\tremote_addrs = %any/; s/^\t\tversion = 2$/&\n\t\tmobike = no/' "$LAB_DIR/gwB/swanctl.conf"
sed -i 's/^\t\tversion = 2$/&\n\t\tmobike = no\n\t\tdpd_delay = 2s/' "$LAB_DIR/gwA/swanctl.conf"
lab load gwA; lab load gwB
fatal "nftables source NAT in gwA's namespace" nat_gwA_to 198.51.100.3

fatal "gwA initiates through the NAT" lab initiate gwA
check "gwA knows it is behind a NAT" in_log gwA "local host is behind NAT"
check "gwB sees gwA at the NAT's address" test -n "$(remote_of_gwA | grep -F '198.51.100.3[4500]')"
check "traffic flows through the NAT" ping_b

capture_start gwB wan "$LAB_DIR/keepalive.pcap" 'udp port 4500 and src host 198.51.100.3'
sleep 7
capture_stop
# a NAT-T keepalive: UDP length 9 (one 0xff byte)
ka=$(pcap_count "$LAB_DIR/keepalive.pcap" 'udp[4:2] = 9 and udp[8] = 0xff')
echo "# NAT-T keepalives from gwA in 7 idle seconds: $ka"
check "gwA sends NAT-T keepalives through the datapath (keep_alive = 2s)" test "$ka" -ge 1

echo "## the NAT mapping changes"
nat_gwA_to 198.51.100.4
capture_start gwB wan "$LAB_DIR/moved.pcap" 'udp port 4500 and host 198.51.100.4'
check "gwB follows gwA to the new address (DPD, implicit update)" \
	wait_for 20 bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -qF '198.51.100.4[4500]'"
check "gwB logs the change" in_log gwB 'remote endpoint changed from 198\.51\.100\.3\[4500\] to 198\.51\.100\.4\[4500\]'
check "traffic flows again after the NAT change" wait_for 10 ping_b
capture_stop
to_new=$(pcap_count "$LAB_DIR/moved.pcap" 'dst host 198.51.100.4 and udp[8:4] != 0')
echo "# ESP from gwB to the new address: $to_new packets"
check "kernel-qkd moved gwB's outbound SA (ESP to 198.51.100.4)" test "$to_new" -ge 3
check "no SA was deleted or rekeyed for the move" not in_log gwB "kernel-qkd: SA [0-9a-f]+ deleted"
finish
