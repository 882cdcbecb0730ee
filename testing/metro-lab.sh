# SPDX-License-Identifier: GPL-2.0-or-later
# testing/metro-lab.sh: helpers for the tests on the metro lab (scripts/lab metro). Source it
# after testing/lib.sh.
# Tests rotate every ESP key each 64 packets (LAB_RPK_MIN/MAX) and take the lab down at exit.
#   metro_lab_up             bring the lab up and check its six tunnels (fatal)
#   metro_tunnels_up         every DC gateway has an INSTALLED CHILD_SA to each of the 3 others
#   metro_ping_all COUNT     every DC host pings every other (both ways), no packet lost
#   metro_epochs             "dcX>dcY=W ..." the key window every outbound SA is in: packets / rpk
#                            as its datapath reports them (qkictl sas); with exhaust = stall
#                            every window is a fresh key
#   metro_rotated BEFORE     every outbound SA is at a later epoch than in BEFORE
#   metro_beyond_rpk         packets sent with a window key past its window, all SAs summed
#   metro_route SRC DST      the controller's path SRC -> DST ("A5 N1 N2"), from qkd-qscctl
#   metro_buffers_ready      every SA's key buffer is at least half full (qkictl sas)
#   metro_relay dcX dcY      one key now: enc_keys at dcX's node for dcY's SAE, dec_keys of its
#                            key_ID at dcY's node; prints the key_ID, fails unless both ends got
#                            the same key (key bytes stay in this function, never printed)
#   metro_relay_path ID      the path the source node logged for relayed key ID ("A5>N1>N2")
#
# The gateways' qkids keep a pool and every SA a buffer of keys (64 each here), so ESP rotation
# asks its node for keys only now and then: a check on the path relays take asks for a key of its
# own (metro_relay) instead of waiting for the tunnels to need one.
METRO_DCS="dc1 dc2 dc3 dc4"
METRO_CLI=$top/src/libqkd/qkd-etsi014
[ "${LAB_INSTALLED:-no}" = yes ] && METRO_CLI=$(command -v qkd-etsi014 || echo qkd-etsi014)
export LAB_RPK_MIN=64 LAB_RPK_MAX=64
cleanup() { [ "${KEEP_LAB:-0}" != 0 ] && return; lab metro down >/dev/null 2>&1 || true; }
metro() { lab metro "$@"; }

metro_lab_up() {
	fatal "the metro lab comes up with its six tunnels" lab metro up
	fatal "every DC gateway has a tunnel to each other DC" metro_tunnels_up
	# a window key that comes late drops packets (exhaust = stall): the buffers fill first
	check "every SA's key buffer fills" wait_for 120 metro_buffers_ready ||
		for dc in $METRO_DCS; do lab qkictl "$dc" sas 2>&1 | sed "s/^/   $dc: /"; done
}

metro_buffers_ready() {
	local dc
	for dc in $METRO_DCS; do
		lab qkictl "$dc" sas 2>/dev/null | awk '
			NR > 1 { n++; split($12, b, "/"); if (b[2] == 0 || 2 * b[1] < b[2]) low++ }
			END { exit (n >= 6 && !low) ? 0 : 1 }' || return 1
	done
}

# metro_etsi DC ARGS...: qkd-etsi014 in DC's namespace against its node, as SAE_DC
metro_etsi() {
	local dc=$1; shift
	ip netns exec "$LAB-$dc" "$METRO_CLI" -u https://127.0.0.1:8443 -c "$LAB_DIR/pki/SAE_$dc.pem" \
		-k "$LAB_DIR/pki/SAE_$dc.key" -C "$LAB_DIR/pki/ca.pem" --timeout 10000 "$@"
}

metro_relay() {
	local enc dec id
	enc=$(metro_etsi "$1" enc "SAE_$2" --show-keys 2>/dev/null) || return 1
	id=${enc%% *}
	dec=$(metro_etsi "$2" dec "SAE_$1" "$id" --show-keys 2>/dev/null) || return 1
	[ -n "$id" ] && [ "$enc" = "$dec" ] || return 1
	echo "$id"
}

metro_relay_path() {
	cat "$LAB_DIR"/*/kmsd-*.log |
		sed -nE "s/.* relay $1: .* stored at .* \(path ([A-Z0-9>]+), first hop .*/\1/p" | head -n 1
}

metro_tunnels_up() {
	local dc n
	for dc in $METRO_DCS; do
		n=$(lab swanctl "$dc" --list-sas 2>/dev/null | grep -c 'INSTALLED')
		[ "$n" -ge 3 ] || { echo "   $dc: $n CHILD_SAs installed"; return 1; }
	done
}

metro_ping_all() {
	local a b out bad=0
	for a in 1 2 3 4; do for b in 1 2 3 4; do
		[ "$a" = "$b" ] && continue
		out=$(metro ping "dc$a" "dc$b" "$1" 2>&1 | grep 'packets transmitted')
		echo "   h$a -> h$b: $out"
		echo "$out" | grep -q ' 0% packet loss' || bad=1
	done; done
	return $bad
}

metro_epochs() {
	local dc
	for dc in $METRO_DCS; do
		lab qkictl "$dc" sas 2>/dev/null |
			awk -v dc="$dc" '$2 == "out" && $9 > 0 { printf "%s>%s=%d ", dc, $3, $10 / $9 }'
	done
}

metro_rotated() {
	local now e k bad=0
	now=$(metro_epochs)
	for e in $1; do
		k=${e%=*}
		for n in $now; do
			[ "${n%=*}" = "$k" ] || continue
			[ "${n#*=}" -gt "${e#*=}" ] || { echo "   $k: epoch ${e#*=} -> ${n#*=}"; bad=1; }
		done
	done
	[ -n "$now" ] && return $bad
}

metro_beyond_rpk() {
	local dc
	for dc in $METRO_DCS; do lab qkictl "$dc" sas 2>/dev/null | awk 'NR > 1 { print $13 }'; done |
		awk '{ s += $1 } END { print s + 0 }'
}

metro_route() {
	metro qscctl status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
for r in d["routes"]:
    if r["node"] == sys.argv[1]:
        for e in r["routes"]:
            if e["dst"] == sys.argv[2]:
                print(" ".join(e["path"]))' "$1" "$2"
}
