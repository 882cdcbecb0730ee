#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# check-timeout: 420
# A graceful restart (SIGTERM, then start and load again) of the responder gwB under a rotating
# kernel-qkd tunnel whose initiator gwA keeps it up (start_action = start, dpd_action = restart,
# close_action = start, keyingtries = 0). gwB's charon sends DELETE as it ends, so gwA initiates
# again at once; gwB's new charon must not answer before its connections are loaded, or its
# NO_PROPOSAL_CHOSEN ends gwA's attempt for good (the soak's open defect of seed 25808:
# 0 CHILD_SAs 150 s later). 'lab restart' holds IKE until the load has returned, as the
# operator's systemd drop-in conf/systemd/strongswan.service.d/ipseq-ike-hold.conf.example
# does; LAB_LOAD_DELAY stands for a configuration that takes seconds to load (1000 CHILD_SAs on
# a busy machine), so gwA's retransmissions surely arrive while gwB has started but not loaded.
# Then the initiator gwA restarts under the same hold (the operator's ipseq-ike-hold.nft): it
# drops IKE_SA_INIT requests only, so the answers to gwA's own initiations pass.
. "$(dirname "$0")/../lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for network namespaces"
for b in src/qki/qkid src/kmsd/qkd-kmsd; do
	[ -x "$top/$b" ] || skip "$b not built"
done
export LAB_DATAPATH=kernel-qkd LAB_QKD=yes
installed() { sw "$1" --list-sas --raw 2>/dev/null | matches 'state=INSTALLED'; }
both_installed() { installed gwA && installed gwB; }
# within SECONDS COMMAND...: poll COMMAND each second until it succeeds or SECONDS of wall time
# have passed (a swanctl call takes long on a loaded machine: wait_for's count of 0.1 s steps
# would run far longer than it says)
within() {
	local end=$(( SECONDS + $1 )); shift
	while [ "$SECONDS" -lt "$end" ]; do "$@" >/dev/null 2>&1 && return 0; sleep 1; done
	return 1
}

fatal "QKD lab with kernel-qkd comes up" lab up
for gw in gwA gwB; do
	fatal "$gw restarts with rotation (rpk 100..400, reuse)" quiet lab rotation "$gw" 100 400 reuse
done
# gwA keeps the tunnel up on its own, as the soak's gwA does
sed -i 's/^\(\t\tppk_required = yes\)$/\1\n\t\tdpd_delay = 5s\n\t\tkeyingtries = 0/;
	s/^\(\t\t\t\tesp_proposals = .*\)$/\1\n\t\t\t\tstart_action = start\n\t\t\t\tdpd_action = restart\n\t\t\t\tclose_action = start/' \
	"$LAB_DIR/gwA/swanctl.conf"
fatal "gwA's connection keeps the tunnel up (start, restart, close_action = start)" \
	grep -q 'close_action = start' "$LAB_DIR/gwA/swanctl.conf"
fatal "gwB loads its connection" quiet lab load gwB
fatal "gwA loads its connection" quiet lab load gwA
fatal "gwA's start_action sets the CHILD_SA up" within 60 both_installed
check "traffic rotates keys before the restart" quiet ping_all hostA 500 0.002 192.0.2.130

na=$(log_lines gwA)
LAB_LOAD_DELAY=8 lab restart gwB >/dev/null 2>&1
check "gwB restarted" test -S "$LAB_DIR/gwB/charon.vici"
check "gwB's IKE hold is released after the load" \
	not quiet ip netns exec "$LAB-gwB" nft list table inet ipseq_ike_hold
check "gwB's charon ended gracefully: gwA received its DELETE" \
	since gwA "$na" 'received DELETE for IKE_SA lab'
check "gwA took the DELETE and initiated again (close_action = start)" \
	since gwA "$na" 'restarting CHILD_SA net'
