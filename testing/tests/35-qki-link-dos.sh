#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Nobody who merely reaches the master qkid's peer port can keep the genuine slave out, and a
# recorded handshake cannot be replayed (issue 12, M1). A HELLO1 recorded from a genuine
# handshake (tcpdump) is replayed on new connections from another host, alone and then together
# with 100 idle connections from a third host, while the slave qkid restarts: the slave must
# link again within 20 s (a bound that only a lock-out exceeds), no replay may get a HELLO2,
# and the link must stay up while the replays go on. Last, with the slave's address configured
# on the master, a connection from any other host is closed before the master says anything.
. "$(dirname "$0")/../lib.sh"
. "$top/src/qki/tests/qki-lab.sh"
qki_need
command -v python3 >/dev/null || skip "python3 missing"
command -v tcpdump >/dev/null || skip "tcpdump missing"

fatal "KMEs and qkids come up" qki_lab_up --key-rate 512000
out=$QDIR/out; mkdir -p "$out"
# the WAN interfaces of the two sites, and two attacking hosts on site B's side of the link
wan_a=$(nsa ip -o -4 addr show to 198.51.100.1 | awk '{ print $2; exit }')
wan_b=$(nsb ip -o -4 addr show to 198.51.100.2 | awk '{ print $2; exit }')
fatal "the sites' WAN interfaces are found ($wan_a, $wan_b)" test -n "$wan_a" -a -n "$wan_b"
nsb ip addr add 198.51.100.3/24 dev "$wan_b"
nsb ip addr add 198.51.100.4/24 dev "$wan_b"

cat > "$out/attack.py" <<'PY'
"""attack.py extract PCAP OUT | flood SRC N STOPFILE | replay SRC FRAME STOPFILE | probe SRC
Each attack runs until STOPFILE exists (at most 90 s) and prints one summary line."""
import os, select, socket, struct, sys, time
MASTER = ("198.51.100.1", 7800)

def conn(src):
    s = socket.socket()
    s.bind((src, 0))
    s.settimeout(2)
    s.connect(MASTER)
    return s

def extract(pcap, dst):
    data = open(pcap, "rb").read()
    if struct.unpack("<I", data[:4])[0] != 0xa1b2c3d4 or struct.unpack("<I", data[20:24])[0] != 1:
        sys.exit("not a little-endian Ethernet pcap")
    i = 24
    while i + 16 <= len(data):
        incl = struct.unpack("<I", data[i + 8:i + 12])[0]
        pkt, i = data[i + 16:i + 16 + incl], i + 16 + incl
        if pkt[12:14] != b"\x08\x00" or pkt[23] != 6:
            continue
        ip = pkt[14:]
        tcp = ip[(ip[0] & 15) * 4:]
        if socket.inet_ntoa(ip[12:16]) != "198.51.100.2" or struct.unpack(">H", tcp[2:4])[0] != 7800:
            continue
        pay = tcp[(tcp[12] >> 4) * 4:]
        if len(pay) >= 16 and pay[:2] == b"QP" and pay[3] == 1:     # type 1: HELLO1
            open(dst, "wb").write(pay[:16 + struct.unpack(">I", pay[4:8])[0] + 32])
            print("HELLO1 of", len(pay), "bytes, protocol version", pay[2])
            return
    sys.exit("no HELLO1 in the capture")

def done(stop, t0):
    return os.path.exists(stop) or time.time() - t0 > 90

def flood(src, n, stop):
    """Hold n idle connections; reopen any the master closes."""
    t0, socks, opened, closed, err = time.time(), [], 0, 0, ""
    while not done(stop, t0):
        while len(socks) < n:
            try:
                socks.append(conn(src))
                opened += 1
            except OSError as e:
                err = str(e)
                break
        r, _, _ = select.select(socks, [], [], 0.2)
        for s in r:
            try:
                gone = s.recv(4096) == b""          # a challenge is read and ignored
            except OSError:
                gone = True
            if gone:
                closed += 1
                socks.remove(s)
                s.close()
    print(f"flood: {opened} connections opened, {closed} closed by the master {err}")

def replay(src, frame, stop):
    """Replay the recorded HELLO1 on new connections; count the HELLO2s that come back."""
    rec, t0, sent, hello2 = open(frame, "rb").read(), time.time(), 0, 0
    while not done(stop, t0):
        try:
            s = conn(src)
            s.sendall(rec)
            sent += 1
            buf, end = b"", time.time() + 0.3
            while time.time() < end:
                r, _, _ = select.select([s], [], [], max(0, end - time.time()))
                if not r:
                    break
                d = s.recv(4096)
                if not d:
                    break
                buf += d
            j = 0
            while j + 16 <= len(buf):                       # walk the frames received
                hello2 += buf[j + 3] == 2
                j += 16 + struct.unpack(">I", buf[j + 4:j + 8])[0] + 32
            s.close()
        except OSError:
            pass
        time.sleep(0.02)
    print(f"replay: {sent} replays sent, {hello2} HELLO2 received")

