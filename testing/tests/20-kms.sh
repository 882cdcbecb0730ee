#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key supply: two qkd-kmsd processes joined by a simulated QKD link, driven over real HTTPS with
# mutual TLS by the libqkd client (qkd-etsi014) and curl. Both SAEs get the same keys (POST and
# GET forms, several per request), every error code appears where it should, strangers are
# refused, the key budget holds, and 35 malformed requests plus raw protocol garbage neither
# crash nor confuse the KME. SIGHUP applies a new key rate from the config file while the link runs.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/kms.sh"

keys_of() { awk '{print $1}' "$1"; }
same_keys() { diff -q "$1" "$2" >/dev/null && [ -s "$1" ]; }
exit_is() { local want=$1; shift; "$@" >/dev/null 2>&1; [ $? -eq "$want" ]; }
to() { local f=$1; shift; "$@" > "$f"; }
stored_within() { local v; v=$(kms_status_field "$1" stored_key_count); echo "   stored_key_count=$v"; [ "$v" -ge "$2" ] && [ "$v" -le "$3" ]; }
etsi_error_body() {
	kms_curl A SAE_A -d '{"number":0}' "$(kms_url A)/api/v1/keys/SAE_B/enc_keys" |
		python3 -c 'import json,sys; d=json.load(sys.stdin); assert isinstance(d["message"], str) and isinstance(d["details"], list)'
}
no_keys_in_logs() { # no key (hex or base64) from the test's outputs appears in a KME log
	python3 - "$W" "$KMS_DIR" <<'PY'
import base64, glob, sys
keys = set()
for f in glob.glob(sys.argv[1] + "/*"):
    for line in open(f):
        parts = line.split()
        if len(parts) == 3:
            keys.add(parts[2]); keys.add(base64.b64encode(bytes.fromhex(parts[2])).decode())
logs = "".join(open(f, errors="replace").read() for f in glob.glob(sys.argv[2] + "/KME_*.log"))
assert len(keys) > 20, len(keys)
leaked = [k for k in keys if k in logs]
assert not leaked, leaked[:3]
PY
}
W=$KMS_DIR/work; mkdir -p "$W"

fatal "KME pair starts and the QKD link comes up" kms_pair_start --key-rate 256000
sleep 0.5

# --- status -------------------------------------------------------------------------------------
kms_curl A SAE_A "$(kms_url A)/api/v1/keys/SAE_B/status" > "$W/status.json"
check "status has all 11 ETSI fields with the right IDs" python3 - "$W/status.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
need = ["source_KME_ID", "target_KME_ID", "master_SAE_ID", "slave_SAE_ID", "key_size",
        "stored_key_count", "max_key_count", "max_key_per_request", "max_key_size",
        "min_key_size", "max_SAE_ID_count"]
missing = [k for k in need if k not in d]
assert not missing, missing
assert (d["source_KME_ID"], d["target_KME_ID"], d["master_SAE_ID"], d["slave_SAE_ID"]) == \
    ("KME_A", "KME_B", "SAE_A", "SAE_B"), d
assert d["key_size"] == 256 and d["max_key_per_request"] == 128 and d["max_SAE_ID_count"] == 0
assert 0 < d["stored_key_count"] <= d["max_key_count"], d
EOF
check "libqkd parses the status (11 fields)" \
	bash -c "'$KMS_CLI' --url '$(kms_url B)' --cert '$KMS_PKI/SAE_B.pem' --key '$KMS_PKI/SAE_B.key' --ca '$KMS_PKI/ca.pem' status SAE_A | grep -c = | grep -qx 11"

# --- same keys on both sides ---------------------------------------------------------------------
check "SAE_A gets 3 keys from KME_A (POST)" to "$W/enc1" kms_cli A SAE_A enc SAE_B -n 3 --show-keys
# shellcheck disable=SC2046
kms_cli B SAE_B dec SAE_A $(keys_of "$W/enc1") --show-keys > "$W/dec1"
check "SAE_B gets the same 3 keys under the same key_IDs from KME_B (POST)" same_keys "$W/enc1" "$W/dec1"
check "keys are 256 bits and distinct" bash -c "awk '\$2 != 256 {exit 1}' '$W/enc1' && [ \$(awk '{print \$3}' '$W/enc1' | sort -u | wc -l) = 3 ]"
kms_cli B SAE_B enc SAE_A -n 2 -s 512 --get --show-keys > "$W/enc2"
# shellcheck disable=SC2046
kms_cli A SAE_A dec SAE_B $(keys_of "$W/enc2") --get --show-keys > "$W/dec2"
check "GET forms, other direction (SAE_B master), 512-bit keys" same_keys "$W/enc2" "$W/dec2"
check "512-bit keys really are 512 bits" bash -c "awk '\$2 != 512 || length(\$3) != 128 {exit 1}' '$W/enc2'"
kms_cli A SAE_A enc SAE_B -n 40 --show-keys > "$W/enc3"
# shellcheck disable=SC2046
kms_cli B SAE_B dec SAE_A $(keys_of "$W/enc3" | tac) --show-keys > "$W/dec3"
check "40 keys in one request, fetched in another order, all identical" \
	bash -c "[ \$(wc -l < '$W/enc3') = 40 ] && diff <(sort '$W/enc3') <(sort '$W/dec3') >/dev/null"