check "the CHILD_SA is installed on both gateways again" within 90 both_installed
check "gwB answered no IKE_SA_INIT before its connection was loaded (no NO_PROPOSAL_CHOSEN)" \
	not in_log gwB 'no IKE config found'
check "gwA got no final refusal (NO_PROPOSAL_CHOSEN)" not since gwA "$na" 'received NO_PROPOSAL_CHOSEN'
# 1200 pings: gwB sends 1200 replies, at least 3 windows at rpk_max 400 (the counters line
# counts window switches: 500 replies at rpk 400 were 1, seen under --sanitize)
check "traffic flows after the restart" quiet ping_all hostA 1200 0.002 192.0.2.130
check "gwB's new SA rotates with window keys from qkid" \
	wait_for 10 bash -c "'$top/scripts/lab' qkictl gwB sas | grep -qE '^[0-9a-f]{8} +out +gwA'"
nb=$(log_lines gwB)
# the datapath logs an SA's counters when it is deleted (an event wait, not a timing gate)
sw gwA --terminate --ike lab --timeout 30 >/dev/null 2>&1
check "the SA set up after the restart used several key windows (datapath counters)" \
	wait_for 30 windows_at_least gwB 2 "$nb"

# The initiator restarts under the same hold, held until the test releases it (no timing): its
# start_action initiates while IKE is held, so gwB's answer to that IKE_SA_INIT arrives during
# the hold. The hold (the operator's conf/systemd/ipseq-ike-hold.nft) drops only IKE_SA_INIT
# requests: the answer passes and gwA retransmits nothing. A hold of all of UDP 500 and 4500
# drops it: retransmissions, and per restart a half-open IKE_SA at gwB whose quantum key gwB
# spent from its unauthenticated budget (testing/README.md, "The soak").
na=$(log_lines gwA)
quiet lab stop gwA
fatal "gwA's IKE hold is on" ip netns exec "$LAB-gwA" nft -f "$top/conf/systemd/ipseq-ike-hold.nft"
fatal "gwA starts and loads its connection under the hold" \
	bash -c "'$top/scripts/lab' start gwA >/dev/null 2>&1 && '$top/scripts/lab' load gwA >/dev/null 2>&1"
check "gwA, restarted under the hold, sets the CHILD_SA up again" within 90 both_installed
check "gwB's answer to gwA's IKE_SA_INIT passed the hold (gwA retransmitted no request)" \
	not since gwA "$na" 'retransmit [0-9]+ of request with message ID 0'
# ike_hdr FLAGS: an IKE header (28 bytes) of an IKE_SA_INIT with FLAGS (0x08 request, 0x20
# answer), sent from gwB to gwA's port 500 and, behind the non-ESP marker, 4500
ike_hdr() {
	ip netns exec "$LAB-gwB" python3 -c "
import os, socket, struct, sys
hdr = os.urandom(8) + bytes(8) + struct.pack('!BBBBII', 0, 0x20, 34, int(sys.argv[1], 0), 0, 28)
for port, data in ((500, hdr), (4500, bytes(4) + hdr)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3):
        s.sendto(data, ('198.51.100.1', port))
" "$1"
}
# held: the packets the hold's two rules (500, 4500) dropped, "N500 N4500"
held() { ip netns exec "$LAB-gwA" nft list table inet ipseq_ike_hold | awk '/counter/ {
	for (i = 1; i < NF; i++) if ($i == "packets") n[++k] = $(i + 1) } END { print n[1], n[2] }'; }
read -r h500 h4500 <<<"$(held)"
ike_hdr 0x20
check "the hold lets IKE_SA_INIT answers pass (dropped $h500 $h4500 -> $(held))" \
	test "$(held)" = "$h500 $h4500"
ike_hdr 0x08
check "the hold drops IKE_SA_INIT requests on 500 and 4500 (dropped: $(held))" \
	test "$(held)" = "$((h500 + 3)) $((h4500 + 3))"
quiet ip netns exec "$LAB-gwA" nft delete table inet ipseq_ike_hold
finish
