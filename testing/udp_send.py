#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""testing/udp_send.py DST PORT PPS SECONDS [SIZE]: send UDP datagrams of SIZE bytes (default
1200) to DST:PORT at about PPS packets/s for SECONDS, in batches every 10 ms; a constant load
that, unlike iperf3, needs no control connection through the tunnel (a test that starves the
tunnel of keys on purpose keeps its load). Bounded in time; prints what it sent."""
import socket
import sys
import time


def main():
    dst, port, pps, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    size = int(sys.argv[5]) if len(sys.argv) > 5 else 1200
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payload = b"\x00" * size
    t0 = time.monotonic()
    sent = errors = 0
    while True:
        now = time.monotonic()
        if now - t0 >= secs:
            break
        due = int((now - t0) * pps)
        while sent + errors < due:
            try:
                s.sendto(payload, (dst, port))
                sent += 1
            except OSError:
                errors += 1
        time.sleep(0.01)
    print("# udp_send: %d datagrams sent, %d refused, in %.1f s" % (sent, errors, time.monotonic() - t0))


if __name__ == "__main__":
    main()
