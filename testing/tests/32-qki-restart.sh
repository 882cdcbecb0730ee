#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Restart and desync recovery without key reuse: the slave qkid restarts (clean stop), the
# master qkid crashes (SIGKILL) and restarts, an operator resyncs a peer and flushes an SA. Each
# time the survivor notices (new incarnation id in the authenticated handshake), drops the SA
# keys the other side lost, both continue at a fresh epoch (old epochs answer STALE with the
# next one), the keys agree again, IKE works again, and no key_ID or key is ever served twice.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need

fatal "KMEs and qkids come up" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"
SPI=c0a10001

# agree ROUND FIRST: both sides take 10 epochs from FIRST (following STALE) and must match.
# Both at once, as two gateways' datapaths run: one after the other, the sender could finish
# its 10 windows before the receiver asked, and the master then told the slave that the
# sender's spent epochs are dead ("# stale 0 next 7" on B, 1 run in 12 on 32f3dcf).
agree() {
	local round=$1 first=$2 pb
	qb follow siteA $SPI in "$first" 10 > "$out/$round-b.txt" & pb=$!
	qa follow siteB $SPI out "$first" 10 > "$out/$round-a.txt"
	wait "$pb"
	check "$round: both sides get 10 keys" \
		test "$(grep -vc '^#' "$out/$round-a.txt")" -eq 10 -a "$(grep -vc '^#' "$out/$round-b.txt")" -eq 10
	check "$round: same keys for the same epochs on both sides" \
		diff <(grep -v '^#' "$out/$round-a.txt") <(grep -v '^#' "$out/$round-b.txt")
	NEXT=$(( $(grep -v '^#' "$out/$round-a.txt" | tail -n 1 | cut -d' ' -f1) + 1 ))
}
stale_seen() { grep -q "^# stale $2 next" "$out/$1-a.txt" && grep -q "^# stale $2 next" "$out/$1-b.txt"; }
ike_both_ways() {
	local round=$1
	qa new siteB 2 > "$out/$round-ike-a.txt"
	qb get siteA $(awk '{print $1}' "$out/$round-ike-a.txt") > "$out/$round-ike-b.txt"
	check "$round: IKE key A->B agrees" diff "$out/$round-ike-a.txt" "$out/$round-ike-b.txt"
	qb new siteA 2 > "$out/$round-ike-b2.txt"
	qa get siteB $(awk '{print $1}' "$out/$round-ike-b2.txt") > "$out/$round-ike-a2.txt"
	check "$round: IKE key B->A agrees" diff "$out/$round-ike-b2.txt" "$out/$round-ike-a2.txt"
}

agree r0 0
ike_both_ways r0
# an IKE key B has not claimed yet when it restarts
qa new siteB 1 > "$out/pending.txt"
pending=$(cut -d' ' -f1 "$out/pending.txt")

# 1. slave restart (clean)
qki_stop b
check "A notices the peer link going down" wait_for 8 bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | grep -q 'link: down'"
fatal "B restarts" qki_start b
fatal "link up again" wait_link 10
check "A logs the slave's restart" grep -q 'slave restarted' "$QDIR/qkid-a.log"
old=$NEXT
agree r1 "$old"
check "r1: old epochs are dead on both sides (STALE at $old)" stale_seen r1 "$old"
qb get siteA "$pending" > "$out/pending-b.txt"
check "r1: the IKE key announced before B's restart is not served with another key" \
	bash -c "grep -q ' ERR ' '$out/pending-b.txt' || diff -q '$out/pending.txt' '$out/pending-b.txt'"
ike_both_ways r1
check "qkictl on A counts one resync" bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | grep -q 'resyncs: 1'"

# 2. master crash
kill -9 "${QPID[a]}"; wait "${QPID[a]}" 2>/dev/null; unset 'QPID[a]'
rm -f "$QDIR/qkid-a.sock"
fatal "A restarts after SIGKILL" qki_start a
fatal "link up again" wait_link 10
check "B logs the master's restart" grep -q 'master restarted' "$QDIR/qkid-b.log"
old=$NEXT
agree r2 "$old"
check "r2: old epochs are dead on both sides (STALE at $old)" stale_seen r2 "$old"
ike_both_ways r2

# 3. operator resync on the master
fatal "qkictl resync siteB" qctl a resync siteB
fatal "link up again" wait_link 10
old=$NEXT
agree r3 "$old"
check "r3: old epochs are dead after resync (STALE at $old)" stale_seen r3 "$old"
ike_both_ways r3

# 4. operator flush of one SA on the slave
qb hold siteA $SPI in 2 > /dev/null & holder=$!
sleep 0.3
fatal "qkictl flush on B" qctl b flush $SPI in
wait $holder
sleep 0.3
old=$NEXT
agree r4 "$old"
check "r4: flushed epochs are dead on both sides (STALE at $old)" stale_seen r4 "$old"

# nothing served twice, over all rounds and restarts: SA keys (A's view), IKE keys (initiators)
{
	cat "$out"/r[0-9]-a.txt | grep -v '^#' | awk '{print $2, $3}'
	cat "$out"/r*-ike-a.txt "$out"/r*-ike-b2.txt "$out"/pending.txt | grep -v ' ERR '
} > "$out/served.txt"
check "no key_ID served twice ($(wc -l < "$out/served.txt") served)" \
	test -z "$(cut -d' ' -f1 "$out/served.txt" | sort | uniq -d)"
check "no key served twice" test -z "$(cut -d' ' -f2 "$out/served.txt" | sort | uniq -d)"
check "both qkids still running" kill -0 "${QPID[a]}" "${QPID[b]}"
finish
