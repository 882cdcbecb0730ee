#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# Settings per swanctl connection: two connections between the same two gateways, "repl"
# (192.0.2.8/29 <-> 192.0.2.128/29: hostA <-> hostB) rotating its ESP keys every 64 packets and
# "mgmt" (gwA 192.0.2.1 <-> gwB's second LAN address 192.0.2.140) not, chosen by charon.plugins.kernel-qkd.connections.mgmt.rotation = no over the
# peer's rotation = yes. Seen on the wire: the repl SAs' explicit IVs carry several epochs, the
# mgmt SAs' one. A connection section with invalid settings refuses its SAs with the reason.
# Window keys come from the datapath's test provider (qkid's path is in 52/61).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_DATAPATH=kernel-qkd
pcap_py=$top/src/libipsec-qkd/tests/esp_pcap.py

# two connections per gateway; the peer rotates by default (lab test-rotation), mgmt opts out
write_conf() {
	local gw=$1 peer=$2 me=$3 other=$4 lan=$5 plan=$6 host=$7 phost=$8 mgmt_settings=$9
	lab test-rotation "$gw" yes 64 64 reuse per-connection-seed
	cat >> "$LAB_DIR/$gw/plugins.conf" <<EOF
		kernel-qkd {
			connections {
				mgmt {
					$mgmt_settings
				}
			}
		}
EOF
	(umask 077; cat > "$LAB_DIR/$gw/swanctl.conf" <<EOF
connections {
	repl {
		local_addrs = $me
		remote_addrs = $other
		proposals = aes256gcm16-prfsha256-x25519
		local { auth = psk
			id = repl.$gw.ipseq.test }
		remote { auth = psk
			id = repl.$peer.ipseq.test }
		children { repl { local_ts = $host
			remote_ts = $phost
			esp_proposals = aes256gcm16 } }
	}
	mgmt {
		local_addrs = $me
		remote_addrs = $other
		proposals = aes256gcm16-prfsha256-x25519
		local { auth = psk
			id = mgmt.$gw.ipseq.test }
		remote { auth = psk
			id = mgmt.$peer.ipseq.test }
		children { mgmt { local_ts = $lan
			remote_ts = $plan
			esp_proposals = aes256gcm16 } }
	}
}
secrets {
	ike-repl { id-a = repl.gwA.ipseq.test
		id-b = repl.gwB.ipseq.test
		secret = 0sdGVzdC1vbmx5LXBzay1mb3ItcGVyLWNvbm5lY3Rpb24= }
	ike-mgmt { id-a = mgmt.gwA.ipseq.test
		id-b = mgmt.gwB.ipseq.test
		secret = 0sdGVzdC1vbmx5LXBzay1mb3ItbWFuYWdlbWVudA== }
}
EOF
	)
}
# a traffic selector must hold an address of the gateway (its routes' source): gwA gets
# 192.0.2.9 inside repl's 192.0.2.8/29, gwB 192.0.2.140 for mgmt, outside repl's 192.0.2.128/29
configure() {
	write_conf gwA gwB 198.51.100.1 198.51.100.2 192.0.2.1/32 192.0.2.140/32 192.0.2.8/29 192.0.2.128/29 "$1"
	write_conf gwB gwA 198.51.100.2 198.51.100.1 192.0.2.140/32 192.0.2.1/32 192.0.2.128/29 192.0.2.8/29 "$1"
}
spi_of() { sw gwA --list-sas --ike "$1" 2>/dev/null | grep -oE "$1: #[0-9]+.*" >/dev/null; \
	sw gwA --list-sas --ike "$1" 2>/dev/null | sed -nE 's/.*out  *([0-9a-f]{8}).*/\1/p' | head -n 1; }
# ping_all NS SRC DST: 300 pings, every one answered
ping_all() { ip netns exec "$LAB-$1" ping -q -c 300 -i 0.005 -W 2 -I "$2" "$3" 2>&1 | matches ' 0% packet loss'; }
epochs_of() { awk -v s="$1" '$1 == s {n++} END {print n + 0}' "$2"; }

