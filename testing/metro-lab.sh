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
METRO_DCS="dc1 dc2 dc3 dc4"
export LAB_RPK_MIN=64 LAB_RPK_MAX=64
cleanup() { [ "${KEEP_LAB:-0}" != 0 ] && return; lab metro down >/dev/null 2>&1 || true; }
metro() { lab metro "$@"; }

metro_lab_up() {
	fatal "the metro lab comes up with its six tunnels" lab metro up
	fatal "every DC gateway has a tunnel to each other DC" metro_tunnels_up
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
