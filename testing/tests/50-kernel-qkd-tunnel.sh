#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd as charon's IPsec backend on both gateways, rotation off: the tunnel comes up with
# IKE floated to the datapath's port 4500, hostA reaches hostB through it (ping, iperf3), the WAN
# carries ESP-in-UDP and never the plaintext, the SA counters are real, a CHILD_SA rekey by
# unique id keeps traffic flowing on the new SAs, and a non-GCM proposal is refused with a clear
# log line.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
export LAB_DATAPATH=kernel-qkd

sas() { lab swanctl "$1" --list-sas --raw 2>/dev/null; }
# installed CHILD_SA unique ids of 'net' on a gateway
child_ids() { sas "$1" | grep -oE 'name=net uniqueid=[0-9]+ reqid=[0-9]+ state=INSTALLED' | \
	sed -E 's/.*uniqueid=([0-9]+).*/\1/'; }
# bytes-in of the installed CHILD_SA with unique id $2
child_field() { sas "$1" | grep -oE "name=net uniqueid=$2 [^}]*" | grep -oE "$3=[0-9]+" | cut -d= -f2; }

fatal "lab comes up with kernel-qkd on both gateways" lab up
for gw in gwA gwB; do
	check "$gw: kernel-qkd loaded before kernel-netlink, no socket-default/kernel-libipsec" \
		in_log "$gw" 'loaded plugins: charon .*kernel-qkd kernel-netlink'
	check "$gw: neither socket-default nor kernel-libipsec loaded" \
		not in_log "$gw" 'loaded plugins: .*(socket-default|kernel-libipsec)'
	check "$gw: datapath up with its TUN device" in_log "$gw" 'kernel-qkd: datapath up: TUN'
	check "$gw: IKE socket on 500 and through the datapath on 4500" \
		in_log "$gw" 'kernel-qkd: IKE on UDP port 500 \(own sockets\) and 4500 \(datapath\)'
done
check "no route between the sites before the tunnel" \
	not quiet ip netns exec "$LAB-hostA" ping -c 1 -W 1 192.0.2.130
fatal "gwA initiates the CHILD_SA" lab initiate gwA
check "IKE_SA established on gwB, floated to port 4500" \
	bash -c "'$top/scripts/lab' swanctl gwB --list-sas | grep -q 'remote.*198.51.100.1\[4500\]'"
check "gwA installed both SAs in the datapath" \
	in_log gwA 'kernel-qkd: outbound SA .* 256-bit AES-GCM, no key rotation'

pcap=$LAB_DIR/wan.pcap
marker=49505365512d706c61696e74657874   # "IPSeQ-plaintext" as ping payload pattern
fatal "tcpdump listens on gwA's LAN" capture_start gwA lanA "$LAB_DIR/lan.pcap" icmp
lan_capture=$CAPTURE_PID
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp or icmp or esp'
check "hostA pings hostB through the tunnel" \
	ip netns exec "$LAB-hostA" ping -c 5 -i 0.2 -W 2 -p "$marker" 192.0.2.130
check "hostB pings hostA through the tunnel" \
	ip netns exec "$LAB-hostB" ping -c 3 -i 0.2 -W 2 -p "$marker" 192.0.2.10
capture_stop
CAPTURE_PID=$lan_capture capture_stop
esp=$(pcap_count "$pcap" 'udp port 4500')
icmp=$(pcap_count "$pcap" 'icmp')
echo "# on the WAN: $esp ESP-in-UDP packets, $icmp plaintext ICMP packets"
check "ESP-in-UDP on the WAN (>= 16 packets)" test "$esp" -ge 16
check "no plaintext ICMP on the WAN" test "$icmp" -eq 0
check "control: the ping payload is visible on the LAN" grep -q "IPSeQ-plaintext" "$LAB_DIR/lan.pcap"
check "the ping payload never appears on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"
check "ESP packets are ESP (non-zero SPI, not IKE) on port 4500" \
	test "$(tcpdump -r "$pcap" -n 'udp port 4500 and udp[8:4] != 0' 2>/dev/null | wc -l)" -ge 16

