#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/bench ipseq: the IPSeQ paper's evaluation on the namespace lab, standard IPsec vs ours.

standard = Debian's charon with strongSwan's kernel-libipsec, plain PSK (X25519), keys replaced
           by CREATE_CHILD_SA;
ours     = the same charon with kernel-qkd (libipsec-qkd datapath), the qkd plugin (x25519qkd,
           quantum PPK, QPSK), qkid and qkd-kmsd, ESP keys replaced per window of rpk packets.

Part 1, latency: ping RTT through the tunnel; key replacement latency (CREATE_CHILD_SA round trip
vs the datapath time of the packet that crosses a window boundary); full handshake time.
Part 2, throughput and loss (iperf3 TCP and UDP) against the key update rate.
Part 3, key supply: keys/s delivered to qkid against fibre length (qkd-kmsd's 0.2 dB/km model),
and the rpk the datapath settles at for offered UDP loads.
Every figure: N repeats (default 3), min/median/max, CSV and PNG under results/ipseq/.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import ike  # noqa: E402
import keys  # noqa: E402
import pcap  # noqa: E402
import qkid_api  # noqa: E402

FULL = {"repeats": 3, "duration": 5, "pings": 1000, "ike_rounds": 10, "supply_interval": 10,
        "supply_warmup": 5, "rpk_duration": 10,
        "rpk_drain": 2}
QUICK = {"repeats": 1, "duration": 2, "pings": 300, "ike_rounds": 5, "supply_interval": 4,
         "supply_warmup": 3, "rpk_duration": 5,
         "rpk_drain": 1.5}
FIBRE_KM = [0, 10, 25, 50, 75, 100]
LOADS = [200, 500, 1000]


def model_keys(km, ref=100000.0, att=0.2, key_bits=256):
    """qkd-kmsd's fibre model (defaults of kmsd.conf) in keys/s of key_bits"""
    return ref * 10 ** (-att * km / 10.0) / key_bits


class Bench:
    def __init__(self, a, p):
        self.a, self.p = a, p
        self.out = a.out
        self.pid = os.getpid()
        self.report = {}       # part -> markdown
        self.missing = []      # lines of what could not be measured
        self.plots = []

    def lab(self, suffix, **kw):
        return B.Lab("bq%d%s" % (self.pid, suffix), **kw)

    def note_missing(self, what, why):
        B.unavailable(what, why)
        self.missing.append("%s: %s" % (what, why))

    def plot(self, script, name, **kv):
        png = os.path.join(self.out, name + ".png")
        err = B.gnuplot(script, png, **kv)
        if err:
            print("plot %s failed: %s" % (name, err))
        else:
            self.plots.append(png)
        return png

    def order(self, labs, i):
        return labs if i % 2 == 0 else list(reversed(labs))

    # ---- part 1 --------------------------------------------------------------------------
    def part1(self, std, ours):
        p, reps = self.p, self.p["repeats"]
        rpk = self.a.switch_rpk
        B.progress("part 1: latency (%d repeats; ours rotates every %d packets)" % (reps, rpk))
        ours.set_plugins(B.rotation_conf(rpk, rpk))
        labs = [("standard", std), ("ours", ours)]
        ping_rows, dp_rows = [], []
        for i in range(reps):
            for name, lab in self.order(labs, i):
                if not lab.child_sa():
                    lab.initiate()
                lan = os.path.join(self.out, "p1-rep%d-%s-lan.pcap" % (i + 1, name))
                wan = os.path.join(self.out, "p1-rep%d-%s-wan.pcap" % (i + 1, name))
                c1 = B.Capture(lab, "gwA", "lanA", lan, "icmp", 128)
                c2 = B.Capture(lab, "gwA", "wan", wan, "udp port 4500 and udp[8:4] != 0", 96)
                r = subprocess.run(lab.nsx("hostA", ["ping", "-n", "-c", str(p["pings"]), "-i", "0.002",
                                                     "-W", "1", B.HOST_B]),
                                   stdout=subprocess.PIPE, text=True, timeout=60)
                drops = c1.stop() + c2.stop()
                rtts = [float(x) for x in re.findall(r"time=([0-9.]+) ms", r.stdout)]
                loss = 100.0 * (p["pings"] - len(rtts)) / p["pings"]
                if not rtts:
                    self.note_missing("part 1 ping %s rep %d" % (name, i + 1), "no echo reply came back")
                    rtts = [float("nan")]
                ping_rows.append((i + 1, name, len(rtts), loss, min(rtts), B.median(rtts),
                                  B.percentile(rtts, 95), B.percentile(rtts, 99), max(rtts)))
                rows, note = pcap.datapath_latency(lan, wan, B.HOST_A, B.WAN["gwA"])
                if note or drops:
                    print("  %s rep %d: %s%s" % (name, i + 1, note, " (tcpdump dropped %d)" % drops
                                                  if drops else ""))
                for d in ("tx", "rx"):
                    for kind, sel in (("switch", True), ("other", False)):
                        us = [x[3] * 1e6 for x in rows if x[0] == d and x[2] == sel]
                        if us:
                            dp_rows.append((i + 1, name, d, kind, len(us), B.median(us),
                                            B.percentile(us, 95), max(us)))
                B.progress("  ping %s rep %d: RTT median %.3f ms, p95 %.3f ms, loss %.1f %%" % (
                    name, i + 1, B.median(rtts), B.percentile(rtts, 95), loss))
                for f in (lan, wan):
                    os.remove(f)
        B.write_csv(os.path.join(self.out, "latency_ping.csv"),
                    ["rep", "datapath", "replies", "loss_pct", "rtt_min_ms", "rtt_median_ms",
                     "rtt_p95_ms", "rtt_p99_ms", "rtt_max_ms"], ping_rows)
        B.write_csv(os.path.join(self.out, "latency_datapath.csv"),
                    ["rep", "datapath", "direction", "packets", "n", "median_us", "p95_us", "max_us"],
                    dp_rows)

        B.progress("part 1: handshake and CREATE_CHILD_SA (%d rounds per repeat)" % p["ike_rounds"])
        ike_rows = []
        for i in range(reps):
            res = ike.measure(labs, p["ike_rounds"], self.out, tag="p1-ike-rep%d" % (i + 1), quiet=True)
            for name, _ in labs:
                r = res[name]
                hs = [x * 1000 for x in r["handshake"]]
                rk = [x * 1000 for x in r["rekey"]]
                ike_rows.append((i + 1, name, len(hs), B.median(hs), B.percentile(hs, 95),
                                 len(rk), B.median(rk), B.percentile(rk, 95), r["failed"]))
                B.progress("  %s rep %d: handshake median %.2f ms, CREATE_CHILD_SA median %.2f ms%s" % (
                    name, i + 1, B.median(hs), B.median(rk),
                    ", %d failed rounds: %s" % (r["failed"], r["errors"][0]) if r["failed"] else ""))
        B.write_csv(os.path.join(self.out, "latency_ike.csv"),
                    ["rep", "datapath", "handshakes", "handshake_median_ms", "handshake_p95_ms",
                     "rekeys", "rekey_median_ms", "rekey_p95_ms", "failed_rounds"], ike_rows)

        # figures: min/median/max over the repeats of each repeat's median
        def mm(rows, name, col, filt=lambda r: True):
            return B.mmm([r[col] for r in rows if r[1] == name and filt(r)])
        ping = {n: mm(ping_rows, n, 5) for n, _ in labs}
        ping95 = {n: mm(ping_rows, n, 6) for n, _ in labs}
        hs = {n: mm(ike_rows, n, 3) for n, _ in labs}
        rk = {n: mm(ike_rows, n, 6) for n, _ in labs}

        def dp(name, d, kind):
            return B.mmm([r[5] for r in dp_rows if r[1] == name and r[2] == d and r[3] == kind])
        sw_tx, sw_rx = dp("ours", "tx", "switch"), dp("ours", "rx", "switch")
        ot_tx, ot_rx = dp("ours", "tx", "other"), dp("ours", "rx", "other")
        st_tx, st_rx = dp("standard", "tx", "other"), dp("standard", "rx", "other")
        extra_tx = B.mmm([a[5] - b[5] for a in dp_rows for b in dp_rows
                          if a[0] == b[0] and a[1] == b[1] == "ours" and a[2] == b[2] == "tx"
                          and a[3] == "switch" and b[3] == "other"])
        extra_rx = B.mmm([a[5] - b[5] for a in dp_rows for b in dp_rows
                          if a[0] == b[0] and a[1] == b[1] == "ours" and a[2] == b[2] == "rx"
                          and a[3] == "switch" and b[3] == "other"])
        f = os.path.join(self.out, "fig1a_ping.csv")
        B.write_csv(f, ["label", "min", "median", "max"],
                    [("standard IPsec", *ping["standard"]), ("IPSeQ (ours)", *ping["ours"])])
        self.plot("bars", "fig1a_ping", csv=f, title="Ping RTT hostA-hostB through the tunnel "
                  "(median per repeat; bar: median, whiskers: min..max of %d repeats)" % reps,
                  ylabel="RTT ms", logy=0)
        f = os.path.join(self.out, "fig1b_key_replacement.csv")
        B.write_csv(f, ["label", "min", "median", "max"], [
            ("std: CREATE_CHILD_SA", *(x * 1000 for x in rk["standard"])),
            ("ours: switch TX", *sw_tx), ("ours: switch RX", *sw_rx),
            ("ours: no switch TX", *ot_tx), ("ours: no switch RX", *ot_rx)])
        self.plot("bars", "fig1b_key_replacement", csv=f, title="Key replacement latency (us, log "
                  "scale): CREATE_CHILD_SA vs time in the datapath of the packet that switches key",
                  ylabel="microseconds", logy=1)
        f = os.path.join(self.out, "fig1c_handshake.csv")
        B.write_csv(f, ["label", "min", "median", "max"],
                    [("standard: PSK", *hs["standard"]), ("IPSeQ: QKD + PPK + QPSK", *hs["ours"])])
        self.plot("bars", "fig1c_handshake", csv=f, title="Full handshake IKE_SA_INIT + IKE_AUTH on "
                  "the wire (median per repeat; whiskers: min..max of %d repeats)" % reps,
                  ylabel="ms", logy=0)

        F = B.fmt
        t = ["| figure | standard IPsec (min / median / max) | IPSeQ, ours (min / median / max) |",
             "|---|---|---|",
             "| ping RTT median, ms | %s / %s / %s | %s / %s / %s |" % (*map(lambda x: F(x, 3), ping["standard"]),
                                                                  *map(lambda x: F(x, 3), ping["ours"])),
             "| ping RTT p95, ms | %s / %s / %s | %s / %s / %s |" % (*map(lambda x: F(x, 3), ping95["standard"]),
                                                               *map(lambda x: F(x, 3), ping95["ours"])),
             "| key replacement: CREATE_CHILD_SA round trip (std, PSK) vs window switch, us | %s / %s / %s "
             "| TX %s / %s / %s; RX %s / %s / %s |" % (*(F(x * 1000, 0) for x in rk["standard"]),
                                                     *(F(x, 1) for x in sw_tx), *(F(x, 1) for x in sw_rx)),
             "| datapath time of other packets (no switch), us | TX %s / %s / %s; RX %s / %s / %s "
             "| TX %s / %s / %s; RX %s / %s / %s |" % (*(F(x, 1) for x in st_tx), *(F(x, 1) for x in st_rx),
                                                     *(F(x, 1) for x in ot_tx), *(F(x, 1) for x in ot_rx)),
             "| extra time of a switching packet over the others, us | (no switch) "
             "| TX %s / %s / %s; RX %s / %s / %s |" % (*(F(x, 1) for x in extra_tx), *(F(x, 1) for x in extra_rx)),
             "| full handshake, ms | %s / %s / %s (PSK) | %s / %s / %s (QKD + PPK + QPSK) |" % (
                 *map(lambda x: F(x, 2), hs["standard"]), *map(lambda x: F(x, 2), hs["ours"])),
             "| CREATE_CHILD_SA round trip, ms (ours: with x25519qkd PFS; IPSeQ needs none to replace keys) "
             "| %s / %s / %s | %s / %s / %s |" % (*map(lambda x: F(x, 2), rk["standard"]),
                                                  *map(lambda x: F(x, 2), rk["ours"]))]
        if rk["standard"][1] == rk["standard"][1] and extra_tx[1] == extra_tx[1]:
            t.append("")
            t.append("Key replacement, medians: a CREATE_CHILD_SA exchange of standard IPsec takes %s us "
                     "on the wire before the new key is usable; in ours the packet that crosses a window "
                     "boundary spends %s us (TX) / %s us (RX) more in the datapath than the others, with "
                     "no message exchanged and no packet lost (ping loss %s %%)." % (
                         F(rk["standard"][1] * 1000, 0), F(extra_tx[1], 1), F(extra_rx[1], 1),
                         F(B.median([r[3] for r in ping_rows if r[1] == "ours"]), 1)))
        self.report[1] = "\n".join(t)
        self.summary_p1 = {"ping": ping, "hs": hs, "rk": rk, "sw_tx": sw_tx, "sw_rx": sw_rx,
                           "extra_tx": extra_tx, "extra_rx": extra_rx}

    # ---- part 2 --------------------------------------------------------------------------
    def part2(self, std, ours):
        p, reps, T = self.p, self.p["repeats"], self.p["duration"]
        rates = self.a.rates
        B.progress("part 2: throughput vs key update rate %s/s, TCP and UDP %s, %d s x %d repeats"
                   % (rates, self.a.udp_rate, T, reps))
        rows = []
        current = None
        retrans0 = std.log("gwA").count("retransmit ")
        for proto in ("tcp", "udp"):
            pps = None
            for rate in rates:
                if rate == 0:
                    want = ("off",)
                elif pps:
                    rpk = max(1, int(round(pps / rate)))
                    want = ("on", rpk)
                else:
                    self.note_missing("part 2 %s, ours at %d/s" % (proto, rate),
                                      "no packet rate measured at rate 0, rpk unknown")
                    want = None
                if want and want != current:
                    ours.set_plugins(B.rotation_conf(want[1], want[1]) if want[0] == "on" else "")
                    current = want
                for i in range(reps):
                    for name, lab in self.order([("standard", std), ("ours", ours)], i):
                        if name == "ours" and want is None:
                            continue
                        row = self.run_rate(name, lab, proto, rate, T, want)
                        rows.append((proto, rate, i + 1, name) + row)
                        B.progress("  %s %s %3d/s rep %d: %s Mbit/s, %s, key updates %s/s%s" % (
                            proto, name, rate, i + 1, B.fmt(row[0]),
                            ("loss %s %%" % B.fmt(row[1], 3)) if proto == "udp" else "retransmits %d" % row[1],
                            B.fmt(row[2]), (", rpk %d" % row[4]) if row[4] else ""))
                if rate == 0:
                    v = [r[9] for r in rows if r[0] == proto and r[1] == 0 and r[3] == "ours" and r[9]]
                    pps = B.median(v) if v else None
                    if pps:
                        B.progress("  ours %s: %.0f ESP packets/s at rate 0 -> rpk = %.0f / rate"
                                   % (proto, pps, pps))
        B.write_csv(os.path.join(self.out, "throughput_vs_rekey.csv"),
                    ["proto", "rate_per_s", "rep", "datapath", "mbps", "loss_or_retrans",
                     "key_updates_per_s", "missed_ticks", "rpk", "esp_pps", "error"], rows)
        # figures
        tables = []
        for proto in ("tcp", "udp"):
            fig = []
            for rate in rates:
                line = [rate]
                for col in (4, 5):
                    for name in ("standard", "ours"):
                        line += list(B.mmm([r[col] for r in rows if r[0] == proto and r[1] == rate
                                            and r[3] == name and not r[10]]))
                fig.append(line)
            f = os.path.join(self.out, "fig2_%s.csv" % proto)
            B.write_csv(f, ["rate", "std_min", "std_med", "std_max", "ours_min", "ours_med", "ours_max",
                            "std2_min", "std2_med", "std2_max", "ours2_min", "ours2_med", "ours2_max"], fig)
            self.plot("rate2", "fig2_%s" % proto, csv=f,
                      title="iperf3 %s hostA->hostB vs key update rate (%d s, median, whiskers min..max of %d)"
                      % (proto.upper() + ("" if proto == "tcp" else " " + self.a.udp_rate + " offered, 1200 B"),
                         T, reps),
                      ylabel1="Mbit/s received", ylabel2="TCP retransmits" if proto == "tcp" else "loss %",
                      logy1=1 if proto == "tcp" else 0)
            t = ["| %s | key updates/s (target) | standard Mbit/s min / med / max | achieved rekeys/s (med) "
                 "| %s | ours Mbit/s min / med / max | rpk | achieved windows/s (med) | %s |" % (
                     proto.upper(), "retransmits (med)" if proto == "tcp" else "loss % (med)",
                     "retransmits (med)" if proto == "tcp" else "loss % (med)"),
                 "|---|---:|---|---:|---:|---|---:|---:|---:|"]
            for rate, l in zip(rates, fig):
                def med(name, col):
                    v = [r[col] for r in rows if r[0] == proto and r[1] == rate and r[3] == name and not r[10]]
                    return B.median(v) if v else float("nan")
                rpks = [r[8] for r in rows if r[0] == proto and r[1] == rate and r[3] == "ours" and r[8]]
                t.append("| | %d | %s / %s / %s | %s | %s | %s / %s / %s | %s | %s | %s |" % (
                    rate, *(B.fmt(x) for x in l[1:4]), B.fmt(med("standard", 6)),
                    B.fmt(l[8], 3 if proto == "udp" else 0),
                    *(B.fmt(x) for x in l[4:7]), rpks[0] if rpks else "off",
                    B.fmt(med("ours", 6)), B.fmt(l[11], 3 if proto == "udp" else 0)))
            base = {n: fig[0][2 if n == "standard" else 5] for n in ("standard", "ours")} if rates[0] == 0 else {}
            if base and len(fig) > 1:
                last = fig[-1]
                t.append("")
                t.append("%s at %d key updates/s vs none (medians): standard %+.1f %%, ours %+.1f %%." % (
                    proto.upper(), rates[-1],
                    100.0 * (last[2] / base["standard"] - 1) if base["standard"] else float("nan"),
                    100.0 * (last[5] / base["ours"] - 1) if base["ours"] else float("nan")))
            tables.append("\n".join(t))
        retrans = std.log("gwA").count("retransmit ") - retrans0
        short = [(proto, rate, B.median(v)) for proto in ("tcp", "udp") for rate in rates if rate > 0
                 for v in [[r[6] for r in rows if r[0] == proto and r[1] == rate and r[3] == "standard"]]
                 if v and B.median(v) < 0.9 * rate]
        if short:
            tables.append("Standard IPsec fell short of the target rekey rate at %s (median achieved). "
                          "gwA's charon logged %d IKE request retransmissions during part 2: under ESP load "
                          "an IKE message can be lost in the shared port-4500 socket, charon retransmits "
                          "after the lab's retransmit_timeout of 2 s, and no further rekey of that IKE_SA "
                          "can start meanwhile (the driver counts those ticks as missed)." % (
                              ", ".join("%s %d/s (%.1f/s)" % (p_.upper(), r_, a_) for p_, r_, a_ in short),
                              retrans))
        self.report[2] = "\n\n".join(tables)

    def run_rate(self, name, lab, proto, rate, T, want):
        """one iperf3 run; returns (mbps, loss%/retrans, key updates/s, missed, rpk, pps, error)"""
        if not lab.child_sa():
            lab.initiate()
        driver = None
        if name == "standard" and rate > 0:
            driver = B.RekeyDriver(lab, rate)
            driver.start()
        sampler = B.EspSampler(lab, [min(0.8, T / 3), T - 0.3])
        sampler.start()
        r = B.iperf(lab, proto, T, rate=self.a.udp_rate, length=1200)
        sampler.join(5)
        updates, missed, err = 0.0, 0, r.get("error", "")
        if driver:
            driver.stop()
            if driver.error:
                err = err or "rekey driver: " + driver.error
            dt = (driver.t_end or time.monotonic()) - (driver.t_start or time.monotonic())
            updates = driver.completed / dt if dt > 0 else 0.0
            missed = driver.missed
        rates = sampler.rates()
        pps = rates[0] if rates else None
        if name == "ours" and rates:
            updates = rates[1]
        rpk = want[1] if (name == "ours" and want and want[0] == "on") else 0
        if err:
            print("  %s %s %d/s: %s" % (proto, name, rate, err))
            return (float("nan"), float("nan"), updates, missed, rpk, pps, err.replace(",", ";"))
        loss = r["lost_pct"] if proto == "udp" else r["retrans"]
        return (r["mbps"], loss, updates, missed, rpk, pps, "")

    # ---- part 3 --------------------------------------------------------------------------
    def part3a(self):
        p, reps = self.p, self.p["repeats"]
        B.progress("part 3a: key supply vs fibre length %s km (labs side by side, %d x %d s)"
                   % (FIBRE_KM, reps, p["supply_interval"]))
        labs = []
        for km in FIBRE_KM:
            lab = self.lab("k%d" % km, datapath="kernel-libipsec", qkd=True,
                           env={"LAB_FIBRE_KM": str(km)})
            lab.up()
            labs.append((km, lab))
        stop = threading.Event()
        threads, counters = [], {}
        for km, lab in labs:
            counters[km] = [0, 0]
            lk = threading.Lock()
            for _ in range(3):
                t = threading.Thread(target=qkid_api.drain, args=(lab.qkid_sock("gwA"), "gwB", stop,
                                                                  counters[km], lk), daemon=True)
                t.start()
                threads.append(t)
        rows = []
        try:
            status = {km: qkid_api.Client(lab.qkid_sock("gwA")) for km, lab in labs}
            B.progress("  draining keys at every gwA qkid; %d s warm-up (backlog of the KME store)"
                       % p["supply_warmup"])
            time.sleep(p["supply_warmup"])
            for i in range(reps):
                k0 = {km: (time.monotonic(), c.keys_in()) for km, c in status.items()}
                time.sleep(p["supply_interval"])
                for km, c in status.items():
                    t1, n1 = time.monotonic(), c.keys_in()
                    rate = (n1 - k0[km][1]) / (t1 - k0[km][0])
                    rows.append((km, i + 1, rate, rate * 256, model_keys(km), n1 - k0[km][1]))
                B.progress("  rep %d: %s" % (i + 1, ", ".join("%d km %.1f keys/s" % (r[0], r[2])
                                                             for r in rows[-len(labs):])))
        finally:
            stop.set()
            for t in threads:
                t.join(3)
            B.down_all([lab for _km, lab in labs])
        reconnects = sum(c[1] for c in counters.values())
        B.write_csv(os.path.join(self.out, "key_supply_fibre.csv"),
                    ["km", "rep", "keys_per_s", "bits_per_s", "model_keys_per_s", "keys"], rows)
        fig = []
        for km in FIBRE_KM:
            fig.append((km, model_keys(km), *B.mmm([r[2] for r in rows if r[0] == km])))
        f = os.path.join(self.out, "fig3a_fibre.csv")
        B.write_csv(f, ["km", "model", "min", "median", "max"], fig)
        self.plot("fibre", "fig3a_fibre", csv=f)
        t = ["| fibre km | model keys/s (256 bit) | delivered to qkid keys/s min / median / max | median / model |",
             "|---:|---:|---|---:|"]
        for km, model, lo, me, hi in fig:
            t.append("| %d | %s | %s / %s / %s | %s |" % (km, B.fmt(model), B.fmt(lo), B.fmt(me), B.fmt(hi),
                                                         B.fmt(me / model if model else float("nan"), 3)))
        if reconnects:
            t.append("")
            t.append("The key takers had to reconnect %d times: qkid left a KEY_NEW unanswered when its "
                     "pool ran dry and closed the connection after client_idle_timeout (10 s); with "
                     "three takers per qkid the pool stayed drained meanwhile." % reconnects)
        self.report["3a"] = "\n".join(t)

    def part3b(self):
        """Adaptive rotation at a fixed key supply against offered load, every figure next to a
        rotation-off baseline from the same run (scripts/bench keys' cell, one supply)."""
        p, reps, T = self.p, self.p["repeats"], self.p["rpk_duration"]
        km = self.a.rpk_km
        B.progress("part 3b: adaptive rpk at UDP loads %s Mbit/s, key supply of %g km fibre "
                   "(%.0f keys/s), rotation on vs off in ABBA order, %d s x %d repeats"
                   % (LOADS, km, model_keys(km), T, reps))
        kb = keys.Bench(argparse.Namespace(rpk_min=self.a.rpk_min, rpk_max=self.a.rpk_max, out=self.out,
                                           quick=self.a.quick, loads=LOADS),
                        {"kms": [km], "repeats": reps, "duration": T, "warmup": T / 2.0,
                         "settle": 2})
        kb.labs_up(prefix="bq")
        try:
            kb.loads = LOADS
            kb.cells()
        finally:
            B.down_all([kb.on, kb.off])
        rows = kb.cell_rows
        B.write_csv(os.path.join(self.out, "rpk_vs_load.csv"),
                    ["offered_mbps", "rep", "packets_per_window", "windows_per_s", "esp_pps",
                     "qkid_rpk_advice", "delivered_mbps", "loss_pct", "off_delivered_mbps",
                     "off_loss_pct", "key_utilisation", "beyond_rpk", "stall_drops"],
                    [(r["load"], r["rep"], r["on"].get("wire_rpk"),
                      r["on"]["windows"] / (r["on"]["supplied"] / r["on"]["supply_rate"])
                      if r["on"].get("supply_rate") else None,
                      r["on"].get("wire_pps"), r["on"].get("rpk_adv"), r["on"].get("mbps"),
                      r["on"].get("loss"), r["off"].get("mbps"), r["off"].get("loss"), r["on"].get("util"),
                      r["on"].get("beyond"), r["on"].get("stall")) for r in rows])
        fig = []
        for load in LOADS:
            sel = [r for r in rows if r["load"] == load]
            fig.append((load, *B.mmm([r["on"].get("wire_rpk") for r in sel]),
                        *B.mmm([r["on"].get("mbps") for r in sel]),
                        *B.mmm([r["on"].get("rpk_adv") for r in sel])))
        f = os.path.join(self.out, "fig3b_rpk.csv")
        B.write_csv(f, ["load", "rpk_min", "rpk_med", "rpk_max", "mbps_min", "mbps_med", "mbps_max",
                        "adv_min", "adv_med", "adv_max"], fig)
        self.plot("rpk", "fig3b_rpk", csv=f,
                  title="rpk (packets per quantum key) settled at, key supply %.0f keys/s (%g km)"
                  % (model_keys(km), km))
        t = ["| offered UDP load | rpk on the wire min / median / max | qkid rpk advice (median) "
             "| delivered Mbit/s off / on (median) | loss % off / on (median) | loss excess pp "
             "| key utilisation (median) | packets beyond rpk (median, share) | stall drops (median) "
             "| receiver drops for want of a key (median) |",
             "|---:|---|---:|---|---|---:|---:|---:|---:|---:|"]
        over = []
        for load, *v in fig:
            sel = [r for r in rows if r["load"] == load]

            def med(which, key):
                x = [r[which].get(key) for r in sel if r[which].get(key) is not None]
                return B.median(x) if x else None
            lo_off, lo_on = med("off", "loss"), med("on", "loss")
            if lo_off is not None and lo_off > 1.0:
                over.append(load)
            t.append("| %d Mbit/s | %s / %s / %s | %s | %s / %s | %s / %s | %s | %s | %s (%s %%) | %s | %s |" % (
                load, B.fmt(v[0], 0), B.fmt(v[1], 0), B.fmt(v[2], 0), B.fmt(v[7], 0),
                B.fmt(med("off", "mbps")), B.fmt(med("on", "mbps")), B.fmt(lo_off, 3), B.fmt(lo_on, 3),
                B.fmt(lo_on - lo_off, 3) if lo_on is not None and lo_off is not None else "n/a",
                B.fmt(med("on", "util"), 3), B.fmt(med("on", "beyond"), 0), B.fmt(med("on", "beyond_share"), 3),
                B.fmt(med("on", "stall"), 0), B.fmt(med("on", "rx_nokey"), 0)))
        if over:
            t.append("")
            t.append("At %s Mbit/s the rotation-off lab itself lost more than 1 %%: that load is above what "
                     "this machine's datapath carried in this run, so the loss there is capacity, not keys; "
                     "compare the loss excess, not the loss." % ", ".join(str(x) for x in over))
        self.report["3b"] = "\n".join(t)


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench ipseq", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="1 repeat, short runs (~3 min); results/ only, BENCHMARKS.md untouched")
    ap.add_argument("--repeats", type=int, help="repeats per figure (default 3)")
    ap.add_argument("--duration", type=int, help="seconds per iperf3 run in part 2 (default 5)")
    ap.add_argument("--parts", default="1,2,3", help="which parts to run (default 1,2,3)")
    ap.add_argument("--rates", default="0,1,10,50,100", help="key updates/s for part 2")
    ap.add_argument("--udp-rate", default="200M", help="offered UDP load in part 2 (default 200M, "
                    "which kernel-libipsec carries without loss here)")
    ap.add_argument("--switch-rpk", type=int, default=10,
                    help="part 1: ours switches key every N packets (default 10)")
    ap.add_argument("--key-rate", default="1000000",
                    help="parts 1-2: QKD secret key rate of ours, bit/s (default 1 Mbit/s: never the limit)")
    ap.add_argument("--rpk-km", type=float, default=20, help="part 3b: fibre length that sets the key supply")
    ap.add_argument("--rpk-min", type=int, default=64, help="part 3b: kernel-qkd rpk_min (default 64)")
    ap.add_argument("--rpk-max", type=int, default=65536, help="part 3b: kernel-qkd rpk_max (default 65536)")
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--out", default=os.path.join(B.TOP, "results", "ipseq"), help="results folder")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench ipseq: needs root (network namespaces)", file=sys.stderr)
        return 77
    p = dict(QUICK if a.quick else FULL)
    if a.repeats:
        p["repeats"] = a.repeats
    if a.duration:
        p["duration"] = a.duration
    a.rates = [int(x) for x in a.rates.split(",")]
    parts = set(x.strip() for x in a.parts.split(","))
    os.makedirs(a.out, exist_ok=True)
    for f in os.listdir(a.out):
        if f.endswith((".pcap", ".err")):
            os.remove(os.path.join(a.out, f))
    bench = Bench(a, p)
    reps = p["repeats"]
    est = 0
    if "1" in parts:
        est += 15 + reps * (2 * (p["pings"] * 0.002 + 1.5) + 2 * p["ike_rounds"] * 0.2 + 1)
    if "2" in parts:
        est += 2 * len(a.rates) * reps * 2 * (p["duration"] + 1.5) + 2 * (len(a.rates) - 1) * 5
    if "3" in parts:
        est += 10 + p["supply_warmup"] + reps * p["supply_interval"] + 20 + \
            len(LOADS) * reps * (2 * p["rpk_duration"] + p["rpk_drain"] + 3)
    B.progress("bench ipseq%s: %d repeats, parts %s; expected run time about %.1f min "
               "(every step has its own time limit)" % (" --quick" if a.quick else "", reps,
                                                         ",".join(sorted(parts)), est / 60.0))

    for so in ("src/libcharon/plugins/kernel_qkd/.libs/libstrongswan-kernel-qkd.so",
               "src/libcharon/plugins/qkd/.libs/libstrongswan-qkd.so", "src/qki/qkid", "src/kmsd/qkd-kmsd"):
        if not os.path.exists(os.path.join(B.TOP, so)):
            print("bench ipseq: %s not built (make first)" % so, file=sys.stderr)
            return 77
    std = ours = None
    if parts & {"1", "2"}:
        std = bench.lab("s", datapath="kernel-libipsec", qkd=False)
        ours = bench.lab("q", datapath="kernel-qkd", qkd=True, env={"LAB_KEY_RATE": a.key_rate})
        std.up()
        ours.up()
        B.progress("labs up: standard %s (kernel-libipsec, PSK), ours %s (kernel-qkd, QKD, %s bit/s keys)"
                   % (std.name, ours.name, a.key_rate))
    for part, title, fn in (("1", "1 latency", lambda: bench.part1(std, ours)),
                            ("2", "2 throughput vs key update rate", lambda: bench.part2(std, ours)),
                            ("3", "3a key supply vs fibre length", bench.part3a),
                            ("3", "3b rpk vs offered load", bench.part3b)):
        if part not in parts:
            continue
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as e:
            bench.note_missing("part " + title, "%s: %s" % (type(e).__name__, e))
    B.down_all([lab for lab in (std, ours) if lab])
    total = B.elapsed()
    B.progress("done in %.1f min; results in %s" % (total / 60.0, a.out))
    for k in (1, 2, "3a", "3b"):
        if k in bench.report:
            print()
            print(bench.report[k])
    for m in bench.missing:
        print("NOT MEASURED: " + m)
    if a.quick or a.no_update or parts not in ({"1", "2", "3"}, {"3"}):
        return 0
    try:
        write_report(bench, a, p, total, part3_only=parts == {"3"})
    except Exception as e:
        print("writing the report failed: %s: %s" % (type(e).__name__, e))
        return 1
    return 0


