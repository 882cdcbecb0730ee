#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# IPSeQ IKE and AUTH phases between two unmodified Debian charons with the qkd plugin, two qkids
# and two qkd-kmsd KMEs: the QKD key exchange (x25519qkd), the quantum PPK and QPSK bring the
# tunnel up, traffic passes, both sides agree on the key_IDs, and every CHILD_SA rekey (PFS) and
# IKE rekey draws fresh quantum keys.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
export LAB_QKD=yes

fatal "lab with KMEs and qkids comes up" lab up
fatal "gwA initiates" lab initiate gwA
sas=$(sw gwA --list-sas)
check "IKE_SA negotiated the QKD method (1051) and a PPK" grep -q '(1051)/PPK' <<<"$sas"
check "CHILD_SA installed" grep -q INSTALLED <<<"$sas"

ke_a=$(logged_key_ids gwA "key exchange"); ke_b=$(logged_key_ids gwB "key exchange")
ppk_a=$(logged_key_ids gwA "PPK for"); ppk_b=$(logged_key_ids gwB "PPK from")
echo "# key exchange key_IDs gwA: $ke_a / gwB: $ke_b; PPK gwA: $ppk_a / gwB: $ppk_b"
check "one key exchange key_ID, the same on both gateways" \
	test -n "$ke_a" -a "$ke_a" = "$ke_b" -a "$(wc -l <<<"$ke_a")" -eq 1
check "one PPK key_ID, the same on both gateways" test -n "$ppk_a" -a "$ppk_a" = "$ppk_b"
check "PPK and key exchange use different quantum keys" test "$ppk_a" != "$ke_a"
check "initiator confirmed the responder's quantum key" in_log gwA "confirmed quantum key $ke_a"
check "responder saw the key_ID, not the placeholder, as PPK_ID" in_log gwB "PPK from peer 'gwA' is quantum key $ppk_a"
check "QPSK authentication succeeded on gwB" in_log gwB "authentication of 'gwA.ipseq.test' with pre-shared key successful"
check "gwA wiped PPK and QPSK once the IKE_SA was established" in_log gwA "PPK and QPSK of IKE_SA with peer 'gwB' wiped"
check "gwB wiped PPK and QPSK once the IKE_SA was established" in_log gwB "PPK and QPSK of IKE_SA with peer 'gwA' wiped"

marker=49505365512d706c61696e74657874
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$LAB_DIR/wan.pcap" 'udp port 4500 or icmp'
check "hostA pings hostB through the QKD tunnel" \
	ip netns exec "$LAB-hostA" ping -c 5 -i 0.2 -W 2 -p "$marker" 192.0.2.130
capture_stop
check "ESP on the WAN" test "$(pcap_count "$LAB_DIR/wan.pcap" 'udp port 4500')" -ge 10
check "no plaintext on the WAN" not grep -q "IPSeQ-plaintext" "$LAB_DIR/wan.pcap"

status=$(lab qkictl gwA status)
echo "$status" | sed 's/^/#   /' | head -12
check "qkictl on gwA: peer link up" grep -q 'peer qkid link: up' <<<"$status"
out_before=$(grep -oE 'out: [0-9]+' <<<"$status" | head -1 | grep -oE '[0-9]+')
check "qkictl on gwA counts the two IKE keys handed out" test "${out_before:-0}" -ge 2

# CHILD_SA rekey with PFS: esp_proposals carry x25519qkd, so a new quantum key per rekey.
child=$(sw gwA --list-sas | grep -oE 'net: #[0-9]+' | head -1 | grep -oE '[0-9]+')
check "CHILD_SA rekey requested" quiet sw gwA --rekey --child-id "$child"
wait_for 10 bash -c "[ \$(grep -cE 'qkd: key exchange with peer' '$LAB_DIR/gwA/charon.log') -ge 2 ]"
ke_a2=$(logged_key_ids gwA "key exchange")
echo "# key exchange key_IDs after CHILD_SA rekey: $(echo $ke_a2)"
check "CHILD_SA rekey drew a new key_ID" test "$(wc -l <<<"$ke_a2")" -eq 2
wait_for 10 bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -q 'net: #$((child + 1))'"
check "traffic passes after the CHILD_SA rekey" ping_b 3

ike=$(sw gwA --list-sas | grep -oE '^lab: #[0-9]+' | grep -oE '[0-9]+')
check "IKE rekey requested" quiet sw gwA --rekey --ike-id "$ike"
for gw in gwA gwB; do
	wait_for 10 bash -c "[ \$(grep -cE 'qkd: key exchange with peer' '$LAB_DIR/$gw/charon.log') -ge 3 ]"
done
ke_a3=$(logged_key_ids gwA "key exchange"); ke_b3=$(logged_key_ids gwB "key exchange")
echo "# key exchange key_IDs after IKE rekey: gwA $(echo $ke_a3) / gwB $(echo $ke_b3)"
check "IKE rekey drew a third key_ID" test "$(wc -l <<<"$ke_a3")" -eq 3
check "both gateways used the same three key_IDs" test "$ke_a3" = "$ke_b3"
ike_up() { sw gwA --list-sas | matches "^lab: #$((ike + 1)), ESTABLISHED"; }
wait_for 10 ike_up
check "rekeyed IKE_SA established" ike_up
check "traffic passes after the IKE rekey" ping_b 3
check "no key bytes in the logs (no 64-hex-digit runs)" \
	not grep -qE '[0-9a-fA-F]{64}' "$LAB_DIR"/gw?/charon.log "$LAB_DIR"/gw?/qkid.log "$LAB_DIR"/gw?/kmsd.log
finish
