# SPDX-License-Identifier: GPL-2.0-or-later
# dp-lab.sh: the datapath end-to-end tests (testing/tests/6x-*.sh) and the datapath benchmark,
# with qkd-espd as the IPsec datapath on both gateways (no charon). The namespaces, links,
# addresses and routes are scripts/lab's (LAB_CHARON=no LAB_IPV6=yes): one lab, one address plan.
# Source it after testing/lib.sh (and after src/qki/tests/qki-lab.sh when qkid is wanted: then
# the qki lab has brought the same lab up, with its daemons on the gateways).
#
#   hostA ---- gwA ===== WAN ===== gwB ---- hostB
#   192.0.2.10  .1  198.51.100.1  .2  192.0.2.129  192.0.2.130
#   fd00:a::10                                     fd00:b::10
#
#   dp_need                     skip unless root and everything is built
#   dp_lab_up                   the lab (unless the qki lab brought it up) and the SA keys
#   dp_espd a|b [ARGS...]       start qkd-espd on a gateway with its SAs and policies
#                               (DP_ROT_A / DP_ROT_B: rotation= value, DP_KEYS: --keys value
#                               with @SITE@ = a|b, DP_OUT_DST_A: where gwA sends its ESP,
#                               default 198.51.100.2:4500, DP_SPI_AB/DP_SPI_BA: SPIs,
#                               DP_CIPHER: aes256 (default, AES-256-GCM as the lab's charon)
#                               or aes128)
#   dp_espd_stop a|b            SIGTERM, wait (final counters are written)
#   dp_stat a|b KEY             a counter of the gateway's qkd-espd (fresh snapshot)
#   ha/hb/ga/gb CMD...          run in hostA/hostB/gwA/gwB
#   DP_GW_A/B, DP_HOST_A/B      the namespaces; DP_WAN_A/B, DP_LAN_A/B the gateways' interfaces
DP_ESPD=$top/src/libipsec-qkd/qkd-espd
export LAB=${LAB:-dp$$}
DDIR=${DDIR:-/tmp/ipseq-dp/$LAB}
DP_GW_A=$LAB-gwA DP_GW_B=$LAB-gwB DP_HOST_A=$LAB-hostA DP_HOST_B=$LAB-hostB
DP_WAN_A=wan DP_WAN_B=wan DP_LAN_A=lanA DP_LAN_B=lanB
declare -A DP_PID=()
DP_OWN_LAB=0
DP_SPI_AB=${DP_SPI_AB:-0x1001} DP_SPI_BA=${DP_SPI_BA:-0x2001}

ha() { ip netns exec "$DP_HOST_A" "$@"; }
hb() { ip netns exec "$DP_HOST_B" "$@"; }
ga() { ip netns exec "$DP_GW_A" "$@"; }
gb() { ip netns exec "$DP_GW_B" "$@"; }

