#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Forged ESP packets cannot move key state. While a ping runs through a rotating SA (window key
# from qkid every 16 packets), an attacker who knows only the SPI (read from qkictl) sends a few
# thousand ESP-in-UDP packets with sequence numbers above the replay window and forged epochs in
# the IV: just above the current window, far above, and near 2^32. The ping loses nothing, the
# receiver's window stays where the genuine packets put it, neither qkid moves the SA's epochs or
# grows its key memory, and the receiving datapath counts every forged packet as dropped.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
. "$top/src/libipsec-qkd/tests/dp-lab.sh"
dp_need

forge=$top/src/libipsec-qkd/tests/esp_forge.py
fatal "two KMEs and two qkids come up, peer link up" qki_lab_up --key-rate 2000000
fatal "hosts and LANs around the two sites" dp_lab_up
export DP_KEYS="qkid:$QDIR/qkid-@SITE@.sock" DP_ROT=16:16:stall
fatal "qkd-espd on gwA (rotation every 16 packets, keys from qkid)" dp_espd a
fatal "qkd-espd on gwB" dp_espd b
keys_ready() { test "$(dp_stat "$1" "sa.$2.keys_ready")" -gt 0; }
fatal "window keys on the sending end" wait_for 10 keys_ready a 00001001.out
fatal "... and on the receiving end" wait_for 10 keys_ready b 00001001.in

# what an attacker sees: the inbound SA's SPI at gwB (qkictl sas: SPI DIR PEER LEVEL NEXT-EP ...)
spi=$(qctl b sas | awk '$2 == "in" { print $1; exit }')
echo "# forged packets target SPI $spi (from qkictl sas on site B)"
fatal "qkictl sas on site B shows the inbound SA's SPI" test -n "$spi"

sa_field() {     # sa_field SITE DIR COLUMN: a column of the SA's qkictl sas line
	qctl "$1" sas | awk -v s="$spi" -v d="$2" -v c="$3" '$1 == s && $2 == d { print $c; exit }'
}
key_memory() {   # keys held in qkid's locked key memory (qkictl status)
	qctl "$1" status | sed -n 's/^key memory: \([0-9]*\) of .*/\1/p'
}
rcvbuf_errors() {   # UDP datagrams gwB's kernel dropped for a full socket buffer
	gb awk '/^Udp:/ { if (!h) { for (i = 1; i <= NF; i++) if ($i == "RcvbufErrors") c = i; h = 1 }
		else print $c }' /proc/net/snmp
}
drops() {        # every way the receiving datapath drops an inauthentic ESP packet
	echo $(( $(dp_stat b drop_auth) + $(dp_stat b drop_nokey) + ${1:-0} ))
}
epoch_drops() { local v; v=$(dp_stat b drop_epoch); echo "${v:-0}"; }

n=2000
ha ping -c $n -i 0.005 -W 2 192.0.2.130 > "$DDIR/ping.txt" 2>&1 &
ping_pid=$!
in_epoch_at_least() { test "$(dp_stat b "sa.$spi.in.epoch")" -ge "$1"; }
check "the ping runs through the rotating SA (receiver at window 3 or later)" \
	wait_for 20 in_epoch_at_least 3

mem_a=$(key_memory a) mem_b=$(key_memory b)
drops0=$(drops "$(epoch_drops)") rcv0=$(rcvbuf_errors)
cur=$(dp_stat b "sa.$spi.in.epoch")
w0=$(dp_stat b "sa.$spi.in.windows")
echo "# before: receiver at epoch $cur; qkid key memory A $mem_a, B $mem_b keys; drops $drops0"

sent=0
phase() {        # phase WHAT FIRST:LAST COUNT SEQ
	local k
	k=$(ga python3 "$forge" --to 198.51.100.2:4500 --spi "$spi" --epochs "$2" --count "$3" \
		--seq "$4") || k=0
	echo "# forged $k packets with epochs $2 ($1)"
	sent=$((sent + k))
}
phase "just above the current window" "$((cur + 1)):$((cur + 300))" 1500 $((0x70000000))
phase "far above" "100000:2147483647" 1000 $((0x71000000))
phase "near 2^32" "0xfffffff0:0xffffffff" 1000 $((0x72000000))
check "the forged packets were sent while the ping ran" kill -0 "$ping_pid"
wait "$ping_pid"
received=$(sed -n 's/.* \([0-9]*\) received.*/\1/p' "$DDIR/ping.txt")

dropped=$(( $(drops "$(epoch_drops)") - drops0 ))
lost=$(( $(rcvbuf_errors) - rcv0 ))
ep_b=$(dp_stat b "sa.$spi.in.epoch") ep_a=$(dp_stat a "sa.$spi.out.epoch")
echo "# after: $received of $n pings answered; receiver at epoch $ep_b (sender $ep_a," \
	"$(( $(dp_stat b "sa.$spi.in.windows") - w0 )) windows followed meanwhile)"
echo "# receiver drops: auth $(dp_stat b drop_auth), nokey $(dp_stat b drop_nokey)," \
	"epoch out of bounds $(epoch_drops), window moves after catch-up $(dp_stat b "sa.$spi.in.jumps")"
echo "# qkictl sas: site A $(qctl a sas | awk -v s="$spi" '$1 == s' | tr -s ' ');" \
	"site B $(qctl b sas | awk -v s="$spi" '$1 == s' | tr -s ' ')"
echo "# qkid key memory after: A $(key_memory a), B $(key_memory b) keys"

check "the ping lost nothing ($received of $n)" test "${received:-0}" -eq $n
check "the receiver's window stays with the sender's (epoch $ep_b <= $ep_a)" \
	test "$ep_b" -le "$ep_a"
check "the receiver kept following genuine windows" \
	test "$(dp_stat b "sa.$spi.in.windows")" -gt "$w0"
check "every forged packet was dropped and counted ($dropped + $lost lost in the socket = $sent)" \
	test "$((dropped + lost))" -eq "$sent" -a "$sent" -eq 3500
check "forged epochs beyond the bound are counted as such" test "$(epoch_drops)" -ge 1000
check "qkid on site B did not move the SA's epochs (next epoch <= sender's $ep_a + 64)" \
	test "$(sa_field b in 5)" -le $((ep_a + 64))
check "qkid on site A did not move them either" test "$(sa_field a out 5)" -le $((ep_a + 64))
check "the SA keeps buffered keys on both qkids" \
	test "$(sa_field a out 4 | cut -d/ -f1)" -gt 0 -a "$(sa_field b in 4 | cut -d/ -f1)" -gt 0
check "qkid key memory on site A did not grow (before $mem_a, after $(key_memory a))" \
	test -n "$mem_a" -a "$(key_memory a)" -le $((mem_a + 64))
check "... nor on site B (before $mem_b, after $(key_memory b))" \
	test -n "$mem_b" -a "$(key_memory b)" -le $((mem_b + 64))
check "no window was moved by a forged packet" test "$(dp_stat b "sa.$spi.in.jumps")" = 0
dp_espd_stop a; dp_espd_stop b
finish
