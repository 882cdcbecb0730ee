#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/bench keys: the key economy of adaptive ESP key rotation (issue 14), measured from
outside in charon with kernel-qkd, real qkid and qkd-kmsd (scripts/lab).

Two labs up side by side: "on" rotates the ESP key with qkid window keys (adaptive rpk,
exhaust = reuse) over a QKD link whose supply is set by qkd-kmsd's fibre model; "off" is the same
lab (kernel-qkd, QKD IKE) with rotation off, the baseline of every cell, run in ABBA order with it.

1. ceiling: the highest offered UDP load the "off" lab carries with at most 1 % loss;
2. cells: per fibre length (0, 20, 50, 80 km) and offered load (100 Mbit/s .. ceiling): delivered
   rate and loss with rotation on and off, key utilisation = (windows on the wire + change of the
   SA's key buffer) / keys the KME made available (generated + drawn from its store; its own
   counters), packets beyond rpk and stall drops (the datapath's counters of the
   SA), convergence time of rpk after the load starts;
3. a load step and a supply step, sampled over time (CSV + plot of rpk, buffer level, key rates);
4. 4 SAs with skewed demand: Jain's index of windows/s against max-min fair shares of the
   measured supply.
Last line: key_economy min_utilisation=U max_beyond_rpk=N max_loss_excess_pp=L.
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
import qkid_api as Q  # noqa: E402

FULL = {"repeats": 3, "duration": 10, "warmup": 4, "kms": [0, 20, 50, 80], "min_keys": 300,
        "ceiling_secs": 4, "phase": 20, "fair_secs": 16, "fair_warmup": 6, "settle": 3}
QUICK = {"repeats": 1, "duration": 6, "warmup": 3, "kms": [20, 80], "min_keys": 0,
         "ceiling_secs": 3, "phase": 8, "fair_secs": 8, "fair_warmup": 3, "settle": 2}
LADDER = [100, 200, 300, 400, 500, 600, 800, 1000, 1200]
TARGET_UTIL, TARGET_LOSS_PP, TARGET_JAIN = 0.95, 0.5, 0.95
KEY_BITS = 256
FAIR_LOADS = [2, 5, 10, 50]           # Mbit/s of the 4 SAs of the fairness run

# qkid's STATUS per SA by qkid_api's SA_FIELDS names: its own view (rpk advice, buffer, drain
# rate) and, where the datapath reports them (SA_REPORT), the rpk in force, the datapath's key
# buffer, windows, packets beyond rpk, stall drops and the SA's max-min fair share.

def drain_dry(lab, km, max_secs=30.0):
    """Take the keys qkid and its KME stored while nothing used them, until a half-second slice
    yields no more than about the link's rate (the backlog is gone) or max_secs passed; a run
    then starts from the link's rate, not from a store the idle lab filled. Returns keys taken."""
    total, end = 0, time.monotonic() + max_secs
    while time.monotonic() < end:
        n = Q.drain_for(lab.qkid_sock("gwA"), "gwB", 0.5)
        total += n
        if n <= max(4, 1.5 * model_keys(km) * 0.5):
            break
    return total


CPU_DAEMONS = ("charon", "qkid", "qkd-kmsd")
TICK = os.sysconf("SC_CLK_TCK")


def lab_cpu(lab):
    """CPU seconds (user + system, all threads) the long-lived daemons of both gateways have
    used so far, by name: charon (with the kernel-qkd datapath's threads), qkid, qkd-kmsd"""
    out = dict.fromkeys(CPU_DAEMONS, 0.0)
    for gw in ("gwA", "gwB"):
        r = subprocess.run(["ip", "netns", "pids", lab.ns(gw)], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        for pid in r.stdout.split():
            try:
                with open("/proc/%s/stat" % pid) as f:
                    st = f.read()
            except OSError:
                continue        # gone meanwhile (a tcpdump of a sampler)
            comm, rest = st[st.index("(") + 1:st.rindex(")")], st[st.rindex(")") + 2:].split()
            if comm in out:
                out[comm] += (int(rest[11]) + int(rest[12])) / TICK
    return out


def model_keys(km, ref=100000.0, att=0.2):
    """qkd-kmsd's fibre model (its defaults) in keys/s of KEY_BITS"""
    return ref * 10 ** (-att * km / 10.0) / KEY_BITS


def met(ok):
    return "met" if ok else "MISSED"


class Kme:
    """The link master KME's own counters (ETSI 014 status, status_extension), read with curl in
    gwA's namespace with SAE_A's certificate: keys generated = the QKD link's supply."""

    def __init__(self, lab):
        self.lab = lab
        pki = os.path.join(lab.dir, "pki")
        self.cmd = lab.nsx("gwA", ["curl", "-s", "--max-time", "3", "--cacert", pki + "/ca.pem",
                                   "--cert", pki + "/SAE_A.pem", "--key", pki + "/SAE_A.key",
                                   "https://127.0.0.1:8443/api/v1/keys/SAE_B/status"])

    def generated(self, stored=False):
        """(time, keys generated so far) or None; with stored, (time, generated, keys stored)"""
        import json
        try:
            r = subprocess.run(self.cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               text=True, timeout=5)
            st = json.loads(r.stdout)
            x = st["status_extension"]
            if stored:
                return (time.time(), x["generated_bits"] / KEY_BITS,
                        st["stored_key_count"] * st["key_size"] / KEY_BITS)
            return time.time(), x["generated_bits"] / KEY_BITS
        except (ValueError, KeyError, TypeError, subprocess.SubprocessError, OSError):
            return None


class KmeSampler(threading.Thread):
    """Reads the KME's generated-keys counter at given offsets (s) after start."""

    def __init__(self, kme, offsets, stored=False):
        super().__init__(daemon=True)
        self.kme, self.offsets, self.stored = kme, offsets, stored
        self.samples = []

    def run(self):
        t0 = time.monotonic()
        for off in self.offsets:
            time.sleep(max(0.0, t0 + off - time.monotonic()))
            self.samples.append(self.kme.generated(self.stored))


def sa_status(lab, spi, gw="gwA"):
    """qkid's STATUS of an outbound SA (qkid_api.SA_FIELDS names) plus the peers' keys_in, or
    None"""
    try:
        c = Q.Client(lab.qkid_sock(gw), timeout=2.0)
        st = c.status()
        c.close()
    except (OSError, Q.QkidError):
        return None
    for raw in st["sas"]:
        sa = Q.sa_fields(raw)
        if sa["spi"] == spi and sa["dir"] == "out":
            sa["keys_in"] = sum(p.get(Q.A_KEYS_IN, 0) for p in st["peers"])
            return sa
    return None


TRACE_COLS = ["t_ms", "spi", "dir", "packets", "rpk", "level", "target", "keys_stored", "windows",
              "beyond_rpk", "stall_drops", "nokey_drops", "share", "pps"]


def read_trace(path, spi, t0m):
    """kernel-qkd's rpk_trace lines of an outbound SA as dicts, t = seconds after t0m
    (CLOCK_MONOTONIC, the trace's clock); [] without a trace"""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                x = line.strip().split(",")
                if len(x) != len(TRACE_COLS) or x[1] != "%08x" % spi or x[2] != "out":
                    continue
                try:
                    d = dict((k, float(v)) for k, v in zip(TRACE_COLS, x) if k not in ("spi", "dir"))
                except ValueError:
                    continue
                d["t"] = d["t_ms"] / 1000.0 - t0m
                out.append(d)
    except OSError:
        pass
    return out


class Poller(threading.Thread):
    """Samples qkid's view of one SA every `period` s until stop()."""

    def __init__(self, lab, spi, period=0.5):
        super().__init__(daemon=True)
        self.lab, self.spi, self.period = lab, spi, period
        self.rows = []          # (time, sa dict or None, None)
        self.ev = threading.Event()

    def run(self):
        while not self.ev.is_set():
            t = time.time()
            self.rows.append((t, sa_status(self.lab, self.spi), None))
            self.ev.wait(max(0.0, self.period - (time.time() - t)))

    def stop(self):
        self.ev.set()
        self.join(10)


def convergence(series, t_step, t_end):
    """Seconds after t_step until the value stays within +-10 % of its final value (median of
    the last quarter of [t_step, t_end]); None if it never settles or there are no samples."""
    pts = [(t, v) for t, v in series if t_step <= t <= t_end and v]
    if len(pts) < 4:
        return None
    tail = [v for t, v in pts if t >= t_end - (t_end - t_step) / 4.0]
    if not tail:
        return None
    final = B.median(tail)
    last_out = None
    for t, v in pts:
        if abs(v - final) > 0.1 * final:
            last_out = t
    if last_out is None:
        return 0.0
    later = [t for t, _ in pts if t > last_out]
    return (later[0] - t_step) if later else None


def wire_windows(samples):
    """(windows, packets, seconds) between the first and last wire sample of one SA"""
    if len(samples) < 2:
        return None
    a, b = samples[0], samples[-1]
    if a[1] != b[1] or b[0] <= a[0]:
        return None
    return b[3] - a[3], (b[2] - a[2]) % (1 << 32), b[0] - a[0]


def interp(points, t):
    """value of a cumulative counter at time t, linear between the samples (t, value)"""
    pts = sorted(p for p in points if p)
    if not pts:
        return None
    if t <= pts[0][0]:
        return pts[0][1]
    for (t0, v0), (t1, v1) in zip(pts, pts[1:]):
        if t0 <= t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0) if t1 > t0 else v1
    return pts[-1][1]


