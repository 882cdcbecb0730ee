#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Issue 12, known answers end to end: a capture of a rotating SA (window keys from real qkid and
# qkd-kmsd, as in test 52) is decrypted by an independent decryptor (testing/esp_decrypt.py,
# python3-cryptography, none of our C code) from the keys the gateways exported with the
# test-only setting charon.plugins.kernel-qkd.save_keys. Every ESP packet in both directions
# must decrypt under the derivation docs/derivations.md documents (K_e from the quantum key of
# (SPI, e), salt = CHILD_SA key, info = label || SPI || e), across more than two windows; and the
# same decryptor with a changed label must fail, so the check can fail.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
python3 -c 'import cryptography' 2>/dev/null || skip "python3-cryptography not installed"
for b in src/qki/qkid src/qki/qkictl src/kmsd/qkd-kmsd; do
	[ -x "$top/$b" ] || skip "$b not built (qkid and qkd-kmsd are needed for real window keys)"
done
export LAB_DATAPATH=kernel-qkd LAB_QKD=yes

fatal "QKD lab comes up (KMEs, qkids, kernel-qkd charons)" lab up
for gw in gwA gwB; do
	peer=gwB; [ "$gw" = gwB ] && peer=gwA
	rm -rf "$LAB_DIR/$gw/keys"
	cat >> "$LAB_DIR/$gw/plugins.conf" <<CONF
		kernel-qkd {
			save_keys = $LAB_DIR/$gw/keys
		}
CONF
	fatal "$gw restarts with rotation (rpk 50) and save_keys" quiet lab rotation "$gw" 50 50 reuse
	check "$gw: save_keys warns loudly at startup" \
		in_log "$gw" "kernel-qkd: WARNING: save_keys: CHILD_SA keys and quantum window keys are written to $LAB_DIR/$gw/keys: for tests only"
	check "$gw: the key directory is mode 0700" test "$(stat -c %a "$LAB_DIR/$gw/keys")" = 700
done

fatal "gwA initiates the QKD tunnel" lab initiate gwA net 20
for gw in gwA gwB; do
	check "$gw: both SAs registered with qkid" \
		wait_for 5 bash -c "test \$(grep -cE 'kernel-qkd: (in|out)bound SA [0-9a-f]+ registered with qkid' \
			'$LAB_DIR/$gw/charon.log') -eq 2"
done

# one captured frame per ESP packet: no UDP GSO batches on either WAN
no_gso "$LAB-gwA" wan
no_gso "$LAB-gwB" wan
pcap=$LAB_DIR/wan.pcap
fatal "tcpdump listens on gwA's WAN" capture_start gwA wan "$pcap" 'udp port 4500'
check "hostA pings hostB (300 echo requests and replies across windows of 50 packets)" \
	ip netns exec "$LAB-hostA" ping -q -c 300 -i 0.005 -W 2 192.0.2.130
capture_stop

for gw in gwA gwB; do
	check "$gw: the key files are mode 0600" \
		test "$(stat -c %a "$LAB_DIR/$gw/keys/esp_sa" "$LAB_DIR/$gw/keys/window_keys" | sort -u)" = 600
	check "$gw: save_keys warns at each export" \
		in_log "$gw" "kernel-qkd: WARNING: save_keys: writing the quantum key of SA [0-9a-f]{8} epoch [0-9]+ to"
done
out=$(python3 "$top/testing/esp_decrypt.py" "$pcap" "$LAB_DIR/gwA/keys" "$LAB_DIR/gwB/keys" 2>&1)
rc=$?
echo "$out" | grep -v '^window ' | sed 's/^/# /'
check "every captured ESP packet decrypts under the documented derivation" test "$rc" = 0
check "both directions were captured and decrypted (>= 250 packets each way)" \
	awk '/^sa .* rotating ok/ { if ($9 >= 250) n++ } END { exit !(n == 2) }' <<<"$out"
check "each direction used more than two window keys" \
	awk '/^sa .* rotating ok/ { if ($NF > 2) n++ } END { exit !(n == 2) }' <<<"$out"

# the check can fail: the same decryptor with another HKDF label, or without the CHILD_SA salt
bad=$LAB_DIR/esp_decrypt_bad.py
sed "s/^WINDOW_LABEL = b'IPSeQ ESP window key'/WINDOW_LABEL = b'IPSeQ ESP window kex'/" \
	"$top/testing/esp_decrypt.py" > "$bad"
# (every packet fails authentication, nothing else: the copy imports esp_pcap from its place)
decrypt_bad() {
	local out rc
	out=$(PYTHONPATH=$top/src/libipsec-qkd/tests python3 "$bad" "$pcap" "$LAB_DIR/gwA/keys" \
		"$LAB_DIR/gwB/keys" 2>&1)
	rc=$?
	grep '^packets' <<<"$out" | sed 's/^/# changed derivation: /'
	[ "$rc" = 1 ] && grep -qE '^packets ([0-9]+) decrypted 0 failed \1$' <<<"$out"
}
check "a decryptor with another info label fails on every packet" decrypt_bad
sed "s/length=length, salt=salt,/length=length, salt=None,/" "$top/testing/esp_decrypt.py" > "$bad"
check "a decryptor without the CHILD_SA key as salt fails on every packet" decrypt_bad
# the exported keys themselves never appear in charon's logs
awk '{ print $NF }' "$LAB_DIR/gwA/keys/esp_sa" "$LAB_DIR/gwA/keys/window_keys" > "$LAB_DIR/exported.hex"
check "no exported key in the logs" \
	not grep -qiFf "$LAB_DIR/exported.hex" "$LAB_DIR/gwA/charon.log" "$LAB_DIR/gwB/charon.log"
rm -f "$LAB_DIR/exported.hex"
finish
