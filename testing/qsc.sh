# SPDX-License-Identifier: GPL-2.0-or-later
# testing/qsc.sh: start qkd-qscd, the path controller, on loopback and act as its nodes with curl,
# for end-to-end tests. Source it after testing/lib.sh. It makes its own temporary directory with
# a test PKI (ca, QSC, the nodes N1..N4 and A5 of conf/qsc-topology.conf, an operator OPS) and
# stops the controller it started on exit.
#
#   qsc_start [FLAG VALUE]...    start qkd-qscd with conf/qsc-topology.conf (extra flags to it);
#                                waits until it answers
#   qsc_stop                     SIGTERM and wait
#   qsc_curl NAME ARGS...        curl against the controller with NAME's certificate ("-": none);
#                                prints the body, then the HTTP status on a line of its own
#   qsc_report NODE LINK:PEER:UP:STORED...   POST NODE's report (rate 1000, consumed 0); prints
#                                the status and body
#   qsc_nodes_start NODE...      play NODEs as the real ones do: each reports the links last set
#                                with qsc_set every second, in the background, until qsc_stop
#   qsc_set NODE LINK:PEER:UP:STORED...   what NODE reports from now on (no links: it goes
#                                silent)
#   qsc_route NODE DST           the path NODE -> DST as "N1 N2 N3" ("" when none)
#   qsc_version                  the routes version (from GET /api/v1/status)
#   qsc_ctl ARGS...              qkd-qscctl with OPS's certificate
QSC_DIR=$(mktemp -d /tmp/ipseq-qsc.XXXXXX)
QSC_PKI=$QSC_DIR/pki
QSCD=$top/src/qsc/qkd-qscd
QSCCTL=$top/src/qsc/qkd-qscctl
QSC_TOPOLOGY=$top/conf/qsc-topology.conf
QSC_LOG=$QSC_DIR/qscd.log
qsc_pid=
qsc_port=

qsc_node_pids=()

qsc_cleanup() {
	local p
	for p in "${qsc_node_pids[@]}"; do kill "$p" 2>/dev/null; done
	[ -n "$qsc_pid" ] && kill "$qsc_pid" 2>/dev/null && wait "$qsc_pid" 2>/dev/null
	rm -rf "$QSC_DIR"
}
trap 'qsc_cleanup; cleanup' EXIT

[ -x "$QSCD" ] && [ -x "$QSCCTL" ] || skip "build first (make): qkd-qscd or qkd-qscctl missing"
command -v curl >/dev/null || skip "curl missing"
{ "$top/scripts/pki" "$QSC_PKI" ca && "$top/scripts/pki" "$QSC_PKI" kme QSC &&
  for n in N1 N2 N3 N4 A5; do "$top/scripts/pki" "$QSC_PKI" kme "$n"; done &&
  "$top/scripts/pki" "$QSC_PKI" sae OPS; } >/dev/null || skip "cannot create the test PKI"

qsc_url() { echo "https://127.0.0.1:$qsc_port"; }

qsc_curl() {
	local who=$1; shift
	local id=()
	[ "$who" != - ] && id=(--cert "$QSC_PKI/$who.pem" --key "$QSC_PKI/$who.key")
	curl -sS --max-time 5 --cacert "$QSC_PKI/ca.pem" "${id[@]}" -w '\n%{http_code}\n' "$@"
}

qsc_start() {
	local i
	qsc_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$QSCD" --topology "$QSC_TOPOLOGY" --listen "127.0.0.1:$qsc_port" \
		--cert "$QSC_PKI/QSC.pem" --key "$QSC_PKI/QSC.key" --ca "$QSC_PKI/ca.pem" "$@" \
		>>"$QSC_LOG" 2>&1 &
	qsc_pid=$!
	for i in $(seq 1 100); do
		qsc_curl OPS "$(qsc_url)/api/v1/status" 2>/dev/null | tail -n 1 | grep -qx 200 && return 0
		kill -0 "$qsc_pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

qsc_set() {
	local node=$1; shift
	printf '%s\n' "$@" > "$QSC_DIR/links.$node.new"
	mv "$QSC_DIR/links.$node.new" "$QSC_DIR/links.$node"
}

qsc_nodes_start() {
	local node
	for node in "$@"; do
		[ -f "$QSC_DIR/links.$node" ] || : > "$QSC_DIR/links.$node"
		(
			local links
			while [ -d "$QSC_DIR" ]; do  # bounded by qsc_cleanup
				mapfile -t links < "$QSC_DIR/links.$node" 2>/dev/null || links=()
				[ ${#links[@]} -gt 0 ] && [ -n "${links[0]}" ] &&
					qsc_report "$node" "${links[@]}" >/dev/null 2>&1
				sleep 1
			done
		) &
		qsc_node_pids+=($!)
	done
}

qsc_stop() {
	local rc p
	for p in "${qsc_node_pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
	qsc_node_pids=()
	[ -n "$qsc_pid" ] || return 0
	kill "$qsc_pid" 2>/dev/null
	wait "$qsc_pid"; rc=$?
	qsc_pid=
	return $rc
}

qsc_report() {
	local node=$1 l links="" sep=""; shift
	for l in "$@"; do
		IFS=: read -r name peer up stored <<<"$l"
		links+="$sep{\"link\":\"$name\",\"peer\":\"$peer\",\"up\":$up,\"stored_bits\":$stored,\"rate_bps\":1000.0,\"consumed_bits\":0}"
		sep=,
	done
	qsc_curl "$node" -X POST -H 'Content-Type: application/json' \
		-d "{\"node\":\"$node\",\"links\":[$links]}" "$(qsc_url)/api/v1/links"
}

qsc_route() {
	qsc_curl OPS "$(qsc_url)/api/v1/routes?node=$1" | head -n 1 | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join(next((r["path"] for r in d["routes"] if r["dst"] == sys.argv[1]), [])))' "$2"
}

qsc_version() {
	qsc_curl OPS "$(qsc_url)/api/v1/status" | head -n 1 |
		python3 -c 'import json, sys; print(json.load(sys.stdin)["routes_version"])'
}

qsc_ctl() {
	"$QSCCTL" --url "$(qsc_url)" --cert "$QSC_PKI/OPS.pem" --key "$QSC_PKI/OPS.key" \
		--ca "$QSC_PKI/ca.pem" "$@"
}