# (re)configure both gateways and restart their charons with it
reconfigure() {
	configure "$1"
	for gw in gwA gwB; do quiet lab restart "$gw"; done
}
mkdir -p "$LAB_DIR"; chmod 700 "$LAB_DIR"
fatal "lab comes up" lab up
ip netns exec "$LAB-gwA" ip addr add 192.0.2.9/25 dev lanA
ip netns exec "$LAB-gwB" ip addr add 192.0.2.140/25 dev lanB
reconfigure "rotation = no"

echo "## 1. one peer, two connections: repl rotates, mgmt does not"
fatal "gwA initiates repl" lab initiate gwA repl
fatal "gwA initiates mgmt" lab initiate gwA mgmt
check "two IKE_SAs with the same peer" test "$(sw gwA --list-sas 2>/dev/null | grep -cE '^(repl|mgmt): #')" -eq 2
check "gwA: the repl SAs rotate" test "$(grep -cE 'kernel-qkd: (in|out)bound SA .* ESP key rotation' "$LAB_DIR/gwA/charon.log")" -eq 2
check "gwA: the mgmt SAs do not" test "$(grep -cE 'kernel-qkd: (in|out)bound SA .* no key rotation' "$LAB_DIR/gwA/charon.log")" -eq 2
check "gwB: the same" test "$(grep -cE 'kernel-qkd: (in|out)bound SA .* ESP key rotation' "$LAB_DIR/gwB/charon.log")" -eq 2
repl_spi=$(spi_of repl); mgmt_spi=$(spi_of mgmt)
echo "# outbound SPIs on gwA: repl $repl_spi, mgmt $mgmt_spi"
pcap=$LAB_DIR/wan.pcap
# offloads off on the capture's interface, so the capture sees every ESP packet on its own
ip netns exec "$LAB-gwA" ethtool -K wan gro off gso off tso off >/dev/null 2>&1 || true
ip netns exec "$LAB-gwA" tcpdump -i wan -nn -U -w "$pcap" udp port 4500 >/dev/null 2>&1 &
tcpd=$!
wait_for 5 test -s "$pcap"
check "repl: 300 pings hostA -> hostB, none lost" ping_all hostA 192.0.2.10 192.0.2.130
check "mgmt: 300 pings gwA -> gwB (192.0.2.1 -> 192.0.2.140), none lost" ping_all gwA 192.0.2.1 192.0.2.140
sleep 0.5; kill "$tcpd" 2>/dev/null; wait "$tcpd" 2>/dev/null
python3 "$pcap_py" epochs "$pcap" > "$LAB_DIR/epochs.txt" 2>/dev/null
sed 's/^/#   /' "$LAB_DIR/epochs.txt" | head -n 20
check "repl's outbound SA carries several epochs on the wire (300 packets, rpk 64)" \
	test "$(epochs_of "$repl_spi" "$LAB_DIR/epochs.txt")" -ge 4
check "mgmt's outbound SA carries one (no rotation)" \
	test "$(epochs_of "$mgmt_spi" "$LAB_DIR/epochs.txt")" -eq 1
terminate_all
sw gwA --terminate --ike mgmt --timeout 5 >/dev/null 2>&1 || true
sw gwA --terminate --ike repl --timeout 5 >/dev/null 2>&1 || true

echo "## 2. invalid settings for a connection refuse its SAs, naming the section"
reconfigure "rpk_min = 0"
nb=$(log_lines gwB)
check "mgmt does not come up" not quiet lab initiate gwA mgmt 10
check "gwB (the responder, installing first) says why" since gwB "$nb" "kernel-qkd: SA [0-9a-f]+ refused: invalid settings in charon\\.plugins\\.kernel-qkd\\.connections\\.mgmt"
check "repl still comes up" quiet lab initiate gwA repl
finish
