#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# IPSeQ ESP phase end to end: two kernel-qkd gateways with the full QKD lab (qkd-kmsd KMEs on a
# QKD link, a qkid per site, the qkd plugin's QKD IKE) rotate the ESP key of their SAs with
# window keys from qkid. Both datapaths register their SAs with their qkid, which hands out the
# same epoch keys on both sides; traffic flows while the IV epoch advances; under a load that
# outruns the key supply the configured exhaustion policy (bounded reuse) keeps it flowing; and
# charon's SA deletion reports the windows used.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
for b in src/qki/qkid src/qki/qkictl src/kmsd/qkd-kmsd; do
	[ -x "$top/$b" ] || skip "$b not built (qkid and qkd-kmsd are needed for real window keys)"
done
export LAB_DATAPATH=kernel-qkd LAB_QKD=yes
rpk_max=400     # the bound of key reuse checked below (the datapath's counters)

fatal "QKD lab comes up (KMEs, qkids, kernel-qkd charons)" lab up
# rotation with the qkid peer named as in qkid.conf; its address comes from the qkd plugin's
# section of the same name (one peer name serves both plugins)
for gw in gwA gwB; do
	peer=gwB; [ "$gw" = gwB ] && peer=gwA
	fatal "$gw restarts with rotation configured" quiet lab rotation "$gw" 100 $rpk_max reuse
	check "$gw: peer $peer rotates, addresses from the qkd plugin's peer section" \
		in_log "$gw" "kernel-qkd: peer '$peer' \(addrs 198\.51\.100\.[12]\): ESP key rotation on"
	check "$gw: window keys come from its qkid" \
		in_log "$gw" "kernel-qkd: window keys from qkid at $LAB_DIR/$gw/qkid.sock"
done

fatal "gwA initiates the QKD tunnel" lab initiate gwA net 20
for gw in gwA gwB; do
	check "$gw: both SAs rotate with window keys of its qkid peer" \
		test "$(grep -cE "kernel-qkd: (in|out)bound SA .* ESP key rotation with key peer 'gw[AB]', rpk 100..$rpk_max, on exhaustion reuse" \
			"$LAB_DIR/$gw/charon.log")" -eq 2
	check "$gw: both SAs registered with qkid" \
		wait_for 5 bash -c "test \$(grep -cE 'kernel-qkd: (in|out)bound SA [0-9a-f]+ registered with qkid' \
			'$LAB_DIR/$gw/charon.log') -eq 2"
done
sas_a=$("$top/src/qki/qkictl" -s "$LAB_DIR/gwA/qkid.sock" sas 2>&1)
echo "$sas_a" | sed 's/^/# gwA qkid: /'
check "gwA's qkid holds an in and an out SA for peer gwB" \
	bash -c "echo '$sas_a' | grep -qE '^[0-9a-f]{8} +in +gwB' && echo '$sas_a' | grep -qE '^[0-9a-f]{8} +out +gwB'"

pcap=$LAB_DIR/wan.pcap
marker=49505365512d706c61696e74657874
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp port 4500'
check "hostA pings hostB across several windows" \
	ip netns exec "$LAB-hostA" ping -q -c 1000 -i 0.001 -W 2 -p "$marker" 192.0.2.130
capture_stop
# ESP in UDP: udp[8:4] SPI, udp[12:4] sequence number, udp[16:4] the IV's epoch. The rpk loop
# sets each window's length within rpk 100..rpk_max from the measured packet rate and fair share
# of the key supply, so 1000 pings span at least ceil(1000 / rpk_max) windows, and no window on
# the wire carries more than rpk_max packets (a fixed "every 100 packets" held only when the
# supply was fast enough, and failed CI on a slower machine with 6 windows of up to 166 packets).
per_epoch=$(tcpdump -r "$pcap" -n -x 'src 198.51.100.1 and udp port 4500 and udp[8:4] != 0' 2>/dev/null | \
	awk '/0x0020:/ { n[$4 $5]++ } END { for (e in n) print e, n[e] }')