def probe(src):
    s = conn(src)
    s.settimeout(3)
    try:
        d = s.recv(4096)
        print("probe: closed at once" if d == b"" else f"probe: {len(d)} bytes received")
    except socket.timeout:
        print("probe: open, silent")
    except ConnectionResetError:
        print("probe: closed at once")

cmd = sys.argv[1]
if cmd in ("flood", "replay"):
    print("started", flush=True)
if cmd == "extract": extract(sys.argv[2], sys.argv[3])
elif cmd == "flood": flood(sys.argv[2], int(sys.argv[3]), sys.argv[4])
elif cmd == "replay": replay(sys.argv[2], sys.argv[3], sys.argv[4])
else: probe(sys.argv[2])
PY
# the interpreter itself: a wrapper (pyenv shim) can take seconds to start under load
PY=$(python3 -c 'import sys; print(sys.executable)')
attack() { nsb "$PY" "$out/attack.py" "$@"; }

# --- record a genuine HELLO1: capture while the slave links again ---
nsa tcpdump -i "$wan_a" -n -U --immediate-mode -w "$out/hello.pcap" tcp port 7800 \
	>/dev/null 2>"$out/tcpdump.err" &
cap=$!
wait_for 10 grep -q 'listening on' "$out/tcpdump.err"
qki_stop b
fatal "B restarts" qki_start b
fatal "link up" wait_link 20
sleep 0.3; kill "$cap"; wait "$cap" 2>/dev/null
fatal "a genuine HELLO1 was recorded ($(attack extract "$out/hello.pcap" "$out/hello1.bin" 2>&1))" \
	test -s "$out/hello1.bin"

# linked_within SECONDS: wall-clock bound (qkictl itself is slow while the port is flooded)
linked_within() {
	local end=$((SECONDS + $1))
	while ((SECONDS < end)); do
		link_up && return 0
		sleep 0.2
	done
	return 1
}

# restart B while ATTACKS run; the link must come up and stay up while they go on
under_attack() {
	local name=$1; shift
	rm -f "$out/stop"
	qki_stop b
	local pids=() a
	for a in "$@"; do
		# shellcheck disable=SC2086
		attack $a "$out/stop" > "$out/$name-${a%% *}.txt" 2>&1 & pids+=($!)
	done
	for a in "$@"; do
		fatal "$name: attack ${a%% *} started" wait_for 20 grep -q started "$out/$name-${a%% *}.txt"
	done
	sleep 2
	local t0=$SECONDS
	fatal "$name: B restarts" qki_start b
	check "$name: the slave links within 20 s" linked_within 20
	echo "# $name: link up after $((SECONDS - t0)) s"
	sleep 3
	check "$name: the link stays up while the attack goes on" link_up
	touch "$out/stop"
	wait "${pids[@]}"
	grep -hv started "$out/$name"-*.txt
}

# 1. replayed HELLO1s alone
under_attack replay "replay 198.51.100.4 $out/hello1.bin"
check "replay: the replays were sent" \
	test "$(sed -n 's/^replay: \([0-9]*\) replays.*/\1/p' "$out/replay-replay.txt")" -ge 10
check "replay: no replayed HELLO1 got a HELLO2" grep -q ' 0 HELLO2 received' "$out/replay-replay.txt"

# 2. 100 idle connections from one host plus replays from another
under_attack flood "flood 198.51.100.3 100" "replay 198.51.100.4 $out/hello1.bin"
check "flood: no replayed HELLO1 got a HELLO2" grep -q ' 0 HELLO2 received' "$out/flood-replay.txt"
qa new siteB 2 > "$out/ike-a.txt"; qb get siteA $(awk '{print $1}' "$out/ike-a.txt") > "$out/ike-b.txt"
check "after the attacks, IKE keys agree" diff "$out/ike-a.txt" "$out/ike-b.txt"
check "the master summarised the refusals in its log" grep -q 'peer port: refused' "$QDIR/qkid-a.log"

# 3. the slave's address configured on the master: other hosts are closed at once
qki_stop a
echo "address = 198.51.100.2:7800" >> "$QDIR/qkid-a.conf"      # the [peer] section is last
fatal "A restarts with the peer's address" qki_start a
fatal "link up" wait_link 20
attack probe 198.51.100.3 > "$out/probe.txt" 2>&1
check "a host that is not the configured peer is closed at once ($(cat "$out/probe.txt"))" \
	grep -q 'closed at once' "$out/probe.txt"
check "both qkids still running" kill -0 "${QPID[a]}" "${QPID[b]}"
finish
