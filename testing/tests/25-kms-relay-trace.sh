#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# No relay node ever holds a relayed key in clear: four nodes on a line N1 - N2 - N3 - N4 run the
# test build qkd-kmsd-trace, which writes a hex line for every buffer the relay handles (frames in
# and out, link keys in and out, masks) to $KMSD_BUFFER_TRACE. After relays in both directions
# over 3 hops (and 2 from the middle), no trace line of a relay node (N2, N3 for N1 <-> N4) holds
# any relayed key; the source's trace, which holds its keys by design, shows the search finds them.
. "$(dirname "$0")/../lib.sh"
METRO_KMSD=$top/src/kmsd/qkd-kmsd-trace
. "$top/testing/metro.sh"

make -C "$top/src/kmsd" qkd-kmsd-trace >/dev/null 2>&1 || skip "cannot build the test program qkd-kmsd-trace"
keys_of() { awk '{print $1}' "$1"; }
W=$METRO_DIR/work; mkdir -p "$W"

metro_pki N1 N2 N3 N4
metro_sae SAE_1 N1; metro_sae SAE_2 N2; metro_sae SAE_3 N3; metro_sae SAE_4 N4
metro_link N1 N2; metro_link N2 N3; metro_link N4 N3
metro_route N1 N3 N2; metro_route N1 N4 N2; metro_route N2 N4 N3
metro_route N4 N2 N3; metro_route N4 N1 N3; metro_route N3 N1 N2
for n in N1 N2 N3 N4; do METRO_ENV=("KMSD_BUFFER_TRACE=$METRO_DIR/$n.trace"); metro_start "$n"; done
METRO_ENV=()
for n in N1 N2 N3 N4; do fatal "$n: every link up" wait_for 20 metro_links_up "$n"; done

relay() { # SRC SRC_SAE DST DST_SAE N SIZE TAG
	metro_cli "$1" "$2" enc "$4" -n "$5" -s "$6" --show-keys > "$W/enc-$7" || return 1
	# shellcheck disable=SC2046
	metro_cli "$3" "$4" dec "$2" $(keys_of "$W/enc-$7") -s "$6" --show-keys > "$W/dec-$7" &&
		diff -q "$W/enc-$7" "$W/dec-$7" >/dev/null
}
check "N1 -> N4: 8 keys relayed over 3 hops" relay N1 SAE_1 N4 SAE_4 8 256 a
check "N4 -> N1: 8 keys back (slave-to-master hops)" relay N4 SAE_4 N1 SAE_1 8 256 b
check "N2 -> N4: 3 keys of 512 bits over 2 hops" relay N2 SAE_2 N4 SAE_4 3 512 c

# traces: "NODE what key_ID hex"; keys: the relayed keys in hex
holds() { # TRACE KEYFILE...: 0 if a line of TRACE holds a key of KEYFILEs (hex or reversed halves)
	python3 - "$@" <<'EOF'
import sys
trace, keyfiles = sys.argv[1], sys.argv[2:]
keys = {line.split()[2] for f in keyfiles for line in open(f)}
hexes = [l.split()[3] for l in open(trace) if len(l.split()) == 4]
found = [k for k in keys for h in hexes if k in h]
print("   %s: %d buffers, %d relayed keys found in them" % (trace.rsplit("/", 1)[-1], len(hexes), len(found)))
sys.exit(0 if found else 1)
EOF
}
lacks() { ! holds "$@"; }
traced() { # TRACE WHAT...: the relay node traced buffers of each kind
	local t=$1 w; shift
	for w in "$@"; do grep -q " $w " "$t" || { echo "   no '$w' buffer in $t"; return 1; }; done
}
check "N2 traced every kind of relay buffer (frames, link keys in and out, masks)" \
	traced "$METRO_DIR/N2.trace" relay_in link_key_in link_key_out mask relay_out
check "N3 traced every kind of relay buffer" \
	traced "$METRO_DIR/N3.trace" relay_in link_key_in link_key_out mask relay_out
check "relay node N2 never held a relayed key (N1 <-> N4, N2 -> N4)" \
	lacks "$METRO_DIR/N2.trace" "$W/enc-a" "$W/enc-b"
check "relay node N3 never held a relayed key (N1 <-> N4, N2 -> N4)" \
	lacks "$METRO_DIR/N3.trace" "$W/enc-a" "$W/enc-b" "$W/enc-c"
check "the search finds keys where they are: the source N1's trace holds its keys" \
	holds "$METRO_DIR/N1.trace" "$W/enc-a"
check "...and N2's trace holds the keys it sourced itself" holds "$METRO_DIR/N2.trace" "$W/enc-c"
check "the normal build has no trace: qkd-kmsd has no KMSD_BUFFER_TRACE" \
	bash -c "! grep -q KMSD_BUFFER_TRACE '$top/src/kmsd/qkd-kmsd' && grep -q KMSD_BUFFER_TRACE '$METRO_KMSD'"
finish
