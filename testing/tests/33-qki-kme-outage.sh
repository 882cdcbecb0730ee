#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# KME trouble: site A's KME answers 503 to everything (outage), hangs (SIGSTOP: slow KME), and
# site B's KME goes away and comes back. qkid backs off, reports it in qkictl, keeps serving SA
# epoch keys and IKE keys from its buffers, answers promptly with a KME error once the buffers
# are empty, and recovers by itself when the KME is back.
# Nothing here gates on time: where an answer must come "at once", it must come before an event
# that is 10x later (the KME timeout, a generous client timeout); measured times are printed.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need

# a long KME timeout: "from the pool while the KME hangs" must come before it fires
export QKI_KME_TIMEOUT=10000
fatal "KMEs and qkids come up" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"
SPI=c0b10001
kme_state() { qctl "$1" status | sed -n 's/^  KME: \([a-z]*\).*/\1/p'; }
errors() { qctl "$1" status | sed -n 's/^  KME: .*errors \([0-9]*\)/\1/p'; }

# buffers fill while everything is fine
qa follow siteB $SPI out 0 5 > "$out/pre.txt"
check "before the outage: SA keys flow" test "$(grep -vc '^#' "$out/pre.txt")" -eq 5
sleep 1
check "qkictl: KME ok" test "$(kme_state a)" = ok

# 1. outage: every request to KME A answers 503
kill -USR1 "${KPID[a]}"
sleep 0.2
qa new siteB 5 > "$out/ike-outage.txt"          # drains the pool: qkid must ask the KME
check "IKE keys still come from the pool during the outage" \
	test "$(grep -c '^[0-9a-f-]\{36\} ' "$out/ike-outage.txt")" -eq 5
check "qkid notices and backs off (qkictl: KME backoff)" wait_for 5 bash -c "[ \"\$('$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | sed -n 's/^  KME: \([a-z]*\).*/\1/p')\" = backoff ]"
check "qkictl shows the KME error" bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | grep -q 'last error: KME enc_keys'"
qa follow siteB $SPI out 5 40 > "$out/sa-outage-a.txt"
qb follow siteA $SPI in 5 40 > "$out/sa-outage-b.txt"
check "SA keys are served from the buffer during the outage (40 epochs)" \
	test "$(grep -vc '^#' "$out/sa-outage-a.txt")" -eq 40
check "... and B agrees on them" diff "$out/sa-outage-a.txt" "$out/sa-outage-b.txt"
# a hang would end in the probe's own timeout (ERR TIMEOUT), 20 s: 10x the KME timeout
start=$(date +%s%N)
QKI_PROBE_TIMEOUT=20000 qa new siteB 500 > "$out/ike-exhaust.txt"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# the pool lasted $(grep -c '^[0-9a-f-]\{36\} ' "$out/ike-exhaust.txt") more IKE keys, then: $(tail -n 1 "$out/ike-exhaust.txt") ($ms ms)"
check "once the pool is empty, KEY_NEW fails with qkid's KME error (not a hang: no client timeout)" \
	bash -c "tail -n 1 '$out/ike-exhaust.txt' | grep -q 'ERR KME'"
check "... and the pool was not endless (fewer than the 500 keys asked)" \
	test "$(grep -c '^[0-9a-f-]\{36\} ' "$out/ike-exhaust.txt")" -lt 500
check "no key_ID handed out twice meanwhile" \
	test -z "$(cut -d' ' -f1 "$out/ike-exhaust.txt" "$out/ike-outage.txt" | grep -v '^-' | sort | uniq -d)"
check "qkid still answers (version)" qctl a version
kill -USR1 "${KPID[a]}"                          # outage over
check "qkid recovers by itself (KME ok within 5 s)" wait_for 5 bash -c "[ \"\$('$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | sed -n 's/^  KME: \([a-z]*\).*/\1/p')\" = ok ]"
qa new siteB 3 > "$out/ike-after.txt"
qb get siteA $(awk '{print $1}' "$out/ike-after.txt") > "$out/ike-after-b.txt"
check "after the outage: IKE keys flow and agree" diff "$out/ike-after.txt" "$out/ike-after-b.txt"
grep -q 'KME answers again' "$QDIR/qkid-a.log"
check "the recovery is logged" grep -q 'KME answers again' "$QDIR/qkid-a.log"

# 2. hung KME (slow): requests time out in the worker thread, the event loop stays responsive
sleep 1
kill -STOP "${KPID[a]}"
kme_timed_out() { qctl a status | matches 'last error: .*(timeout|timed out)'; }
check "no KME timeout reported before the KME hangs" not kme_timed_out
qa new siteB 5 > /dev/null                       # make qkid call the hung KME
sleep 0.3
start=$(date +%s%N)
qa new siteB 1 > "$out/ike-hung.txt"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "# KEY_NEW from the pool while the KME hangs: $ms ms"
check "an IKE key from the pool while the KME hangs" grep -q '^[0-9a-f-]\{36\} ' "$out/ike-hung.txt"
check "... before the KME request timed out (qkid did not wait for the KME)" not kme_timed_out
check "qkictl answers while the KME hangs" qctl a peers
check "the hung KME shows as a timeout (KME timeout 10 s)" wait_for 30 kme_timed_out
kill -CONT "${KPID[a]}"
check "recovers after the KME resumes" wait_for 6 bash -c "[ \"\$('$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' status | sed -n 's/^  KME: \([a-z]*\).*/\1/p')\" = ok ]"

# 3. site B's KME goes away: B cannot fetch announced keys; nothing is used unacknowledged
sleep 1
kms_stop b
reassigned() { grep -c 'gets a new key' "$QDIR/qkid-a.log"; }
before=$(reassigned)
qa new siteB 1 > "$out/ike-bdown.txt"
QKI_PROBE_TIMEOUT=3000 qb get siteA "$(cut -d' ' -f1 "$out/ike-bdown.txt")" > "$out/ike-bdown-b.txt"
check "without its KME, B cannot resolve a key_ID and says so" grep -q ' ERR ' "$out/ike-bdown-b.txt"
check "B reports its KME in back-off" wait_for 5 bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-b.sock' status | grep -q 'KME: backoff'"
# A uses SA epochs now, so it refills the SA buffer and announces new key_IDs that B cannot take
# (its KME is away, and the restarted KME will not know them either): A must give those epochs
# fresh keys rather than hand out keys B never acknowledged
qa follow siteB $SPI out 45 5 > "$out/sa-bdown-a.txt"
check "A reassigns SA epochs whose key_ID B could not take" \
	wait_for 30 bash -c "[ \$(grep -c 'gets a new key' '$QDIR/qkid-a.log') -gt $before ]"
check "... because B said so" grep -qE "slave could not take key_ID .* \((unknown to its KME|fetch failed)\)" "$QDIR/qkid-a.log"
kms_start b
check "B recovers when its KME is back" wait_for 10 bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-b.sock' status | grep -q 'KME: ok'"
qa follow siteB $SPI out 50 10 > "$out/sa-after-a.txt"
qb follow siteA $SPI in 50 10 > "$out/sa-after-b.txt"
check "after B's KME is back, SA keys agree again" diff "$out/sa-after-a.txt" "$out/sa-after-b.txt"
check "both qkids still running" kill -0 "${QPID[a]}" "${QPID[b]}"
finish
