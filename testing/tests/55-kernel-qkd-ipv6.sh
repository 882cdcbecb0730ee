#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd over IPv6: IKE (port 500 on the plugin's IPv6 socket, then 4500 through the
# datapath's IPv6 socket) and ESP-in-UDP between IPv6 gateway addresses, carrying IPv4 and IPv6
# site traffic (traffic selectors of both families, routes into the TUN device for both).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd

fatal "lab comes up with kernel-qkd on both gateways" lab up
for gw in gwA gwB; do
	check "$gw: datapath listens on IPv4 and IPv6" in_log "$gw" 'kernel-qkd: datapath up: .*\(IPv4 and IPv6\)'
done
# IPv6 on the WAN and in the sites (fd00::/8 only)
nx() { ip netns exec "$LAB-$1" "${@:2}"; }
nx gwA ip addr add fd00:100::1/64 dev wan nodad
nx gwB ip addr add fd00:100::2/64 dev wan nodad
nx hostA ip addr add fd00:a::10/64 dev lanA nodad
nx gwA ip addr add fd00:a::1/64 dev lanA nodad
nx gwB ip addr add fd00:b::1/64 dev lanB nodad
nx hostB ip addr add fd00:b::10/64 dev lanB nodad
nx hostA ip -6 route add default via fd00:a::1
nx hostB ip -6 route add default via fd00:b::1
for gw in gwA gwB; do nx "$gw" sysctl -qw net.ipv6.conf.all.forwarding=1; done
# fresh interfaces hold IPv6 traffic while their link-local addresses are tentative (DAD, ~1 s)
for n in hostA gwA gwB hostB; do
	check "$n: no tentative IPv6 address left" \
		wait_for 10 bash -c "test -z \"\$(ip -n '$LAB-$n' -6 addr show tentative)\""
done
check "no IPv6 route between the sites before the tunnel" \
	not quiet nx hostA ping -6 -c 1 -W 1 fd00:b::10
sed -i 's/local_addrs = 198.51.100.1/local_addrs = fd00:100::1/; s/remote_addrs = 198.51.100.2/remote_addrs = fd00:100::2/;
	s#local_ts = 192.0.2.0/25#local_ts = 192.0.2.0/25, fd00:a::/64#; s#remote_ts = 192.0.2.128/25#remote_ts = 192.0.2.128/25, fd00:b::/64#' \
	"$LAB_DIR/gwA/swanctl.conf"
sed -i 's/local_addrs = 198.51.100.2/local_addrs = fd00:100::2/; s/remote_addrs = 198.51.100.1/remote_addrs = fd00:100::1/;
	s#local_ts = 192.0.2.128/25#local_ts = 192.0.2.128/25, fd00:b::/64#; s#remote_ts = 192.0.2.0/25#remote_ts = 192.0.2.0/25, fd00:a::/64#' \
	"$LAB_DIR/gwB/swanctl.conf"
lab load gwA
lab load gwB
fatal "gwA initiates over IPv6" lab initiate gwA
check "IKE_SA between the IPv6 addresses, floated to 4500" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -q 'remote.*fd00:100::2\[4500\]'"

pcap=$LAB_DIR/wan.pcap
marker=49505365512d706c61696e74657874
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp or icmp or icmp6'
check "IPv4 through the IPv6 tunnel: hostA pings hostB" \
	nx hostA ping -c 4 -i 0.2 -W 2 -p "$marker" 192.0.2.130
check "IPv6 through the IPv6 tunnel: hostA pings hostB" \
	nx hostA ping -6 -c 4 -i 0.2 -W 2 -p "$marker" fd00:b::10
check "IPv6 the other way: hostB pings hostA" \
	nx hostB ping -6 -c 4 -i 0.2 -W 2 -p "$marker" fd00:a::10
capture_stop
esp6=$(pcap_count "$pcap" 'ip6 and udp port 4500 and ip6[48:4] != 0')
echo "# on the WAN: $esp6 ESP-in-UDP/IPv6 captures (a GSO batch is one capture)"
check "ESP-in-UDP over IPv6 on the WAN (>= 16 captures)" test "$esp6" -ge 16
check "no plaintext on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"
check "gwA routed fd00:b::/64 into its TUN device" \
	bash -c "ip -n '$LAB-gwA' -6 route show table all | grep -q '^fd00:b::/64 dev ipsecqkd'"
check "SA counters show the traffic" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -qE 'in .*, +([2-9][0-9]|1[2-9]) packets'"
finish