def deleted_counters(lab, spi, since, gw="gwA", wait=8.0):
    """The datapath's counters of a deleted SA from charon's log (kernel-qkd logs them when it
    deletes the SA), only lines after offset `since`: dict or None"""
    end = time.monotonic() + wait
    while True:
        log = lab.log(gw)[since:]
        m = re.search(r"SA %08x deleted after (\d+) packets" % spi, log)
        u = re.search(r"SA %08x used (\d+) key windows .*?(\d+) packets beyond rpk, (\d+) stall "
                      r"drops, (\d+) packets without key" % spi, log)
        if m and (u or time.monotonic() > end - wait / 2):
            return {"packets": int(m.group(1)), "windows": int(u.group(1)) if u else 0,
                    "beyond": int(u.group(2)) if u else 0, "stall": int(u.group(3)) if u else 0,
                    "nokey": int(u.group(4)) if u else 0}
        if time.monotonic() > end:
            return None
        time.sleep(0.2)


class Bench:
    def __init__(self, a, p):
        self.a, self.p = a, p
        self.out = a.out
        self.pid = os.getpid()
        self.missing = []
        self.plots = []
        self.report = {}
        self.km = None

    def note_missing(self, what, why):
        B.unavailable(what, why)
        self.missing.append("%s: %s" % (what, why))

    # ---- labs ----------------------------------------------------------------------------
    def labs_up(self, prefix="bk"):
        """the rotation lab ("on", supply of the first fibre length) and the baseline ("off")"""
        env = {"LAB_RPK_MIN": str(self.a.rpk_min), "LAB_RPK_MAX": str(self.a.rpk_max),
               "LAB_FIBRE_KM": str(self.p["kms"][0])}
        self.on = B.Lab("%s%don" % (prefix, self.pid), datapath="kernel-qkd", qkd=True, env=env)
        self.off = B.Lab("%s%doff" % (prefix, self.pid), datapath="kernel-qkd", qkd=True)
        threads = [threading.Thread(target=lab.up) for lab in (self.on, self.off)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(180)
        for lab in (self.on, self.off):
            if lab not in B.Lab.live or not os.path.exists(lab.qkid_sock("gwA")):
                raise RuntimeError("lab %s did not come up" % lab.name)
        rot = B.rotation_conf(self.a.rpk_min, self.a.rpk_max, "reuse")
        self.trace = os.path.join(self.on.dir, "gwA", "rpk_trace.csv")
        # gwA's datapath samples every rotating SA every 100 ms (kernel-qkd rpk_trace)
        self.on.set_plugins(lambda gw: rot(gw).replace(
            "\t\tkernel-qkd {\n", "\t\tkernel-qkd {\n\t\t\trpk_trace = %s\n" % self.trace, 1)
            if gw == "gwA" else rot(gw))
        self.km = self.p["kms"][0]
        self.kme, self.kme_off = Kme(self.on), Kme(self.off)
        for lab in (self.on, self.off):
            lab.initiate()
        if "ESP key rotation" not in self.on.log("gwA"):
            raise RuntimeError("the rotation lab does not rotate (no 'ESP key rotation' in gwA's log)")

    def set_supply(self, km):
        """the link master KME (gwA) generates as a fibre of km from now on (scripts/lab
        kms-fibre: SIGHUP, qkd-kmsd(8)), as when the QKD link's optical path changes: no outage,
        what the KMEs stored stays (runs before 2026-12-02 restarted the KME: an outage with both
        stores flushed, and the supply step measured that outage too)"""
        self.on.run("kms-fibre", "gwA", str(km))
        self.km = km

    def child(self, lab):
        sa = lab.child_sa()
        if not sa:
            lab.initiate()
            sa = lab.child_sa()
        if not sa:
            raise RuntimeError("%s: no CHILD_SA" % lab.name)
        return sa

    def rekey(self, lab, sa, since):
        """rekey the CHILD_SA: the old SA is deleted and its datapath counters logged; returns
        them (dict) or None"""
        try:
            lab.vici("gwA").request("rekey", {"child-id": sa[1]}, timeout=15)
        except Exception as e:      # reported as a missing counter
            print("  rekey: %s" % e)
            return None
        return deleted_counters(lab, sa[3], since)

    # ---- 1. ceiling ----------------------------------------------------------------------
    def ceiling(self):
        T = self.p["ceiling_secs"]
        B.progress("1. ceiling: UDP through the rotation-off lab, %d s per load, until loss > 1 %%" % T)
        rows, best = [], None
        for load in LADDER:
            ok = False
            for _try in range(2):      # a second try: one noisy run of a shared machine is no ceiling
                r = B.iperf(self.off, "udp", T, rate="%dM" % load, length=1200)
                rows.append((load, r.get("mbps"), r.get("lost_pct"), r.get("error", "")))
                B.progress("  %4d Mbit/s offered: %s delivered, loss %s %%" % (
                    load, B.fmt(r.get("mbps")), B.fmt(r.get("lost_pct"), 3)))
                ok = not r.get("error") and r.get("lost_pct", 100) <= 1.0
                if ok:
                    break
            if not ok:
                break
            best = load
        B.write_csv(os.path.join(self.out, "ceiling.csv"), ["offered_mbps", "delivered_mbps",
                                                            "loss_pct", "error"], rows)
        if best is None:
            best = LADDER[0]
            self.note_missing("ceiling", "the rotation-off lab lost more than 1 %% even at %d Mbit/s (machine "
                              "load); the cells use %d Mbit/s all the same" % (best, best))
        self.ceiling_rows, self.ceiling_mbps = rows, best
        if self.a.loads:
            self.loads = self.a.loads
        elif self.a.quick:
            self.loads = sorted({100, best})
        else:
            mid = int(round((100 + best) / 2.0 / 50.0) * 50)
            self.loads = sorted({100, mid, best})
        B.progress("  ceiling %d Mbit/s -> loads %s" % (best, self.loads))

    # ---- 2. cells ------------------------------------------------------------------------
    def run_secs(self, km):
        """seconds per run of a cell: the duration, or longer where the link makes so few keys
        that the steady interval would hold fewer than min_keys (at 80 km, 10 keys/s, a 10 s run
        counted ~60 windows, and the SA's key buffer alone, up to 64 keys, moved the utilisation
        of single runs between 0.5 and 1.1; measured at 1750eda)"""
        p = self.p
        need = p["warmup"] + 0.3 + p["min_keys"] / model_keys(km) if p["min_keys"] else 0
        return max(p["duration"], int(need + 0.999))

    def observers(self, lab, kme, spi, T):
        """the samplers of a run: the wire (tcpdump at W and at the end), qkid's view every
        0.5 s, the KME's counter every second. Both arms of a cell run them, so that what they
        cost the shared CPUs is in the baseline too (before 2026-12-03 only the rotation arm
        did, and its loss excess counted their cost as rotation's)"""
        W = self.p["warmup"]
        return (B.EspSampler(lab, [W, T - 0.3], spi=spi), Poller(lab, spi, 0.5),
                KmeSampler(kme, [x * 1.0 for x in range(int(W) - 1, int(T) + 1)], stored=True))

    def observed_iperf(self, lab, kme, spi, T, load):
        """one iperf3 UDP run of T s under the observers: (iperf3 result, wire, poll, kme)"""
        wire, poll, kt = self.observers(lab, kme, spi, T)
        wire.start()
        poll.start()
        kt.start()
        c0, t0 = lab_cpu(lab), time.monotonic()
        r = B.iperf(lab, "udp", T, rate="%dM" % load, length=1200)
        c1, t1 = lab_cpu(lab), time.monotonic()
        wire.join(5)
        kt.join(5)
        poll.stop()
        # the daemons' CPU during the run, in cores (the datapath runs in charon's threads)
        r["cpu"] = {k: (c1[k] - c0[k]) / (t1 - t0) for k in CPU_DAEMONS}
        return r, wire, poll, kt

    def run_on(self, load, T):
        """one run with rotation: returns a dict of what was measured"""
        W = self.p["warmup"]
        lab = self.on
        sa = self.child(lab)
        drain_dry(lab, self.km)
        since = len(lab.log("gwA"))
        t0, t0m = time.time(), time.monotonic()
        r, wire, poll, kt = self.observed_iperf(lab, self.kme, sa[3], T, load)
        since_b = len(lab.log("gwB"))
        cnt = self.rekey(lab, sa, since)
        rx = deleted_counters(lab, sa[3], since_b, gw="gwB")
        loss, mbps = B.loss_after(r, W)
        out = {"mbps": mbps, "loss": loss, "loss_all": r.get("lost_pct"), "error": r.get("error", "")}
        out.update(("cpu_" + k, v) for k, v in r["cpu"].items())
        if rx:
            out["rx_nokey"] = rx["nokey"]
        ww = wire_windows(wire.samples)
        kme = [k[:2] for k in kt.samples if k]
        stored = [(k[0], k[2]) for k in kt.samples if k]
        if ww and len(kme) >= 2:
            supplied = interp(kme, wire.samples[-1][0]) - interp(kme, wire.samples[0][0])
            # keys the run drew from what the KME had stored (it refills between the drain and
            # the load; at 0 and 20 km faster than the drain empties it) were made by the link
            # too: they count as supplied; keys left in the store count as supplied, not used
            drawn = max(0.0, interp(stored, wire.samples[0][0]) - interp(stored, wire.samples[-1][0]))
            out.update(windows=ww[0], wire_pps=ww[1] / ww[2], wire_rpk=ww[1] / ww[0] if ww[0] else None,
                       supplied=supplied, supply_rate=supplied / ww[2], store_drawn=drawn,
                       util=ww[0] / (supplied + drawn) if supplied + drawn > 0 else None)
        ins = [(t, s["keys_in"]) for t, s, _ in poll.rows if s]
        if ww and len(ins) >= 2:
            out["keys_in"] = interp(ins, wire.samples[-1][0]) - interp(ins, wire.samples[0][0])
        # the datapath's own counters as qkid shows them (about once a second): packets beyond
        # rpk and stall drops over the steady interval only
        for key, name in (("beyond_rpk", "beyond_steady"), ("stall_drops", "stall_steady")):
            pts = [(t, s[key]) for t, s, _ in poll.rows if s and s.get(key) is not None]
            if ww and len(pts) >= 2:
                out[name] = interp(pts, wire.samples[-1][0]) - interp(pts, wire.samples[0][0])
        trace = read_trace(self.trace, sa[3], t0m)
        if trace and ww:
            # the datapath's own 100 ms samples: finer than qkid's view
            a_, b_ = wire.samples[0][0] - t0, wire.samples[-1][0] - t0
            for key, name in (("beyond_rpk", "beyond_steady"), ("stall_drops", "stall_steady")):
                pts = [(d["t"], d[key]) for d in trace]
                out[name] = interp(pts, b_) - interp(pts, a_)
            # keys the SA took in the interval and still holds are not lost: count the change of
            # its buffer (up to 64 keys; at 80 km the ~300 keys of a 31 s interval, so the level
            # at its two ends alone moved the raw figure by up to +-20 %, measured 2026-12-03)
            if out.get("util") is not None:
                lv = [(d["t"], d["level"]) for d in trace]
                out["buffer_change"] = interp(lv, b_) - interp(lv, a_)
                out["util_raw"] = ww[0] / out["supplied"] if out["supplied"] > 0 else None
                out["util"] = (ww[0] + out["buffer_change"]) / (out["supplied"] + out["store_drawn"])
        if trace:
            out["conv"] = convergence([(d["t"], d["rpk"]) for d in trace], 0.5, T)
        else:
            rkey = "dp_rpk" if any(s and s.get("dp_rpk") for _, s, _ in poll.rows) else "rpk"
            rpks = [(t, s[rkey]) for t, s, _ in poll.rows if s and s.get(rkey)]
            out["conv"] = convergence(rpks, t0 + 0.5, t0 + T)
        adv = [(t, s["rpk"]) for t, s, _ in poll.rows if s and s.get("rpk")]
        out["rpk_adv"] = B.median([v for t, v in adv if t >= t0 + W]) if adv else None
        if cnt:
            out.update(beyond=cnt["beyond"], stall=cnt["stall"], sa_packets=cnt["packets"],
                       beyond_share=100.0 * cnt["beyond"] / cnt["packets"] if cnt["packets"] else 0.0)
        return out

    def run_off(self, load, T):
        sa = self.child(self.off)
        r, wire, _, _ = self.observed_iperf(self.off, self.kme_off, sa[3], T, load)
        loss, mbps = B.loss_after(r, self.p["warmup"])
        out = {"mbps": mbps, "loss": loss, "loss_all": r.get("lost_pct"), "error": r.get("error", "")}
        out.update(("cpu_" + k, v) for k, v in r["cpu"].items())
        ww = wire_windows(wire.samples)
        if ww:
            out["wire_pps"] = ww[1] / ww[2]
        return out

    def cells(self):
        p = self.p
        B.progress("2. cells: fibre %s km x loads %s Mbit/s x %d repeats, %d s per run, on/off in "
                   "ABBA order" % (p["kms"], self.loads, p["repeats"], p["duration"]))
        rows = []
        for km in p["kms"]:
            if km != self.km:
                self.set_supply(km)
            time.sleep(p["settle"])
            T = self.run_secs(km)
            for load in self.loads:
                for i in range(p["repeats"]):
                    order = ("on", "off") if i % 2 == 0 else ("off", "on")
                    res = {}
                    for which in order:
                        res[which] = self.run_on(load, T) if which == "on" else self.run_off(load, T)
                    on, off = res["on"], res["off"]
                    rows.append({"km": km, "load": load, "rep": i + 1, "on": on, "off": off})
                    B.progress("  %2d km %4d Mbit/s rep %d: on %s Mbit/s loss %s %%, off %s Mbit/s "
                               "loss %s %%; rpk %s on the wire, utilisation %s, %s packets beyond "
                               "rpk (%s %%), %s stall drops, %s receiver drops for want of a key, rpk settled in %s s%s" % (
                                   km, load, i + 1, B.fmt(on.get("mbps")), B.fmt(on.get("loss"), 3),
                                   B.fmt(off.get("mbps")), B.fmt(off.get("loss"), 3),
                                   B.fmt(on.get("wire_rpk"), 0), B.fmt(on.get("util"), 3),
                                   on.get("beyond", "?"), B.fmt(on.get("beyond_share"), 3),
                                   on.get("stall", "?"), on.get("rx_nokey", "?"), B.fmt(on.get("conv"), 1),
                                   "; " + on["error"] + off["error"] if on["error"] or off["error"] else ""))
        self.cell_rows = rows
        cols = ["mbps", "loss", "loss_all", "rx_nokey", "beyond_steady", "stall_steady", "windows", "supplied", "store_drawn", "keys_in", "util", "util_raw", "buffer_change", "wire_rpk", "rpk_adv",
                "wire_pps", "supply_rate", "beyond", "beyond_share", "stall", "sa_packets", "conv"]
        cpu = ["cpu_" + k for k in CPU_DAEMONS]
        B.write_csv(os.path.join(self.out, "cells.csv"),
                    ["km", "offered_mbps", "rep", "off_mbps", "off_loss_pct", "off_loss_all_pct"]
                    + ["off_" + c for c in cpu] + ["on_" + c for c in cols + cpu],
                    [(r["km"], r["load"], r["rep"], r["off"].get("mbps"), r["off"].get("loss"),
                      r["off"].get("loss_all"))
                     + tuple(r["off"].get(c) for c in cpu)
                     + tuple(r["on"].get(c) for c in cols + cpu) for r in rows])

    def cell_table(self):
        """per (km, load): medians over the repeats; returns the table text and the summary"""
        t = ["| fibre km (model keys/s) | offered Mbit/s | delivered Mbit/s off / on | loss % off / on "
             "| loss excess pp | KME supply keys/s | windows/s on the wire | key utilisation "
             "| rpk on the wire | packets beyond rpk: steady interval / whole run (share) | stall drops "
             "| receiver: no key | rpk settled after s |",
             "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
        summ = {"util": [], "beyond": [], "excess": [], "demand_bound": []}
        for km in self.p["kms"]:
            for load in self.loads:
                sel = [r for r in self.cell_rows if r["km"] == km and r["load"] == load]
                if not sel:
                    continue

                def med(which, key):
                    v = [r[which].get(key) for r in sel if r[which].get(key) is not None]
                    return B.median(v) if v else None

                lo_off, lo_on = med("off", "loss"), med("on", "loss")
                excess = lo_on - lo_off if lo_on is not None and lo_off is not None else None
                util, share = med("on", "util"), med("on", "beyond_share")
                whole, steady = med("on", "beyond"), med("on", "beyond_steady")
                beyond = steady if steady is not None else whole
                supply, pps = med("on", "supply_rate"), med("on", "wire_pps")
                wins = [r["on"]["windows"] / (r["on"]["supplied"] / r["on"]["supply_rate"])
                        for r in sel if r["on"].get("windows") is not None and r["on"].get("supply_rate")]
                # a cell where even rpk_min would use fewer keys than the link makes cannot use them all
                demand_bound = pps is not None and supply and pps / self.a.rpk_min < supply
                if util is not None and not demand_bound:
                    summ["util"].append(util)
                elif demand_bound:
                    summ["demand_bound"].append((km, load))
                if beyond is not None:
                    summ["beyond"].append(beyond)
                if excess is not None:
                    summ["excess"].append(excess)
                rng = lambda k: "/".join(B.fmt(x, 3) for x in B.mmm([r["on"].get(k) for r in sel]))
                t.append("| %d (%s) | %d | %s / %s | %s / %s | %s | %s | %s | %s%s | %s | %s / %s (%s %%) | %s | %s | %s |" % (
                    km, B.fmt(model_keys(km)), load, B.fmt(med("off", "mbps")), B.fmt(med("on", "mbps")),
                    B.fmt(lo_off, 3), B.fmt(lo_on, 3), B.fmt(excess, 3), B.fmt(supply),
                    B.fmt(B.median(wins) if wins else None), B.fmt(util, 3),
                    " (demand-bound)" if demand_bound else (" (%s)" % rng("util") if len(sel) > 1 else ""),
                    B.fmt(med("on", "wire_rpk"), 0), B.fmt(steady, 0) if steady is not None else "-",
                    B.fmt(whole, 0), B.fmt(share, 3),
                    B.fmt(med("on", "stall"), 0), B.fmt(med("on", "rx_nokey"), 0), B.fmt(med("on", "conv"), 1)))
        # what the rotation arm's daemons cost the shared CPUs beyond the baseline's: near the
        # load ceiling the CPUs are the limit, and loss follows any extra CPU
        t += ["", "CPU of the labs' daemons during the runs (both gateways, user + system, in cores: "
              "CPU seconds per second of run; the datapath runs in charon's threads; medians of the "
              "repeats), rotation off / on:", "",
              "| fibre km | offered Mbit/s | charon (datapath) | qkid | qkd-kmsd | all three: on - off |",
              "|---|---:|---|---|---|---:|"]
        for km in self.p["kms"]:
            for load in self.loads:
                sel = [r for r in self.cell_rows if r["km"] == km and r["load"] == load]
                if not sel:
                    continue
                cells, tot = [], {}
                for d in CPU_DAEMONS:
                    pair = []
                    for which in ("off", "on"):
                        v = [r[which].get("cpu_" + d) for r in sel if r[which].get("cpu_" + d) is not None]
                        m = B.median(v) if v else None
                        pair.append(B.fmt(m, 3))
                        if m is not None:
                            tot[which] = tot.get(which, 0.0) + m
                    cells.append(" / ".join(pair))
                diff = tot["on"] - tot["off"] if "on" in tot and "off" in tot else None
                t.append("| %g | %d | %s | %s |" % (km, load, " | ".join(cells),
                                                     ("%+.3f" % diff) if diff is not None else "-"))
        return "\n".join(t), summ

    # ---- 3. steps ------------------------------------------------------------------------
    def timeline(self, name, load_plan, supply_plan, base_km, phase):
        """Run a step experiment on the rotation lab and sample it. load_plan: [(start s, Mbit/s,
        secs)], one iperf3 each on its own port; supply_plan: [(at s, km)]. Returns rows."""
        lab = self.on
        if self.km != base_km:
            self.set_supply(base_km)
            time.sleep(self.p["settle"])
        sa = self.child(lab)
        drain_dry(lab, self.km)
        since = len(lab.log("gwA"))
        total = max(s + d for s, _, d in load_plan)
        poll = Poller(lab, sa[3], 0.5)
        wire = B.EspSampler(lab, [x + 0.5 for x in range(int(total))], spi=sa[3])
        kt = KmeSampler(self.kme, [x * 1.0 for x in range(int(total) + 1)])
        t0, t0m = time.time(), time.monotonic()
        poll.start()
        wire.start()
        kt.start()
        threads = []
        for k, (start, mbps, secs) in enumerate(load_plan):
            def go(start=start, mbps=mbps, secs=secs, port=5201 + k):
                time.sleep(max(0.0, t0 + start - time.time()))
                B.iperf(lab, "udp", secs, rate="%dM" % mbps, length=1200, port=port)
            th = threading.Thread(target=go, daemon=True)
            th.start()
            threads.append(th)
        edges = []              # when each supply change began (the old KME stops)
        for at, km in supply_plan:
            time.sleep(max(0.0, t0 + at - time.time()))
            edges.append(time.time() - t0)
            self.set_supply(km)
        for th in threads:
            th.join(total + 30)
        wire.join(10)
        kt.join(10)
        poll.stop()
        cnt = self.rekey(lab, sa, since)
        # qkid's view (every 0.5 s): t, offered, rpk, level, capacity, SA keys/s, packets/s,
        # starved, KME keys/s, qkid keys in /s; the wire (every s): t, rpk, windows/s
        rows, wrows = [], []
        prev = None
        kme = [k for k in kt.samples if k]
        for t, s, _ in poll.rows:
            rel = t - t0
            offered = sum(m for st, m, d in load_plan if st <= rel < st + d)
            kme_rate = qin = None
            g0, g1 = interp(kme, t - 1.0), interp(kme, t)
            if g0 is not None and kme and kme[0][0] <= t - 1.0 and t <= kme[-1][0]:
                kme_rate = g1 - g0
            if prev and s and prev[1] and t > prev[0]:
                qin = (s["keys_in"] - prev[1]["keys_in"]) / (t - prev[0])
            if s:
                share = s.get("share_milli")
                rows.append([rel, offered, s.get("rpk"), s.get("level"), s.get("capacity"),
                             s.get("keys_per_s_milli", 0) / 1000.0, s.get("pkt_rate_milli", 0) / 1000.0,
                             s.get("starved"), kme_rate, qin, s.get("dp_rpk"), s.get("dp_level"),
                             s.get("dp_capacity"), share / 1000.0 if share is not None else None,
                             s.get("beyond_rpk"), s.get("stall_drops")])
            prev = (t, s)
        ws = wire.samples
        for a, b in zip(ws, ws[1:]):
            if a[1] != b[1] or b[0] <= a[0] or b[3] == a[3]:
                continue
            dseq = (b[2] - a[2]) % (1 << 32)
            wrows.append([(a[0] + b[0]) / 2.0 - t0, dseq / (b[3] - a[3]), (b[3] - a[3]) / (b[0] - a[0])])
        csv = os.path.join(self.out, "%s.csv" % name)
        B.write_csv(csv, ["t_s", "offered_mbps", "rpk_qkid", "buffer_level", "buffer_capacity",
                          "sa_keys_per_s", "sa_packets_per_s", "starved", "kme_keys_per_s",
                          "qkid_keys_in_per_s", "dp_rpk", "dp_level", "dp_capacity",
                          "share_keys_per_s", "beyond_rpk", "stall_drops"],
                    [["nan" if x is None else x for x in r] for r in rows])
        B.write_csv(csv[:-4] + "_wire.csv", ["t_s", "rpk_wire", "windows_per_s_wire"], wrows)
        # the datapath's trace (100 ms): rpk in force, keys ahead, the loop's target, fair share,
        # packet rate, windows/s over the last second, cumulative packets beyond rpk
        trace = read_trace(self.trace, sa[3], t0m)
        trows = []
        for i, d in enumerate(trace):
            back = [e for e in trace[max(0, i - 12):i] if d["t"] - e["t"] >= 0.95]
            wps = (d["windows"] - back[-1]["windows"]) / (d["t"] - back[-1]["t"]) if back else None
            trows.append([d["t"], d["rpk"], d["level"], d["target"], d["share"], d["pps"], wps,
                          d["beyond_rpk"], d["stall_drops"]])
        B.write_csv(csv[:-4] + "_trace.csv", ["t_s", "rpk", "keys_ahead", "target_level", "share_keys_per_s",
                                              "packets_per_s", "windows_per_s", "beyond_rpk", "stall_drops"],
                    [["nan" if x is None else x for x in r] for r in trows])
        return rows, cnt, csv, edges, trows

    def steps(self):
        P = self.p["phase"]
        km0 = self.a.step_km
        hi = self.loads[-1]
        base = min(100, hi // 2)      # the load step goes from base to the ceiling and back
        B.progress("3. steps (supply %g km): load %d -> %d -> %d Mbit/s, then supply %g -> %g -> %g km at "
                   "%d Mbit/s, %d s per phase" % (km0, base, hi, base, km0, self.a.step_km2, km0, base, P))
        out = {}
        rows, cnt, csv, _, trace = self.timeline("step_load", [(0, base, 3 * P), (P, hi - base, P)], [], km0, P)
        out["load"] = (rows, cnt, csv, [P, 2 * P], "load %d -> %d -> %d Mbit/s" % (base, hi, base), trace)
        rows, cnt, csv, edges, trace = self.timeline("step_supply", [(0, base, 3 * P)],
                                              [(P, self.a.step_km2), (2 * P, km0)], km0, P)
        out["supply"] = (rows, cnt, csv, edges, "supply %g -> %g -> %g km at %d Mbit/s"
                         % (km0, self.a.step_km2, km0, base), trace)
        t = ["| step | at s | rpk before (median) | rpk after | rpk settled (+-10 %) after s "
             "| packets beyond rpk in the run | stall drops | key buffer min during the run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
        self.conv = []
        for kind, (rows, cnt, csv, edges, label, trace) in out.items():
            if trace:       # the datapath's 100 ms trace: rpk in force and keys ahead
                series = [(r[0], r[1]) for r in trace if r[1]]
                lv = [r[2] for r in trace if r[0] > 2]
            else:
                col = 10 if any(r[10] for r in rows) else 2       # the rpk in force, else qkid's advice
                series = [(r[0], r[col]) for r in rows if r[col]]
                lcol = 11 if any(r[11] is not None for r in rows) else 3
                lv = [r[lcol] for r in rows if r[lcol] is not None and r[0] > 2]
            bounds = [0] + edges + [max(3 * P, edges[-1] + P / 2.0)]
            for j, e in enumerate(edges):
                before = B.median([v for tt, v in series if bounds[j] + (e - bounds[j]) / 2.0 <= tt < e] or [float("nan")])
                after = B.median([v for tt, v in series if bounds[j + 2] - (bounds[j + 2] - e) / 4.0 <= tt < bounds[j + 2]]
                                 or [float("nan")])
                c = convergence(series, e, bounds[j + 2])
                self.conv.append((kind, e, c))
                t.append("| %s | %.1f | %s | %s | %s | %s | %s | %s |" % (
                    label if j == 0 else "", e, B.fmt(before, 0), B.fmt(after, 0),
                    B.fmt(c, 1) if c is not None else "not settled",
                    cnt["beyond"] if cnt else "?", cnt["stall"] if cnt else "?",
                    min(lv) if lv else "n/a"))
            self.plot_step(kind, csv, label, edges)
        self.report["steps"] = "\n".join(t)

    def plot_step(self, kind, csv, label, edges):
        png = os.path.join(self.out, "step_%s.png" % kind)
        err = B.gnuplot("keys_step", png, csv=csv, title="%s (rotation lab, %s)" % (label, B.stamp()),
                        e1=edges[0], e2=edges[1])
        if err:
            print("plot %s failed: %s" % (png, err))
        else:
            self.plots.append(png)

    # ---- 4. fairness ---------------------------------------------------------------------
    def fairness(self):
        p = self.p
        km = self.a.step_km
        lab = self.on
        B.progress("4. fairness: 4 SAs at %s Mbit/s, supply %g km, %d s (%d s warm-up)" % (
            FAIR_LOADS, km, p["fair_secs"], p["fair_warmup"]))
        if self.km != km:
            self.set_supply(km)
            time.sleep(p["settle"])
        for gw in ("gwA", "gwB"):
            path = os.path.join(lab.dir, gw, "swanctl.conf")
            conf = open(path).read()
            # one CHILD_SA per UDP port (datapath routes need the whole LAN as the local
            # selector, so no per-address SAs), one for iperf3's TCP control connections
            kids = ""
            for k, sel in enumerate(["udp/%d" % (5201 + k) for k in range(len(FAIR_LOADS))] + ["tcp"]):
                name = "f%d" % (k + 1) if sel != "tcp" else "fctl"
                local, remote = ("192.0.2.0/25", "192.0.2.128/25[%s]" % sel) if gw == "gwA" \
                    else ("192.0.2.128/25[%s]" % sel, "192.0.2.0/25")
                kids += ("\t\t\t%s {\n\t\t\t\tlocal_ts = %s\n\t\t\t\tremote_ts = %s\n"
                         "\t\t\t\tesp_proposals = aes256gcm16-x25519qkd\n\t\t\t}\n" % (name, local, remote))
            conf = re.sub(r"(children \{\n)", r"\1" + kids.replace("\\", "\\\\"), conf, count=1)
            with open(path, "w") as f:
                f.write(conf)
            lab.run("load", gw)
        v = lab.vici("gwA")
        v.request("terminate", {"child": "net", "timeout": 5000}, timeout=10)
        spis = []
        for name in ["fctl"] + ["f%d" % (k + 1) for k in range(len(FAIR_LOADS))]:
            r = v.request("initiate", {"child": name, "timeout": 20000}, timeout=25)
            if r.get("success") != "yes":
                for gw in ("gwA", "gwB"):
                    print("  %s's charon log, last lines:\n    %s" % (
                        gw, "\n    ".join(lab.log(gw).splitlines()[-12:])))
                raise RuntimeError("initiate %s: %s" % (name, r.get("errmsg")))
        for _name, ike in B.list_sas(v):
            for c in ike.get("child-sas", {}).values():
                if re.match(r"f\d+$", c.get("name", "")) and c.get("state") == "INSTALLED":
                    spis.append((c["name"], int(c["uniqueid"]), int(c["spi-out"], 16)))
        spis.sort()
        if len(spis) != len(FAIR_LOADS):
            raise RuntimeError("expected %d CHILD_SAs, have %s" % (len(FAIR_LOADS), spis))
        T, W = p["fair_secs"], p["fair_warmup"]
        # baseline: the same 4 flows through the rotation-off lab (one SA)
        base = _parallel(self.off, T)
        drain_dry(lab, self.km)
        since = len(lab.log("gwA"))
        samplers = [B.EspSampler(lab, [W, T - 0.5], spi=s[2], timeout=5.0) for s in spis]
        kt = KmeSampler(self.kme, [W, T - 0.5], stored=True)
        for th in samplers + [kt]:
            th.start()
        results = _parallel(lab, T)
        for th in samplers + [kt]:
            th.join(T + 30)
        for k, r in enumerate(results):
            if not r or r.get("error"):
                print("  iperf3 of %s: %s" % (spis[k][0], (r or {}).get("error", "did not finish")))
        counters = []
        for name, uid, spi in spis:
            v.request("terminate", {"child-id": uid, "timeout": 5000}, timeout=10)
        for name, uid, spi in spis:
            counters.append(deleted_counters(lab, spi, since))
        kme = [k for k in kt.samples if k]
        rows = []
        for k, (name, uid, spi) in enumerate(spis):
            ww = wire_windows(samplers[k].samples)
            got = ww[0] / ww[2] if ww else None
            pps = ww[1] / ww[2] if ww else None
            rows.append([name, FAIR_LOADS[k], pps, pps / self.a.rpk_min if pps else None, got,
                         (results[k] or {}).get("lost_pct"), (base[k] or {}).get("lost_pct"),
                         counters[k] and counters[k]["beyond"], counters[k] and counters[k]["stall"]])
        supply = avail = None
        if len(kme) == 2 and kme[1][0] > kme[0][0]:
            dt = kme[1][0] - kme[0][0]
            supply = (kme[1][1] - kme[0][1]) / dt
            # what the KME made available to the SAs: generated plus what they drew from its
            # store (keys it stored while the lab was idle; the drain before the run cannot
            # empty it at 20 km faster than it refills, and the loop spends it)
            avail = supply + max(0.0, kme[0][2] - kme[1][2]) / dt
        demands = [r[3] for r in rows]

        def jain_of(total):
            shares = max_min(total, demands) if total and all(d is not None for d in demands) else None
            if not shares or any(r[4] is None for r in rows):
                return shares, None
            x = [r[4] / s for r, s in zip(rows, shares)]
            return shares, sum(x) ** 2 / (len(x) * sum(y * y for y in x))
        shares_gen, jain_gen = jain_of(supply)
        shares, jain = jain_of(avail)
        raw = None
        if shares and all(r[4] is not None for r in rows):
            g = [r[4] for r in rows]
            raw = sum(g) ** 2 / (len(g) * sum(y * y for y in g))
        for r, s in zip(rows, shares or [None] * len(rows)):
            r.insert(4, s)
        B.write_csv(os.path.join(self.out, "fairness.csv"),
                    ["sa", "offered_mbps", "wire_pps", "demand_keys_per_s", "maxmin_share", "windows_per_s",
                     "loss_pct", "off_loss_pct", "beyond_rpk", "stall_drops"], rows)
        t = ["| SA | offered Mbit/s | packets/s on the wire | demand keys/s (at rpk_min %d) | max-min share keys/s "
             "| windows/s got | got / share | loss %% on / off (same flows, rotation-off lab) "
             "| packets beyond rpk | stall drops |" % self.a.rpk_min,
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
        for r in rows:
            t.append("| %s | %d | %s | %s | %s | %s | %s | %s / %s | %s | %s |" % (
                r[0], r[1], B.fmt(r[2], 0), B.fmt(r[3]), B.fmt(r[4]), B.fmt(r[5]),
                B.fmt(r[5] / r[4], 3) if r[4] and r[5] is not None else "n/a", B.fmt(r[6], 3),
                B.fmt(r[7], 3), r[8] if r[8] is not None else "?", r[9] if r[9] is not None else "?"))
        t.append("")
        t.append("Supply over the interval, from the link master KME's own counters: %s keys/s generated "
                 "(model %s) plus %s keys/s the SAs drew from its store, %s keys/s available; demand %s keys/s in "
                 "total. Jain's index against max-min of what was available (the shares above): **%s** (target "
                 ">= %.2f: %s); against max-min of the generation alone: %s (no SA can be held to a share of "
                 "the generation while the store adds to it); of the raw windows/s: %s (not 1 by design: the "
                 "demands differ)." % (
                     B.fmt(supply), B.fmt(model_keys(km)),
                     B.fmt(avail - supply if avail is not None and supply is not None else None), B.fmt(avail),
                     B.fmt(sum(d for d in demands if d) if demands else None),
                     B.fmt(jain, 4), TARGET_JAIN, met(jain is not None and jain >= TARGET_JAIN) if jain is not None
                     else "not measured", B.fmt(jain_gen, 4), B.fmt(raw, 4)))
        self.jain = jain
        self.report["fair"] = "\n".join(t)


def _parallel(lab, T):
    """the fairness run's flows at once, one iperf3 UDP each on ports 5201..: results in order"""
    results = [None] * len(FAIR_LOADS)

    def go(k):
        results[k] = B.iperf(lab, "udp", T, rate="%dM" % FAIR_LOADS[k], length=1200, port=5201 + k)
    threads = [threading.Thread(target=go, args=(k,), daemon=True) for k in range(len(FAIR_LOADS))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(T + 30)
    return results


def max_min(supply, demands):
    """max-min fair shares of supply among demands (water filling)"""
    shares = [0.0] * len(demands)
    left = list(range(len(demands)))
    rest = supply
    while left and rest > 1e-9:
        eq = rest / len(left)
        sat = [i for i in left if demands[i] - shares[i] <= eq]
        if not sat:
            for i in left:
                shares[i] += eq
            break
        for i in sat:
            rest -= demands[i] - shares[i]
            shares[i] = demands[i]
        left = [i for i in left if i not in sat]
    return shares


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench keys", description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 repeat, 2 supplies, 2 loads, short runs "
                    "(~3 min); results/keys only, BENCHMARKS.md untouched")
    ap.add_argument("--repeats", type=int, help="repeats per cell (default 3)")
    ap.add_argument("--duration", type=int, help="seconds per iperf3 run of a cell (default 10)")
    ap.add_argument("--kms", help="fibre lengths of the cells, comma separated (default 0,20,50,80)")
    ap.add_argument("--loads", help="offered loads in Mbit/s instead of 100, middle, ceiling")
    ap.add_argument("--parts", default="cells,steps,fair", help="which parts (default cells,steps,fair)")
    ap.add_argument("--rpk-min", type=int, default=16, help="rpk_min of kernel-qkd and qkid (default 16: "
                    "low enough that every cell's demand exceeds the supply)")
    ap.add_argument("--rpk-max", type=int, default=65536, help="rpk_max (default 65536)")
    ap.add_argument("--step-km", type=float, default=20, help="supply of the steps and fairness (default 20 km)")
    ap.add_argument("--step-km2", type=float, default=80, help="the supply step goes to this (default 80 km)")
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--section", default="keys", help="BENCHMARKS.md section (and plot) name, e.g. "
                    "keys-before to keep a run next to a later one (default keys)")
    ap.add_argument("--title", default="", help="added to the section's heading, e.g. 'before the rpk loop'")
    ap.add_argument("--out", default=os.path.join(B.TOP, "results", "keys"), help="results folder")
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench keys: needs root (network namespaces)", file=sys.stderr)
        return 77
    p = dict(QUICK if a.quick else FULL)
    if a.repeats:
        p["repeats"] = a.repeats
    if a.duration:
        p["duration"] = a.duration
        p["warmup"] = min(p["warmup"], a.duration / 2.0)
    if a.kms:
        p["kms"] = [float(x) if "." in x else int(x) for x in a.kms.split(",")]
    a.loads = [int(x) for x in a.loads.split(",")] if a.loads else None
    parts = set(x.strip() for x in a.parts.split(","))
    for so in ("src/libcharon/plugins/kernel_qkd/.libs/libstrongswan-kernel-qkd.so",
               "src/libcharon/plugins/qkd/.libs/libstrongswan-qkd.so", "src/qki/qkid", "src/kmsd/qkd-kmsd"):
        if not os.path.exists(os.path.join(B.TOP, so)):
            print("bench keys: %s not built (make first)" % so, file=sys.stderr)
            return 77
    os.makedirs(a.out, exist_ok=True)
    load0 = os.getloadavg()
    bench = Bench(a, p)
    B.progress("bench keys%s: %d repeats, supplies %s km, parts %s; load average before: %.2f %.2f %.2f"
               % (" --quick" if a.quick else "", p["repeats"], p["kms"], ",".join(sorted(parts)), *load0))
    loads_seen = []
    stop_load = threading.Event()

    def watch_load():
        while not stop_load.wait(10):
            loads_seen.append(os.getloadavg()[0])
    threading.Thread(target=watch_load, daemon=True).start()
    bench.labs_up()
    B.progress("labs up: %s (rotation, rpk %d..%d, exhaust = reuse), %s (rotation off)" % (
        bench.on.name, a.rpk_min, a.rpk_max, bench.off.name))
    bench.ceiling()
    for part, fn in (("cells", bench.cells), ("steps", bench.steps), ("fair", bench.fairness)):
        if part not in parts:
            continue
        try:
            fn()
        except KeyboardInterrupt:
            raise
        except Exception as e:
            import traceback
            traceback.print_exc()
            bench.note_missing("part " + part, "%s: %s" % (type(e).__name__, e))
    B.down_all([bench.on, bench.off])
    stop_load.set()
    total = B.elapsed()
    machine_load = "load average (1 min) sampled every 10 s during the run: min %.2f / median %.2f / max %.2f " \
                   "on %d CPUs; before the run %.2f" % (min(loads_seen or [0]), B.median(loads_seen or [0]),
                                                        max(loads_seen or [0]), os.cpu_count(), load0[0])
    B.progress("done in %.1f min; results in %s; %s" % (total / 60.0, a.out, machine_load))
    summ = None
    if hasattr(bench, "cell_rows"):
        bench.report["cells"], summ = bench.cell_table()
    for k in ("cells", "steps", "fair"):
        if k in bench.report:
            print()
            print(bench.report[k])
    for m in bench.missing:
        print("NOT MEASURED: " + m)
    headline = headline_text(bench, summ)
    print()
    print(headline["text"])
    if not (a.quick or a.no_update or parts != {"cells", "steps", "fair"}):
        try:
            write_report(bench, a, p, total, machine_load, headline)
        except Exception as e:
            print("writing the report failed: %s: %s" % (type(e).__name__, e))
    print(headline["last"])
    return 0


def headline_text(bench, summ):
    """the targets of issue 14 next to the figures, and the last line"""
    U = min(summ["util"]) if summ and summ["util"] else float("nan")
    N = max(summ["beyond"]) if summ and summ["beyond"] else float("nan")
    L = max(summ["excess"]) if summ and summ["excess"] else float("nan")
    lines = [
        "steady-state cells (medians of the repeats):",
        "- key utilisation, lowest cell: %s (target >= %.2f: %s)%s" % (
            B.fmt(U, 3), TARGET_UTIL, met(U >= TARGET_UTIL) if U == U else "not measured",
            "; demand-bound cells left out: %s" % summ["demand_bound"] if summ and summ["demand_bound"] else ""),
        "- packets beyond rpk, highest cell: %s (target 0 whenever rpk_max can meet the supply: %s)" % (
            B.fmt(N, 0), met(N == 0) if N == N else "not measured"),
        "- loss with rotation minus loss without, highest cell: %s pp (target <= %.1f pp: %s)" % (
            B.fmt(L, 3), TARGET_LOSS_PP, met(L <= TARGET_LOSS_PP) if L == L else "not measured")]
    if getattr(bench, "jain", None) is not None:
        lines.append("- 4 SAs, Jain's index against max-min of the supply available: %s (target >= %.2f: %s)" % (
            B.fmt(bench.jain, 4), TARGET_JAIN, met(bench.jain >= TARGET_JAIN)))
    for kind, e, c in getattr(bench, "conv", []):
        lines.append("- %s step at %.1f s: rpk settled within +-10 %% after %s" % (
            kind, e, ("%s s" % B.fmt(c, 1)) if c is not None else "never (within the phase)"))
    last = "key_economy min_utilisation=%s max_beyond_rpk=%s max_loss_excess_pp=%s" % (
        "%.3f" % U if U == U else "nan", "%d" % N if N == N else "nan", "%.3f" % L if L == L else "nan")
    return {"text": "\n".join(lines), "last": last}


def write_report(bench, a, p, total, machine_load, headline):
    stamp = B.stamp()      # before the plots are copied into the tree
    docs = os.path.join(B.TOP, "docs", "plots")
    os.makedirs(docs, exist_ok=True)
    links = []
    for png in bench.plots:
        dst = os.path.join(docs, "%s-%s" % (a.section, os.path.basename(png)))
        shutil.copyfile(png, dst)
        links.append("[%s](docs/plots/%s)" % (os.path.basename(png)[:-4], os.path.basename(dst)))
    missing = "".join("\n- NOT MEASURED: %s" % m for m in bench.missing)
    text = """## Key economy (`scripts/bench keys`)%s

Adaptive ESP key rotation against the QKD key supply (issue 14), measured from outside. Two labs
up side by side (`scripts/lab`, Debian's charon 5.9.8 with `kernel-qkd` + libipsec-qkd on both
gateways, QKD IKE with qkid and qkd-kmsd, AES-256-GCM): **on** rotates the ESP key with qkid
window keys (kernel-qkd and qkid rpk_min %d, rpk_max %d, `exhaust = reuse`), its key supply set by
qkd-kmsd's fibre model (100 kbit/s x 10^(-0.02 L), 256-bit keys; changed while the link
runs, `scripts/lab kms-fibre`: no outage, nothing flushed); **off** is the same lab with rotation
off, the baseline of every cell, run in ABBA order with it (on/off in odd repeats, off/on in even
ones). iperf3 UDP hostA -> hostB, 1200-byte datagrams.

Every cell: %d repeats of %d s per run (%s), medians over the repeats.
Both arms run the same samplers (the wire, qkid's view, the KME's counter; below), so that their
CPU cost is in the baseline too. Before each run with rotation
the keys stored while the lab was idle are taken from qkid (KEY_NEW in half-second slices until a
slice yields no more than the link makes; at most 30 s), so the run sees the link's rate, not a
backlog. **Key utilisation** = (key windows of the SA on the wire (IV epoch of
gwA's outbound SA sampled on the WAN at %g s and at the end) + the change of the SA's key buffer
over the same interval (gwA's `rpk_trace`)) / keys the link made available in the same interval:
keys the link master KME generated (its own `generated_bits` counter, ETSI 014 status) plus the
keys the run drew from its store (`stored_key_count` fell; the store refills between the drain
and the load, and the loop spends it faster than the link makes keys); keys left in the store
count as supplied and not used. Keys the SA took and still holds are not lost; at 80 km an
interval counts ~300 keys, and the buffer (up to 64) at its two ends alone moved the
windows-only figure by up to +-20 %% (`util_raw` in cells.csv: windows / keys generated, above
1 where the store was drawn). **Packets beyond rpk**
(a window key used past its rpk because the next key was late) and **stall drops**: the
datapath's counters of the SA, over the steady interval (as the datapath reports them to qkid,
`qkictl sas`) and over the whole run, start-up included (charon logs them when it deletes the SA;
the SA is rekeyed after every run); the target is judged on the steady interval where it was
measured. **Receiver: no key**: gwB's drops of the same SA's packets for want of the window key.
**rpk settled after**: seconds from the start of the load until the rpk in force (qkid's advice
where the datapath does not report it) stays within +-10 %% of its final value (sampled every
0.5 s). Loss and delivered rate: iperf3's receiver intervals after the warm-up of %g s; loss
excess = loss with rotation minus loss without, in percentage points. Load ceiling: the highest load of %s Mbit/s that the rotation-off lab carried
with at most 1 %% loss in this run (%d s each): **%d Mbit/s**.

Machine: %s. Everything (8 namespaces, 4 charons, 4 KMEs, 4 qkids, iperf3, tcpdump) shares these
CPUs with whatever else runs; %s. Command: `sudo scripts/bench keys%s` (%.1f min; `--quick`: about 3
min, results/keys only). Measured %s. CSVs: `results/keys/`.

### Cells

%s

%s

### Load step and supply step

Supply %g km; gwA's datapath traces the SA every 100 ms (kernel-qkd `rpk_trace`: rpk in force,
window keys held ahead, the loop's target level, fair share, windows/s), qkid's view is sampled
every 0.5 s, the wire every second, the KME's counter every second. Plots: %s (rpk in force, qkid's
advice and on the wire; keys ahead and target; keys/s generated by the KME, taken in by qkid, the
SA's fair share and windows/s). rpk settled = within +-10 %% of the phase's final value (last
quarter), from the trace.

%s

### 4 SAs with skewed demand

One IKE_SA, 4 CHILD_SAs (hostA -> hostB UDP ports 5201-5204, and a fifth one for iperf3's TCP
control connections), UDP at %s Mbit/s at the same time, supply
%g km, %d s with the windows/s taken over the last %d s. Demand of an SA = its packet rate on the
wire / rpk_min (the keys it would use at the smallest rpk); max-min shares of the supply measured
at the KME over the same interval: keys generated plus keys the SAs drew from its store
(`stored_key_count`), since the store refilled while the baseline ran and the loop spends it;
Jain's index against shares of the generation alone is given too.

%s
%s""" % (": " + a.title if a.title else "", a.rpk_min, a.rpk_max, p["repeats"], p["duration"],
         ("longer where the link makes so few keys that the steady interval would count fewer than %d: %s"
          % (p["min_keys"], ", ".join("%g km %d s" % (km, bench.run_secs(km)) for km in p["kms"]
                                      if bench.run_secs(km) > p["duration"]) or "none here"))
         if p["min_keys"] else "every supply", p["warmup"], p["warmup"],
         ", ".join(str(x) for x in LADDER), p["ceiling_secs"], bench.ceiling_mbps,
         B.machine(), machine_load, (" --section %s --title '%s'" % (a.section, a.title)) if a.title else "",
         total / 60.0, stamp,
         bench.report.get("cells", "(not measured)"), headline["text"],
         a.step_km, ", ".join(links) or "none", bench.report.get("steps", "(not measured)"),
         ", ".join(str(x) for x in FAIR_LOADS), a.step_km, p["fair_secs"], p["fair_secs"] - p["fair_warmup"],
         bench.report.get("fair", "(not measured)"), missing)
    text += "\n\n`%s`" % headline["last"]
    with open(os.path.join(a.out, "report.md"), "w") as f:
        f.write(B.wrap(text) + "\n")
    print("updated %s" % B.update_section(a.section, text))


if __name__ == "__main__":
    sys.exit(B.guarded(main))
