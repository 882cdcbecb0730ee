#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The two KMEs in two network namespaces joined by a veth pair (198.51.100.1 <-> .2): the QKD
# link crosses namespaces, each SAE reaches only its own KME, and the keys still match.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
KMSD=$top/src/kmsd/qkd-kmsd CLI=$top/src/libqkd/qkd-etsi014
[ -x "$KMSD" ] && [ -x "$CLI" ] || skip "build first (make)"
nsA=$LAB-kmsA nsB=$LAB-kmsB
work=$(mktemp -d /tmp/ipseq-kmsns.XXXXXX)
pids=()
teardown() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	ip netns del "$nsA" 2>/dev/null; ip netns del "$nsB" 2>/dev/null
	rm -rf "$work"
	cleanup
}
trap teardown EXIT

fatal "test PKI with the namespace addresses" quiet "$top/scripts/pki" "$work/pki" lab 198.51.100.1 198.51.100.2
fatal "two namespaces joined by veth" bash -c "
	ip netns add $nsA && ip netns add $nsB &&
	ip link add kms0 netns $nsA type veth peer name kms1 netns $nsB &&
	ip -n $nsA addr add 198.51.100.1/24 dev kms0 && ip -n $nsB addr add 198.51.100.2/24 dev kms1 &&
	ip -n $nsA link set kms0 up && ip -n $nsB link set kms1 up &&
	ip -n $nsA link set lo up && ip -n $nsB link set lo up"

P=$work/pki
ip netns exec "$nsA" "$KMSD" --kme-id KME_A --peer-kme-id KME_B --listen 198.51.100.1:8443 \
	--link-mode listen --link-address 198.51.100.1:8444 --key-rate 100000 \
	--cert "$P/KME_A.pem" --key "$P/KME_A.key" --ca "$P/ca.pem" --sae SAE_A --peer-sae SAE_B \
	>"$work/A.log" 2>&1 &
pids+=($!)
ip netns exec "$nsB" "$KMSD" --kme-id KME_B --peer-kme-id KME_A --listen 198.51.100.2:8443 \
	--link-mode connect --link-address 198.51.100.1:8444 --link-retry-ms 100 \
	--cert "$P/KME_B.pem" --key "$P/KME_B.key" --ca "$P/ca.pem" --sae SAE_B --peer-sae SAE_A \
	>"$work/B.log" 2>&1 &
pids+=($!)

cliA() { ip netns exec "$nsA" "$CLI" --url https://198.51.100.1:8443 --cert "$P/SAE_A.pem" --key "$P/SAE_A.key" --ca "$P/ca.pem" "$@"; }
cliB() { ip netns exec "$nsB" "$CLI" --url https://198.51.100.2:8443 --cert "$P/SAE_B.pem" --key "$P/SAE_B.key" --ca "$P/ca.pem" "$@"; }
has_keys() { [ "$(cliA status SAE_B | sed -n 's/^stored_key_count=//p')" -gt 10 ] 2>/dev/null; }
to() { local f=$1; shift; "$@" > "$f"; }

fatal "QKD link up across namespaces (keys stored at KME_A)" wait_for 15 has_keys
check "link reported up in KME_B's log" grep -q "QKD link up: KME_A is link master" "$work/B.log"
check "SAE_A gets 5 keys in namespace A" to "$work/enc" cliA enc SAE_B -n 5 --show-keys
# shellcheck disable=SC2046
check "SAE_B gets the same keys in namespace B" to "$work/dec" cliB dec SAE_A $(awk '{print $1}' "$work/enc") --show-keys
check "identical" diff -q "$work/enc" "$work/dec"
check "KME_A is not reachable from namespace B's loopback (isolation control)" \
	not quiet ip netns exec "$nsB" "$CLI" --url https://127.0.0.1:8443 --timeout 1000 \
		--cert "$P/SAE_B.pem" --key "$P/SAE_B.key" --ca "$P/ca.pem" status SAE_A
finish
