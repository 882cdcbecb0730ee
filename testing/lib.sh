# SPDX-License-Identifier: GPL-2.0-or-later
# Shared helpers for testing/tests/*.sh; source it first thing.
set -uo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# A lab of its own per test run: namespaces are "$LAB-gwA" etc.
export LAB=${LAB:-t$$}
export LAB_DIR=${LAB_DIR:-/tmp/ipseq-lab/$LAB}
failures=0
checks=0

lab() { "$top/scripts/lab" "$@"; }
cleanup() { [ "${KEEP_LAB:-0}" != 0 ] && { echo "# KEEP_LAB: lab $LAB left up"; return; }; lab down >/dev/null 2>&1 || true; }
trap cleanup EXIT

# check DESCRIPTION COMMAND...: run COMMAND, report ok/FAIL, keep going; returns COMMAND's
# success (fatal relies on it: with the status of the last echo it never stopped a test)
check() {
	local desc=$1; shift
	checks=$((checks + 1))
	if "$@"; then
		echo "ok - $desc"
	else
		echo "FAIL - $desc"
		failures=$((failures + 1))
		return 1
	fi
}
# fatal DESCRIPTION COMMAND...: like check, but stop the test on failure.
fatal() {
	check "$@" || finish
}
skip() { echo "SKIP: $*"; exit 77; }
finish() {
	echo "# $checks checks, $failures failed"
	if [ "$failures" -gt 0 ] || [ "$checks" -eq 0 ]; then exit 1; fi
	exit 0
}
# wait_for SECONDS COMMAND...: poll COMMAND every 0.1 s until it succeeds or time runs out.
wait_for() {
	local secs=$1 i; shift
	for ((i = 0; i < secs * 10; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
# count of packets in a pcap matching a filter
pcap_count() { tcpdump -r "$1" -n "${@:2}" 2>/dev/null | wc -l; }
# cmd | matches REGEX: like grep -qE, but reads its input to the end. Under pipefail, a plain
# 'cmd | grep -q' fails at random when grep exits on the first match and cmd, still writing,
# dies of SIGPIPE (exit 141).
matches() { local rc=1; grep -qE -- "$1" && rc=0; cat >/dev/null; return $rc; }
# log_lines GW: lines in the gateway's charon log so far (a mark for since)
log_lines() { wc -l < "$LAB_DIR/$1/charon.log"; }
# since GW MARK REGEX: a line of the gateway's charon log after MARK matches REGEX
since() { tail -n +"$(( $2 + 1 ))" "$LAB_DIR/$1/charon.log" | matches "$3"; }
# terminate_all: gwA ends the lab's IKE_SA (and its CHILD_SAs), if any
terminate_all() { sw gwA --terminate --ike lab --timeout 5 >/dev/null 2>&1 || true; sleep 0.3; }
# in_log GW REGEX: the gateway's charon log has a line matching REGEX
in_log() { grep -qE "$2" "$LAB_DIR/$1/charon.log"; }
# not COMMAND...: succeeds when COMMAND fails
not() { ! "$@"; }
# quiet COMMAND...: run COMMAND with its output hidden
quiet() { "$@" >/dev/null 2>&1; }
# capture_start NODE IFACE PCAP [FILTER...]: tcpdump in the background until it really listens;
# sets CAPTURE_PID. capture_stop ends it after the last packets are written.
capture_start() {
	local node=$1 ifc=$2 pcap=$3; shift 3
	ip netns exec "$LAB-$node" tcpdump -i "$ifc" -n -U --immediate-mode -w "$pcap" "$@" \
		>/dev/null 2>"$pcap.err" &
	CAPTURE_PID=$!
	wait_for 10 grep -q 'listening on' "$pcap.err"
}
# no_gso NAMESPACE IFACE: the kernel splits UDP GSO batches before the capture point of IFACE
# (at most one segment per frame), so a capture there holds one frame per ESP packet; with GSO
# one captured frame can be a whole batch, and counting packets per window would undercount
no_gso() { ip -n "$1" link set dev "$2" gso_max_segs 1; }
capture_stop() {
	sleep 0.3
	kill "$CAPTURE_PID" 2>/dev/null
	wait "$CAPTURE_PID" 2>/dev/null || true
}
# swanctl against a lab gateway
sw() { "$top/scripts/lab" swanctl "$@"; }
# distinct key_IDs a gateway's charon logged for a kind of use ("key exchange" or "PPK")
logged_key_ids() {
	grep -E "qkd: $2 .* quantum key [0-9a-f-]{36}" "$LAB_DIR/$1/charon.log" |
		grep -oE '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}' | awk '!seen[$0]++'
}
# ping from hostA to hostB, quietly
ping_b() { ip netns exec "$LAB-hostA" ping -c "${1:-3}" -i 0.2 -W 2 192.0.2.130 >/dev/null 2>&1; }
# ping_all NODE COUNT INTERVAL DST [PING_OPTS...]: COUNT pings from NODE; prints "R of COUNT
# answered" and succeeds only if every one was answered (ping itself succeeds on partial loss)
ping_all() {
	local r
	r=$(ip netns exec "$LAB-$1" ping -q -c "$2" -i "$3" -W 2 "${@:5}" "$4" 2>&1 |
		grep -oE '[0-9]+ received' | grep -oE '[0-9]+')
	echo "# $1 -> $4: ${r:-0} of $2 pings answered"
	[ "${r:-0}" -eq "$2" ]
}
# esp_epochs PCAP OFFSET [FILTER...]: the distinct IV epochs of the ESP-in-UDP packets FILTER
# selects in PCAP (the 4 bytes at OFFSET from the IP header: 36 for IPv4, 56 for IPv6); capture
# with no_gso, or a GSO batch counts as one packet
esp_epochs() {
	local pcap=$1 off=$2; shift 2
	tcpdump -r "$pcap" -n -x "$@" 2>/dev/null | awk -v o="$off" '
		/^[^ \t]/ { if (h != "") print substr(h, 2 * o + 1, 8); h = ""; next }
		/^[ \t]+0x/ { for (i = 2; i <= NF; i++) h = h $i }
		END { if (h != "") print substr(h, 2 * o + 1, 8) }' | sort -u | wc -l
}
# sa_windows GW [LINE]: the most key windows one SA of GW used, from the datapath's counters
# that charon logs when it deletes the SA (0 if no SA rotated); only log lines after LINE
sa_windows() {
	tail -n +"$(( ${2:-0} + 1 ))" "$LAB_DIR/$1/charon.log" |
		grep -oE 'kernel-qkd: SA [0-9a-f]+ used [0-9]+ key windows' |
		awk '{ if ($5 > m) m = $5 } END { print m + 0 }'
}
# sa_auth_failures GW [LINE]: packets that failed authentication on GW's deleted SAs, summed
# (only log lines after LINE)
sa_auth_failures() {
	tail -n +"$(( ${2:-0} + 1 ))" "$LAB_DIR/$1/charon.log" |
		grep -oE 'kernel-qkd: SA [0-9a-f]+ deleted after [0-9]+ packets \([0-9]+ replayed, [0-9]+ failed' | awk '{ s += $10 } END { print s + 0 }'
}
# windows_at_least GW N [LINE]: an SA of GW used at least N key windows (see sa_windows)
windows_at_least() { [ "$(sa_windows "$1" "${3:-0}")" -ge "$2" ]; }
# nat_gwA_to ADDR: nftables in gwA's namespace source-NATs gwA's IKE and ESP (from 198.51.100.1,
# ports 500 and 4500) to ADDR on the WAN; existing mappings are dropped (a NAT mapping change)
nat_gwA_to() {
	ip netns exec "$LAB-gwA" nft -f - <<EOF
flush ruleset
table ip nat {
	chain postrouting {
		type nat hook postrouting priority srcnat;
		oifname "wan" ip saddr 198.51.100.1 udp sport { 500, 4500 } snat to $1
	}
}
EOF
	ip netns exec "$LAB-gwA" conntrack -D -p udp >/dev/null 2>&1 || true
}
# check_epochs PCAP ADDR...: ESP from and to each address advanced its IV epoch once per 100
# packets (rpk 100): between 5 and packets/100 + 3 distinct epochs in each direction
check_epochs() {
	local pcap=$1 addr dir e n; shift
	for addr in "$@"; do
		for dir in "src $addr" "dst $addr"; do
			e=$(esp_epochs "$pcap" 36 "$dir")
			n=$(pcap_count "$pcap" "$dir")
			echo "# ESP $dir: $n packets in $e distinct IV epochs"
			check "the IV epoch advances for ESP $dir (5..$((n / 100 + 3)) epochs: one per 100 packets)" \
				test "$e" -ge 5 -a "$e" -le $((n / 100 + 3))
		done
	done
}
