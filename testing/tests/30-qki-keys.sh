#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qkid pair with a qkd-kmsd pair (site A, site B in namespaces): both gateways get the same key
# for the same use - IKE keys whichever side initiates, SA epoch keys in both directions - and
# no key is ever given out twice (a replayed key_ID, or an SA key_ID used as an IKE key_ID, is
# refused). qkictl shows it.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need

fatal "two KMEs and two qkids come up, peer link established" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"

# IKE, site A (ETSI master) initiates: B resolves the key_IDs that arrive in IKE messages
qa new siteB 5 > "$out/a-new.txt"
check "A hands out 5 fresh IKE keys" test "$(grep -c '^[0-9a-f-]\{36\} ' "$out/a-new.txt")" -eq 5
qb get siteA $(awk '{print $1}' "$out/a-new.txt") > "$out/b-get.txt"
check "B resolves the same 5 keys (same fingerprints)" diff "$out/a-new.txt" "$out/b-get.txt"
qb get siteA "$(head -n 1 "$out/a-new.txt" | cut -d' ' -f1)" > "$out/b-again.txt"
check "B refuses a key_ID it already gave out (replayed IKE message)" grep -q 'ERR KEY_USED' "$out/b-again.txt"
# one canonical form, lower case: an upper-case copy of a used key_ID is that key_ID (KEY_USED),
# not an unknown one to fetch on demand
used=$(awk '$1 ~ /[a-f]/ { print $1; exit }' "$out/a-new.txt")
qb get siteA "${used^^}" > "$out/b-upper.txt"
check "B answers KEY_USED to an upper-case copy of a used key_ID, no key" \
	bash -c "grep -q 'ERR KEY_USED' '$out/b-upper.txt' && test -n '$used'"
qa get siteB "$(head -n 1 "$out/a-new.txt" | cut -d' ' -f1)" > "$out/a-own.txt"
check "A does not answer KEY_GET for its own initiator key" grep -q ' ERR ' "$out/a-own.txt"

# IKE, site B (slave) initiates: its stash comes from the master; A resolves
qb new siteA 6 > "$out/b-new.txt"
check "B hands out 6 fresh IKE keys (stash + refills from the master)" \
	test "$(grep -c '^[0-9a-f-]\{36\} ' "$out/b-new.txt")" -eq 6
qa get siteB $(awk '{print $1}' "$out/b-new.txt") > "$out/a-get.txt"
check "A resolves the same 6 keys" diff "$out/b-new.txt" "$out/a-get.txt"

# the responder may ask before the announcement arrived: B fetches on demand
qa new siteB 1 > "$out/a-race.txt" && qb get siteA "$(cut -d' ' -f1 "$out/a-race.txt")" > "$out/b-race.txt"
check "immediate KEY_GET on B right after A's KEY_NEW gives the same key" diff "$out/a-race.txt" "$out/b-race.txt"

qb get siteA 01234567-89ab-4cde-8f01-23456789abcd > "$out/b-unknown.txt"
check "an unknown key_ID is refused (UNKNOWN_KEY from the KME)" grep -q 'ERR UNKNOWN_KEY' "$out/b-unknown.txt"
qb get siteA not-a-uuid > "$out/b-bad.txt"
check "a malformed key_ID is refused (INVALID)" grep -q 'ERR INVALID' "$out/b-bad.txt"
qa new nosuchpeer 1 > "$out/a-nopeer.txt"
check "an unknown peer name is refused (NO_PEER)" grep -q 'ERR NO_PEER' "$out/a-nopeer.txt"

