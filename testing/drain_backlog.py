#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""testing/drain_backlog.py QKID_SOCK PEER KEYS_PER_S MAX_SECONDS: take the keys a KME stored
while the lab was idle (KEY_NEW at the master qkid, three connections), in slices of a second,
until a slice brings fewer than KEYS_PER_S keys (the link's own rate is reached) or
MAX_SECONDS passed. A backlog would carry the first seconds of a run beyond the QKD link's
rate and end in the middle of it (docs/key-economy.md). Prints what it took; no key bytes."""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))
import qkid_api  # noqa: E402


def main():
    sock, peer, rate, limit = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
    stop, cnt, lk = threading.Event(), [0, 0], threading.Lock()
    ts = [threading.Thread(target=qkid_api.drain, args=(sock, peer, stop, cnt, lk), daemon=True)
          for _ in range(3)]
    for t in ts:
        t.start()
    t0, last, slices = time.monotonic(), 0, []
    while time.monotonic() - t0 < limit:
        time.sleep(1)
        with lk:
            n = cnt[0]
        slices.append(n - last)
        last = n
        if len(slices) >= 2 and slices[-1] < rate:
            break
    stop.set()
    for t in ts:
        t.join(3)
    print("# drained %d stored keys in %d s (last second: %d)" % (last, len(slices), slices[-1] if slices else 0))


if __name__ == "__main__":
    main()
