#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# testing/key_economy_run.sh OUTDIR [LOAD_MBPS...]: the measurement behind docs/key-economy.md.
# kernel-qkd in charon with real qkid and qkd-kmsd (LAB_FIBRE_KM, default 20 km), rotation with
# rpk in [RPK_MIN, RPK_MAX] (default 64..65536, exhaust = reuse), rpk_trace on both gateways;
# iperf3 UDP hostA -> hostB at each load (default 200 400 600 Mbit/s) for SECS (default 15) s,
# then qkictl sas and status. Leaves in OUTDIR: rpk_trace-gwA.csv, rpk_trace-gwB.csv, runs.txt
# (per load: start/end CLOCK_MONOTONIC ms, iperf3's summary), qkictl snapshots, the charon logs.
# testing/key_economy_report.py OUTDIR summarises it. Root; ~1 min per load.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: key_economy_run.sh OUTDIR [LOAD_MBPS...]}; shift
loads=${*:-200 400 600}
export LAB=${LAB:-keyecon} LAB_DATAPATH=kernel-qkd LAB_QKD=yes LAB_FIBRE_KM=${LAB_FIBRE_KM:-20}
secs=${SECS:-15}
lab="$top/scripts/lab"
mkdir -p "$out"; out=$(cd "$out" && pwd)
trap '"$lab" down >/dev/null 2>&1' EXIT
"$lab" down >/dev/null 2>&1
"$lab" up >/dev/null || { echo "lab up failed" >&2; exit 1; }
dir=$("$lab" dir)
for gw in gwA gwB; do
	rm -f "$out/rpk_trace-$gw.csv"
	printf '\t\tkernel-qkd {\n\t\t\trpk_trace = %s\n\t\t}\n' "$out/rpk_trace-$gw.csv" >> "$dir/$gw/plugins.conf"
	"$lab" rotation "$gw" "${RPK_MIN:-64}" "${RPK_MAX:-65536}" reuse >/dev/null
done
"$lab" initiate gwA net 20 || { echo "initiate failed" >&2; exit 1; }
ip netns exec "$LAB-hostB" iperf3 -s -D >/dev/null 2>&1
sleep 1
: > "$out/runs.txt"
# take the keys the KME stored while the SA was idle (they would let a run start on more keys
# than the QKD link makes, and end in the middle of it)
drain() { python3 "$top/testing/drain_backlog.py" "$dir/gwA/qkid.sock" gwB "${DRAIN_RATE:-250}" 20; }
for load in $loads; do
	drain
	t0=$(python3 -c 'import time; print(int(time.monotonic() * 1000))')
	res=$(ip netns exec "$LAB-hostA" timeout $((secs + 20)) iperf3 -c 192.0.2.130 -u -b "${load}M" \
		-l 1200 -t "$secs" -f m 2>&1 | awk '/receiver/ { print $7, $(NF-2), $(NF-1) }')
	t1=$(python3 -c 'import time; print(int(time.monotonic() * 1000))')
	echo "$load $t0 $t1 $res" >> "$out/runs.txt"
	"$lab" qkictl gwA sas > "$out/sas-gwA-$load.txt" 2>&1
	"$lab" qkictl gwA status > "$out/status-gwA-$load.txt" 2>&1
	echo "load $load Mbit/s: $res (Mbit/s lost/total loss%)"
done
"$lab" swanctl gwA --terminate --ike lab --timeout 10 >/dev/null 2>&1
sleep 1
for gw in gwA gwB; do
	cp "$dir/$gw/charon.log" "$out/charon-$gw.log"
	cp "$dir/$gw/qkid.log" "$out/qkid-$gw.log" 2>/dev/null
done
