#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# libipsec-qkd between two gateways (qkd-espd, static SAs, rotation off), hostA <-> hostB:
# IPv4 and IPv6 pings, IPv4 fragments, TCP and UDP with iperf3; the WAN carries only
# ESP-in-UDP on port 4500 and never the plaintext (the LAN capture shows the same marker, so the
# check can fail); TSO super-packets are read from the TUN and GSO super-packets written to it;
# everything still passes with every offload off.
. "$(dirname "$0")/../lib.sh"
. "$top/src/libipsec-qkd/tests/dp-lab.sh"
dp_need

marker=49505365512d706c61696e74657874     # "IPSeQ-plaintext"
fatal "four namespaces come up" dp_lab_up
fatal "qkd-espd runs on gwA" dp_espd a
fatal "qkd-espd runs on gwB" dp_espd b
check "gwA has its TUN device" ga ip link show qkd0

fatal "tcpdump listens on gwA's WAN" capture_start_ns "$DP_GW_A" "$DP_WAN_A" "$DDIR/wan.pcap" udp
wan_pid=$CAPTURE_PID
fatal "tcpdump listens on gwA's LAN" capture_start_ns "$DP_GW_A" "$DP_LAN_A" "$DDIR/lan.pcap" icmp
lan_pid=$CAPTURE_PID
check "hostA pings hostB through the tunnel" quiet ha ping -c 5 -i 0.2 -W 2 -p "$marker" 192.0.2.130
check "hostB pings hostA" quiet hb ping -c 3 -i 0.2 -W 2 -p "$marker" 192.0.2.10
check "IPv6 inside the tunnel: hostA pings fd00:b::10" quiet ha ping -6 -c 3 -i 0.2 -W 2 fd00:b::10
check "IPv4 fragments (4000-byte pings, DF off) pass" \
	quiet ha ping -c 3 -i 0.2 -W 2 -s 4000 -M dont 192.0.2.130
CAPTURE_PID=$lan_pid capture_stop
CAPTURE_PID=$wan_pid capture_stop
esp=$(python3 "$top/src/libipsec-qkd/tests/esp_pcap.py" count "$DDIR/wan.pcap")
check "the WAN carried ESP-in-UDP ($esp packets)" test "$esp" -ge 22
check "the WAN never carried the plaintext marker" \
	not python3 "$top/src/libipsec-qkd/tests/esp_pcap.py" grep "$DDIR/wan.pcap" "$marker"
check "the LAN did carry it (the check above can fail)" \
	python3 "$top/src/libipsec-qkd/tests/esp_pcap.py" grep "$DDIR/lan.pcap" "$marker"
check "no ICMP and no non-4500 UDP on the WAN" \
	test "$(tcpdump -r "$DDIR/wan.pcap" -n 'icmp or (udp and not port 4500)' 2>/dev/null | wc -l)" -eq 0

hb iperf3 -s -1 -D -I "$DDIR/iperf-s.pid" >/dev/null 2>&1
wait_for 5 hb ss -ltn 'sport = :5201'
check "TCP through the tunnel (iperf3, 2 s)" \
	bash -c "ip netns exec $DP_HOST_A iperf3 -c 192.0.2.130 -t 2 -J > $DDIR/tcp.json"
bps=$(python3 -c "import json;print(int(json.load(open('$DDIR/tcp.json'))['end']['sum_received']['bits_per_second']))" 2>/dev/null || echo 0)
echo "# TCP $((bps / 1000000)) Mbit/s (not a benchmark: scripts/bench datapath)"
check "TCP moved data" test "$bps" -gt 1000000
check "gwA read TSO super-packets from its TUN" test "$(dp_stat a tun_rx_superpackets)" -gt 0
check "gwB wrote coalesced GSO super-packets to its TUN" test "$(dp_stat b tun_tx_superpackets)" -gt 0
check "gwB: no authentication, replay or policy drops" \
	test "$(dp_stat b drop_auth)$(dp_stat b drop_replay)$(dp_stat b drop_policy_in)" = 000

hb iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 hb ss -ltn 'sport = :5201'
check "UDP through the tunnel (iperf3 -u 100M, 1 s)" \
	bash -c "ip netns exec $DP_HOST_A iperf3 -c 192.0.2.130 -u -b 100M -l 1200 -t 1 -J > $DDIR/udp.json"
lost=$(python3 -c "import json;print(json.load(open('$DDIR/udp.json'))['end']['sum']['lost_percent'])" 2>/dev/null || echo 100)
echo "# UDP loss at 100 Mbit/s: $lost %"
check "UDP delivered" python3 -c "import sys; sys.exit(0 if $lost < 50 else 1)"

# the slow path: every offload off
dp_espd_stop a; dp_espd_stop b
fatal "qkd-espd on gwA with --offload none" dp_espd a --offload none
fatal "qkd-espd on gwB with --offload none" dp_espd b --offload none
check "ping with every offload off" quiet ha ping -c 3 -i 0.2 -W 2 192.0.2.130
check "IPv6 ping with every offload off" quiet ha ping -6 -c 2 -i 0.2 -W 2 fd00:b::10
hb iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 hb ss -ltn 'sport = :5201'
check "TCP with every offload off" \
	bash -c "ip netns exec $DP_HOST_A iperf3 -c 192.0.2.130 -t 1 > /dev/null"
check "no super-packets without offloads" test "$(dp_stat a tun_rx_superpackets)" -eq 0
dp_espd_stop a; dp_espd_stop b
check "qkd-espd wrote its final counters on exit" grep -q '^esp_rx_packets=' "$DDIR/espd-b.stats"
finish
