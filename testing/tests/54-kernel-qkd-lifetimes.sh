#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# also-on: trixie
# kernel-qkd reports real SA usage to charon: with inbound traffic charon's dead peer detection
# stays quiet (query_sa's last-use time), when idle it probes; a volume limit (rekey_bytes) makes
# the datapath signal the soft lifetime and charon rekeys the CHILD_SA while traffic flows. The
# SAs use 64-bit extended sequence numbers (ESN).
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
command -v iperf3 >/dev/null || skip "iperf3 not installed"
export LAB_DATAPATH=kernel-qkd LAB_ESP_PROPOSALS=aes256gcm16-esn

dpd_count() { grep -c 'sending DPD request' "$LAB_DIR/gwA/charon.log"; }

fatal "lab comes up with kernel-qkd on both gateways" lab up
# gwA: DPD every 2 s, rekey the CHILD_SA every 300 MB; the hard limit leaves room for the rekey
# (the datapath checks soft lifetimes every 100 ms, 50 MB at the lab's rate)
sed -i 's/^\t\tversion = 2$/&\n\t\tdpd_delay = 2s/; s/^\t\t\t\tesp_proposals = .*/&\n\t\t\t\trekey_bytes = 300000000\n\t\t\t\tlife_bytes = 600000000/' \
	"$LAB_DIR/gwA/swanctl.conf"
check "gwA's config has dpd_delay and rekey_bytes" \
	bash -c "grep -q 'dpd_delay = 2s' '$LAB_DIR/gwA/swanctl.conf' && grep -q 'rekey_bytes = 300000000' '$LAB_DIR/gwA/swanctl.conf'"
lab load gwA
fatal "gwA initiates the CHILD_SA" lab initiate gwA
check "the CHILD_SA uses ESN" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -q 'ESP:AES_GCM_16-256/ESN'"

# traffic for 6 s: inbound packets keep the peer alive, no DPD needed
ip netns exec "$LAB-hostA" ping -c 30 -i 0.2 -W 1 192.0.2.130 >/dev/null 2>&1 &
ping_pid=$!
sleep 2
before=$(dpd_count)
wait "$ping_pid"
after=$(dpd_count)
echo "# DPD requests during 4 s of traffic: $((after - before))"
check "no DPD request while inbound traffic flows" test "$after" -eq "$before"
sleep 5
idle=$(dpd_count)
echo "# DPD requests during 5 s idle: $((idle - after))"
check "DPD requests when the SA is idle" test "$idle" -gt "$after"
check "the peer answers DPD: IKE_SA stays established" \
	bash -c "'$top/scripts/lab' swanctl gwA --list-sas | grep -q ESTABLISHED"

ip netns exec "$LAB-hostB" iperf3 -s -1 -D >/dev/null 2>&1
wait_for 5 bash -c "ip netns exec '$LAB-hostB' ss -ltn | grep -q ':5201 '"
# a fixed volume (3 x rekey_bytes) rather than a fixed time, so a slow machine still crosses it
rate=$(ip netns exec "$LAB-hostA" timeout 90 iperf3 -c 192.0.2.130 -n 900M -f m 2>&1 | \
	awk '/receiver/ { print $(NF-2) }')
echo "# iperf3 TCP across volume rekeys: ${rate:-?} Mbit/s (not a benchmark)"
check "iperf3 TCP runs across volume-triggered rekeys" \
	awk -v r="${rate:-0}" 'BEGIN { exit !(r > 10) }'
soft=$(grep -c 'kernel-qkd: soft lifetime of SA' "$LAB_DIR/gwA/charon.log")
rekeys=$(grep -c 'creating rekey job for CHILD_SA ESP' "$LAB_DIR/gwA/charon.log")
installed=$(grep -c 'outbound CHILD_SA net{[0-9]*} established' "$LAB_DIR/gwA/charon.log")
echo "# gwA: $soft soft lifetime events, $rekeys rekey jobs, $installed outbound CHILD_SAs"
check "the datapath signalled the soft byte lifetime" test "$soft" -ge 1
check "charon rekeyed on it" test "$rekeys" -ge 1 -a "$installed" -ge 2
check "no hard lifetime reached (rekeys were in time)" \
	not in_log gwA 'kernel-qkd: hard lifetime of SA'
check "traffic continues after the volume rekeys" \
	ip netns exec "$LAB-hostA" ping -c 3 -i 0.2 -W 2 192.0.2.130
finish
