#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# What a QKD-required gateway (gwA) refuses, and how it fails: mismatched quantum keys fail in
# IKE_SA_INIT (key confirmation), a peer that knows only the plain PSK gets AUTH_FAILED, a stock
# peer without the plugin is refused with a clear log line, a qkid or KME outage at connect
# fails cleanly and a later retry succeeds, replayed IKE_SA_INIT requests burn no keys, short
# or oversized KE data is refused, and so is KE data of another derivation version (with a log
# line naming the versions); charon keeps running throughout.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_QKD=yes
L=$top/scripts/lab

charon_alive() { kill -0 "$(cat "$LAB_DIR/$1/run/charon.pid")" 2>/dev/null; }
established() { sw "$1" --list-sas 2>/dev/null | matches ESTABLISHED; }
restart_gwB() { "$L" restart gwB >/dev/null; }
qkd_plugins_conf_gwB=""

fatal "lab with KMEs and qkids comes up" lab up
fatal "baseline: the QKD tunnel comes up" lab initiate gwA
terminate_all
cp "$LAB_DIR/gwB/plugins.conf" "$LAB_DIR/gwB/plugins.conf.qkd"
cp "$LAB_DIR/gwB/swanctl.conf" "$LAB_DIR/gwB/swanctl.conf.qkd"

echo "## 1. mismatched quantum keys (gwB takes 128-bit keys, gwA 256-bit ones)"
sed -i 's/timeout = /key_size = 16\n\t\t\ttimeout = /' "$LAB_DIR/gwB/plugins.conf"
restart_gwB
n=$(log_lines gwA)
start=$(date +%s%N)
check "initiation fails" not quiet lab initiate gwA net 10
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# failed after $ms ms"
check "gwA says the key confirmation failed" since gwA "$n" "key confirmation from peer 'gwB' failed"
check "it failed in IKE_SA_INIT: no IKE_AUTH was sent" not since gwA "$n" "generating IKE_AUTH request"
# failing by a timeout would leave the IKE_SA waiting (CONNECTING) when the initiation returns
check "it failed at once, not by a timeout: gwA has no IKE_SA left waiting" \
	not bash -c "'$top/scripts/lab' swanctl gwA --list-sas 2>/dev/null | grep -qE 'lab: #[0-9]+'"
check "... and never gave up on retransmits" not since gwA "$n" "giving up after"
check "no SA on gwA" not established gwA
cp "$LAB_DIR/gwB/plugins.conf.qkd" "$LAB_DIR/gwB/plugins.conf"

echo "## 2. a peer that knows only the plain PSK (QKD key exchange and PPK, but no QPSK)"
sed -i '/psk_file/d' "$LAB_DIR/gwB/plugins.conf"
psk=$(cat "$LAB_DIR/base.psk")
sed -i "s|^# no secrets.*|secrets { ike-plain { id = gwA.ipseq.test\n secret = $psk } }|" "$LAB_DIR/gwB/swanctl.conf"
restart_gwB
n=$(log_lines gwA)
check "gwB's initiation fails" not quiet lab initiate gwB net 10
check "gwA refuses gwB's plain-PSK AUTH (MAC mismatch against QPSK)" since gwA "$n" "shared keys? for 'gwA.ipseq.test' - 'gwB.ipseq.test', but MAC mismatched"
check "gwA sends AUTHENTICATION_FAILED" since gwA "$n" "N\(AUTH_FAILED\)"
check "no SA on gwA" not established gwA
cp "$LAB_DIR/gwB/plugins.conf.qkd" "$LAB_DIR/gwB/plugins.conf"

echo "## 3. a stock peer without the qkd plugin (plain X25519, plain PSK)"
sed -i -e 's/-x25519qkd/-x25519/' -e '/ppk_/d' "$LAB_DIR/gwB/swanctl.conf"
LAB_PLUGINS="" restart_gwB
check "gwB runs without the qkd plugin" not grep -q 'qkd plugin' "$LAB_DIR/gwB/charon.log"
n=$(log_lines gwA)
check "gwB's initiation fails" not quiet lab initiate gwB net 10
check "gwA logs why: no QKD key exchange proposed" since gwA "$n" "peer 'gwB' at .* proposes no QKD key exchange .* QKD is required"
check "no SA on gwA" not established gwA
cp "$LAB_DIR/gwB/swanctl.conf.qkd" "$LAB_DIR/gwB/swanctl.conf"
restart_gwB

