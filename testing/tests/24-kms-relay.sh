#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key relay between metro KMS nodes: four qkd-kmsd on a line N1 - N2 - N3 - N4 with static routes
# (link masters N1, N2 and N4, so relays run master-to-slave and, through RELAY_ALLOC/GRANT,
# slave-to-master). enc_keys at the source for a slave SAE one, two and three hops away and
# dec_keys at the destination give the same keys under the same key_IDs, in both directions; a
# key is delivered once, to its slave only; every hop consumes exactly the link key it relays
# (both ends of each link count the same); a multi-SAE request gives one key to slaves at two
# nodes; a destination that refuses and a cut link give the SAE a 503, not a hang.
. "$(dirname "$0")/../lib.sh"
. "$top/testing/metro.sh"

keys_of() { awk '{print $1}' "$1"; }
same_keys() { diff -q "$1" "$2" >/dev/null && [ -s "$1" ]; }
exit_is() { local want=$1; shift; "$@" >/dev/null 2>&1; [ $? -eq "$want" ]; }
to() { local f=$1; shift; "$@" > "$f"; }
W=$METRO_DIR/work; mkdir -p "$W"

metro_pki N1 N2 N3 N4
metro_sae SAE_1 N1; metro_sae SAE_2 N2; metro_sae SAE_3 N3; metro_sae SAE_4 N4; metro_sae SAE_4b N4
metro_ghost SAE_X N4   # in every directory, but N4 does not serve it: N4 refuses its relays
metro_link N1 N2; metro_link N2 N3; metro_link N4 N3
metro_route N1 N3 N2; metro_route N1 N4 N2; metro_route N2 N4 N3
metro_route N4 N2 N3; metro_route N4 N1 N3; metro_route N3 N1 N2
for n in N1 N2 N3 N4; do metro_start "$n"; done
for n in N1 N2 N3 N4; do fatal "$n: every link up" wait_for 20 metro_links_up "$n"; done
sleep 0.5

# --- status towards a relayed slave ----------------------------------------------------------------
metro_status N1 SAE_1 SAE_4 > "$W/status.json"
check "relayed status: source N1, target N4, 3 hops on the static route, max_SAE_ID_count 7" python3 - "$W/status.json" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
x = d["status_extension"]
assert (d["source_KME_ID"], d["target_KME_ID"], d["master_SAE_ID"], d["slave_SAE_ID"]) == \
    ("N1", "N4", "SAE_1", "SAE_4"), d
assert d["max_SAE_ID_count"] == 7 and d["key_size"] == 256 and d["stored_key_count"] > 0, d
assert x["relayed"] is True and x["route"] == ["N1", "N2"] and len(x["links"]) == 1, x
EOF

# --- the same key at both ends, 1, 2 and 3 hops, both directions -----------------------------------
relay_ok() { # SRC SRC_SAE DST DST_SAE N [SIZE]: enc at SRC, dec at DST, same keys
	local tag=$1-$3-$5
	metro_cli "$1" "$2" enc "$4" -n "$5" ${6:+-s $6} --show-keys > "$W/enc-$tag" || return 1
	# shellcheck disable=SC2046
	metro_cli "$3" "$4" dec "$2" $(keys_of "$W/enc-$tag") ${6:+-s $6} --show-keys > "$W/dec-$tag" || return 1
	same_keys "$W/enc-$tag" "$W/dec-$tag" && [ "$(wc -l < "$W/enc-$tag")" = "$5" ]
}
check "1 hop  (N1 -> N2): 3 keys, same at the destination" relay_ok N1 SAE_1 N2 SAE_2 3
check "2 hops (N1 -> N3): 3 keys, same at the destination" relay_ok N1 SAE_1 N3 SAE_3 3
check "3 hops (N1 -> N4): 5 keys, same at the destination" relay_ok N1 SAE_1 N4 SAE_4 5
check "3 hops back (N4 -> N1, every hop slave-to-master through grants)" relay_ok N4 SAE_4 N1 SAE_1 4
check "2 hops from the middle (N2 -> N4), 512-bit keys (two link blocks per key)" relay_ok N2 SAE_2 N4 SAE_4 2 512
check "GET form, 1 hop (N3 -> N4)" bash -c "'$METRO_CLI' --url '$(metro_url N3)' --cert '$METRO_PKI/SAE_3.pem' --key '$METRO_PKI/SAE_3.key' --ca '$METRO_PKI/ca.pem' enc SAE_4 -g -n 1 --show-keys > '$W/enc-g' &&
	'$METRO_CLI' --url '$(metro_url N4)' --cert '$METRO_PKI/SAE_4.pem' --key '$METRO_PKI/SAE_4.key' --ca '$METRO_PKI/ca.pem' dec SAE_3 -g \$(awk '{print \$1}' '$W/enc-g') --show-keys > '$W/dec-g' && diff -q '$W/enc-g' '$W/dec-g'"