def write_report(bench, a, p, total, part3_only=False):
    """the ipseq section of BENCHMARKS.md; part3_only: replace only its part 3 (a run of
    --parts 3), saying when and at which commit that part was measured"""
    stamp = B.stamp()      # before the plots are copied into the tree
    docs = os.path.join(B.TOP, "docs", "plots")
    os.makedirs(docs, exist_ok=True)
    links = []
    for png in bench.plots:
        dst = os.path.join(docs, "ipseq-" + os.path.basename(png))
        shutil.copyfile(png, dst)
        links.append("[%s](docs/plots/%s)" % (os.path.basename(png)[:-4], os.path.basename(dst)))
    reps = p["repeats"]
    missing = "".join("\n- NOT MEASURED: %s" % m for m in bench.missing)
    text = """## IPSeQ evaluation (`scripts/bench ipseq`)

The IPSeQ paper's evaluation on this machine's namespace lab, **standard IPsec** (Debian's charon
5.9.8 with strongSwan's kernel-libipsec, plain PSK, X25519, keys replaced by CREATE_CHILD_SA) vs
**ours** (the same charon with `kernel-qkd` + libipsec-qkd, the `qkd` plugin's x25519qkd + quantum
PPK + QPSK, qkid and qkd-kmsd; ESP keys replaced by window). Both: AES-256-GCM ESP-in-UDP,
hostA -> gwA -> gwB -> hostB. The paper reports a standard handshake of ~8 ms vs < 10 ms for
IPSeQ, a key replacement of ~7 ms (CREATE_CHILD_SA) vs ~1 ms, and IPSeQ's throughput within ~7 %%
of no key update while standard IPsec collapses at high key update rates. Every figure: %d repeats, min / median / max over the repeats (of
each repeat's median where a repeat has many samples). CSVs and plots: `results/ipseq/`; plots
also in docs/plots/: %s.

Machine: %s. Everything (4 namespaces, 2 charons, KMEs, qkids, iperf3, tcpdump) shares these CPUs
with whatever else runs. Command: `sudo scripts/bench ipseq` (%.1f min; `--quick`: 1 repeat,
short runs, ~3 min, results/ only). Measured %s.

### 1. Latency

Ping: %d echo requests at 2 ms intervals per repeat. Ours rotates the ESP key every %d packets
during the ping (rpk fixed at %d, window keys from qkid), so about every 10th packet in each
direction crosses a window boundary. **Key replacement latency** is not the same kind of event
on both sides, and the table says what is measured: standard IPsec replaces a key with a
CREATE_CHILD_SA exchange (round trip on gwA's WAN, request -> response; the INFORMATIONAL
that deletes the old SA follows and is not counted); ours has no exchange at all: the sender switches to the next prefetched
window key at a sequence number and the receiver picks the key by the epoch in the IV. For ours
we therefore measure how long the packet that crosses the window boundary spends in gwA's
datapath: TX = echo request seen on gwA's LAN -> its ESP packet on the WAN; RX = ESP packet on
the WAN -> decrypted echo reply on the LAN (tcpdump on both interfaces of gwA, same clock; pairs in
order), against all other packets. Handshake: %d rounds per repeat (initiate, one CHILD_SA rekey,
terminate; timed on the wire as in `scripts/bench ike`).

%s

### 2. Throughput and loss against the key update rate

iperf3 hostA -> hostB, %d s per run, TCP single stream and UDP %s offered (1200-byte datagrams).
Standard: CHILD_SA rekeys at the target rate driven over one persistent vici session (no swanctl
spawns; a tick is skipped while a rekey is in flight; achieved rate counted from child-rekey
events). Ours: rotation with rpk fixed at (ESP packets/s of the same run type without key
updates) / rate, so the window rate on the wire matches the target; achieved windows/s measured
from the IV epoch and ESP sequence number of gwA's outbound SA sampled on the WAN. Rate 0: no
key update (standard: no rekey; ours: rotation off). Ours draws its window keys from qkid at a
1 Mbit/s QKD key rate (key supply is not the limit here; part 3 is about supply).

%s

### 3. Key supply

(a) A calibration of the simulator, not a measurement of QKD: qkd-kmsd generates key at the rate
its own fibre formula gives, so this part reads that formula back through the stack (KME -> qkid)
and shows the stack delivers what the simulator makes. Keys/s actually delivered to qkid from its KME (qkid's KEYS_IN counter) while three local
clients take keys as fast as qkid hands them out (KEY_NEW), one lab per fibre length, all side by
side; qkd-kmsd's fibre model: rate = 100 kbit/s x 10^(-0.2 dB/km x L / 10), 256-bit keys; %d s
warm-up, then %d intervals of %d s.

%s

(b) Ours with adaptive rotation (kernel-qkd and qkid rpk_min %d, rpk_max %d, exhaust = reuse,
qkid's rpk advisor) and the key supply of a %g km fibre (%.0f keys/s), against the same lab with
rotation off, both up side by side and run in ABBA order (the code of `scripts/bench keys`, one
supply); iperf3 UDP at each offered load for %d s. rpk = ESP packets per key window on the wire
over the second half of the run (sequence number and IV epoch of gwA's outbound SA sampled on
the WAN), next to qkid's advice for the SA. Key utilisation = those windows / keys the link
master KME generated meanwhile (its own counter). Packets beyond rpk and stall drops: the
datapath's counters of the run's SA (rekeyed after every run; start-up included); receiver drops
for want of a key: gwB's counter of the same SA. Before each
run with rotation the keys the KME stored while the lab was idle are taken from qkid (KEY_NEW
until a half-second yields no more than the link makes), so that the run sees the steady key
rate rather than a backlog. The full per-supply
and per-load picture, with steps and fairness: the "Key economy" section.

%s
%s""" % (reps, ", ".join(links) or "none", B.machine(), total / 60.0, stamp,
         p["pings"], a.switch_rpk, a.switch_rpk, p["ike_rounds"], bench.report.get(1, "(not measured)"),
         p["duration"], a.udp_rate, bench.report.get(2, "(not measured)"),
         p["supply_warmup"], reps, p["supply_interval"], bench.report.get("3a", "(not measured)"),
         a.rpk_min, a.rpk_max, a.rpk_km, model_keys(a.rpk_km), p["rpk_duration"],
         bench.report.get("3b", "(not measured)"), missing)
    if part3_only:
        begin, end = "<!-- bench:ipseq:begin -->", "<!-- bench:ipseq:end -->"
        with open(os.path.join(B.TOP, "BENCHMARKS.md")) as f:
            doc = f.read()
        if begin not in doc or "### 3. Key supply" not in doc:
            print("BENCHMARKS.md has no ipseq section with a part 3 to replace: run all parts")
            return
        old = doc[doc.index(begin) + len(begin):doc.index(end)].strip("\n")
        part3 = text[text.index("### 3. Key supply"):]
        text = old[:old.index("### 3. Key supply")] + part3.replace(
            "### 3. Key supply\n", "### 3. Key supply\n\nRe-measured on its own (`sudo scripts/bench ipseq --parts 3`, "
            "%.1f min) %s; machine: %s.\n" % (total / 60.0, stamp, B.machine()), 1)
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(B.wrap(text) + "\n")
    print("updated %s" % B.update_section("ipseq", text))


if __name__ == "__main__":
    sys.exit(B.guarded(main))