echo "## 4. qkid outage at connect, then a retry"
"$L" qkid-stop gwA
n=$(log_lines gwA)
check "initiation fails while gwA's qkid is down" not quiet lab initiate gwA net 10
check "gwA logs that qkid is unreachable" since gwA "$n" "cannot reach qkid"
check "charon on gwA still runs" charon_alive gwA
"$L" qkid-start gwA
wait_for 10 test -S "$LAB_DIR/gwA/qkid.sock"
retry_up() { quiet lab initiate gwA net 5 && established gwA; }
check "a retry after qkid is back succeeds" wait_for 20 retry_up
terminate_all

echo "## 5. KME outage with empty key pools, then a retry"
kill -USR1 "$(cat "$LAB_DIR/gwA/kmsd.pid")" "$(cat "$LAB_DIR/gwB/kmsd.pid")"
for gw in gwA gwB; do "$L" qkid-stop $gw; done
for gw in gwA gwB; do "$L" qkid-start $gw; done
wait_for 10 test -S "$LAB_DIR/gwA/qkid.sock"
sleep 1
n=$(log_lines gwA)
check "initiation fails while the KMEs answer 503" not quiet lab initiate gwA net 10
check "gwA logs that qkid has no key" since gwA "$n" "qkid has no new key for peer 'gwB'"
check "qkictl reports the KME trouble" bash -c "'$L' qkictl gwA status | grep -qiE 'KME: (down|backoff|failing|error)|503'"
kill -USR1 "$(cat "$LAB_DIR/gwA/kmsd.pid")" "$(cat "$LAB_DIR/gwB/kmsd.pid")"
check "a retry after the KMEs recover succeeds" wait_for 30 retry_up

echo "## 6. replayed IKE_SA_INIT requests burn no quantum keys"
terminate_all
capture_start gwA wan "$LAB_DIR/init.pcap" 'udp port 500'
quiet lab initiate gwA
capture_stop
fatal "captured gwA's IKE_SA_INIT" python3 "$top/testing/ike_packet.py" extract "$LAB_DIR/init.pcap" "$LAB_DIR/init.bin"
check "its KE carries method 1051 with 69 bytes (version 2)" \
	test "$(python3 "$top/testing/ike_packet.py" ke-info "$LAB_DIR/init.bin")" = "1051 69"
sleep 0.5
out_before=$("$L" qkictl gwB status | grep -oE 'out: [0-9]+' | head -1)
n=$(log_lines gwB)
ip netns exec "$LAB-gwA" python3 "$top/testing/ike_packet.py" send "$LAB_DIR/init.bin" 198.51.100.2 500 5
refused_replays() { [ "$(tail -n +"$((n + 1))" "$LAB_DIR/gwB/charon.log" | grep -cE "$1")" -ge 5 ]; }
check "gwB refused all 5 replayed key exchanges" \
	wait_for 15 refused_replays "proposed quantum key .* which we cannot obtain"
check "gwB's qkid refused the replayed key_ID as used, each time" refused_replays "key_ID already used"
out_after=$("$L" qkictl gwB status | grep -oE 'out: [0-9]+' | head -1)
echo "# gwB's qkid keys handed out before/after 5 replays: $out_before / $out_after"
check "gwB's qkid handed out no key for the replays" test "$out_before" = "$out_after"
check "the established tunnel still carries traffic" ping_b 2

echo "## 7. short and oversized QKD key exchange data"
for delta in +1 -36 +200; do
	python3 "$top/testing/ike_packet.py" ke-resize "$LAB_DIR/init.bin" "$LAB_DIR/bad.bin" "$delta"
	n=$(log_lines gwB)
	ip netns exec "$LAB-gwA" python3 "$top/testing/ike_packet.py" send "$LAB_DIR/bad.bin" 198.51.100.2 500
	want=$((69 + delta))
	refused() { since gwB "$n" "QKD key exchange data of $want bytes from .*, expected 69; refused"; }
	wait_for 3 refused
	check "KE data of $want bytes refused with a log line" refused
done

echo "## 8. a peer of another derivation version is refused, saying so"
# version 1 (before key separation) had no version byte: 68 bytes
python3 "$top/testing/ike_packet.py" ke-resize "$LAB_DIR/init.bin" "$LAB_DIR/v1.bin" -1
python3 "$top/testing/ike_packet.py" ke-set "$LAB_DIR/init.bin" "$LAB_DIR/v3.bin" 0 03
for v in 1 3; do
	n=$(log_lines gwB)
	ip netns exec "$LAB-gwA" python3 "$top/testing/ike_packet.py" send "$LAB_DIR/v$v.bin" 198.51.100.2 500
	mismatch() { since gwB "$n" "QKD key exchange data from .* is of version $v.*speaks version 2 only: version mismatch"; }
	wait_for 3 mismatch
	check "KE data of version $v refused with a version mismatch log line" mismatch
done
check "charon on gwA still runs" charon_alive gwA
check "charon on gwB still runs" charon_alive gwB
finish
