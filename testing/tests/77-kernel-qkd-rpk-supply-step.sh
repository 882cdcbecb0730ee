#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 600
# The rpk control loop across a supply step (docs/key-economy.md): kernel-qkd in charon, real
# qkid and qkd-kmsd (20 km fibre), rotation with rpk in [64, 2000] and exhaust = reuse, a
# steady UDP load hostA -> hostB (testing/udp_send.py: no control connection that a starved
# tunnel would break). Then gwA's KME (the key master's) goes into an outage
# (every request answers 503: no key supply) and recovers. Judged from the datapath's
# rpk_trace and logs, with no timing gate: rpk rises when the supply stops and falls back when
# it returns; the exhaustion policy acts only once even rpk_max cannot stretch the buffer, and
# that episode is logged once (start and end, in operator words) and counted (qkictl); before
# the outage and after the recovery, in steady state, no packet goes beyond rpk; gwB follows
# gwA's windows throughout.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for b in src/qki/qkid src/qki/qkictl src/kmsd/qkd-kmsd; do
	[ -x "$top/$b" ] || skip "$b not built"
done
export LAB_DATAPATH=kernel-qkd LAB_QKD=yes LAB_FIBRE_KM=20
report=$top/testing/key_economy_report.py
now_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
stat() {   # stat GW in|out T0 T1 [SPI]: spi median_rpk beyond stall nokey windows packets min_level
	python3 "$report" --phase "$LAB_DIR/$1/rpk_trace.csv" "$2" "$3" "$4" ${5:-}
}

fatal "QKD lab comes up (20 km fibre: ~155 keys/s)" lab up
for gw in gwA gwB; do
	printf '\t\tkernel-qkd {\n\t\t\trpk_trace = %s\n\t\t}\n' "$LAB_DIR/$gw/rpk_trace.csv" \
		>> "$LAB_DIR/$gw/plugins.conf"
	fatal "$gw restarts with rotation (rpk 64..2000, reuse) and rpk_trace" \
		quiet lab rotation "$gw" 64 2000 reuse
done
fatal "gwA initiates the QKD tunnel" lab initiate gwA net 20
kms_pid=$(cat "$LAB_DIR/gwA/kmsd.pid")
# the keys the KME stored while the lab was idle would carry the first seconds beyond the
# QKD link's rate and end in the middle of the run: take them first
python3 "$top/testing/drain_backlog.py" "$LAB_DIR/gwA/qkid.sock" gwB 250 20

# one load across all three phases (11 s, 10 s, 24 s: qkid backs off from a failing KME for
# up to 10 s, kme_backoff_max); CLOCK_MONOTONIC ms at each edge
T0=$(now_ms)
ip netns exec "$LAB-hostA" timeout 80 python3 "$top/testing/udp_send.py" 192.0.2.130 9 12000 45 &
load=$!
sleep 11; T1=$(now_ms)
fatal "gwA's KME goes into an outage (503 to every request)" kill -USR1 "$kms_pid"
sleep 10; T2=$(now_ms)
fatal "gwA's KME recovers" kill -USR1 "$kms_pid"
wait "$load"; T3=$(now_ms)
sleep 3     # the episode's end is logged after 2 s without a shortage

mid() { echo $(( ($1 + $2) / 2 )); }
before=$(stat gwA out "$(mid "$T0" "$T1")" "$T1")
outage=$(stat gwA out "$(mid "$T1" "$T2")" "$T2")
after=$(stat gwA out "$((T3 - 8000))" "$T3")     # qkid retries its KME after <= 10 s
echo "# gwA out (spi median_rpk beyond stall nokey windows packets min_level):"
echo "#   before $before | outage $outage | after $after"
read -r spi r1 b1 s1 _ _ p1 _ <<<"$before"
read -r _ r2 _ _ _ _ p2 _ <<<"$outage"
read -r _ r3 b3 s3 _ _ p3 _ <<<"$after"
check "traffic before the outage and after the recovery (packets $p1 / $p3)" test "$p1" -gt 0 -a "$p3" -gt 0
check "rpk rises to rpk_max when the supply stops ($r1 -> $r2)" test "$r2" = 2000
check "rpk falls back when the supply returns ($r2 -> $r3)" test "$r3" -lt "$r2"
check "steady state before the outage: nothing beyond rpk or dropped ($b1, $s1)" test "$b1" = 0 -a "$s1" = 0
check "steady state after the recovery: nothing beyond rpk or dropped ($b3, $s3)" test "$b3" = 0 -a "$s3" = 0

grep -E "kernel-qkd: SA $spi out: key shortage" "$LAB_DIR/gwA/charon.log" | sed 's/^/# gwA: /'
# the outage is one episode: once rpk_max cannot stretch the buffer any longer, logged when it
# starts (naming rpk_max) and when it is over (with what it cost), never per packet or window
# (a sudden outage may empty the buffer before rpk has reached rpk_max: the start line then
# says the key was late instead; the outage's rpk_max is checked from the trace above)
starts=$(grep -cE "SA $spi out: key shortage: " "$LAB_DIR/gwA/charon.log")
n=$(grep -E "SA $spi out: key shortage: " \
	"$LAB_DIR/gwA/charon.log" | sed -n 's/.*(shortage \([0-9]*\)).*/\1/p' | head -1)
check "the outage is one shortage episode, logged once as it starts, in operator words ($starts)" \
	test "$starts" = 1
check "... and once when it is over, with what it cost" \
	test "$(grep -cE "SA $spi out: key shortage ${n:-x} over after [0-9.]+ s: [0-9]+ packets sent beyond rpk, [0-9]+ dropped" \
		"$LAB_DIR/gwA/charon.log")" = 1
sas=$(lab qkictl gwA sas 2>&1)
echo "$sas" | sed 's/^/# gwA qkictl sas: /'
check "qkictl counts the episode (SHORTAGES >= 1)" \
	bash -c "echo '$sas' | awk '\$1 == \"$spi\" && \$2 == \"out\" && \$14 >= 1 { ok = 1 } END { exit !ok }'"
fin_a=$(stat gwA out 0 999999999999 "$spi") fin_b=$(stat gwB in 0 999999999999 "$spi")
echo "# whole run: gwA out $fin_a; gwB in $fin_b"
read -r _ _ _ _ _ wa _ _ <<<"$fin_a"
read -r _ _ _ _ _ wb _ _ <<<"$fin_b"
check "both gateways went through the same windows ($wa at gwA, $wb at gwB)" \
	test "$wa" -gt 0 -a "$((wa - wb))" -le 1 -a "$((wb - wa))" -le 1
finish
