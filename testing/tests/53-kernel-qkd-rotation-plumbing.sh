#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd rotation plumbing through charon, without qkid: both gateways rotate the ESP key of
# their SAs with each other every 100 packets, with window keys from the datapath's deterministic
# test provider (key_provider = test). Checks that the per-peer settings reach the datapath,
# that traffic flows while the epoch in the ESP IV advances, that charon's SA deletion reports
# the windows used, and that a gateway with other window keys cannot decrypt (keys really come
# from the provider). The same with real quantum keys from qkid is 52-kernel-qkd-rotation-qkid.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
export LAB_DATAPATH=kernel-qkd

mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
# both gateways: rotation every 100 packets, test window keys, stall on exhaustion
lab test-rotation gwA yes 100 100 stall lab-seed-1
lab test-rotation gwB yes 100 100 stall lab-seed-1

fatal "lab comes up with kernel-qkd and rotation configured" lab up
check "gwA knows peer gwB with rotation on" in_log gwA "kernel-qkd: peer 'gwB' .*rotation on"
check "gwA warns that window keys are test keys" in_log gwA 'WARNING: window keys come from the deterministic TEST'
fatal "gwA initiates the CHILD_SA" lab initiate gwA
for gw in gwA gwB; do
	check "$gw: both SAs rotate (rpk 100, stall)" \
		test "$(grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer '(gwA|gwB)', rpk 100..100, on exhaustion stall" \
			"$LAB_DIR/$gw/charon.log")" -eq 2
done

pcap=$LAB_DIR/wan.pcap
marker=49505365512d706c61696e74657874
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp port 4500'
check "hostA pings hostB across 10 windows" \
	ip netns exec "$LAB-hostA" ping -q -c 1000 -i 0.001 -W 2 -p "$marker" 192.0.2.130
capture_stop
# ESP in UDP: udp[8:4] SPI, udp[12:4] sequence number, udp[16:4] the IV's epoch
epochs=$(tcpdump -r "$pcap" -n -x 'src 198.51.100.1 and udp port 4500 and udp[8:4] != 0' 2>/dev/null | \
	awk '/0x0020:/ { print $4 $5 }' | sort -u | wc -l)
high=$(pcap_count "$pcap" 'src 198.51.100.1 and udp port 4500 and udp[8:4] != 0 and udp[16:4] >= 9')
echo "# gwA -> gwB: $epochs distinct IV epoch words, $high packets in epoch >= 9"
check "the IV epoch advances (>= 9 distinct epochs in 1000 packets)" test "$epochs" -ge 9
check "packets beyond epoch 9 arrive (no stall at a window switch)" test "$high" -ge 1
check "the ping payload never appears on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"

ip netns exec "$LAB-hostB" iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 bash -c "ip netns exec '$LAB-hostB' ss -ltn | grep -q ':5201 '"
rate=$(ip netns exec "$LAB-hostA" timeout 20 iperf3 -c 192.0.2.130 -t 2 -f m 2>&1 | \
	awk '/receiver/ { print $(NF-2) }')
echo "# iperf3 TCP with a key switch every 100 packets: ${rate:-?} Mbit/s (not a benchmark)"
check "iperf3 TCP runs with a key switch every 100 packets" \
	awk -v r="${rate:-0}" 'BEGIN { exit !(r > 10) }'

check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
check "gwA reports many windows used per SA at deletion" \
	wait_for 5 grep -qE 'kernel-qkd: SA [0-9a-f]+ used [0-9]{3,} key windows' "$LAB_DIR/gwA/charon.log"
check "gwB too" \
	wait_for 5 grep -qE 'kernel-qkd: SA [0-9a-f]+ used [0-9]{3,} key windows' "$LAB_DIR/gwB/charon.log"

# Control: gwB with other window keys (another seed) must not decrypt anything.
check "gwB restarts with another seed" quiet lab test-rotation gwB yes 100 100 stall another-seed
fatal "gwA initiates again" lab initiate gwA
check "with different window keys no ping passes" \
	not quiet ip netns exec "$LAB-hostA" ping -c 8 -i 0.1 -W 1 192.0.2.130
check "gwB terminates" quiet lab swanctl gwB --terminate --ike lab --timeout 10
check "gwB counted the packets that failed authentication" \
	wait_for 5 grep -qE 'kernel-qkd: SA [0-9a-f]+ deleted after 0 packets \(0 replayed, [1-9][0-9]* failed authentication\)' \
		"$LAB_DIR/gwB/charon.log"
finish
