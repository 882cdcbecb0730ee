#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# ESP key rotation with AES-256-GCM and, for contrast, AES-128-GCM: both kernel-qkd gateways
# rotate every 100 packets (window keys from the datapath's test provider, derived to the
# negotiated key length) on a CHILD_SA of each cipher in turn. For each: both charons
# negotiated that cipher and key size, both SAs rotate, the IV epoch on the wire (GSO off) and
# the datapath's window counters advance, no ping is lost and no packet fails authentication.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd

mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
for gw in gwA gwB; do
	lab test-rotation "$gw" yes 100 100 stall lab-seed-aes
done
fatal "lab comes up with rotating kernel-qkd gateways" lab up
for gw in gwA gwB; do no_gso "$LAB-$gw" wan; done

for bits in 256 128; do
	echo "## ESP with aes${bits}gcm16 on both gateways"
	for gw in gwA gwB; do
		sed -i "s/esp_proposals = .*/esp_proposals = aes${bits}gcm16/" "$LAB_DIR/$gw/swanctl.conf"
		lab load "$gw"
	done
	na=$(log_lines gwA); nb=$(log_lines gwB)
	fatal "gwA initiates" lab initiate gwA
	for gw in gwA gwB; do
		check "$gw: the CHILD_SA uses AES_GCM_16 with a $bits-bit key" \
			bash -c "'$top/scripts/lab' swanctl $gw --list-sas | grep -qE 'net: .*AES_GCM_16-$bits([^0-9]|\$)'"
	done
	check "gwA: both new SAs rotate (rpk 100)" \
		test "$(tail -n +$((na + 1)) "$LAB_DIR/gwA/charon.log" | grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer 'gwB', rpk 100..100")" -eq 2
	check "gwB: both new SAs rotate (rpk 100)" \
		test "$(tail -n +$((nb + 1)) "$LAB_DIR/gwB/charon.log" | grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer 'gwA', rpk 100..100")" -eq 2
	pcap=$LAB_DIR/wan-$bits.pcap
	fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp port 4500 and udp[8:4] != 0'
	check "800 pings across windows, none lost" ping_all hostA 800 0.002 192.0.2.130
	capture_stop
	for dir in "src 198.51.100.1" "src 198.51.100.2"; do
		e=$(esp_epochs "$pcap" 36 "$dir")
		echo "# AES-$bits ESP $dir: $(pcap_count "$pcap" "$dir") packets in $e distinct IV epochs"
		n=$(pcap_count "$pcap" "$dir")
		check "AES-$bits: the IV epoch advances for ESP $dir (8..$((n / 100 + 2)) epochs: one per 100 packets)" \
			test "$e" -ge 8 -a "$e" -le $((n / 100 + 2))
	done
	check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
	check "gwA: the datapath counted >= 7 key windows (epoch 7 of 800 packets) on an AES-$bits SA" wait_for 5 windows_at_least gwA 7 "$na"
	check "gwB: the datapath counted >= 7 key windows (epoch 7 of 800 packets) on an AES-$bits SA" wait_for 5 windows_at_least gwB 7 "$nb"
	check "AES-$bits: no packet failed authentication on gwA" test "$(sa_auth_failures gwA "$na")" -eq 0
	check "AES-$bits: ... nor on gwB" test "$(sa_auth_failures gwB "$nb")" -eq 0
done
finish
