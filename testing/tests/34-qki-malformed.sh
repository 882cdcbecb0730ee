#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Malformed-message corpus against qkid's local socket and its peer port. Every bad local
# message gets an error reply (only an untrustworthy header closes the connection); forged,
# replayed, malformed and unexpected peer messages are dropped and logged; the daemons keep
# running and keep agreeing on keys with the genuine peer afterwards.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
command -v python3 >/dev/null || skip "python3 missing"

QKI_EXTRA_GLOBAL="client_idle_timeout = 1" fatal "KMEs and qkids come up" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"

# --- local API corpus: hex messages, header = 514b | version | type | seq | length ---
hdr() { printf '514b%02x%02x%08x%08x' "$1" "$2" "$3" "$4"; }          # version type seq len
attr() { printf '%04x%04x%s' "$1" $(( ${#2} / 2 )) "$2"; }            # type hexvalue
hexs() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
msg() { local type=$1 seq=$2 payload=$3; printf '%s%s' "$(hdr 1 "$type" "$seq" $(( ${#payload} / 2 )))" "$payload"; }
PEER=$(attr 1 "$(hexs siteB)")
SIZE32=$(attr 4 00000020)
VERSION_OK=$(msg 1 99 "")

# case NAME EXPECT HEX...: send the messages on one connection; EXPECT is a regex for the output
case_local() {
	local name=$1 expect=$2; shift 2
	"$QKI_BIN/tests/qki-probe" "$QDIR/qkid-a.sock" raw "$@" > "$out/local-$name.txt" 2>&1
	check "local: $name -> $(tr '\n' ' ' < "$out/local-$name.txt" | cut -c1-90)" \
		grep -qE "$expect" "$out/local-$name.txt"
}
case_local bad-magic 'error PROTO|closed' "0000010100000001000000000000"
case_local version-2-then-v1 'msg 0: reply type 0xff .*error VERSION' "$(hdr 2 1 7 0)" "$VERSION_OK"
check "local: the connection stays usable after a VERSION error" grep -q 'msg 1: reply type 0x81 seq 99 error OK' "$out/local-version-2-then-v1.txt"
case_local oversized-length 'error PROTO|closed' "$(hdr 1 1 3 65537)"
case_local unknown-type 'error UNSUPPORTED' "$(msg 85 4 "")"
case_local truncated-attr 'error PROTO' "$(msg 2 5 "00010010736974")"
case_local int-wrong-size 'error PROTO' "$(msg 2 6 "$PEER$(attr 4 0020)")"
case_local duplicate-attr 'error PROTO' "$(msg 2 7 "$PEER$PEER$SIZE32")"
case_local nul-in-string 'error PROTO' "$(msg 2 8 "$(attr 1 7369007465)$SIZE32")"
case_local empty-string 'error PROTO' "$(msg 2 8 "$(attr 1 "")$SIZE32")"
case_local missing-size 'error INVALID' "$(msg 2 9 "$PEER")"
case_local size-zero 'error INVALID' "$(msg 2 10 "$PEER$(attr 4 00000000)")"
case_local size-huge 'error INVALID' "$(msg 2 11 "$PEER$(attr 4 00010000)")"
case_local unknown-peer 'error NO_PEER' "$(msg 2 12 "$(attr 1 "$(hexs nobody)")$SIZE32")"
case_local bad-direction 'error INVALID' "$(msg 4 13 "$PEER$(attr 5 00000001)$(attr 6 07)")"
case_local unregistered-sa 'error NO_SA' "$(msg 5 14 "$(attr 5 0badbeef)$(attr 6 02)$(attr 7 00000000)$(attr 8 00000001)")"
case_local count-zero 'error INVALID|error NO_SA' "$(msg 5 15 "$(attr 5 0badbeef)$(attr 6 02)$(attr 7 00000000)$(attr 8 00000000)")"
case_local nested-too-deep 'error PROTO' "$(msg 9 16 "$(attr 17 "$(attr 18 "$(attr 19 "")")")")"
case_local empty-key-get 'error INVALID' "$(msg 3 17 "")"
case_local non-uuid-key-id 'error UNKNOWN_KEY|error INVALID' "$(msg 3 18 "$PEER$(attr 2 "$(hexs '../../etc')")$SIZE32")"
case_local resync-unknown-peer 'error NO_PEER' "$(msg 11 19 "$(attr 1 "$(hexs nobody)")")"
case_local unknown-attrs-skipped 'error OK' "$(msg 1 20 "$(attr 999 deadbeef)$(attr 40000 "")")"
# a 64 KiB payload of empty unknown attributes is valid and answered
big=$(head -c 65536 /dev/zero | od -An -tx1 -v | tr -d ' \n' | sed 's/00000000/03e70000/g')
printf '%s%s' "$(hdr 1 9 21 65536)" "$big" > "$out/max-size.hex"
case_local max-size-message 'error OK' "@$out/max-size.hex"
case_local pipelined 'msg 0: reply .*error OK' "$VERSION_OK$VERSION_OK$(msg 2 22 "$PEER")"
case_local random-garbage 'error PROTO|closed' "$(head -c 600 /dev/urandom | od -An -tx1 -v | tr -d ' \n')"

# a truncated message and silence: disconnected after client_idle_timeout (1 s), daemon fine
start=$(date +%s%N)
"$QKI_BIN/tests/qki-probe" "$QDIR/qkid-a.sock" raw "$(hdr 1 1 30 20)0001" > "$out/local-slow.txt"
python3 - "$QDIR/qkid-a.sock" > "$out/local-slowloris.txt" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
s.sendall(bytes.fromhex("514b0101000000010000001400010010"))
t = time.time(); s.settimeout(5)
try:
    d = s.recv(100)
    print("closed after %.1f s" % (time.time() - t) if d == b"" else "data")
except socket.timeout:
    print("still open")
PY
check "local: a client stuck in the middle of a message is disconnected ($(cat "$out/local-slowloris.txt"))" \
	grep -q 'closed after [1-3]\.' "$out/local-slowloris.txt"
# connection flood: more than client_max (64) connections
python3 - "$QDIR/qkid-a.sock" > "$out/local-flood.txt" <<'PY'
import socket, sys
socks = []
for i in range(100):
    s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); socks.append(s)
print("opened", len(socks))
PY
check "local: qkid survives a connection flood" qctl a version
check "local: qkid logged the malformed requests" grep -q 'malformed request' "$QDIR/qkid-a.log"

# --- peer port: garbage and bad handshakes, while the genuine session runs ---
drops0=$(qctl a status | sed -n 's/.*peer messages dropped: \([0-9]*\).*/\1/p')
nsb python3 "$top/src/qki/tests/peer_corpus.py" 198.51.100.1 7800 "$QDIR/peer-auth.key" SAE_B SAE_A handshake \
	> "$out/peer-handshake.txt" 2>&1
cat "$out/peer-handshake.txt"
check "peer: the master speaks first, a fresh challenge" grep -q 'case challenge-first: nonce' "$out/peer-handshake.txt"
for c in garbage oversized-length forged-hello1 unknown-sae role-conflict truncated-hello1 old-version-hello1; do
	check "peer: $c -> connection closed" grep -q "case $c: closed" "$out/peer-handshake.txt"
done
check "peer: a genuine HELLO1 without the session key cannot complete a session" \
	grep -q 'case valid-hello1-no-ready: hello2, bad READY closed' "$out/peer-handshake.txt"
check "peer: a recorded HELLO1 replayed on another connection gets no HELLO2" \
	grep -q 'case replayed-hello1: none, bad READY closed' "$out/peer-handshake.txt"
check "peer: replayed HELLO1 logged" grep -q 'replayed HELLO1' "$QDIR/qkid-a.log"
check "peer: an old link protocol version is named in the log" \
	grep -q 'speaks link protocol version 1, this one version 2' "$QDIR/qkid-a.log"
check "peer: forged HELLO1 logged" grep -q 'forged HELLO1' "$QDIR/qkid-a.log"
check "peer: role conflict logged" grep -q 'role conflict' "$QDIR/qkid-a.log"
check "peer: the genuine session survived all of it" link_up
qa new siteB 2 > "$out/ike1.txt"; qb get siteA $(awk '{print $1}' "$out/ike1.txt") > "$out/ike1-b.txt"
check "peer: keys still agree" diff "$out/ike1.txt" "$out/ike1-b.txt"

# --- peer session: the genuine slave stops, the corpus speaks as the slave (it has the PSK) ---
qki_stop b
nsb python3 "$top/src/qki/tests/peer_corpus.py" 198.51.100.1 7800 "$QDIR/peer-auth.key" SAE_B SAE_A session \
	> "$out/peer-session.txt" 2>&1
cat "$out/peer-session.txt"
check "peer: handshake with the PSK works" grep -q 'case session-handshake: ready sent' "$out/peer-session.txt"
check "peer: replayed message logged and dropped" grep -q 'replayed NEED message (seq 2)' "$QDIR/qkid-a.log"
check "peer: forged message logged and dropped" grep -q 'forged NEED message (seq 3' "$QDIR/qkid-a.log"
check "peer: malformed message logged and dropped" grep -q 'malformed NEED message' "$QDIR/qkid-a.log"
check "peer: unexpected message type logged and dropped" grep -q 'unexpected ASSIGN message' "$QDIR/qkid-a.log"
check "peer: the session stays up after bad messages (PING answered)" \
	grep -q 'case session-alive-after-bad-messages: pong' "$out/peer-session.txt"
check "peer: a sequence gap (a lost message) closes the session" \
	grep -q 'case sequence-gap: closed' "$out/peer-session.txt"
check "peer: the gap is logged" grep -q 'messages were lost, re-establishing the link' "$QDIR/qkid-a.log"
drops1=$(qctl a status | sed -n 's/.*peer messages dropped: \([0-9]*\).*/\1/p')
echo "# peer messages dropped by A: $drops0 before, $drops1 after"
check "peer: qkictl counts the dropped messages (>= 6 more)" test "$drops1" -ge $((drops0 + 6))

fatal "the genuine slave comes back" qki_start b
fatal "link up" wait_link 10
qa follow siteB c0c0c0c0 out 0 10 > "$out/sa-a.txt"
qb follow siteA c0c0c0c0 in 0 10 > "$out/sa-b.txt"
check "after all the corpus, SA keys agree" diff "$out/sa-a.txt" "$out/sa-b.txt"
check "both qkids still running" kill -0 "${QPID[a]}" "${QPID[b]}"
check "no crash, no sanitizer/abort message in the logs" not grep -qiE 'abort|segfault|sanitizer' "$QDIR/qkid-a.log" "$QDIR/qkid-b.log"
finish