epochs=$(grep -c . <<<"$per_epoch")
longest=$(awk 'BEGIN { m = 0 } $2 > m { m = $2 } END { print m }' <<<"$per_epoch")
echo "# gwA -> gwB: $epochs distinct IV epochs in 1000 pings, at most $longest packets in one"
check "the IV epoch advances (>= $(( (1000 + rpk_max - 1) / rpk_max )) epochs: a fresh quantum key at least every rpk_max = $rpk_max packets)" \
	test "$epochs" -ge $(( (1000 + rpk_max - 1) / rpk_max ))
check "no window on the wire carries more than rpk_max = $rpk_max packets ($longest)" \
	test "$longest" -ge 1 -a "$longest" -le "$rpk_max"
check "the ping payload never appears on the WAN" not grep -q "IPSeQ-plaintext" "$pcap"
keys_out=$("$top/src/qki/qkictl" -s "$LAB_DIR/gwA/qkid.sock" sas 2>/dev/null | \
	awk '$2 == "out" { print $6 }')
echo "# gwA's qkid handed out ${keys_out:-?} window keys for the outbound SA"
check "gwA's qkid handed out window keys for the outbound SA (>= one per window on the wire, $epochs)" \
	test "${keys_out:-0}" -ge "$epochs"

ip netns exec "$LAB-hostB" iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 bash -c "ip netns exec '$LAB-hostB' ss -ltn | grep -q ':5201 '"
rate=$(ip netns exec "$LAB-hostA" timeout 20 iperf3 -c 192.0.2.130 -t 2 -f m 2>&1 | \
	awk '/receiver/ { print $(NF-2) }')
echo "# iperf3 TCP with qkid window keys (more packets than the key supply covers at rpk 100): ${rate:-?} Mbit/s"
check "iperf3 TCP keeps running on bounded key reuse (> 10 Mbit/s)" \
	awk -v r="${rate:-0}" 'BEGIN { exit !(r > 10) }'
check "traffic still flows after the load" \
	ip netns exec "$LAB-hostA" ping -c 3 -i 0.2 -W 2 192.0.2.130

check "gwA terminates" quiet lab swanctl gwA --terminate --ike lab --timeout 10
for gw in gwA gwB; do
	check "$gw: SA deletion reports the key windows used" \
		wait_for 5 grep -qE 'kernel-qkd: SA [0-9a-f]+ used [0-9]{2,} key windows' "$LAB_DIR/$gw/charon.log"
done
grep -hE 'kernel-qkd: SA [0-9a-f]+ (used|deleted after)' "$LAB_DIR/gwA/charon.log" | sed 's/^/# gwA: /'
# the datapath's counters at deletion, per SA: "SPI packets windows beyond_rpk"
sa_counts() {
	awk '/kernel-qkd: SA [0-9a-f]+ deleted after/ { for (i = 1; i < NF; i++) if ($i == "SA") s = $(i + 1);
			for (i = 1; i < NF; i++) if ($i == "after") p[s] = $(i + 1) }
		/kernel-qkd: SA [0-9a-f]+ used [0-9]+ key windows/ { for (i = 1; i < NF; i++) if ($i == "SA") s = $(i + 1);
			for (i = 1; i < NF; i++) { if ($i == "used") w[s] = $(i + 1); if ($i == "beyond") b[s] = $(i - 2) } }
		END { for (s in w) print s, p[s] + 0, w[s], b[s] + 0 }' "$LAB_DIR/$1/charon.log"
}
for gw in gwA gwB; do
	counts=$(sa_counts "$gw")
	echo "$counts" | sed "s/^/# $gw: SA packets windows beyond_rpk: /"
	check "$gw: bounded key reuse: no SA carried more than rpk_max = $rpk_max packets per window key (packets <= (windows + 1) x $rpk_max)" \
		awk -v m="$rpk_max" 'NF == 4 { n++; if ($2 > ($3 + 1) * m) bad = 1 } END { exit !(n >= 1 && !bad) }' <<<"$counts"
done
check "the SAs were unregistered from qkid" \
	wait_for 5 bash -c "! '$top/src/qki/qkictl' -s '$LAB_DIR/gwA/qkid.sock' sas 2>/dev/null | grep -qE '^[0-9a-f]{8} +(in|out) '"
check "no key material in the logs" \
	not grep -qiE 'key[^_ -]*[:=] *(0x)?[0-9a-f]{32}' "$LAB_DIR/gwA/charon.log" "$LAB_DIR/gwB/charon.log"
finish
