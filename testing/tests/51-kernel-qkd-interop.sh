#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# Interoperability, rotation off: gwA runs kernel-qkd, gwB stock strongSwan kernel-libipsec with
# socket-default. With AES-128-GCM, a tunnel initiated from either side carries traffic both
# ways, so kernel-qkd speaks plain RFC 4106/4303/3948 ESP-in-UDP and standard IKE on port 4500.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
export LAB_DATAPATH=kernel-qkd LAB_DATAPATH_gwB=kernel-libipsec
export LAB_ESP_PROPOSALS=aes128gcm16

fatal "lab comes up (gwA kernel-qkd, gwB kernel-libipsec)" lab up
check "gwA runs kernel-qkd" in_log gwA 'loaded plugins: charon .*kernel-qkd kernel-netlink'
check "gwB runs stock kernel-libipsec with socket-default" \
	in_log gwB 'loaded plugins: charon .*kernel-libipsec kernel-netlink socket-default'
check "gwB has no kernel-qkd" not in_log gwB 'kernel-qkd'

# traffic both ways, ping with a payload marker and a short iperf3 each way
traffic() {
	local what=$1 pcap=$LAB_DIR/wan-$1.pcap
	local marker=49505365512d706c61696e74657874
	fatal "$what: tcpdump listens on the WAN" capture_start gwA wan "$pcap" 'udp or icmp or esp'
	check "$what: hostA pings hostB" \
		ip netns exec "$LAB-hostA" ping -c 4 -i 0.2 -W 2 -p "$marker" 192.0.2.130
	check "$what: hostB pings hostA" \
		ip netns exec "$LAB-hostB" ping -c 4 -i 0.2 -W 2 -p "$marker" 192.0.2.10
	capture_stop
	check "$what: ESP-in-UDP both ways on the WAN" \
		test "$(pcap_count "$pcap" 'udp port 4500 and src 198.51.100.1')" -ge 8 -a \
			"$(pcap_count "$pcap" 'udp port 4500 and src 198.51.100.2')" -ge 8
	check "$what: no plaintext on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"
	check "$what: no plaintext ICMP on the WAN" test "$(pcap_count "$pcap" icmp)" -eq 0
	local dir
	for dir in "hostA 192.0.2.130 hostB" "hostB 192.0.2.10 hostA"; do
		set -- $dir
		ip netns exec "$LAB-$3" iperf3 -s -1 -D >/dev/null 2>&1
		wait_for 5 bash -c "ip netns exec '$LAB-$3' ss -ltn | grep -q ':5201 '"
		local rate
		rate=$(ip netns exec "$LAB-$1" timeout 20 iperf3 -c "$2" -t 2 -f m 2>&1 | \
			awk '/receiver/ { print $(NF-2) }')
		echo "# $what: iperf3 TCP $1 -> $3: ${rate:-?} Mbit/s (not a benchmark)"
		check "$what: iperf3 TCP $1 -> $3" test -n "$rate"
	done
}

fatal "gwA (kernel-qkd) initiates" lab initiate gwA
check "gwA installed 128-bit AES-GCM SAs" \
	in_log gwA 'kernel-qkd: outbound SA .* 128-bit AES-GCM, no key rotation'
traffic "qkd-initiated"

check "gwA terminates the IKE_SA" quiet lab swanctl gwA --terminate --ike lab --timeout 10
check "no SA left on gwB" \
	wait_for 10 bash -c "! '$top/scripts/lab' swanctl gwB --list-sas | grep -q ESTABLISHED"
check "the tunnel is gone: hostA no longer reaches hostB" \
	not quiet ip netns exec "$LAB-hostA" ping -c 1 -W 1 192.0.2.130
fatal "gwB (kernel-libipsec) initiates" lab initiate gwB
traffic "libipsec-initiated"
check "gwA's SA counters are non-zero" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -qE 'in .*, +[1-9][0-9]* packets'"
check "gwB's SA counters are non-zero" \
	bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -qE 'out .*, +[1-9][0-9]* packets'"
finish