ip netns exec "$LAB-hostB" iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 bash -c "ip netns exec '$LAB-hostB' ss -ltn | grep -q ':5201 '"
out=$(ip netns exec "$LAB-hostA" timeout 20 iperf3 -c 192.0.2.130 -t 2 -f m 2>&1)
rate=$(echo "$out" | awk '/receiver/ { print $(NF-2) }')
echo "# iperf3 TCP hostA->hostB over kernel-qkd: ${rate:-?} Mbit/s (not a benchmark)"
check "iperf3 TCP runs through the tunnel" test -n "$rate"
id=$(child_ids gwA | head -n 1)
bytes_out=$(child_field gwA "$id" bytes-out)
packets_in=$(child_field gwA "$id" packets-in)
echo "# gwA CHILD_SA #$id: bytes-out=$bytes_out packets-in=$packets_in"
check "gwA's SA counters show the iperf3 volume (> 10 MB out)" test "${bytes_out:-0}" -gt 10000000
check "gwA's SA counters show inbound packets" test "${packets_in:-0}" -gt 100

# CHILD_SA rekey by unique id (a rekey by name would also match the old SAs kept for a while)
old_spi=$(sas gwA | grep -oE "name=net uniqueid=$id [^}]*" | grep -oE 'spi-in=[0-9a-f]+')
ip netns exec "$LAB-hostA" ping -c 60 -i 0.05 -W 1 192.0.2.130 > "$LAB_DIR/rekey-ping.txt" 2>&1 &
ping_pid=$!
sleep 1
check "swanctl --rekey of CHILD_SA #$id" quiet lab swanctl gwA --rekey --child-id "$id"
wait "$ping_pid"
lost=$(sed -nE 's/.* ([0-9]+) received.*/\1/p' "$LAB_DIR/rekey-ping.txt")
echo "# ping during the rekey: ${lost:-?} of 60 answered"
check "no ping lost during the rekey" test "${lost:-0}" -eq 60
check "a new CHILD_SA is installed" \
	wait_for 10 bash -c "'$top/scripts/lab' swanctl gwA --list-sas --raw | \
		grep -oE 'name=net uniqueid=[0-9]+ reqid=[0-9]+ state=INSTALLED' | grep -vq 'uniqueid=$id '"
new=$(child_ids gwA | grep -vx "$id" | head -n 1)
new_spi=$(sas gwA | grep -oE "name=net uniqueid=${new:-x} [^}]*" | grep -oE 'spi-in=[0-9a-f]+')
echo "# rekeyed: #$id $old_spi -> #${new:-?} $new_spi"
check "the new CHILD_SA has a new SPI" test -n "$new_spi" -a "$new_spi" != "$old_spi"
check "traffic continues after the rekey" \
	ip netns exec "$LAB-hostA" ping -c 3 -i 0.2 -W 2 192.0.2.130
check "the new CHILD_SA carries it (packets-in > 0)" \
	test "$(child_field gwA "${new:-x}" packets-in)" -gt 0
check "the old CHILD_SA is gone" \
	wait_for 10 bash -c "! '$top/scripts/lab' swanctl gwA --list-sas --raw | grep -q 'name=net uniqueid=$id '"
check "its inbound SA was deleted from the datapath" \
	in_log gwA "kernel-qkd: SA ${old_spi#spi-in=} deleted after [1-9][0-9]* packets"

# Only AES-GCM-16: a CBC/HMAC CHILD_SA is refused by the backend with a clear reason.
for gw in gwA gwB; do
	sed -i 's/^\t\tchildren {$/\t\tchildren {\n\t\t\tcbc {\n\t\t\t\tlocal_ts = 192.0.2.0\/26\n\t\t\t\tremote_ts = 192.0.2.128\/26\n\t\t\t\tesp_proposals = aes128-sha256\n\t\t\t}/' \
		"$LAB_DIR/$gw/swanctl.conf"
	if [ "$gw" = gwB ]; then
		sed -i 's#local_ts = 192.0.2.0/26#local_ts = 192.0.2.128/26#; s#remote_ts = 192.0.2.128/26#remote_ts = 192.0.2.0/26#' \
			"$LAB_DIR/$gw/swanctl.conf"
	fi
	lab load "$gw"
done
check "a CBC/HMAC CHILD_SA cannot be installed" not quiet lab initiate gwA cbc 10
check "the refusal names the reason" \
	bash -c "grep -qE 'kernel-qkd: SA [0-9a-f]+ refused: AES_CBC .*AES-GCM-16 with 128 or 256-bit keys only' \
		'$LAB_DIR/gwA/charon.log' '$LAB_DIR/gwB/charon.log'"
check "the GCM tunnel still works" ip netns exec "$LAB-hostA" ping -c 2 -i 0.2 -W 2 192.0.2.130
check "no key material in the logs" \
	not grep -qiE 'key[^_ -]*[:=] *(0x)?[0-9a-f]{32}' "$LAB_DIR/gwA/charon.log" "$LAB_DIR/gwB/charon.log"
finish
