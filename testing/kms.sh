# SPDX-License-Identifier: GPL-2.0-or-later
# testing/kms.sh: start and drive qkd-kmsd pairs (KME_A, KME_B) on loopback for end-to-end tests.
# Source it after testing/lib.sh. It makes its own temporary directory with a test PKI and kills
# the KMEs it started on exit.
#
#   kms_pair_start [FLAG VALUE]...  start KME_A (link master) and KME_B; extra flags go to both,
#                                   KMS_ARGS_A / KMS_ARGS_B (arrays) to one; waits for the link
#   kms_pair_stop                   stop both
#   kms_start A|B [FLAG VALUE]...   start one (KMS_WRAP_A/B: a command prefix, e.g. valgrind)
#   kms_stop A|B                    SIGTERM and wait (returns the process's exit status)
#   kms_cli A|B SAE ARGS...         qkd-etsi014 against KME A/B with SAE's certificate
#   kms_curl A|B SAE ARGS...        curl against KME A/B with SAE's certificate (SAE "-": none)
#   kms_url A|B                     https://127.0.0.1:PORT
#   kms_http_is CODE METHOD PATH [BODY]  KME_A as SAE_A answers HTTP CODE
#   kms_malformed_requests          the 35 malformed requests of kms_malformed against KME_A
#   kms_raw_garbage                 protocol garbage below HTTP and below TLS against KME_A
#   kms_status_field A|B FIELD      one field of the status answer for SAE_A/SAE_B (also
#                                   status_extension fields, e.g. generated_bits)
# Certificates: $KMS_PKI/{ca,KME_A,KME_B,SAE_A,SAE_B,SAE_C}.{pem,key}. KME_A serves SAE_A,
# KME_B serves SAE_B and SAE_C.

KMS_DIR=$(mktemp -d /tmp/ipseq-kms.XXXXXX)
KMS_PKI=$KMS_DIR/pki
KMSD=$top/src/kmsd/qkd-kmsd
KMS_CLI=$top/src/libqkd/qkd-etsi014
declare -A kms_pid=() kms_port=()
KMS_LINK_PORT=
KMS_ARGS_A=() KMS_ARGS_B=()

kms_cleanup() {
	local n
	for n in "${!kms_pid[@]}"; do
		kill "${kms_pid[$n]}" 2>/dev/null
		wait "${kms_pid[$n]}" 2>/dev/null
	done
	rm -rf "$KMS_DIR"
}
trap 'kms_cleanup; cleanup' EXIT

kms_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

[ -x "$KMSD" ] && [ -x "$KMS_CLI" ] || skip "build first (make): qkd-kmsd or qkd-etsi014 missing"
command -v openssl >/dev/null || skip "openssl missing"
"$top/scripts/pki" "$KMS_PKI" lab >/dev/null && "$top/scripts/pki" "$KMS_PKI" sae SAE_C >/dev/null \
	|| skip "cannot create the test PKI"

kms_url() { echo "https://127.0.0.1:${kms_port[$1]}"; }

kms_start() {
	local side=$1 wrap_var="KMS_WRAP_$1" me peer sae peer_sae mode; shift
	[ -n "${kms_port[$side]:-}" ] || kms_port[$side]=$(kms_free_port)
	[ -n "$KMS_LINK_PORT" ] || KMS_LINK_PORT=$(kms_free_port)
	if [ "$side" = A ]; then
		me=KME_A peer=KME_B mode=listen sae=(--sae SAE_A) peer_sae=(--peer-sae SAE_B --peer-sae SAE_C)
	else
		me=KME_B peer=KME_A mode=connect sae=(--sae SAE_B --sae SAE_C) peer_sae=(--peer-sae SAE_A)
	fi
	# shellcheck disable=SC2086
	${!wrap_var:-} "$KMSD" --kme-id $me --peer-kme-id $peer --listen "127.0.0.1:${kms_port[$side]}" \
		--link-mode $mode --link-address "127.0.0.1:$KMS_LINK_PORT" --link-retry-ms 100 \
		--cert "$KMS_PKI/$me.pem" --key "$KMS_PKI/$me.key" --ca "$KMS_PKI/ca.pem" \
		"${sae[@]}" "${peer_sae[@]}" "$@" >>"$KMS_DIR/$me.log" 2>&1 &
	kms_pid[$side]=$!
}

kms_stop() {
	local pid=${kms_pid[$1]:-} rc
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	rc=$?
	unset "kms_pid[$1]"
	return $rc
}

kms_cli() {
	local side=$1 sae=$2; shift 2
	"$KMS_CLI" --url "$(kms_url "$side")" --cert "$KMS_PKI/$sae.pem" --key "$KMS_PKI/$sae.key" \
		--ca "$KMS_PKI/ca.pem" "$@"
}

kms_curl() {
	local side=$1 sae=$2 cert=(); shift 2
	[ "$sae" = - ] || cert=(--cert "$KMS_PKI/$sae.pem" --key "$KMS_PKI/$sae.key")
	curl -s --max-time 10 --cacert "$KMS_PKI/ca.pem" "${cert[@]}" "$@"
}

kms_status_field() {
	local side=$1 field=$2 sae slave
	if [ "$side" = A ]; then sae=SAE_A slave=SAE_B; else sae=SAE_B slave=SAE_A; fi
	kms_curl "$side" "$sae" "$(kms_url "$side")/api/v1/keys/$slave/status" | python3 -c '
import json, sys
d = json.load(sys.stdin); f = sys.argv[1]
v = d.get(f, d.get("status_extension", {}).get(f))
print(str(v).lower() if isinstance(v, bool) else v)' "$field"
}

