#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fair share under scarcity: the KME link makes 60 keys/s; four SAs want 10, 10, 10 and 100
# keys/s (one bursts 10x). Every light SA must get what it asks (no starvation), the burst gets
# the rest, and the split must match the max-min fair share (Jain's index against it). Run with
# the datapath on the master side (qkid's own refill) and on the slave side (refill driven by
# the slave's NEED messages). Jain's indexes are reported.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need

# 60 keys/s of 256 bits; small buffers so the run is about supply, not about stock
QKI_SA_BUFFER_TOTAL=64 QKI_SA_BUFFER_MAX=16 QKI_POOL_TARGET=8 \
	fatal "KMEs at 60 keys/s and two qkids come up" qki_lab_up --key-rate 15360
out=$QDIR/out; mkdir -p "$out"

evaluate() {
	local f=$1 side=$2 i=0 line sat
	cat "$f"
	while read -r line; do
		sat=$(awk '{print $9}' <<<"$line")
		if [ $i -lt 3 ]; then
			check "$side: light SA $i gets >= 90% of its 10 keys/s (satisfaction $sat)" \
				awk -v s="$sat" 'BEGIN { exit !(s >= 0.9) }'
		else
			check "$side: the bursting SA is not starved either (>= 10 keys/s)" \
				awk -v g="$(awk '{print $6}' <<<"$line")" 'BEGIN { exit !(g >= 10) }'
		fi
		i=$((i + 1))
	done < <(grep '^sa ' "$f")
	check "$side: 4 SAs reported" test "$i" -eq 4
	check "$side: supply was scarce (< 100 of 130 keys/s demanded)" \
		awk -v s="$(awk '/^supply/ {print $2}' "$f")" 'BEGIN { exit !(s < 100) }'
	check "$side: Jain's index against the max-min fair share >= 0.95" \
		awk -v j="$(awk '/^jain_vs_maxmin/ {print $2}' "$f")" 'BEGIN { exit !(j >= 0.95) }'
	echo "# $side: Jain's index raw $(awk '/^jain_raw/ {print $2}' "$f"), of satisfaction" \
		"$(awk '/^jain_satisfaction/ {print $2}' "$f"), vs max-min $(awk '/^jain_vs_maxmin/ {print $2}' "$f")"
}

# master side: 10 s, the first 4 s are warm-up
qa sim siteB f0000001 out 10 4 10 10 10 100 > "$out/sim-a.txt" &
sim=$!
sleep 6
qctl a sas > "$out/sas-a.txt"
wait $sim
check "qkictl sas shows the 4 SAs during the run" test "$(grep -c '^f000000[1-4] out siteB' "$out/sas-a.txt")" -eq 4
check "qkictl sas counts starvation on the bursting SA" \
	awk '$1 == "f0000004" { exit !($NF > 0) }' "$out/sas-a.txt"
evaluate "$out/sim-a.txt" "master side"

# slave side
qb sim siteA f1000001 in 10 4 10 10 10 100 > "$out/sim-b.txt"
evaluate "$out/sim-b.txt" "slave side"
finish
