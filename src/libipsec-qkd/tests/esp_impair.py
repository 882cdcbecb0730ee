#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""ESP-in-UDP impairment relay for the datapath tests (this machine has no netem).

Receives ESP datagrams on --listen and forwards them to --to, applying, by ESP sequence number:
  --drop N        drop packets whose seq % N == 0
  --corrupt N     flip a ciphertext bit of packets whose seq % N == 1 (corrupted counts
                  packets, corrupted_sent datagrams incl. duplicates of corrupted packets)
  --dup N         send packets whose seq % N == 2 twice (a replay)
  --hold N        hold back packets whose seq % N == 0 and send them after the next packet
                  (with rpk = N this reorders across every window boundary)
SIGUSR1 toggles a blackout (everything dropped, counted in blackout_dropped).
Counters go to --stats FILE (key=value) on SIGTERM/SIGINT and every second.
Runs until killed, or --max-seconds.
"""
import argparse
import signal
import socket
import struct
import sys
import time


def addr(s):
    host, port = s.rsplit(':', 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--listen', required=True, type=addr)
    ap.add_argument('--to', required=True, type=addr)
    ap.add_argument('--drop', type=int, default=0)
    ap.add_argument('--corrupt', type=int, default=0)
    ap.add_argument('--dup', type=int, default=0)
    ap.add_argument('--hold', type=int, default=0)
    ap.add_argument('--stats', default=None)
    ap.add_argument('--max-seconds', type=float, default=600)
    a = ap.parse_args()

    st = dict(received=0, forwarded=0, dropped=0, corrupted=0, corrupted_sent=0, duplicated=0,
              held=0, held_across_epochs=0, other=0, blackout_dropped=0)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(a.listen)
    s.settimeout(0.2)
    held = None
    stop = [False]

    def write_stats():
        if a.stats:
            with open(a.stats + '.tmp', 'w') as f:
                for k, v in st.items():
                    f.write('%s=%d\n' % (k, v))
            import os
            os.replace(a.stats + '.tmp', a.stats)

    def on_signal(*_):
        stop[0] = True
    blackout = [False]

    def on_usr1(*_):
        blackout[0] = not blackout[0]
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGUSR1, on_usr1)

    end = time.time() + a.max_seconds
    last = 0
    while not stop[0] and time.time() < end:
        if time.time() - last > 1:
            write_stats()
            last = time.time()
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            if held is not None:
                s.sendto(held[0], a.to)
                st['forwarded'] += 1
                held = None
            continue
        except InterruptedError:
            continue
        st['received'] += 1
        if blackout[0]:
            st['blackout_dropped'] += 1
            continue
        if len(data) < 16 or data[:4] == b'\0\0\0\0':
            st['other'] += 1
            s.sendto(data, a.to)
            continue
        seq, epoch = struct.unpack('>II', data[4:12])
        orig20 = data[20]
        if a.drop and seq % a.drop == 0:
            st['dropped'] += 1
            continue
        if a.corrupt and seq % a.corrupt == 1:
            b = bytearray(data)
            b[20] ^= 0x10
            data = bytes(b)
            st['corrupted'] += 1
            st['corrupted_sent'] += 1
        if a.hold and seq % a.hold == 0 and held is None:
            held = (data, epoch)
            st['held'] += 1
            continue
        s.sendto(data, a.to)
        st['forwarded'] += 1
        if a.dup and seq % a.dup == 2:
            s.sendto(data, a.to)
            # a corrupted duplicate fails authentication again (it is no replay: the
            # first copy never passed), so count it as corrupted
            st['corrupted_sent' if data[20] != orig20 else 'duplicated'] += 1
        if held is not None:
            if held[1] != epoch:
                st['held_across_epochs'] += 1
            s.sendto(held[0], a.to)
            st['forwarded'] += 1
            held = None
    write_stats()


if __name__ == '__main__':
    main()
