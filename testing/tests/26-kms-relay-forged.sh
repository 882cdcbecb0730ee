#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Malformed, forged and replayed relay messages: N2 and N3 are qkd-kmsd nodes, N1 is a fake node
# (testing/relay_peer.py) on the link N1-N2 that relays to SAE_3 at N3 through N2. A valid relay
# from it arrives (the fake speaks the protocol right); then a replayed frame, a replayed key_ID,
# a route not naming the link's peer, a looping route, an unknown slave, an unknown master, link
# blocks other than the grant, an unknown relay version and a cut frame: each is refused with a
# NACK and a reason (or, where the stores can no longer be trusted, the link is dropped), logged
# by key_ID, and no key is delivered; the link comes back and relays again.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/metro.sh"

W=$METRO_DIR/work; mkdir -p "$W"
metro_pki N1 N2 N3
metro_sae SAE_1 N1; metro_sae SAE_3 N3
metro_link N2 N1; metro_link N2 N3
metro_route N3 N1 N2
metro_start N2; metro_start N3
fatal "N3: link to N2 up" wait_for 20 metro_links_up N3
port=$(awk '/^\[link N2-N1\]/{s=1} s && /^link_address/{print $3; exit}' "$METRO_DIR/N2.conf")
timeout 60 python3 "$top/testing/relay_peer.py" "$METRO_PKI" N1 N2 "$port" N3 SAE_1 SAE_3 \
	> "$W/cases" 2> "$W/peer.err"
rc=$?
sed 's/^/   /' "$W/peer.err"
fatal "the fake N1 ran its relays through N2" test "$rc" = 0

field() { python3 -c 'import json,sys; print(next(json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["case"] == sys.argv[2]).get(sys.argv[3]))' "$W/cases" "$1" "$2"; }
status_is() { local s; s=$(field "$1" status); echo "   $1: status $s, reason '$(field "$1" reason)'"; [ "$s" = "$2" ]; }
reason_has() { field "$1" reason | grep -q "$2"; }
not_delivered() { "$METRO_CLI" --url "$(metro_url N3)" --cert "$METRO_PKI/SAE_3.pem" --key "$METRO_PKI/SAE_3.key" --ca "$METRO_PKI/ca.pem" dec SAE_1 "$(field "$1" key_ID)" >/dev/null 2>&1; [ $? = 16 ]; }
logged() { grep "$(field "$1" key_ID)" "$METRO_DIR/N2.log" "$METRO_DIR/N3.log" | grep -q "$2"; }
delivered() { # CASE: SAE_3 gets the fake's key under its key_ID, once
	local got
	got=$("$METRO_CLI" --url "$(metro_url N3)" --cert "$METRO_PKI/SAE_3.pem" --key "$METRO_PKI/SAE_3.key" \
		--ca "$METRO_PKI/ca.pem" dec SAE_1 "$(field "$1" key_ID)" --show-keys | awk '{print $3}')
	[ -n "$got" ] && [ "$got" = "$(field "$1" key)" ]
}

check "a valid relay from the fake node is stored at N3 (ACK 0)" status_is valid 0
check "replayed frame: NACK 400, its grant is used up" status_is replayed_frame 400
check "...reason: names no grant" reason_has replayed_frame "names no grant"
check "replayed key_ID with fresh link key: NACK 400" status_is replayed_key_id 400
check "...reason: replayed" reason_has replayed_key_id "replayed"
check "SAE_3 gets the first (valid) key under that key_ID, not the replayed one" delivered valid
check "...once" not_delivered valid
check "route not naming the link's peer: NACK 400 (forged)" status_is forged_route 400
check "...reason names it" reason_has forged_route "link's peer"
check "looping route: NACK 400" status_is forged_loop 400
check "slave SAE not at the destination: NACK from N3 (401) relayed back" status_is unknown_slave 401
check "master SAE not placed at the source by N3's directory: NACK 401" status_is unknown_master 401
check "link blocks other than the grant: NACK 400 (forged)" status_is forged_blocks 400
check "unknown relay version: NACK 400, then the link drops (stores resynchronise)" status_is unknown_version 400
cut_dropped() { local s; s=$(field truncated status); echo "   truncated: $s"; [ "$s" = closed ] || [ "$s" = 400 ]; }
check "cut RELAY frame: NACK or the link drops (stores resynchronise)" cut_dropped
for c in replayed_key_id forged_route forged_loop unknown_slave unknown_master forged_blocks unknown_version truncated; do
	check "$c: no key delivered at N3" not_delivered "$c"
done
check "forged route logged by key_ID at N2" logged forged_route "refused"
check "unknown slave logged by key_ID at N3" logged unknown_slave "refused: slave SAE not attached"
check "malformed RELAY logged at N2" grep -q "malformed RELAY" "$METRO_DIR/N2.log"
check "after the drops the link is back and a valid relay arrives" status_is valid_after 0
check "...and is delivered" delivered valid_after
check "no key of the fake's relays in the logs" bash -c "! grep -qiE \"\$(python3 -c 'import json,sys; print(\"|\".join(json.loads(l)[\"key\"] for l in open(sys.argv[1]) if \"key\" in json.loads(l)))' '$W/cases')\" '$METRO_DIR'/N*.log"
check "N2 and N3 are still running" kill -0 "${metro_pid[N2]}" "${metro_pid[N3]}"
finish
