#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""testing/key_economy_report.py OUTDIR [--timeline LOAD]: summarise a key_economy_run.sh run
(docs/key-economy.md): per load, from gwA's rpk_trace of its outbound SA and gwB's of the same
SA inbound: packets, windows, keys arrived, packets beyond rpk, rpk (min/median/max, changes,
reversals of direction), the buffer level (min/median, share of ticks empty), what the ticks
with packets beyond rpk looked like, and gwB's packets without key. --timeline LOAD prints the
100 ms trace around the first packets beyond rpk of that load. --series and --phase (below) serve
the e2e tests."""
import csv
import statistics
import sys


def load_trace(path):
    rows = []
    with open(path) as f:
        for r in csv.DictReader(f):
            for k in r:
                if k not in ("spi", "dir"):
                    r[k] = float(r[k])
            rows.append(r)
    return rows


def busiest(rows, d):
    """the SA of direction d that carried most packets"""
    best = {}
    for r in rows:
        if r["dir"] == d:
            best[r["spi"]] = max(best.get(r["spi"], 0), r["packets"])
    spi = max(best, key=best.get) if best else None
    return [r for r in rows if r["spi"] == spi]


def window(rows, t0, t1):
    return [r for r in rows if t0 <= r["t_ms"] <= t1]


def delta(sel, k):
    return sel[-1][k] - sel[0][k] if len(sel) > 1 else 0


def reversals(vals):
    n, last = 0, 0
    for a, b in zip(vals, vals[1:]):
        s = (b > a) - (b < a)
        if s and last and s != last:
            n += 1
        if s:
            last = s
    return n


def summary(out, load, t0, t1, res, a, b):
    sa, sb = window(a, t0, t1), window(b, t0, t1)
    if len(sa) < 3:
        print("load %s: no trace" % load)
        return
    pk, win, ks = delta(sa, "packets"), delta(sa, "windows"), delta(sa, "keys_stored")
    beyond, stall = delta(sa, "beyond_rpk"), delta(sa, "stall_drops")
    rpks = [r["rpk"] for r in sa]
    lv = [r["level"] for r in sa]
    dur = (sa[-1]["t_ms"] - sa[0]["t_ms"]) / 1000
    hit = [i for i in range(1, len(sa)) if sa[i]["beyond_rpk"] > sa[i - 1]["beyond_rpk"]]
    hit_empty = sum(1 for i in hit if sa[i]["level"] == 0 or sa[i - 1]["level"] == 0)
    print("load %s Mbit/s (iperf3: %s): %.1f s, %d packets (%.0f/s), %d windows (%.1f/s), "
          "%d keys arrived (%.1f/s), windows/keys %.3f" % (
              load, res, dur, pk, pk / dur, win, win / dur, ks, ks / dur, win / ks if ks else 0))
    print("  beyond rpk: %d packets = %.2f %% of packets, in %d of %d ticks (%d of them with the "
          "buffer empty at either end); stall drops %d" % (
              beyond, 100 * beyond / pk if pk else 0, len(hit), len(sa) - 1, hit_empty, stall))
    print("  rpk: min %d median %d max %d; %d changes, %d reversals of direction" % (
        min(rpks), statistics.median(rpks), max(rpks),
        sum(1 for x, y in zip(rpks, rpks[1:]) if x != y), reversals(rpks)))
    print("  buffer (keys ahead): min %d median %d max %d; empty in %.1f %% of ticks; share %.1f "
          "keys/s (median)" % (min(lv), statistics.median(lv), max(lv),
                               100 * sum(1 for x in lv if x == 0) / len(lv),
                               statistics.median(r["share"] for r in sa)))
    if sb:
        print("  gwB inbound: %d packets without key (nokey drops), %d windows" % (
            delta(sb, "nokey_drops"), delta(sb, "windows")))


def timeline(a, t0, t1, span=40):
    sa = window(a, t0, t1)
    hit = [i for i in range(1, len(sa)) if sa[i]["beyond_rpk"] > sa[i - 1]["beyond_rpk"]]
    i0 = max(1, (hit[0] if hit else len(sa) // 2) - 10)
    print("t(s)    pps     rpk  level  keys_in  windows  beyond  share")
    for i in range(i0, min(len(sa), i0 + span)):
        p, r = sa[i - 1], sa[i]
        print("%6.1f %7.0f %7d %5d %7d %8d %7d %6.1f" % (
            (r["t_ms"] - t0) / 1000, r["pps"], r["rpk"], r["level"],
            r["keys_stored"] - p["keys_stored"], r["windows"] - p["windows"],
            r["beyond_rpk"] - p["beyond_rpk"], r["share"]))


def phase(csv_path, d, t0, t1, spi=None):
    """--phase CSV in|out T0_MS T1_MS [SPI]: one line for the busiest SA of that direction (or
    SPI) between T0 and T1 (CLOCK_MONOTONIC ms): spi median_rpk beyond_rpk stall_drops
    nokey_drops windows packets min_level median_share (windows, packets and the drops as
    differences; the share in keys/s); for the tests."""
    rows = load_trace(csv_path)
    sel = [r for r in rows if r["spi"] == spi] if spi else busiest(rows, d)
    sel = window(sel, t0, t1)
    if len(sel) < 2:
        print("none 0 0 0 0 0 0 0 0")
        return
    print("%s %d %d %d %d %d %d %d %d" % (
        sel[0]["spi"], statistics.median(r["rpk"] for r in sel), delta(sel, "beyond_rpk"),
        delta(sel, "stall_drops"), delta(sel, "nokey_drops"), delta(sel, "windows"),
        delta(sel, "packets"), min(r["level"] for r in sel),
        statistics.median(r["share"] for r in sel)))


def series(csv_path, d, t0, t1, step_ms=1000, spi=None):
    """--series CSV in|out T0_MS T1_MS [STEP_MS [SPI]]: the busiest SA's trace (or SPI's) between
    T0 and T1, one line per STEP_MS (default 1000) with the rates over it, so that a test's log
    shows what the loop saw and did: t since T0, packets/s, rpk, keys ahead, keys arrived /s,
    windows /s, fair share, packets beyond rpk, stall drops and packets without key (counts)."""
    rows = load_trace(csv_path)
    sel = [r for r in rows if r["spi"] == spi] if spi else busiest(rows, d)
    sel = window(sel, t0, t1)
    print("t(s)   pkts/s    rpk  ahead  keys_in/s  windows/s   share  beyond  stall  nokey")
    p = None
    for r in sel:
        if p is not None and r["t_ms"] - p["t_ms"] < step_ms:
            continue
        if p is not None:
            dt = (r["t_ms"] - p["t_ms"]) / 1000
            print("%5.1f %8.0f %6d %6d %10.1f %10.1f %7.1f %7d %6d %6d" % (
                (r["t_ms"] - t0) / 1000, (r["packets"] - p["packets"]) / dt, r["rpk"],
                r["level"], (r["keys_stored"] - p["keys_stored"]) / dt,
                (r["windows"] - p["windows"]) / dt, r["share"],
                r["beyond_rpk"] - p["beyond_rpk"], r["stall_drops"] - p["stall_drops"],
                r["nokey_drops"] - p["nokey_drops"]))
        p = r


def main():
    if sys.argv[1] == "--series":
        a = sys.argv[2:]
        series(a[0], a[1], int(a[2]), int(a[3]), int(a[4]) if len(a) > 4 else 1000,
               a[5] if len(a) > 5 else None)
        return
    if sys.argv[1] == "--phase":
        phase(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]),
              sys.argv[6] if len(sys.argv) > 6 else None)
        return
    out = sys.argv[1]
    a = busiest(load_trace(out + "/rpk_trace-gwA.csv"), "out")
    try:
        spi = a[0]["spi"] if a else None
        b = [r for r in load_trace(out + "/rpk_trace-gwB.csv") if r["spi"] == spi]
    except OSError:
        b = []
    runs = [l.split(None, 3) for l in open(out + "/runs.txt") if l.strip()]
    tl = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--timeline" else None
    for r in runs:
        load, t0, t1 = r[0], int(r[1]), int(r[2])
        summary(out, load, t0, t1, r[3] if len(r) > 3 else "?", a, b)
        if tl == load:
            timeline(a, t0, t1)


if __name__ == "__main__":
    main()
