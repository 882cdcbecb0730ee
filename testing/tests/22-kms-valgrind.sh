#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Both qkd-kmsd processes under valgrind: key exchange in both directions, POST and GET, error
# paths, the 35 malformed requests, raw protocol garbage, a simulated outage and a link restart,
# then a clean SIGTERM: no leak and no memory error in either KME.
# sanitize-skip: valgrind cannot run ASan-built programs (both replace malloc); under --sanitize kmsd runs with ASan and LeakSanitizer in the other KME and QKD tests
. "$(dirname "$0")/../lib.sh"
. "$top/testing/kms.sh"
command -v valgrind >/dev/null || skip "valgrind not installed"
VG="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99"
KMS_WRAP_A="$VG --log-file=$KMS_DIR/vg-A.%p.log" KMS_WRAP_B="$VG --log-file=$KMS_DIR/vg-B.%p.log"
KMS_START_TIMEOUT=60
W=$KMS_DIR/work; mkdir -p "$W"
keys() { awk '{print $1}' "$1"; }
to() { local f=$1; shift; "$@" > "$f"; }
exit_is() { local want=$1; shift; "$@" >/dev/null 2>&1; [ $? -eq "$want" ]; }
# fetch SIDE SAE MASTER ENCFILE [ARGS]: the slave gets the keys of ENCFILE, identical
fetch() {
	local side=$1 sae=$2 master=$3 enc=$4; shift 4
	# shellcheck disable=SC2046
	kms_cli "$side" "$sae" dec "$master" $(keys "$enc") --show-keys "$@" > "$enc.dec" &&
		diff -q "$enc" "$enc.dec" >/dev/null
}
no_vg_report() { ! grep -q . "$KMS_DIR"/vg-$1*.log; }

fatal "KME pair starts under valgrind" kms_pair_start --key-rate 100000 --link-timeout-ms 10000
# Under valgrind everything is slow: poll (bounded) where a fixed sleep would be a guess.
check "enc_keys at KME_A (POST, 4 keys)" wait_for 20 to "$W/e1" kms_cli A SAE_A enc SAE_B -n 4 --show-keys
check "dec_keys at KME_B gives the same keys" fetch B SAE_B SAE_A "$W/e1"
check "other direction, GET, 1024-bit keys" to "$W/e2" kms_cli B SAE_B enc SAE_A -n 2 -s 1024 --get --show-keys
check "...fetched with GET at KME_A" fetch A SAE_A SAE_B "$W/e2" --get
check "reuse is refused (400)" exit_is 16 kms_cli A SAE_A dec SAE_B "$(keys "$W/e2" | head -n 1)"
check "${#kms_malformed[@]} malformed requests answered as expected" kms_malformed_requests
check "raw protocol garbage" kms_raw_garbage
check "no client certificate: 401" kms_http_is_nocert
kill -USR1 "${kms_pid[B]}"
check "simulated outage at KME_B: 503" wait_for 20 exit_is 18 kms_cli B SAE_B status SAE_A
kill -USR1 "${kms_pid[B]}"
check "KME_B serves again after the second SIGUSR1" wait_for 20 kms_cli B SAE_B status SAE_A
# reserved keys left unfetched at shutdown must be wiped and freed too
quiet kms_cli A SAE_A enc SAE_B -n 3
check "KME_B (link slave) exits cleanly under valgrind" kms_stop B
check "KME_B valgrind log is empty" no_vg_report B
kms_start B --key-rate 100000 --link-timeout-ms 10000
check "link comes back with a new KME_B" wait_for 60 kms_link_up
check "keys flow again" wait_for 20 to "$W/e3" kms_cli A SAE_A enc SAE_B -n 1 --show-keys
check "...and match" fetch B SAE_B SAE_A "$W/e3"
check "KME_A (link master) exits cleanly under valgrind" kms_stop A
check "KME_B exits cleanly under valgrind" kms_stop B
for f in "$KMS_DIR"/vg-*.log; do [ -s "$f" ] && { echo "== $f"; head -n 60 "$f"; }; done
check "valgrind really wrapped both KMEs" bash -c "ls '$KMS_DIR'/vg-A.*.log '$KMS_DIR'/vg-B.*.log >/dev/null"
check "no valgrind report from any KME" no_vg_report ""
finish
