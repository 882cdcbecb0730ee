#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Key exhaustion with real qkids: the KMEs make only 10 keys/s, and during each ping flood site
# A's KME (the key master) is in an outage, so the supply is just what the buffers hold, however
# fast or slow this machine runs the flood; the datapath wants a new window key every 8 packets. With "stall", no window carries more than 8 packets, the rest is dropped
# and counted; with "reuse" (rpk 8..32), the rpk loop lets windows grow to at most 32 packets
# as the buffer empties, and beyond that packets are dropped and counted. Never plaintext, nothing fails
# authentication, and traffic resumes when keys come back.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
. "$top/src/libipsec-qkd/tests/dp-lab.sh"
dp_need

pcap_py=$top/src/libipsec-qkd/tests/esp_pcap.py
marker=49505365512d706c61696e74657874
export QKI_SA_BUFFER_MAX=8 QKI_SA_BUFFER_TOTAL=32 QKI_POOL_TARGET=8 QKI_BATCH=4
fatal "two KMEs (10 keys/s) and two qkids come up" qki_lab_up --key-rate 2560
fatal "hosts and LANs around the two sites" dp_lab_up
export DP_KEYS="qkid:$QDIR/qkid-@SITE@.sock:0"
keys_ready() { test "$(dp_stat "$1" "sa.$2.keys_ready")" -gt 0; }
keys_at_least() { test "$(dp_stat "$1" "sa.$2.keys_ready")" -ge "$3"; }

run() {   # run POLICY ROTATION SPI_AB SPI_BA COUNT: ping flood through the tunnel, WAN captured
	export DP_ROT=$2 DP_SPI_AB=$3 DP_SPI_BA=$4
	count=$5
	fatal "qkd-espd on gwA ($1: rotation=$2)" dp_espd a
	fatal "qkd-espd on gwB" dp_espd b
	check "first window keys arrive" wait_for 10 keys_ready a "0000${3#0x}.out"
	wait_for 10 keys_ready b "0000${3#0x}.in"
	no_gso "$DP_GW_A" "$DP_WAN_A"              # one captured frame per ESP packet
	fatal "tcpdump on gwA's WAN" capture_start_ns "$DP_GW_A" "$DP_WAN_A" "$DDIR/wan-$1.pcap" udp
	# let both sending SAs buffer some window keys first (so windows do switch), then cut supply
	wait_for 10 keys_at_least a "0000${3#0x}.out" 8
	wait_for 10 keys_at_least b "0000${4#0x}.out" 8
	kill -USR1 "${KPID[a]}"                     # KME outage: no new keys from here on
	ha ping -c "$count" -i 0.002 -W 1 -p "$marker" 192.0.2.130 > "$DDIR/ping-$1.txt" 2>&1
	kill -USR1 "${KPID[a]}"                     # outage over
	capture_stop
	python3 "$pcap_py" epochs "$DDIR/wan-$1.pcap" > "$DDIR/epochs-$1.txt"
	received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$DDIR/ping-$1.txt")
	spi=0000${3#0x}
	max_pk=$(awk -v s="$spi" '$1 == s && $3 > m {m = $3} END {print m + 0}' "$DDIR/epochs-$1.txt")
	n_pk=$(awk -v s="$spi" '$1 == s { n += $3 } END { print n + 0 }' "$DDIR/epochs-$1.txt")
	windows=$(dp_stat a sa.$spi.out.windows) packets=$(dp_stat a sa.$spi.out.packets)
	echo "# $1: $received of $count pings answered; $packets packets in $windows window switches," \
		"stall drops $(dp_stat a sa.$spi.out.stall_drops), reuse $(dp_stat a sa.$spi.out.reuse_packets)," \
		"$n_pk packets and at most $max_pk per window on the wire (tcpdump may drop some)"
}

# Some 8 to 16 window keys per SA are buffered when the outage starts: 16 x 8 < 1000 and
# 16 x 32 < 2000, so the flood must run out of keys.
run stall 8:8:stall 0x1201 0x2201 1000
check "keys ran out: packets were dropped and counted" test "$(dp_stat a drop_stall)" -gt 0
check "the per-SA counter agrees" test "$(dp_stat a sa.00001201.out.stall_drops)" -gt 0
check "some traffic still passed" test "$received" -gt 0
check "not everything passed (the buffered keys cannot cover the flood)" test "$received" -lt "$count"
check "no window on the wire carries more than rpk = 8 packets" test "$max_pk" -le 8
check "datapath counters: packets <= (windows + 1) x 8" test "$packets" -le $(( (windows + 1) * 8 ))
check "no key was stretched" test "$(dp_stat a sa.00001201.out.reuse_packets)" -eq 0
check "nothing failed authentication" test "$(dp_stat b drop_auth)" -eq 0
check "no plaintext on the WAN" not python3 "$pcap_py" grep "$DDIR/wan-stall.pcap" "$marker"
dp_espd_stop a; dp_espd_stop b

run reuse 8:32:reuse 0x1202 0x2202 2000
# the rpk loop raises rpk towards rpk_max as the buffer empties (the supply is cut), so the
# windows grow before any key is stretched; beyond rpk_max, reuse has no room left: drops
check "the SA spent its last keys at up to rpk_max: rpk above 8 ($(dp_stat a sa.00001202.out.rpk); $(dp_stat a sa.00001202.out.reuse_packets) beyond rpk)" \
	test "$(dp_stat a sa.00001202.out.rpk)" -gt 8
check "no window on the wire carries more than rpk_max = 32 packets" test "$max_pk" -le 32
check "datapath counters: packets <= (windows + 1) x 32" test "$packets" -le $(( (windows + 1) * 32 ))
check "some window did carry more than 8 (the growth is real)" test "$max_pk" -gt 8
check "beyond the bound, packets were dropped and counted" test "$(dp_stat a drop_stall)" -gt 0
check "nothing failed authentication" test "$(dp_stat b drop_auth)" -eq 0
check "no plaintext on the WAN" not python3 "$pcap_py" grep "$DDIR/wan-reuse.pcap" "$marker"
# the KME is back (10 keys/s): once qkid has noticed and keys arrived, a slow ping passes again
check "traffic resumes once keys arrived again" wait_for 20 quiet ha ping -c 3 -i 0.5 -W 2 192.0.2.130
dp_espd_stop a; dp_espd_stop b
finish