check "relayed keys are distinct" bash -c "[ \$(cat '$W'/enc-* | awk '{print \$3}' | sort -u | wc -l) = \$(cat '$W'/enc-* | wc -l) ]"

# --- delivered once, to its slave only -------------------------------------------------------------
k1=$(keys_of "$W/enc-N1-N4-5" | head -n 1)
check "400: a relayed key_ID fetched already" exit_is 16 metro_cli N4 SAE_4 dec SAE_1 "$k1"
metro_cli N1 SAE_1 enc SAE_4 -n 1 > "$W/enc-once"
k2=$(keys_of "$W/enc-once")
check "401: another SAE at the destination asks for it" exit_is 17 metro_cli N4 SAE_4b dec SAE_1 "$k2"
check "401: asked as if from another master" exit_is 17 metro_cli N4 SAE_4 dec SAE_2 "$k2"
check "...the rightful slave still gets it" quiet metro_cli N4 SAE_4 dec SAE_1 "$k2"
check "400: an unknown key_ID at the destination" exit_is 16 metro_cli N4 SAE_4 dec SAE_1 00000000-0000-4000-8000-000000000000
check "401: a slave SAE no node serves" exit_is 17 metro_cli N1 SAE_1 enc SAE_NOBODY
check "400: additional_slave_SAE_IDs above max_SAE_ID_count" bash -c "[ \$(curl -s -o /dev/null -w '%{http_code}' --cacert '$METRO_PKI/ca.pem' --cert '$METRO_PKI/SAE_1.pem' --key '$METRO_PKI/SAE_1.key' -H 'Content-Type: application/json' -d '{\"additional_slave_SAE_IDs\":[\"a\",\"b\",\"c\",\"d\",\"e\",\"f\",\"g\",\"h\"]}' '$(metro_url N1)/api/v1/keys/SAE_4/enc_keys') = 400 ]"

# --- link key consumption: exactly what was relayed, the same at both ends of each link -----------
consumption() {
	python3 - "$METRO_DIR" <<'EOF'
import json, subprocess, sys
d = sys.argv[1]
def links(node, sae, other):
    out = subprocess.run(["curl", "-s", "--cacert", d + "/pki/ca.pem", "--cert", d + "/pki/%s.pem" % sae,
                          "--key", d + "/pki/%s.key" % sae,
                          "https://127.0.0.1:%s/api/v1/keys/%s/status" % (ports[node], other)],
                         capture_output=True, text=True).stdout
    return {l["link"]: l for l in json.loads(out)["status_extension"]["links"]}
ports = {}
for n in ["N1", "N2", "N3", "N4"]:
    for line in open(d + "/%s.conf" % n):
        if line.startswith("listen = "):
            ports[n] = line.split(":")[-1].strip()
seen = {"N1": links("N1", "SAE_1", "SAE_4"), "N2": links("N2", "SAE_2", "SAE_4"),
        "N3": links("N3", "SAE_3", "SAE_1"), "N4": links("N4", "SAE_4", "SAE_1")}
# keys relayed over each link by this test: N1->N2 3, N1->N3 3, N1->N4 5+1 (401 checks),
# N4->N1 4, N2->N4 2 x 512, N3->N4 1
want = {"N1-N2": (3 + 3 + 6 + 4) * 256, "N2-N3": (3 + 6 + 4) * 256 + 2 * 512,
        "N4-N3": (6 + 4 + 1) * 256 + 2 * 512}
for link, bits in want.items():
    a, b = [n for n in seen if link in seen[n]]
    la, lb = seen[a][link], seen[b][link]
    print("   %s: %s %d key bits / %d link bits, %s %d / %d" % (link, a, la["relay_key_bits"],
          la["relay_link_bits"], b, lb["relay_key_bits"], lb["relay_link_bits"]))
    assert la["relay_key_bits"] == bits and lb["relay_key_bits"] == bits, (link, bits)
    assert la["relay_link_bits"] == bits and lb["relay_link_bits"] == bits, (link, bits)
    assert la["consumed_bits"] == lb["consumed_bits"], link
EOF
}
check "each link consumed exactly the key bits relayed over it, counted alike at both ends" consumption

