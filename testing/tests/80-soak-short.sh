#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 600
# The short form of the fault-and-load soak (scripts/soak): 200 CHILD_SAs (40 rotating with qkid
# window keys), 8 flows of pings carrying a plaintext marker, 5 minutes with random faults (the lab alone can take 2 minutes to come up on a loaded machine)
# (qkid kill -9, KME 503 / hang / QKD link drop, charon restarts, WAN loss and reordering). The
# soak asserts no plaintext on the WAN, no key_ID delivered twice, no window key beyond its
# policy, recovery within its bound, no crash and bounded memory; this test checks it ran, that
# every assertion held and what its last line says. The long form's figures are in BENCHMARKS.md.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for b in src/qki/qkid src/kmsd/qkd-kmsd src/libcharon/plugins/kernel_qkd/.libs/libstrongswan-kernel-qkd.so; do
	[ -e "$top/$b" ] || skip "$b not built"
done
out=$(mktemp)
# charon restarts by either signal, on either gateway: a graceful restart (SIGTERM) recovers
# since 'lab restart' holds IKE_SA_INIT requests until the connections are loaded and lets the
# answers to the gateway's own initiations pass (test 78; testing/README.md, "The soak")
LAB=$LAB "$top/scripts/soak" --sas 200 --rotating 40 --flows 8 5 > "$out" 2>&1
rc=$?
sed 's/^/# /' "$out"
last=$(tail -n 1 "$out")
check "the soak's assertions all held (exit 0, got $rc)" test "$rc" -eq 0
check "its last line has the agreed form" \
	grep -qE '^soak faults=[0-9]+ plaintext=[0-9]+ key_reuse=[0-9]+ crashes=[0-9]+ max_recovery_s=[0-9.]+$' <<<"$last"
check "at least one fault was injected" grep -qE '^soak faults=[1-9]' <<<"$last"
check "no plaintext, no key reuse, no crash" grep -qE ' plaintext=0 key_reuse=0 crashes=0 ' <<<"$last"
check "every assertion row says ok" test "$(grep -cE '\| FAIL$' "$out")" -eq 0 -a "$(grep -cE '\| ok$' "$out")" -ge 9
rm -f "$out"
finish