kms_cli A SAE_A enc SAE_C -n 1 --show-keys > "$W/enc4"
kms_cli B SAE_C dec SAE_A "$(keys_of "$W/enc4")" --show-keys > "$W/dec4"
check "a second slave SAE (SAE_C) at KME_B gets its key" same_keys "$W/enc4" "$W/dec4"

# --- error codes --------------------------------------------------------------------------------
k1=$(keys_of "$W/enc1" | head -n 1)
check "400: a key_ID fetched already" exit_is 16 kms_cli B SAE_B dec SAE_A "$k1"
check "400: an unknown key_ID" exit_is 16 kms_cli B SAE_B dec SAE_A 00000000-0000-4000-8000-000000000000
check "400: number above max_key_per_request" exit_is 16 kms_cli A SAE_A enc SAE_B -n 129
check "400: size below min_key_size" exit_is 16 kms_cli A SAE_A enc SAE_B -s 32
check "400: size above max_key_size" exit_is 16 kms_cli A SAE_A enc SAE_B -s 16384
check "400: size not a multiple of 8 (server side)" kms_http_is 400 POST /api/v1/keys/SAE_B/enc_keys '{"size":100}'
kms_cli A SAE_A enc SAE_B -n 1 > "$W/enc5"
check "401: key reserved for SAE_B, asked by SAE_C" exit_is 17 kms_cli B SAE_C dec SAE_A "$(keys_of "$W/enc5")"
check "...and the rightful slave still gets it afterwards" quiet kms_cli B SAE_B dec SAE_A "$(keys_of "$W/enc5")"
check "401: SAE_B is not attached to KME_A" exit_is 17 kms_cli A SAE_B status SAE_A
check "401: SAE_A asks for an unregistered slave" exit_is 17 kms_cli A SAE_A enc SAE_X
check "401: master SAE_A asks dec_keys at its own KME" exit_is 17 kms_cli A SAE_A dec SAE_A "$k1"
check "401: no client certificate" \
	bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$KMS_PKI/ca.pem' '$(kms_url A)/api/v1/keys/SAE_B/status') = 401 ]"
"$top/scripts/pki" "$KMS_DIR/evil" lab >/dev/null
check "401: client certificate from another CA (same CN)" \
	bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$KMS_PKI/ca.pem' --cert '$KMS_DIR/evil/SAE_A.pem' --key '$KMS_DIR/evil/SAE_A.key' '$(kms_url A)/api/v1/keys/SAE_B/status') = 401 ]"
check "client refuses a KME whose certificate it cannot verify (TLS error)" \
	exit_is 15 "$KMS_CLI" --url "$(kms_url A)" --cert "$KMS_PKI/SAE_A.pem" --key "$KMS_PKI/SAE_A.key" --ca "$KMS_DIR/evil/ca.pem" status SAE_B
check "client: https://localhost works (SAN), but a wrong host name is a TLS error" \
	bash -c "'$KMS_CLI' --url 'https://localhost:${kms_port[A]}' --cert '$KMS_PKI/SAE_A.pem' --key '$KMS_PKI/SAE_A.key' --ca '$KMS_PKI/ca.pem' status SAE_B >/dev/null &&
		! '$KMS_CLI' --url 'https://127.0.0.2:${kms_port[A]}' --cert '$KMS_PKI/SAE_A.pem' --key '$KMS_PKI/SAE_A.key' --ca '$KMS_PKI/ca.pem' status SAE_B >/dev/null 2>&1"

# --- outage simulation ----------------------------------------------------------------------------
# Signals are handled asynchronously: poll (bounded) instead of sleeping a fixed time.
kill -USR1 "${kms_pid[A]}"
check "503 during a simulated outage (SIGUSR1)" wait_for 5 exit_is 18 kms_cli A SAE_A status SAE_B
kill -USR1 "${kms_pid[A]}"
check "service back after the second SIGUSR1" wait_for 5 kms_cli A SAE_A status SAE_B

# --- malformed requests and raw garbage -------------------------------------------------------------
check "${#kms_malformed[@]} malformed requests all answered 400/404/405" kms_malformed_requests
check "error bodies are ETSI {message, details}" etsi_error_body
check "raw protocol garbage does not take the KME down" kms_raw_garbage
check "KME_A still serves after all of it" quiet kms_cli A SAE_A status SAE_B
check "KME_A process is alive" kill -0 "${kms_pid[A]}"