dp_need() {
	[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
	[ -x "$DP_ESPD" ] || skip "$DP_ESPD not built (run make)"
	[ -c /dev/net/tun ] || skip "no /dev/net/tun"
	local t
	for t in iperf3 tcpdump python3 openssl; do
		command -v "$t" >/dev/null || skip "$t not installed"
	done
}

dp_lab_down() {
	local k f
	for k in "${!DP_PID[@]}"; do kill "${DP_PID[$k]}" 2>/dev/null; done
	# qkd-espd started by an earlier shell on this lab: its pid file knows it
	for f in "$DDIR"/espd-*.pid; do
		[ -s "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	sleep 0.2
	for k in "${!DP_PID[@]}"; do kill -9 "${DP_PID[$k]}" 2>/dev/null; done
	# the lab itself goes with whoever brought it up (the qki lab, when it did)
	[ "$DP_OWN_LAB" = 1 ] && "$top/scripts/lab" down >/dev/null 2>&1
	DP_OWN_LAB=0
	[ -n "${DP_KEEP:-}" ] && echo "# datapath lab files kept in $DDIR" || rm -rf "$DDIR"
}

dp_cleanup() {
	dp_lab_down
	if declare -F qki_cleanup >/dev/null; then qki_cleanup; else cleanup 2>/dev/null || true; fi
}
trap dp_cleanup EXIT

dp_lab_up() {
	mkdir -p "$DDIR"
	if [ ! -e "/run/netns/$DP_GW_A" ]; then
		LAB_CHARON=no LAB_IPV6=yes "$top/scripts/lab" up || return 1
		DP_OWN_LAB=1
	fi
	# one pair of CHILD_SA keys (key || 4-byte salt) per cipher for the whole lab, in 0600 files:
	# AES-256-GCM (36 bytes, the lab charon's cipher) and AES-128-GCM (20 bytes)
	(umask 077
	 openssl rand -hex 36 > "$DDIR/key-ab.aes256"; openssl rand -hex 36 > "$DDIR/key-ba.aes256"
	 openssl rand -hex 20 > "$DDIR/key-ab.aes128"; openssl rand -hex 20 > "$DDIR/key-ba.aes128")
}

# dp_espd a|b [extra qkd-espd args]
dp_espd() {
	local s=$1 me peer lan rlan lan6 rlan6 out_spi in_spi out_key in_key ns dst rot peername
	local cipher=${DP_CIPHER:-aes256}
	case $cipher in aes256|aes128) ;; *) echo "dp_espd: DP_CIPHER must be aes256 or aes128" >&2; return 1;; esac
	shift
	if [ "$s" = a ]; then
		me=198.51.100.1 peer=198.51.100.2 lan=192.0.2.0/25 rlan=192.0.2.128/25
		lan6=fd00:a::/64 rlan6=fd00:b::/64 out_spi=$DP_SPI_AB in_spi=$DP_SPI_BA ns=$DP_GW_A
		out_key=$DDIR/key-ab.$cipher in_key=$DDIR/key-ba.$cipher dst=${DP_OUT_DST_A:-$peer:4500}
		rot=${DP_ROT_A:-${DP_ROT:-off}} peername=siteB
	else
		me=198.51.100.2 peer=198.51.100.1 lan=192.0.2.128/25 rlan=192.0.2.0/25
		lan6=fd00:b::/64 rlan6=fd00:a::/64 out_spi=$DP_SPI_BA in_spi=$DP_SPI_AB ns=$DP_GW_B
		out_key=$DDIR/key-ba.$cipher in_key=$DDIR/key-ab.$cipher dst=${DP_OUT_DST_B:-$peer:4500}
		rot=${DP_ROT_B:-${DP_ROT:-off}} peername=siteA
	fi
	local keys=()
	[ -n "${DP_KEYS:-}" ] && keys=(--keys "${DP_KEYS//@SITE@/$s}")
	rm -f "$DDIR/espd-$s.pid" "$DDIR/espd-$s.stats"
	ip netns exec "$ns" "$DP_ESPD" --tun qkd0 --bind "$me" "${keys[@]}" \
		--sa "out spi=$out_spi src=$me dst=$dst keyfile=$out_key reqid=1 rotation=$rot peer=$peername" \
		--sa "in spi=$in_spi src=$peer dst=$me keyfile=$in_key reqid=1 rotation=$rot peer=$peername" \
		--policy "out src=$lan dst=$rlan" --policy "in src=$rlan dst=$lan" \
		--policy "out src=$lan6 dst=$rlan6" --policy "in src=$rlan6 dst=$lan6" \
		--stats "$DDIR/espd-$s.stats" --pidfile "$DDIR/espd-$s.pid" "$@" \
		>>"$DDIR/espd-$s.log" 2>&1 &
	DP_PID[$s]=$!
	wait_for 10 test -s "$DDIR/espd-$s.pid" || return 1
	ip netns exec "$ns" ip route replace "$rlan" dev qkd0 || return 1
	ip netns exec "$ns" ip -6 route replace "$rlan6" dev qkd0
}

dp_espd_stop() {
	[ -n "${DP_PID[$1]:-}" ] || return 0
	kill "${DP_PID[$1]}" 2>/dev/null
	wait "${DP_PID[$1]}" 2>/dev/null
	local rc=$?
	unset "DP_PID[$1]"
	return $rc
}

# dp_stat a|b KEY: the counter from a fresh snapshot (or the final one after dp_espd_stop)
dp_stat() {
	local f=$DDIR/espd-$1.stats pid=${DP_PID[$1]:-}
	if [ -n "$pid" ]; then
		rm -f "$f"
		kill -USR1 "$pid" 2>/dev/null
		wait_for 5 test -s "$f" || true
	fi
	sed -n "s/^$2=//p" "$f" 2>/dev/null | head -n 1
}

# the ESP epochs on the wire: "spi epoch packets" per (SPI, IV epoch) of a WAN capture
dp_pcap_epochs() {
	python3 "$top/src/libipsec-qkd/tests/esp_pcap.py" epochs "$1"
}

# capture_start_ns NAMESPACE IFACE PCAP [FILTER...]: like lib.sh's capture_start, for our
# namespaces; sets CAPTURE_PID (stop with capture_stop)
capture_start_ns() {
	local ns=$1 ifc=$2 pcap=$3; shift 3
	ip netns exec "$ns" tcpdump -i "$ifc" -n -U --immediate-mode -w "$pcap" "$@" \
		>/dev/null 2>"$pcap.err" &
	CAPTURE_PID=$!
	wait_for 10 grep -q 'listening on' "$pcap.err"
}
