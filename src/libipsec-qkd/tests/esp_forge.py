#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Forged ESP-in-UDP packets for a rotating SA (testing/tests/65-datapath-forged-epochs.sh).

Sends --count packets to --to with the given SPI, each with a sequence number far above any
genuine one (so it passes the replay check, which comes before authentication) and the epoch
field of the IV (epoch(32) || seq_lo(32), see src/libipsec-qkd/README.md) spread evenly over
--epochs FIRST:LAST. Ciphertext and ICV are random: no packet can authenticate. Sends in
bursts of 64 with a 1 ms pause so the receiver's socket buffer keeps up (pacing only; the
test counts the receiver's drops). Prints the number of packets sent.
"""
import argparse
import os
import socket
import struct
import time


def addr(s):
    host, port = s.rsplit(':', 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--to', required=True, type=addr)
    ap.add_argument('--spi', required=True, type=lambda s: int(s, 16))
    ap.add_argument('--epochs', required=True, help='FIRST:LAST (inclusive, 0..2^32-1)')
    ap.add_argument('--count', type=int, default=1000)
    ap.add_argument('--seq', type=int, default=0x70000000, help='first sequence number')
    a = ap.parse_args()

    first, last = (int(x, 0) for x in a.epochs.split(':'))
    if not (0 <= first <= last <= 0xffffffff) or a.count < 1 or a.spi == 0:
        ap.error('bad --epochs, --count or --spi')
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    span = last - first
    sent = 0
    for i in range(a.count):
        epoch = first + (span * i // (a.count - 1) if a.count > 1 else 0)
        seq = (a.seq + i) & 0xffffffff
        body = os.urandom(64 + 16)          # "ciphertext" and ICV
        pkt = struct.pack('>IIII', a.spi, seq, epoch, seq) + body
        s.sendto(pkt, a.to)
        sent += 1
        if sent % 64 == 0:
            time.sleep(0.001)
    print(sent)


if __name__ == '__main__':
    main()