# --- multi-SAE: one key for slaves at N3 and N4 -------------------------------------------------
multi() {
	metro_curl N1 SAE_1 -H 'Content-Type: application/json' \
		-d '{"number":2,"additional_slave_SAE_IDs":["SAE_3","SAE_4b"]}' \
		"$(metro_url N1)/api/v1/keys/SAE_4/enc_keys" > "$W/multi.json" || return 1
	python3 - "$W/multi.json" > "$W/multi-enc" <<'EOF' || return 1
import base64, json, sys
for k in json.load(open(sys.argv[1]))["keys"]:
    print(k["key_ID"], len(base64.b64decode(k["key"])) * 8, base64.b64decode(k["key"]).hex())
EOF
	local ids s node
	ids=$(keys_of "$W/multi-enc")
	for s in SAE_4:N4 SAE_3:N3 SAE_4b:N4; do
		node=${s#*:}
		# shellcheck disable=SC2086
		metro_cli "$node" "${s%:*}" dec SAE_1 $ids --show-keys > "$W/multi-${s%:*}" || return 1
		same_keys "$W/multi-enc" "$W/multi-${s%:*}" || return 1
	done
	[ "$(wc -l < "$W/multi-enc")" = 2 ]
}
check "multi-SAE: 2 keys for SAE_4 with SAE_3 (N3) and SAE_4b (N4): each slave gets the same keys" multi
check "multi-SAE: each slave fetches its copy once" exit_is 16 metro_cli N3 SAE_3 dec SAE_1 "$(keys_of "$W/multi-enc" | head -n 1)"

# --- refusals reach the SAE as 503, not a hang ---------------------------------------------------
t0=$(date +%s)
check "503: the destination refuses (SAE_X is not attached at N4)" exit_is 18 metro_cli N1 SAE_1 enc SAE_X
check "...answered well before any relay timeout ($(( $(date +%s) - t0 )) s)" test $(( $(date +%s) - t0 )) -lt 10
check "...and N4 logged the refusal by key_ID" grep -qE "relay [0-9a-f-]{36} .*refused: slave SAE not attached" "$METRO_DIR/N4.log"
metro_stop N3
check "503: a link on the path is down (N3 stopped)" wait_for 10 exit_is 18 metro_cli N1 SAE_1 enc SAE_4
check "...while a 1-hop relay still works" relay_ok N1 SAE_1 N2 SAE_2 1
metro_start N3
check "after N3 is back, 3 hops work again" wait_for 20 relay_ok N1 SAE_1 N4 SAE_4 1

# --- logs ------------------------------------------------------------------------------------------
no_keys_in_logs() {
	python3 - "$W" "$METRO_DIR" <<'EOF'
import glob, sys
keys = set()
for f in glob.glob(sys.argv[1] + "/*"):
    for line in open(f):
        p = line.split()
        if len(p) == 3 and len(p[2]) >= 32:
            keys.add(p[2])
logs = "".join(open(f, errors="replace").read() for f in glob.glob(sys.argv[2] + "/N*.log"))
assert len(keys) > 20, len(keys)
leaked = [k for k in keys if k in logs]
assert not leaked, leaked[:3]
EOF
}
check "relays are logged by key_ID at every hop" bash -c "grep -q 'forwarded N1 -> N3' '$METRO_DIR/N2.log' && grep -q 'reserved for SAE_4' '$METRO_DIR/N4.log'"
check "no relayed key (hex) in any node's log" no_keys_in_logs
finish
