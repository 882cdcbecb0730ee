#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# ESP key rotation over an IPv6 outer address: both kernel-qkd gateways rotate every 100 packets
# (window keys from the datapath's test provider, the peer found by its IPv6 address) while IKE
# and ESP-in-UDP run between fd00:100::1 and fd00:100::2, carrying IPv4 and IPv6 site traffic.
# The IV epoch on the wire (IPv6 offsets, GSO off) and the datapath's window counters advance,
# and no packet is lost or fails authentication. IPv6 without rotation is 55-kernel-qkd-ipv6.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd LAB_IPV6=yes
nx() { ip netns exec "$LAB-$1" "${@:2}"; }

mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
for gw in gwA gwB; do
	lab test-rotation "$gw" yes 100 100 stall lab-seed-6
done
# the peers are known by their IPv6 WAN addresses (only these: an IPv4 match cannot help)
sed -i 's/remote_addrs = .*/remote_addrs = fd00:100::2/' "$LAB_DIR/gwA/plugins.conf"
sed -i 's/remote_addrs = .*/remote_addrs = fd00:100::1/' "$LAB_DIR/gwB/plugins.conf"
fatal "lab comes up with IPv6 sites and rotating kernel-qkd gateways" lab up
check "gwA knows peer gwB by its IPv6 address, rotation on" \
	in_log gwA "kernel-qkd: peer 'gwB' \(addrs fd00:100::2\): ESP key rotation on"
nx gwA ip addr add fd00:100::1/64 dev wan nodad
nx gwB ip addr add fd00:100::2/64 dev wan nodad
for n in hostA gwA gwB hostB; do
	check "$n: no tentative IPv6 address left" \
		wait_for 10 bash -c "test -z \"\$(ip -n '$LAB-$n' -6 addr show tentative)\""
done
sed -i 's/local_addrs = 198.51.100.1/local_addrs = fd00:100::1/; s/remote_addrs = 198.51.100.2/remote_addrs = fd00:100::2/;
	s#local_ts = 192.0.2.0/25#local_ts = 192.0.2.0/25, fd00:a::/64#; s#remote_ts = 192.0.2.128/25#remote_ts = 192.0.2.128/25, fd00:b::/64#' \
	"$LAB_DIR/gwA/swanctl.conf"
sed -i 's/local_addrs = 198.51.100.2/local_addrs = fd00:100::2/; s/remote_addrs = 198.51.100.1/remote_addrs = fd00:100::1/;
	s#local_ts = 192.0.2.128/25#local_ts = 192.0.2.128/25, fd00:b::/64#; s#remote_ts = 192.0.2.0/25#remote_ts = 192.0.2.0/25, fd00:a::/64#' \
	"$LAB_DIR/gwB/swanctl.conf"
lab load gwA; lab load gwB
fatal "gwA initiates over IPv6" lab initiate gwA
for gw in gwA gwB; do
	check "$gw: both SAs between the IPv6 addresses rotate (rpk 100)" \
		test "$(grep -cE "kernel-qkd: (in|out)bound SA .* fd00:100::[12] === fd00:100::[12]: ESP key rotation with key peer 'gw[AB]', rpk 100..100" \
			"$LAB_DIR/$gw/charon.log")" -eq 2
done

no_gso "$LAB-gwA" wan
pcap=$LAB_DIR/wan.pcap
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'ip6 and udp port 4500'
check "IPv4 through the rotating IPv6 tunnel: 600 pings, none lost" \
	ping_all hostA 600 0.002 192.0.2.130
check "IPv6 through the rotating IPv6 tunnel: 600 pings, none lost" \
	ping_all hostA 600 0.002 fd00:b::10 -6
capture_stop
# ESP in UDP over IPv6: ip6[48:4] SPI, ip6[52:4] sequence number, ip6[56:4] the IV's epoch
sent=$(pcap_count "$pcap" 'src fd00:100::1 and ip6[48:4] != 0')
epochs=$(esp_epochs "$pcap" 56 'src fd00:100::1 and ip6[48:4] != 0')
echo "# gwA -> gwB over IPv6: $sent ESP packets in $epochs distinct IV epochs"
# one epoch per 100 packets, no more: an IV that is not an epoch (no rotation) has no such bound
check "the IV epoch advances on the IPv6 wire (11..$((sent / 100 + 2)) epochs for $sent >= 1200 packets at rpk 100)" \
	test "$epochs" -ge 11 -a "$epochs" -le $((sent / 100 + 2)) -a "$sent" -ge 1200

check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
for gw in gwA gwB; do
	check "$gw: the datapath counted >= 11 key windows on an SA" \
		wait_for 5 windows_at_least "$gw" 11
	check "$gw: no packet failed authentication" test "$(sa_auth_failures "$gw")" -eq 0
done
finish