kms_link_up() { [ "$(kms_status_field A link_up)" = true ] && [ "$(kms_status_field B link_up)" = true ]; }

kms_pair_start() {
	kms_start A "$@" "${KMS_ARGS_A[@]}"
	kms_start B "$@" "${KMS_ARGS_B[@]}"
	wait_for "${KMS_START_TIMEOUT:-10}" kms_link_up
}

kms_pair_stop() { kms_stop B; kms_stop A; }

kms_http_is() {
	local code
	code=$(kms_curl A SAE_A -o /dev/null -w '%{http_code}' -X "$2" ${4+--data-binary "$4"} \
		-H 'Content-Type: application/json' "$(kms_url A)$3")
	[ "$code" = "$1" ] || { echo "   $2 $3 -> $code, want $1"; return 1; }
}

# CODE|METHOD|PATH[|BODY]; the bodies MANY_IDS, BIG, BAD_UTF8 and DEEP are generated.
_E=/api/v1/keys/SAE_B/enc_keys _D=/api/v1/keys/SAE_B/dec_keys
_Z=00000000-0000-4000-8000-000000000000
kms_malformed=(
	"400|POST|$_E|{\"number\":" "400|POST|$_E|not json" "400|POST|$_E|[]" "400|POST|$_E|{\"number\":\"2\"}"
	"400|POST|$_E|{\"number\":-1}" "400|POST|$_E|{\"number\":0}" "400|POST|$_E|{\"number\":129}"
	"400|POST|$_E|{\"size\":100}" "400|POST|$_E|{\"size\":32}" "400|POST|$_E|{\"size\":16384}"
	"400|POST|$_E|{\"size\":1.5}" "400|POST|$_E|{\"additional_slave_SAE_IDs\":[\"SAE_C\"]}"
	"400|POST|$_E|{\"extension_mandatory\":[{\"x\":1}]}" "400|POST|$_E|"
	"400|POST|$_E|{\"number\":1} trailing" "400|GET|$_E?number=abc" "400|GET|$_E?number=1&number=2"
	"400|GET|$_E?size=-8" "400|GET|$_E?foo=1" "400|POST|$_D|{}" "400|POST|$_D|{\"key_IDs\":[]}"
	"400|POST|$_D|{\"key_IDs\":[\"$_Z\"]}" "400|POST|$_D|{\"key_IDs\":[{\"key_ID\":\"not-a-uuid\"}]}"
	"400|POST|$_D|{\"key_IDs\":[{\"key_ID\":\"$_Z\"},{\"key_ID\":\"$_Z\"}]}" "400|GET|$_D"
	"400|GET|$_D?key_ID=zzz" "400|POST|$_D|MANY_IDS" "405|POST|/api/v1/keys/SAE_B/status|{}"
	"405|DELETE|$_E" "404|GET|/api/v1/keys/SAE_B/foo" "404|GET|/api/v2/keys/SAE_B/status"
	"404|GET|/api/v1/keys//status" "400|POST|$_E|BIG" "400|POST|$_E|BAD_UTF8" "400|POST|$_E|DEEP"
)

kms_malformed_requests() {
	local m code method path body bad=0
	for m in "${kms_malformed[@]}"; do
		IFS='|' read -r code method path body <<<"$m"
		case $body in
		MANY_IDS) body=$(python3 -c 'import uuid,json; print(json.dumps({"key_IDs":[{"key_ID":str(uuid.uuid4())} for _ in range(129)]}))');;
		BIG) body=$(head -c 100000 /dev/zero | tr '\0' ' ');;
		BAD_UTF8) body=$(printf '{"number":1,"x":"\xff\xfe"}');;
		DEEP) body=$(python3 -c 'print("{\"number\":" + "["*200 + "]"*200 + "}")');;
		esac
		if [ "$(tr -cd '|' <<<"$m" | wc -c)" -ge 3 ]; then
			kms_http_is "$code" "$method" "$path" "$body" || bad=$((bad + 1))
		else
			kms_http_is "$code" "$method" "$path" || bad=$((bad + 1))
		fi
	done
	echo "   ${#kms_malformed[@]} malformed requests, $bad with an unexpected status"
	[ "$bad" -eq 0 ]
}

kms_raw_garbage() {
	python3 - "$KMS_PKI" "${kms_port[A]}" <<'PY'
import socket, ssl, sys
pki, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=pki + "/ca.pem")
ctx.load_cert_chain(pki + "/SAE_A.pem", pki + "/SAE_A.key")
payloads = [b"GARBAGE\r\n\r\n", b"GET / HTTP/9.9\r\n\r\n", b"\x00\x01\x02\x03" * 64 + b"\r\n\r\n",
            b"GET /api/v1/keys/SAE_B/status HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100000 + b"\r\n\r\n",
            b"POST /api/v1/keys/SAE_B/enc_keys HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\n\r\n{",
            b"POST /api/v1/keys/SAE_B/enc_keys HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"GET /api/v1/keys/SAE_B/status HTTP/1.1\r\n" * 50]
for p in payloads:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            try:
                s.sendall(p)
                s.recv(4096)
            except (OSError, ssl.SSLError):
                pass
# not TLS at all
for p in [b"GET / HTTP/1.1\r\n\r\n", b"\x16\x03\x01\xff\xff" + b"\x00" * 100]:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        try:
            raw.sendall(p)
            raw.recv(4096)
        except OSError:
            pass
PY
}

# KME_A answers 401 to a client without a certificate.
kms_http_is_nocert() {
	[ "$(curl -s --max-time 10 -o /dev/null -w '%{http_code}' --cacert "$KMS_PKI/ca.pem" \
		"$(kms_url A)/api/v1/keys/SAE_B/status")" = 401 ]
}
