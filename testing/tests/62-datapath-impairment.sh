#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key rotation every 16 packets (keys from real qkids) through an impairing relay on the WAN:
# the last packet of every window is delivered after the first one of the next window, and
# packets are dropped, corrupted and replayed. Everything authentic arrives exactly once,
# reordering across window boundaries costs nothing, every corrupted packet fails
# authentication and every replayed one hits the replay window; all of it is counted.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
. "$top/src/libipsec-qkd/tests/dp-lab.sh"
dp_need

fatal "two KMEs and two qkids come up" qki_lab_up --key-rate 2000000
fatal "hosts and LANs around the two sites" dp_lab_up
export DP_KEYS="qkid:$QDIR/qkid-@SITE@.sock" DP_ROT=16:16:stall DP_OUT_DST_A=198.51.100.2:4600
ip netns exec "$DP_GW_B" python3 "$top/src/libipsec-qkd/tests/esp_impair.py" --listen 198.51.100.2:4600 \
	--to 198.51.100.2:4500 --hold 16 --drop 13 --corrupt 11 --dup 7 \
	--stats "$DDIR/relay.stats" --max-seconds 100 &
DP_PID[relay]=$!
fatal "relay runs in gwB's namespace" wait_for 5 test -s "$DDIR/relay.stats"
fatal "qkd-espd on gwA, its ESP to gwB goes through the relay" dp_espd a
fatal "qkd-espd on gwB" dp_espd b
keys_ready() { test "$(dp_stat "$1" "sa.$2.keys_ready")" -gt 0; }
check "window keys on both ends" wait_for 10 keys_ready a 00001001.out
check "... and on the receiving end" wait_for 10 keys_ready b 00001001.in

n=475             # the last echo request is not held back (475 % 16 != 0)
ha ping -c $n -i 0.005 -W 2 192.0.2.130 > "$DDIR/ping.txt" 2>&1
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$DDIR/ping.txt")
# the relay writes its counters each second: wait (bounded) for the snapshot with all of them
wait_for 5 grep -qx "received=$n" "$DDIR/relay.stats"
cp "$DDIR/relay.stats" "$DDIR/relay-phase1.stats"
rs() { sed -n "s/^$1=//p" "$DDIR/relay-phase1.stats"; }
echo "# relay: $(tr '\n' ' ' < "$DDIR/relay-phase1.stats")"
echo "# pings: $received of $n answered"
check "the relay saw every echo request" test "$(rs received)" -eq $n
check "reordering across window boundaries happened ($(rs held_across_epochs) times)" \
	test "$(rs held_across_epochs)" -ge 20
check "every echo request that arrived intact was answered, once" \
	test "$received" -eq $((n - $(rs dropped) - $(rs corrupted)))
check "no duplicate replies" not grep -q DUP "$DDIR/ping.txt"
check "corrupted packets failed authentication: $(dp_stat b drop_auth) = $(rs corrupted_sent)" \
	test "$(dp_stat b drop_auth)" -eq "$(rs corrupted_sent)"
check "replayed packets hit the replay window: $(dp_stat b drop_replay) = $(rs duplicated)" \
	test "$(dp_stat b drop_replay)" -eq "$(rs duplicated)"
check "no packet lacked its window key despite reordering" test "$(dp_stat b drop_nokey)" -eq 0
check "the receiver went through every window" \
	test "$(dp_stat b sa.00001001.in.windows)" -ge $((n / 16 - 2))
check "per-SA counters agree with the datapath's" \
	test "$(dp_stat b sa.00001001.in.auth_drops)" -eq "$(dp_stat b drop_auth)"

# a blackout longer than the receiver's lookahead (64 windows = 1024 packets): hostA keeps
# sending, gwA moves on through ~190 windows; afterwards gwB must follow, not stay stuck
kill -USR1 "${DP_PID[relay]}"
quiet ha ping -c 3000 -i 0.001 -W 1 192.0.2.130
kill -USR1 "${DP_PID[relay]}"
ha ping -c 100 -i 0.01 -W 1 192.0.2.130 > "$DDIR/ping2.txt" 2>&1
after=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$DDIR/ping2.txt")
echo "# after the blackout: $after of 100 pings answered; gwB jumped to epoch $(dp_stat b sa.00001001.in.epoch) (gwA at $(dp_stat a sa.00001001.out.epoch))"
check "after a blackout beyond the lookahead the tunnel recovers" test "${after:-0}" -ge 50
check "the receiver caught up with the sender's window" \
	test "$(dp_stat b sa.00001001.in.epoch)" -ge "$(( $(dp_stat a sa.00001001.out.epoch) - 2 ))"
kill "${DP_PID[relay]}"; wait "${DP_PID[relay]}" 2>/dev/null; unset "DP_PID[relay]"
check "authentication failures are exactly the corrupted packets (or fewer: some fell before the jump)" \
	test "$(dp_stat b drop_auth)" -le "$(sed -n 's/^corrupted_sent=//p' "$DDIR/relay.stats")"
dp_espd_stop a; dp_espd_stop b
finish
