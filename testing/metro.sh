# SPDX-License-Identifier: GPL-2.0-or-later
# testing/metro.sh: metro KMS nodes (qkd-kmsd with [link NAME] sections) on loopback, for
# end-to-end tests of the key relay. Source it after testing/lib.sh. It makes its own temporary
# directory with a test PKI and stops the nodes it started on exit.
#
#   metro_pki NODE...                 a KME certificate per node (CN = node name), and the CA
#   metro_sae SAE NODE                SAE attached to NODE (certificate made); every other node
#                                     lists it as remote_sae = SAE@NODE
#   metro_ghost SAE NODE              listed as remote_sae = SAE@NODE elsewhere, but NODE does not
#                                     serve it (its relays are refused there)
#   metro_link A B [RATE]             a QKD link A-B: A listens (link master), B connects; RATE:
#                                     its secret key rate in bit/s (default: the node's 256000)
#   metro_route NODE DEST NEXT        static route at NODE: route = DEST via NEXT
#   metro_start NODE [FLAG VALUE]...  write NODE's kmsd.conf ($METRO_DIR/NODE.conf) and start
#                                     it (METRO_KMSD: the program; METRO_ENV: env assignments;
#                                     METRO_EXTRA_<NODE>: extra config lines)
#   metro_stop NODE                   SIGTERM and wait
#   metro_cli NODE SAE ARGS...        qkd-etsi014 against NODE with SAE's certificate
#   metro_curl NODE SAE ARGS...       curl against NODE with SAE's certificate
#   metro_url NODE                    https://127.0.0.1:PORT
#   metro_links_up NODE               every link of NODE is up (status of a relayed SAE)
#   metro_status NODE SAE SLAVE       the status answer (JSON) of SAE at NODE towards SLAVE
# Logs: $METRO_DIR/NODE.log.

METRO_DIR=$(mktemp -d /tmp/ipseq-metro.XXXXXX)
METRO_PKI=$METRO_DIR/pki
METRO_KMSD=${METRO_KMSD:-$top/src/kmsd/qkd-kmsd}
METRO_CLI=$top/src/libqkd/qkd-etsi014
METRO_ENV=()
declare -A metro_pid=() metro_port=() metro_sae_node=() metro_ghost_node=()
metro_links=() metro_routes=()

metro_cleanup() {
	local n
	for n in "${!metro_pid[@]}"; do
		kill "${metro_pid[$n]}" 2>/dev/null
		wait "${metro_pid[$n]}" 2>/dev/null
	done
	rm -rf "$METRO_DIR"
}
trap 'metro_cleanup; cleanup' EXIT

[ -x "$METRO_CLI" ] || skip "build first (make): qkd-etsi014 missing"
command -v openssl >/dev/null || skip "openssl missing"

metro_free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

metro_pki() {
	local n
	"$top/scripts/pki" "$METRO_PKI" ca >/dev/null || skip "cannot create the test PKI"
	for n in "$@"; do
		"$top/scripts/pki" "$METRO_PKI" kme "$n" >/dev/null || skip "cannot create the test PKI"
		metro_port[$n]=$(metro_free_port)
	done
}

metro_sae() {
	"$top/scripts/pki" "$METRO_PKI" sae "$1" >/dev/null || skip "cannot create the test PKI"
	metro_sae_node[$1]=$2
}

metro_ghost() { metro_ghost_node[$1]=$2; }

metro_link() { metro_links+=("$1 $2 $(metro_free_port) ${3:-}"); }
metro_route() { metro_routes+=("$1 $2 $3"); }
metro_url() { echo "https://127.0.0.1:${metro_port[$1]}"; }

metro_conf() {
	local me=$1 s l a b port r node dst next extra="METRO_EXTRA_$1"
	echo "kme_id = $me"
	echo "listen = 127.0.0.1:${metro_port[$me]}"
	echo "cert = $METRO_PKI/$me.pem"
	echo "key = $METRO_PKI/$me.key"
	echo "ca = $METRO_PKI/ca.pem"
	echo "key_rate = 256000"
	echo "link_retry_ms = 100"
	for s in "${!metro_sae_node[@]}"; do
		if [ "${metro_sae_node[$s]}" = "$me" ]; then echo "sae = $s"
		else echo "remote_sae = $s@${metro_sae_node[$s]}"; fi
	done
	for s in "${!metro_ghost_node[@]}"; do
		[ "${metro_ghost_node[$s]}" = "$me" ] || echo "remote_sae = $s@${metro_ghost_node[$s]}"
	done
	for r in "${metro_routes[@]}"; do
		read -r node dst next <<<"$r"
		[ "$node" = "$me" ] && echo "route = $dst via $next"
	done
	[ -n "${!extra:-}" ] && printf '%s\n' "${!extra}"
	for l in "${metro_links[@]}"; do
		read -r a b port rate <<<"$l"
		if [ "$a" = "$me" ]; then
			printf '[link %s-%s]\npeer_kme_id = %s\nlink_mode = listen\nlink_address = 127.0.0.1:%s\n' "$a" "$b" "$b" "$port"
		elif [ "$b" = "$me" ]; then
			printf '[link %s-%s]\npeer_kme_id = %s\nlink_mode = connect\nlink_address = 127.0.0.1:%s\n' "$a" "$b" "$a" "$port"
		else
			continue
		fi
		if [ -n "$rate" ]; then echo "key_rate = $rate"; fi
	done
}

metro_start() {
	local me=$1; shift
	metro_conf "$me" > "$METRO_DIR/$me.conf"
	env "${METRO_ENV[@]}" "$METRO_KMSD" --config "$METRO_DIR/$me.conf" "$@" >>"$METRO_DIR/$me.log" 2>&1 &
	metro_pid[$me]=$!
}

metro_stop() {
	local pid=${metro_pid[$1]:-}
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	unset "metro_pid[$1]"
}

metro_cli() {
	local node=$1 sae=$2; shift 2
	"$METRO_CLI" --url "$(metro_url "$node")" --cert "$METRO_PKI/$sae.pem" --key "$METRO_PKI/$sae.key" \
		--ca "$METRO_PKI/ca.pem" "$@"
}

metro_curl() {
	local node=$1 sae=$2; shift 2
	curl -s --max-time 30 --cacert "$METRO_PKI/ca.pem" --cert "$METRO_PKI/$sae.pem" \
		--key "$METRO_PKI/$sae.key" "$@"
}

metro_status() { metro_curl "$1" "$2" "$(metro_url "$1")/api/v1/keys/$3/status"; }

# A local SAE of NODE and a remote one: the relayed status lists every link.
metro_links_up() {
	local me=$1 local_sae="" remote="" s
	for s in "${!metro_sae_node[@]}"; do
		if [ "${metro_sae_node[$s]}" = "$me" ]; then local_sae=$s; else remote=$s; fi
	done
	metro_status "$me" "$local_sae" "$remote" | python3 -c '
import json, sys
links = json.load(sys.stdin)["status_extension"]["links"]
sys.exit(0 if links and all(l["up"] for l in links) else 1)' 2>/dev/null
}
