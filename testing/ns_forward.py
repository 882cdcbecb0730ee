#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""TCP forwarder from one network namespace into another, for scripts/bench metro.

The metro lab's KMS nodes listen on 127.0.0.1:8443 inside their own namespaces, and
`qkd-etsi014 bench` asks enc_keys at one node and dec_keys at another from one process: run this
in the source namespace (ip netns exec) and it accepts on 127.0.0.1:PORT there and connects each
connection to 127.0.0.1:DST_PORT in the namespace NETNS (a /run/netns path). TLS passes through
untouched (the bytes are opaque here), so the client still checks the destination node's
certificate. A socket belongs to the namespace its creating thread was in, so the main thread
enters NETNS only to create each outgoing socket and returns at once.

usage: ns_forward.py PORT NETNS DST_PORT LIFETIME_S   (exits after LIFETIME_S at the latest)
"""
import ctypes
import os
import select
import socket
import sys
import threading
import time

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def pump(a, b, end):
    # one connection both ways until either side closes; bounded by the forwarder's lifetime
    try:
        while time.monotonic() < end:
            r, _, _ = select.select([a, b], [], [], 1.0)
            for s in r:
                data = s.recv(65536)
                if not data:
                    return
                (b if s is a else a).sendall(data)
    except OSError:
        pass
    finally:
        a.close()
        b.close()


def main():
    port, netns, dst_port, lifetime = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    end = time.monotonic() + lifetime
    home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(netns, os.O_RDONLY)
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    print("listening", flush=True)
    while time.monotonic() < end:
        r, _, _ = select.select([ls], [], [], 1.0)
        if not r:
            continue
        c, _ = ls.accept()
        setns(there)
        try:
            d = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        finally:
            setns(home)
        try:
            d.connect(("127.0.0.1", dst_port))
        except OSError as e:
            print(f"ns_forward: connect: {e}", file=sys.stderr)
            c.close()
            d.close()
            continue
        for s in (c, d):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=pump, args=(c, d, end), daemon=True).start()


if __name__ == "__main__":
    main()