# --- the link: down, up, key budget ---------------------------------------------------------------
kms_stop B
check "503 with the peer KME gone (link down)" wait_for 5 exit_is 18 kms_cli A SAE_A enc SAE_B
check "stored_key_count is 0 while the link is down" test "$(kms_status_field A stored_key_count)" = 0
kms_start B --key-rate 256000
check "link comes back when KME_B restarts" wait_for 10 kms_link_up
sleep 0.3
kms_cli A SAE_A enc SAE_B -n 2 --show-keys > "$W/enc6"
# shellcheck disable=SC2046
kms_cli B SAE_B dec SAE_A $(keys_of "$W/enc6") --show-keys > "$W/dec6"
check "keys match again after the restart" same_keys "$W/enc6" "$W/dec6"
kms_stop A
check "client reports transport error with KME_A down" exit_is 13 kms_cli A SAE_A status SAE_B
kms_pair_stop

# Small store, slow link: 1280 bit/s = 5 keys of 256 bits per second, store bound 15. The
# requests below ask for the whole store each, so it drains however slow a client is (up to
# 3 s per request, as under ASan on a loaded machine), and 16 keys are more than it can hold.
KMS_ARGS_A=(--key-rate 1280 --max-key-count 15 --reservation-lifetime 2)
KMS_ARGS_B=(--reservation-lifetime 2)
t0=$(date +%s.%N)
fatal "slow pair starts" kms_pair_start
check "store fills up to max_key_count (15)" wait_for 10 stored_within A 15 15
sleep 0.5
check "... and no further" stored_within A 15 15
check "the link slave mirrors it" wait_for 5 stored_within B 14 15
check "503: more keys than the store can hold (16 > 15)" exit_is 18 kms_cli A SAE_A enc SAE_B -n 16
got=0
for ((i = 0; i < 20; i++)); do
	if kms_cli A SAE_A enc SAE_B -n 15 >> "$W/budget" 2>/dev/null; then got=$((got + 15)); fi
	if kms_cli B SAE_B enc SAE_A -n 15 >> "$W/budget" 2>/dev/null; then got=$((got + 15)); fi
done
t1=$(date +%s.%N)
gen=$(kms_status_field A generated_bits)
served=$(( $(kms_status_field A served_enc_bits) + $(kms_status_field B served_enc_bits) ))
allowed=$(python3 -c "print(int(1280 * ($t1 - $t0)) + 256)")
echo "# budget: $got keys ($((got * 256)) bits) served to masters, KME_A generated $gen bits, rate allows $allowed bits"
check "keys served <= keys generated (status counters)" test "$served" -le "$gen"
check "keys the clients received == served counters" test "$((got * 256))" -eq "$served"
check "generated <= secret key rate x elapsed time" test "$gen" -le "$allowed"
check "the store was drained (some requests got 503)" test "$got" -lt 600
check "no key_ID was handed out twice" bash -c "[ \$(awk '{print \$1}' '$W/budget' | sort | uniq -d | wc -l) = 0 ]"
check "a key for the expiry test once the store refills" wait_for 5 to "$W/enc7" kms_cli A SAE_A enc SAE_B -n 1
sleep 2.3
check "a reservation expires after reservation_lifetime (400)" exit_is 16 kms_cli B SAE_B dec SAE_A "$(keys_of "$W/enc7")"
kms_pair_stop

# Fault injection by configuration.
kms_start A --fail-rate 1
check "fail_rate = 1 answers 503" wait_for 5 exit_is 18 kms_cli A SAE_A status SAE_B
kms_stop A
# SIGHUP: the key rate from the --config file changes while the link runs (no restart, the
# stored keys stay); a file that does not load changes nothing
printf 'key_rate = 64000\n' > "$KMS_DIR/rate.conf"
KMS_ARGS_A=(--config "$KMS_DIR/rate.conf")
fatal "KME pair with its rate from a file" kms_pair_start
rate_is() { python3 -c 'import sys; sys.exit(abs(float(sys.argv[1]) - float(sys.argv[2])) > 0.1)' "$(kms_status_field A key_rate_bps)" "$1"; }
check "the file's key rate (64000 bit/s)" rate_is 64000
check "keys stored before the change" wait_for 5 stored_within A 10 1000000
stored0=$(kms_status_field A generated_bits)
printf 'key_rate = 0\nfibre_length_km = 80\n' > "$KMS_DIR/rate.conf"
kill -HUP "${kms_pid[A]}"
check "SIGHUP: the fibre model's rate at 80 km (2511.9 bit/s), logged" \
	wait_for 5 grep -q "SIGHUP: link default to KME_B: secret key rate 64000.0 -> 2511.9 bit/s (fibre model)" "$KMS_DIR/KME_A.log"
check "the status shows the new rate" rate_is 2511.9
check "no restart: the generated counter kept counting" \
	test "$(kms_status_field A generated_bits)" -ge "$stored0"
printf 'key_rate = banana\n' > "$KMS_DIR/rate.conf"
kill -HUP "${kms_pid[A]}"
check "SIGHUP with a file that does not load: logged, nothing changed" \
	wait_for 5 grep -q "SIGHUP: the configuration does not load; nothing changed" "$KMS_DIR/KME_A.log"
check "the KME still answers, at the rate it had" rate_is 2511.9
KMS_ARGS_A=()
kms_pair_stop
check "no key material (hex or base64) in the KME logs" no_keys_in_logs
finish
