#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# Spoofed IKE_SA_INITs cannot drain a peer's quantum keys: gwB (the responder) spends at most
# charon.plugins.qkd.unauthenticated_keys keys on IKE_SAs from gwA's address that do not
# authenticate; past that it refuses before asking qkid and says so once. Keys of IKE_SAs that
# do authenticate are given back, so ordinary initiations never run into the budget. Prints the
# spoofed IKE_SA_INITs/s against the keys burnt/s without and with the budget (figures, not
# checks).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_QKD=yes
# charon's own guards stop a spoofer that cannot see gwB's replies: from 3 half-open IKE_SAs per
# source address on it demands COOKIEs (cookie_threshold_ip), and it drops IKE_SA_INITs from an
# address with 5 half-open ones (block_threshold). An on-path attacker answers COOKIEs and waits
# out half_open_timeout (30 s), about 10 keys a minute. Both are raised here so that the budget
# is what is tested, and the spoofed messages can be sent in one burst.
export LAB_CHARON_OPTS=$'block_threshold = 1000\n\tcookie_threshold = 1000\n\tcookie_threshold_ip = 1000'
L=$top/scripts/lab
probe=$top/src/qki/tests/qki-probe
budget=3 window=15 spoofed=40
[ -x "$probe" ] || skip "qki-probe not built (make check builds it)"

# since_count GW N REGEX: lines of GW's charon log after line N that match REGEX
since_count() { tail -n +"$(( $2 + 1 ))" "$LAB_DIR/$1/charon.log" | grep -cE "$3"; }
keys_out() { "$L" qkictl gwB status | grep -oE 'out: [0-9]+' | head -1 | grep -oE '[0-9]+'; }
established() { sw gwA --list-sas 2>/dev/null | matches ESTABLISHED; }

# set_budget KEYS: gwB's charon restarted with that budget (0: none)
set_budget() {
	sed -i '/unauthenticated_/d' "$LAB_DIR/gwB/plugins.conf"
	sed -i "s/timeout = /unauthenticated_keys = $1\n\t\t\tunauthenticated_window = ${window}s\n\t\t\ttimeout = /" \
		"$LAB_DIR/gwB/plugins.conf"
	"$L" restart gwB >/dev/null
}

# spoof TAG: $spoofed IKE_SA_INITs from gwA's address to gwB, each with a fresh key_ID. The
# worst case: every message carries a key_ID gwB's qkid can resolve (drawn at gwA's qkid, as an
# on-path attacker could race a real initiator's). Sent from gwA's namespace with gwA's WAN
# address as source, exactly what a spoofer produces; the real gwA sends nothing meanwhile.
# Sets burnt (keys gwB's qkid handed out for them) and n (gwB's log lines before).
spoof() {
	local i=0 id hex ms before after
	"$probe" "$LAB_DIR/gwA/qkid.sock" new gwB "$spoofed" > "$LAB_DIR/ids-$1.txt"
	check "gwA's qkid gave $spoofed key_IDs" test "$(grep -cE '^[0-9a-f-]{36} ' "$LAB_DIR/ids-$1.txt")" -eq "$spoofed"
	while read -r id _; do
		hex=$(printf '%s' "$id" | od -An -tx1 | tr -d ' \n')
		python3 "$top/testing/ike_packet.py" ke-set "$LAB_DIR/init.bin" "$LAB_DIR/spoof$i.bin" 33 "$hex"
		i=$((i + 1))
	done < "$LAB_DIR/ids-$1.txt"
	sleep 1
	before=$(keys_out)
	n=$(log_lines gwB)
	start=$(date +%s%N)
	# shellcheck disable=SC2046
	ip netns exec "$LAB-gwA" python3 "$top/testing/ike_packet.py" send-each 198.51.100.2 500 \
		$(seq -f "$LAB_DIR/spoof%g.bin" 0 $((spoofed - 1)))
	wait_for 20 handled
	ms=$(( ($(date +%s%N) - start) / 1000000 ))
	after=$(keys_out)
	burnt=$((after - before))
	echo "# $1: $spoofed spoofed IKE_SA_INITs handled by gwB in $ms ms ($(( spoofed * 1000 / (ms > 0 ? ms : 1) ))/s); gwB's qkid handed out $burnt keys for them ($(( burnt * 1000 / (ms > 0 ? ms : 1) ))/s)"
}
handled() { [ "$(since_count gwB "$n" "uses quantum key|unauthenticated key budget used up")" -ge "$spoofed" ]; }

fatal "lab with KMEs and qkids comes up" lab up
capture_start gwA wan "$LAB_DIR/init.pcap" 'udp port 500'
fatal "gwA initiates" lab initiate gwA
capture_stop
fatal "captured gwA's IKE_SA_INIT" python3 "$top/testing/ike_packet.py" extract "$LAB_DIR/init.pcap" "$LAB_DIR/init.bin"
terminate_all

echo "## 0. without a budget (unauthenticated_keys = 0, the behaviour before it existed)"
set_budget 0
spoof "no budget"
check "every spoofed IKE_SA_INIT burnt a key on gwB (the attack is real)" test "$burnt" -eq "$spoofed"

set_budget $budget
check "gwB's plugin took the budget" in_log gwB "at most $budget keys per peer on unauthenticated IKE_SAs within $window s"

echo "## 1. authenticated IKE_SAs give their keys back: $((budget + 2)) initiations in a row"
ok=0
for i in $(seq $((budget + 2))); do
	quiet lab initiate gwA && established && ok=$((ok + 1))
	terminate_all
done
check "all $((budget + 2)) initiations succeeded (each spends 2 keys on gwB before AUTH)" test "$ok" -eq $((budget + 2))
check "no budget refusal on gwB" not in_log gwB "unauthenticated key budget used up"

echo "## 2. $spoofed spoofed IKE_SA_INITs with a budget of $budget"
spoof "budget $budget"
check "gwB spent exactly the budget ($budget keys), not one per spoofed message" test "$burnt" -eq "$budget"
check "gwB refused the other $((spoofed - budget)) before asking qkid" \
	test "$(since_count gwB "$n" "unauthenticated key budget used up")" -eq $((spoofed - budget))
check "gwB said once, in operator words, why" \
	test "$(since_count gwB "$n" "peer 'gwA' has spent $budget quantum keys within $window s on IKE_SAs that did not authenticate")" -eq 1

echo "## 3. once the spent keys age out, gwA connects again"
retry_up() { quiet lab initiate gwA net 5 && established; }
check "gwA connects within the window plus a margin" wait_for $((window + 15)) retry_up
check "gwB logged the end of the episode" since gwB "$n" "peer 'gwA' may spend quantum keys on unauthenticated IKE_SAs again; [0-9]+ key exchanges were refused"
check "traffic passes" ping_b 2
finish
