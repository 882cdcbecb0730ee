#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fair share under scarcity: the KME link makes 60 keys/s; four SAs want 10, 10, 10 and 100
# keys/s (one bursts 10x). Every light SA must get what it asks (no starvation), the burst gets
# the rest, and the split must match the max-min fair share. That share is computed from the
# supply the KME's own counters show during the run and the demands, never from what the SAs got
# (that would call any split fair). Run with
# the datapath on the master side (qkid's own refill) and on the slave side (refill driven by
# the slave's NEED messages). Jain's indexes are reported.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need

# 60 keys/s of 256 bits; small buffers so the run is about supply, not about stock
QKI_SA_BUFFER_TOTAL=64 QKI_SA_BUFFER_MAX=16 QKI_POOL_TARGET=8 \
	fatal "KMEs at 60 keys/s and two qkids come up" qki_lab_up --key-rate 15360
out=$QDIR/out; mkdir -p "$out"

# sim FILE PROBE-ARGS...: run qki-probe's sim (22 s, 10 s warm-up) and measure the supply with
# site A's KME's own counters (it generates). Once the SAs draw, both KMEs restart: their stores
# start empty, and with the SAs wanting more than the link makes no stock builds up again, so in
# the measured part the link's rate is all there is. That rate is steady whoever draws (the
# store holds 100000 keys): it is measured from the restart to the end, a long window that keeps
# the error of asking the KME (half the time an answer takes, at each end) small. Sets SUPPLY
# (keys/s).
sim() {
	local f=$1 s0 s1 pid; shift
	"$@" > "$f" &
	pid=$!
	# qkictl sas while the sim runs (bounded: the sim ends): the last view with the sim's SAs
	(while kill -0 "$pid" 2>/dev/null; do
		qctl a sas > "$f.sas.now" 2>&1
		grep -q "^${4:0:7}" "$f.sas.now" && cp "$f.sas.now" "$f.sas"
		sleep 1
	done) &
	local poll=$!
	sleep 1
	check "KMEs restart with empty stores, the SAs drawing" kme_restart
	s0=$(kme_sample a)
	wait "$pid"
	s1=$(kme_sample a)
	wait "$poll"
	SUPPLY=$(kme_supply "$s0" "$s1")
	echo "# KME A generated keys (time keys): $s0 -> $s1: $SUPPLY keys/s"
}

evaluate() {
	local f=$1 side=$2 i=0 line sat pairs=()
	cat "$f"
	while read -r line; do
		sat=$(awk '{print $9}' <<<"$line")
		pairs+=("$(awk '{print $4 ":" $6}' <<<"$line")")
		if [ $i -lt 3 ]; then
			check "$side: light SA $i gets >= 90% of its 10 keys/s (satisfaction $sat)" \
				awk -v s="$sat" 'BEGIN { exit !(s >= 0.9) }'
		fi
		i=$((i + 1))
	done < <(grep '^sa ' "$f")
	check "$side: 4 SAs reported" test "$i" -eq 4
	check "$side: the KME measured a supply (${SUPPLY} keys/s)" awk -v s="$SUPPLY" 'BEGIN { exit !(s > 0) }'
	check "$side: supply was scarce (< 100 of 130 keys/s demanded)" \
		awk -v s="$SUPPLY" 'BEGIN { exit !(s < 100) }'
	"$QKI_BIN/tests/qki-probe" fair "$SUPPLY" "${pairs[@]}" > "$f.fair"
	cat "$f.fair"
	check "$side: every SA got >= 80% of its max-min share of the KME's supply" \
		awk -v m="$(awk '/^min_got_of_share/ {print $2}' "$f.fair")" 'BEGIN { exit !(m >= 0.8) }'
	check "$side: Jain's index of got / max-min share >= 0.95" \
		awk -v j="$(awk '/^jain_vs_maxmin/ {print $2}' "$f.fair")" 'BEGIN { exit !(j >= 0.95) }'
	echo "# $side: Jain's index raw $(awk '/^jain_raw/ {print $2}' "$f"), of satisfaction" \
		"$(awk '/^jain_satisfaction/ {print $2}' "$f"), vs max-min $(awk '/^jain_vs_maxmin/ {print $2}' "$f.fair")"
}

# master side: 22 s, the first 10 s are warm-up
sim "$out/sim-a.txt" qa sim siteB f0000001 out 22 10 10 10 10 100
check "qkictl sas shows the 4 SAs during the run" test "$(grep -c '^f000000[1-4] out siteB' "$out/sim-a.txt.sas")" -eq 4
check "qkictl sas counts starvation on the bursting SA" \
	awk '$1 == "f0000004" { exit !($NF > 0) }' "$out/sim-a.txt.sas"
evaluate "$out/sim-a.txt" "master side"

# slave side
sim "$out/sim-b.txt" qb sim siteA f1000001 in 22 10 10 10 10 100
evaluate "$out/sim-b.txt" "slave side"
finish