# SA epochs: A -> B (A sends), registered on A first
qa epochs siteB c0de0001 out 0 20 > "$out/sa1-a.txt"
qb epochs siteA c0de0001 in 0 20 > "$out/sa1-b.txt"
check "SA c0de0001 A->B: 20 epochs, A got them" test "$(wc -l < "$out/sa1-a.txt")" -eq 20
check "SA c0de0001: B got the same 20 keys for the same epochs" diff "$out/sa1-a.txt" "$out/sa1-b.txt"
# SA epochs: B -> A, registered on B (slave) first; A's receiving side registers meanwhile
# (a receiver that registers only after the sender used epochs gets STALE for them instead)
qb hold siteA c0de0002 out 2 > /dev/null & holder=$!
sleep 0.3
qa hold siteB c0de0002 in 2 > /dev/null & holder2=$!
wait $holder $holder2
qb epochs siteA c0de0002 out 0 20 > "$out/sa2-b.txt"
qa epochs siteB c0de0002 in 0 20 > "$out/sa2-a.txt"
check "SA c0de0002 B->A: same 20 keys on both sides" diff "$out/sa2-a.txt" "$out/sa2-b.txt"
# the same SPI in the other direction is another SA with other keys
qa epochs siteB c0de0001 in 0 5 > "$out/sa3-a.txt"
qb epochs siteA c0de0001 out 0 5 > "$out/sa3-b.txt"
check "SA c0de0001 B->A (same SPI, other direction): same keys on both sides" diff "$out/sa3-a.txt" "$out/sa3-b.txt"
check "... and different keys than c0de0001 A->B" \
	test -z "$(comm -12 <(awk '{print $3}' "$out/sa3-a.txt" | sort) <(awk '{print $3}' "$out/sa1-a.txt" | sort))"

# no key twice, across every use
cat "$out"/a-new.txt "$out"/b-new.txt "$out"/a-race.txt "$out"/sa1-a.txt "$out"/sa2-a.txt "$out"/sa3-a.txt |
	awk 'NF == 2 {print $1} NF == 3 {print $2}' | sort > "$out/all-ids.txt"
check "every key_ID served is unique ($(wc -l < "$out/all-ids.txt") key_IDs)" test -z "$(uniq -d "$out/all-ids.txt")"
cat "$out"/a-new.txt "$out"/b-new.txt "$out"/a-race.txt "$out"/sa1-a.txt "$out"/sa2-a.txt "$out"/sa3-a.txt |
	awk '{print $NF}' | sort > "$out/all-fprs.txt"
check "every key served is unique" test -z "$(uniq -d "$out/all-fprs.txt")"
sakey=$(awk 'NR == 3 {print $2}' "$out/sa1-b.txt")
qb get siteA "$sakey" > "$out/b-sakey.txt"
check "B refuses an SA epoch's key_ID as an IKE key (KEY_USED)" grep -q 'ERR KEY_USED' "$out/b-sakey.txt"

# qkictl
qctl a status > "$out/status-a.txt"; qctl b status > "$out/status-b.txt"
check "qkictl status on A: master, link up, KME ok" \
	bash -c "grep -q 'role: master' '$out/status-a.txt' && grep -q 'link: up' '$out/status-a.txt' && grep -q 'KME: ok' '$out/status-a.txt'"
check "qkictl status on B: slave" grep -q 'role: slave' "$out/status-b.txt"
qa hold siteB c0de0009 out 3 > /dev/null & holder=$!
check "qkictl sas lists a registered SA" wait_for 5 bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' sas | grep -q '^c0de0009 out siteB'"
check "qkictl rpk answers for it" bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' rpk c0de0009 out | grep -q 'rpk [0-9]'"
wait $holder
# more SAs than one STATUS reply holds (some 250): qkictl pages through them
qa hold siteB c0de1000 out 4 600 > "$out/hold-600.txt" & holder=$!
check "600 SAs registered" wait_for 10 grep -q registered "$out/hold-600.txt"
"$QKI_BIN/qkictl" -s "$QDIR/qkid-a.sock" sas > "$out/sas-600.txt" 2>&1
check "qkictl sas lists all 600 SAs, each once (STATUS in pages)" \
	test "$(grep -E '^c0de1[0-9a-f]{3} out siteB' "$out/sas-600.txt" | sort -u | wc -l)" = 600 -a \
	"$(grep -cE '^c0de1[0-9a-f]{3} out siteB' "$out/sas-600.txt")" = 600
wait $holder
check "qkictl peers lists siteB" bash -c "'$QKI_BIN/qkictl' -s '$QDIR/qkid-a.sock' peers | grep -q '^siteB *master *up'"
check "qkictl --help works for every subcommand" bash -c "for s in status peers sas rpk flush resync version; do '$QKI_BIN/qkictl' \$s --help | grep -q Usage || exit 1; done"
check "socket mode is 0660" test "$(stat -c %a "$QDIR/qkid-a.sock")" = 660
check "no key material in the logs (a served key's hex never appears)" \
	not grep -qiE '[0-9a-f]{64}' "$QDIR/qkid-a.log" "$QDIR/qkid-b.log"
check "key_IDs are in the logs" grep -q "$(head -n 1 "$out/a-new.txt" | cut -d' ' -f1)" "$QDIR/qkid-a.log"
finish
