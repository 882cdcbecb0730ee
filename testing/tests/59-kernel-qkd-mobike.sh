#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd and a MOBIKE address move: gwA's WAN address changes from 198.51.100.1 to
# 198.51.100.5 while a tunnel is up. charon notices (kernel-netlink), sends
# UPDATE_SA_ADDRESSES, and both gateways move their SAs with kernel-qkd's update_sa: traffic
# flows again on the new address without a rekey, ESP on the wire uses it, and no SA is deleted.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd

fatal "lab comes up with kernel-qkd on both gateways" lab up
# gwA may use any of its addresses (MOBIKE picks the new one), gwB accepts gwA from any address
sed -i 's/^\t\tlocal_addrs = .*/\t\tlocal_addrs = %any/' "$LAB_DIR/gwA/swanctl.conf"
sed -i 's/^\t\tremote_addrs = .*/\t\tremote_addrs = %any/' "$LAB_DIR/gwB/swanctl.conf"
lab load gwA; lab load gwB
fatal "gwA initiates" lab initiate gwA
# exactly charon's line for an agreed MOBIKE ("peer supports MOBIKE, but disabled in config" is not)
check "MOBIKE is in use" in_log gwA "peer supports MOBIKE$"
check "traffic flows" ping_b

echo "## gwA's WAN address changes"
capture_start gwB wan "$LAB_DIR/moved.pcap" 'udp port 4500 and host 198.51.100.5'
# the new address must survive the removal of the old one (same subnet: a secondary)
ip netns exec "$LAB-gwA" sysctl -qw net.ipv4.conf.wan.promote_secondaries=1
ip -n "$LAB-gwA" addr add 198.51.100.5/24 dev wan
ip -n "$LAB-gwA" addr del 198.51.100.1/24 dev wan
check "gwB follows gwA to the new address (UPDATE_SA_ADDRESSES)" \
	wait_for 20 bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -qF '198.51.100.5[4500]'"
check "gwB got gwA's UPDATE_SA_ADDRESSES" in_log gwB 'parsed INFORMATIONAL request [0-9]+ \[ N\(UPD_SA_ADDR\)'
check "gwA's IKE_SA uses the new address too" \
	wait_for 10 bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -qF 'local  '\''gwA.ipseq.test'\'' @ 198.51.100.5[4500]'"
check "traffic flows again after the move" wait_for 10 ping_b
capture_stop
esp_a=$(pcap_count "$LAB_DIR/moved.pcap" 'src host 198.51.100.5 and udp[8:4] != 0')
esp_b=$(pcap_count "$LAB_DIR/moved.pcap" 'dst host 198.51.100.5 and udp[8:4] != 0')
echo "# ESP on the new address: $esp_a from gwA, $esp_b to gwA"
check "kernel-qkd moved gwA's outbound SA (ESP from 198.51.100.5)" test "$esp_a" -ge 3
check "kernel-qkd moved gwB's outbound SA (ESP to 198.51.100.5)" test "$esp_b" -ge 3
check "no SA was deleted for the move" not in_log gwA "kernel-qkd: SA [0-9a-f]+ deleted"
check "... on gwB either" not in_log gwB "kernel-qkd: SA [0-9a-f]+ deleted"
finish
