#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# Foundation: two Debian charons with the qkd plugin loaded bring up a PSK tunnel over
# kernel-libipsec; hostA reaches hostB only through it, and the WAN carries ESP, never plaintext.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"

fatal "lab comes up with two charons" lab up
check "qkd plugin loaded into gwA's charon" in_log gwA 'qkd plugin .* loaded'
check "qkd plugin loaded into gwB's charon" in_log gwB 'qkd plugin .* loaded'
check "qkd in gwA's loaded plugin list" in_log gwA 'loaded plugins: charon qkd '
check "no route between the sites before the tunnel" \
	not quiet ip netns exec "$LAB-hostA" ping -c 1 -W 1 192.0.2.130
fatal "gwA initiates the CHILD_SA" lab initiate gwA
check "IKE_SA established on gwB" bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -q ESTABLISHED"

pcap=$LAB_DIR/wan.pcap
marker=49505365512d706c61696e74657874   # "IPSeQ-plaintext" as ping payload pattern
fatal "tcpdump listens on gwA's LAN" capture_start gwA lanA "$LAB_DIR/lan.pcap" icmp
lan_capture=$CAPTURE_PID
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp or icmp or esp'
check "hostA pings hostB through the tunnel" ip netns exec "$LAB-hostA" ping -c 5 -i 0.2 -W 2 -p "$marker" 192.0.2.130
capture_stop
CAPTURE_PID=$lan_capture capture_stop
esp=$(pcap_count "$pcap" 'udp port 4500')
icmp=$(pcap_count "$pcap" 'icmp')
echo "# on the WAN: $esp ESP-in-UDP packets, $icmp plaintext ICMP packets"
check "ESP-in-UDP on the WAN (>= 10 packets)" test "$esp" -ge 10
check "no plaintext ICMP on the WAN" test "$icmp" -eq 0
check "control: the ping payload is visible on the LAN" grep -q "IPSeQ-plaintext" "$LAB_DIR/lan.pcap"
check "the ping payload never appears on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"
check "SA counters on gwA show the pings" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -qE 'in .*, +[1-9][0-9]* packets'"
finish
