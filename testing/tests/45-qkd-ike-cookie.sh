#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# The QKD key exchange across an IKEv2 COOKIE round (RFC 7296 2.6), between two unmodified
# Debian charons with the qkd plugin. gwB asks for cookies once one half-open IKE_SA from gwA's
# address exists (cookie_threshold_ip = 1), and gwA drops gwB's first IKE_SA_INIT answer, so
# gwB holds a half-open IKE_SA and answers gwA's retransmission with a COOKIE. charon then sends
# IKE_SA_INIT anew with the same key exchange object: its KE data must name a fresh quantum
# key, since gwB drew the first key already (the same key_ID again: "key_ID already used",
# NO_PROPOSAL_CHOSEN, final for the initiator). A gateway with three IKE_SAs to a peer whose
# first answers are lost (a restart, a lossy WAN, a DoS) meets this path: scripts/soak found it.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_QKD=yes LAB_CHARON_OPTS="cookie_threshold_ip = 1"

fatal "lab with KMEs and qkids comes up" lab up
# gwA's charon does not see the first IKE_SA_INIT answer (IKE port 500 held for 2 s; charon
# retransmits after 4 s)
ip netns exec "$LAB-gwA" nft -f - <<'NFT'
table inet cookie_test {
	chain in {
		type filter hook input priority 0;
		udp sport 500 udp dport 500 drop
	}
}
NFT
sw gwA --initiate --child net --timeout 40 > "$LAB_DIR/initiate.out" 2>&1 & init=$!
sleep 2
ip netns exec "$LAB-gwA" nft delete table inet cookie_test
wait "$init"; rc=$?
check "gwA's initiation succeeded (exit $rc)" test "$rc" -eq 0
check "gwB answered with a COOKIE" in_log gwB 'generating IKE_SA_INIT response 0 \[ N\(COOKIE\) \]'
check "gwA sent IKE_SA_INIT again with the cookie" in_log gwA 'generating IKE_SA_INIT request 0 \[ N\(COOKIE\)'
check "gwA named a fresh quantum key for the second request" in_log gwA 'sent anew \(a COOKIE retry\): quantum key'
check "gwB resolved every key_ID it was sent" not in_log gwB 'which we cannot obtain'
check "no NO_PROPOSAL_CHOSEN" not in_log gwA 'NO_PROPOSAL_CHOSEN'
sas=$(sw gwA --list-sas)
check "IKE_SA with the QKD method (1051) and a PPK" grep -q '(1051)/PPK' <<<"$sas"
ke_a=$(logged_key_ids gwA "key exchange"); ke_b=$(logged_key_ids gwB "key exchange")
confirmed=$(grep -oE "confirmed quantum key [0-9a-f-]{36}" "$LAB_DIR/gwA/charon.log" | awk '{ print $4 }')
echo "# key exchange key_IDs gwA: $(echo $ke_a) / gwB: $(echo $ke_b); confirmed: $confirmed"
check "gwA drew two key exchange keys (first request, cookie retry)" test "$(wc -l <<<"$ke_a")" -eq 2
check "the confirmed key is the second one" test -n "$confirmed" -a "$confirmed" = "$(tail -n 1 <<<"$ke_a")"
check "gwB used the confirmed key too" grep -qx -- "$confirmed" <<<"$ke_b"
check "hostA pings hostB through the tunnel" ping_b 3
check "no key material in the logs" not grep -qiE '[0-9a-f]{64}' "$LAB_DIR/gwA/charon.log" "$LAB_DIR/gwB/charon.log"
finish
