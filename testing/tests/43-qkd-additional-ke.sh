#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# strongSwan 6 (Debian 13): QKD as an RFC 9370 additional key exchange. The IKE_SA is
# x25519-ke1_qkd (QKD_KE_PROPOSAL overrides, e.g. x25519-ke1_mlkem768-ke2_qkd with the ML-KEM
# plugin in LAB_PLUGINS): X25519 in IKE_SA_INIT, the QKD key exchange (key_ID and key
# confirmation only) in IKE_INTERMEDIATE; traffic passes; a CHILD_SA rekey with PFS ke1_qkd and
# an IKE rekey each run the QKD key exchange again with a fresh key_ID, the same on both
# gateways and handed out by the KME; qkd as the first (only) key exchange is no keyword. Skipped on strongSwan 5.9.8 (Debian 12), which has no additional key exchanges.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
ver=$(dpkg-query -W -f='${Version}' strongswan-charon 2>/dev/null || echo none)
case "$ver" in
	6.*) ;;
	*) skip "strongSwan $ver has no RFC 9370 additional key exchanges; they need strongSwan 6 (Debian 13: scripts/check --distro trixie)";;
esac
export LAB_QKD=yes
ke=${QKD_KE_PROPOSAL:-x25519-ke1_qkd}
rounds=$(grep -o 'ke[1-7]_' <<<"$ke" | wc -l)   # additional key exchanges, the QKD one last
export LAB_IKE_PROPOSALS="aes256gcm16-prfsha256-$ke"
export LAB_ESP_PROPOSALS="aes256gcm16-$ke"
echo "# strongSwan $ver, proposals $LAB_IKE_PROPOSALS / $LAB_ESP_PROPOSALS"

fatal "lab with KMEs and qkids comes up" lab up
fatal "gwA initiates" lab initiate gwA
sas=$(sw gwA --list-sas)
echo "$sas" | grep -E '^lab:|AES' | sed 's/^/#   /' | head -4
check "IKE_SA negotiated the QKD key exchange as KE$rounds (1052) and a PPK" \
	grep -qE "CURVE_25519/.*KE${rounds}_\(1052\)/PPK" <<<"$sas"
check "CHILD_SA installed" grep -q INSTALLED <<<"$sas"
check "the QKD key exchange ran in IKE_INTERMEDIATE" in_log gwA "generating IKE_INTERMEDIATE request"
check "... and IKE_SA_INIT carried X25519 only (no x25519qkd)" not in_log gwA "\(x25519qkd\)"

ke_a=$(logged_key_ids gwA "key exchange"); ke_b=$(logged_key_ids gwB "key exchange")
echo "# qkd key_IDs gwA: $(echo $ke_a) / gwB: $(echo $ke_b)"
check "one key exchange key_ID, the same on both gateways" \
	test -n "$ke_a" -a "$ke_a" = "$ke_b" -a "$(wc -l <<<"$ke_a")" -eq 1
check "it was the additional key exchange (qkd)" in_log gwA "uses quantum key $ke_a \(qkd\)"
check "initiator confirmed the responder's quantum key" in_log gwA "confirmed quantum key $ke_a \(qkd\)"
check "QPSK authentication succeeded on gwB" in_log gwB "authentication of 'gwA.ipseq.test' with pre-shared key successful"
check "hostA pings hostB through the tunnel" ping_b 5

# CHILD_SA rekey with PFS: CREATE_CHILD_SA with X25519, then IKE_FOLLOWUP_KE with qkd
child=$(sw gwA --list-sas | grep -oE 'net: #[0-9]+' | head -1 | grep -oE '[0-9]+')
check "CHILD_SA rekey requested" quiet sw gwA --rekey --child-id "$child"
wait_for 15 bash -c "[ \$(grep -cE 'qkd: key exchange with peer' '$LAB_DIR/gwB/charon.log') -ge 2 ]"
wait_for 15 bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -q 'net: #$((child + 1))'"
ke_a2=$(logged_key_ids gwA "key exchange")
echo "# key_IDs after the CHILD_SA rekey: $(echo $ke_a2)"
check "CHILD_SA rekey drew a new key_ID" test "$(wc -l <<<"$ke_a2")" -eq 2
check "... in an IKE_FOLLOWUP_KE exchange" in_log gwA "generating IKE_FOLLOWUP_KE request"
check "the rekeyed CHILD_SA has the QKD key exchange (PFS)" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -A1 'net: #$((child + 1))' | grep -qE 'KE${rounds}_\(1052\)'"
check "traffic passes after the CHILD_SA rekey" ping_b 3

ike=$(sw gwA --list-sas | grep -oE '^lab: #[0-9]+' | grep -oE '[0-9]+')
check "IKE rekey requested" quiet sw gwA --rekey --ike-id "$ike"
for gw in gwA gwB; do
	wait_for 15 bash -c "[ \$(grep -cE 'qkd: key exchange with peer' '$LAB_DIR/$gw/charon.log') -ge 3 ]"
done
ike_up() { sw gwA --list-sas | matches "^lab: #$((ike + 1)), ESTABLISHED"; }
wait_for 15 ike_up
check "rekeyed IKE_SA established" ike_up
ke_a3=$(logged_key_ids gwA "key exchange"); ke_b3=$(logged_key_ids gwB "key exchange")
echo "# key_IDs after the IKE rekey: gwA $(echo $ke_a3) / gwB $(echo $ke_b3)"
check "IKE rekey drew a third key_ID" test "$(wc -l <<<"$ke_a3")" -eq 3
check "both gateways used the same three key_IDs" test "$ke_a3" = "$ke_b3"
check "the rekeyed IKE_SA has the QKD key exchange" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | awk '/^lab: #$((ike + 1)),/ { p = 1; next } /^[^ ]/ { p = 0 } p' | grep -qE 'CURVE_25519/.*KE${rounds}_\(1052\)'"
check "traffic passes after the IKE rekey" ping_b 3
for id in $ke_a3; do
	check "the KMEs handed out key_ID $id (gwA's enc_keys, gwB's dec_keys)" \
		bash -c "grep -q 'enc_keys.*$id' '$LAB_DIR/gwA/kmsd.log' && grep -q 'dec_keys.*$id' '$LAB_DIR/gwB/kmsd.log'"
done

echo "## qkd as the first key exchange is no keyword (no hybrid)"
terminate_all
sed -i "s/proposals = aes256gcm16-prfsha256-$ke/proposals = aes256gcm16-prfsha256-qkd/" "$LAB_DIR/gwA/swanctl.conf"
n=$(log_lines gwA)
check "gwA refuses to load the connection" not quiet lab load gwA
check "gwA says why" since gwA "$n" "algorithm 'qkd' not recognized"
check "charon on gwA still runs" kill -0 "$(cat "$LAB_DIR/gwA/run/charon.pid")"
check "no key bytes in the logs (no 64-hex-digit runs)" \
	not grep -qE '[0-9a-fA-F]{64}' "$LAB_DIR"/gw?/charon.log "$LAB_DIR"/gw?/qkid.log "$LAB_DIR"/gw?/kmsd.log
finish
