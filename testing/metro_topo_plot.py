#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The metro lab's topology with per-link key levels, as a gnuplot script (scripts/bench metro).

Reads path-controller status snapshots (qkd-qscctl status --json, GET /api/v1/status) and prints
a gnuplot script drawing one panel per snapshot: the ring N1..N4, the access node A5 off N1 (a
star leaf), the DC gateways beside their nodes, and every QKD link coloured by the key it stores
(the controller's stored_bits: the lower of its two ends) with the level written on it; a link
the controller holds down is dashed and says why.

usage: metro_topo_plot.py OUT.png TITLE1 STATUS1.json [TITLE2 STATUS2.json ...]
"""
import json
import sys

POS = {"N1": (-1.0, 1.0), "N2": (1.0, 1.0), "N3": (1.0, -1.0), "N4": (-1.0, -1.0),
       "A5": (-2.1, 2.1)}
DCS = {"dc1": ("A5", (-3.2, 2.1)), "dc2": ("N2", (2.1, 2.1)), "dc3": ("N3", (2.1, -2.1)),
       "dc4": ("N4", (-2.1, -2.1))}


def q(s):
    return '"' + s.replace('"', "'") + '"'


def panel(title, st, cbmax):
    out = [f"set title {q(title)}", "unset label"]
    up, down = [], []
    for ln in st["links"]:
        a, b = ln["nodes"]
        if a not in POS or b not in POS:
            continue
        (x1, y1), (x2, y2) = POS[a], POS[b]
        kbit = ln.get("stored_bits", 0) / 1000.0
        (up if ln["up"] else down).append(f"{x1} {y1} {x2 - x1} {y2 - y1} {kbit:.1f}")
        mx, my = (x1 + x2) / 2, (y1 + y2) / 2
        text = f"{ln['link']}\\n{kbit:.0f} kbit" if ln["up"] else \
            f"{ln['link']} DOWN\\n({ln.get('down_reason', 'down')})"
        # a down link's label sits beside it, so its dashes stay visible
        if not ln["up"]:
            mx, my = mx + (0.45 if x1 == x2 else 0), my - (0 if x1 == x2 else 0.3)
        out.append(f"set label {q(text)} at {mx},{my} center front font ',9' boxed")
    for n, (x, y) in POS.items():
        out.append(f"set label {q(n)} at {x},{y} center front font ',10' tc rgb 'white'")
    for dc, (node, (x, y)) in DCS.items():
        out.append(f"set label {q(dc)} at {x},{y} center front font ',10'")
    nodes = "\n".join(f"{x} {y}" for x, y in POS.values())
    dcs = "\n".join(f"{x} {y} {POS[n][0] - x} {POS[n][1] - y}" for n, (x, y) in DCS.values())
    blocks = [("$UP", up or ["NaN NaN NaN NaN 0"]), ("$DOWN", down or ["NaN NaN NaN NaN 0"]),
              ("$NODES", nodes.split("\n")), ("$DCS", dcs.split("\n"))]
    for name, rows in blocks:
        out.append(f"{name} << EOD")
        out.extend(rows)
        out.append("EOD")
    out.append(f"set cbrange [0:{cbmax:.1f}]")
    out.append("plot $DCS using 1:2:3:4 with vectors nohead lw 2 dt 3 lc rgb 'gray50' notitle, \\\n"
               "  $UP using 1:2:3:4:5 with vectors nohead lw 10 lc palette notitle, \\\n"
               "  $DOWN using 1:2:3:4 with vectors nohead lw 4 dt 2 lc rgb 'red' notitle, \\\n"
               "  $NODES using 1:2 with points pt 7 ps 5 lc rgb 'navy' notitle, \\\n"
               "  $DCS using 1:2 with points pt 5 ps 3.5 lc rgb 'gray80' notitle")
    return out


def main():
    png, pairs = sys.argv[1], sys.argv[2:]
    snaps = [(pairs[i], json.load(open(pairs[i + 1]))) for i in range(0, len(pairs) - 1, 2)]
    cbmax = max([ln.get("stored_bits", 0) / 1000.0 for _, st in snaps for ln in st["links"]] + [1])
    print(f"set terminal pngcairo size {600 * len(snaps)},600")
    print(f"set output {q(png)}")
    print("set size ratio -1; set xrange [-3.8:2.8]; set yrange [-2.7:2.7]")
    print("unset xtics; unset ytics; unset border; unset key")
    print("set palette defined (0 'red', 0.5 'orange', 1 'forest-green')")
    print("set cblabel 'stored key, kbit'; set style textbox opaque noborder")
    print(f"set multiplot layout 1,{len(snaps)}")
    for title, st in snaps:
        print("\n".join(panel(title, st, cbmax)))
    print("unset multiplot")


if __name__ == "__main__":
    main()
