# SPDX-License-Identifier: GPL-2.0-or-later
"""Shared helpers of the benchmarks in scripts/bench.d (ike, ipseq): labs that are always taken
down (also on Ctrl-C), packet captures, iperf3, statistics, CSV, gnuplot and BENCHMARKS.md
sections. Run as root; every lab is a scripts/lab instance with a unique name."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pcap
import vici

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
LAB_SCRIPT = os.path.join(TOP, "scripts", "lab")
HOST_A, HOST_B = "192.0.2.10", "192.0.2.130"
WAN = {"gwA": "198.51.100.1", "gwB": "198.51.100.2"}
PEER = {"gwA": "gwB", "gwB": "gwA"}
IKE_FILTER = "udp port 500 or (udp port 4500 and udp[8:4] = 0)"

_t0 = time.monotonic()


def progress(msg):
    print("[%6.1fs] %s" % (time.monotonic() - _t0, msg), flush=True)


def elapsed():
    return time.monotonic() - _t0


def unavailable(what, why):
    """A part that cannot be measured: one clear line, the rest goes on."""
    print("NOT MEASURED: %s: %s" % (what, why), flush=True)


class Lab:
    """One scripts/lab instance. Every Lab that was brought up is in Lab.live until down()."""
    live = []

    def __init__(self, name, datapath="kernel-libipsec", qkd=False, env=None):
        self.name = name
        self.datapath = datapath
        self.qkd = qkd
        self.dir = "/tmp/ipseq-lab/" + name
        self.env = dict(os.environ)
        for k in list(self.env):
            if k.startswith("LAB"):
                del self.env[k]
        self.env.update(LAB=name, LAB_DIR=self.dir, LAB_DATAPATH=datapath,
                        LAB_QKD="yes" if qkd else "no")
        self.env.update(env or {})
        self.base_plugins = {}
        self.sessions = {}

    def run(self, *args, timeout=120, check=True):
        r = subprocess.run([LAB_SCRIPT] + list(args), env=self.env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError("scripts/lab %s (%s) failed: %s" % (" ".join(args), self.name,
                                                                   r.stdout.strip()[-800:]))
        return r.stdout

    def up(self):
        Lab.live.append(self)
        self.run("up")
        for gw in ("gwA", "gwB"):
            try:
                with open(os.path.join(self.dir, gw, "plugins.conf")) as f:
                    self.base_plugins[gw] = f.read()
            except FileNotFoundError:
                self.base_plugins[gw] = ""

    def down(self):
        for s in self.sessions.values():
            try:
                s.close()
            except OSError:
                pass
        self.sessions = {}
        try:
            self.run("down", check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        if self in Lab.live:
            Lab.live.remove(self)

    def ns(self, node):
        return "%s-%s" % (self.name, node)

    def nsx(self, node, argv):
        return ["ip", "netns", "exec", self.ns(node)] + list(argv)

    def vici(self, gw="gwA"):
        """a persistent vici session to a gateway's charon (kept until the charon restarts)"""
        if gw not in self.sessions:
            self.sessions[gw] = vici.Session(os.path.join(self.dir, gw, "charon.vici"))
        return self.sessions[gw]

    def qkid_sock(self, gw="gwA"):
        return os.path.join(self.dir, gw, "qkid.sock")

    def initiate(self, timeout=20):
        r = self.vici("gwA").request("initiate", {"child": "net", "timeout": timeout * 1000},
                                     timeout=timeout + 5)
        if r.get("success") != "yes":
            raise RuntimeError("%s: initiate failed: %s" % (self.name, r.get("errmsg", r)))

    def child_sa(self, gw="gwA"):
        """(ike uniqueid, child uniqueid, spi_in, spi_out) of the installed CHILD_SA 'net'"""
        return installed_child(self.vici(gw))

    def set_plugins(self, extra):
        """charon.plugins text per gateway beyond what scripts/lab wrote (e.g. kernel-qkd
        rotation); restarts both charons, which drops the tunnel."""
        for gw in ("gwA", "gwB"):
            text = self.base_plugins.get(gw, "") + (extra(gw) if callable(extra) else extra)
            with open(os.path.join(self.dir, gw, "plugins.conf"), "w") as f:
                f.write(text)
        for s in self.sessions.values():
            s.close()
        self.sessions = {}
        for gw in ("gwA", "gwB"):
            self.run("restart", gw)

    def log(self, gw="gwA"):
        with open(os.path.join(self.dir, gw, "charon.log"), errors="replace") as f:
            return f.read()


def rotation_conf(rpk_min, rpk_max, exhaust="reuse", enabled=True):
    """the kernel-qkd section for a gateway: ESP key rotation with qkid window keys"""
    def conf(gw):
        return ("\t\tkernel-qkd {\n\t\t\trotation {\n\t\t\t\trpk_min = %d\n\t\t\t\trpk_max = %d\n"
                "\t\t\t\texhaust = %s\n\t\t\t}\n\t\t\tpeers {\n\t\t\t\t%s {\n"
                "\t\t\t\t\trotation = %s\n\t\t\t\t}\n\t\t\t}\n\t\t}\n"
                % (rpk_min, rpk_max, exhaust, PEER[gw], "yes" if enabled else "no"))
    return conf


def list_sas(session):
    """[(ike name, ike dict)] via the list-sas command's list-sa events"""
    if not getattr(session, "_list_registered", False):
        session.register("list-sa")
        session._list_registered = True
    session.request("list-sas", {"ike": "lab"})
    out, keep = [], []
    for name, msg in session.events:
        if name == "list-sa":
            out.extend(msg.items())
        else:
            keep.append((name, msg))
    session.events[:] = keep
    return out


def installed_child(session):
    """(ike uniqueid, child uniqueid, spi_in, spi_out) of the installed CHILD_SA 'net'"""
    for _name, ike in list_sas(session):
        for child in ike.get("child-sas", {}).values():
            if child.get("name") == "net" and child.get("state") == "INSTALLED":
                return (int(ike["uniqueid"]), int(child["uniqueid"]),
                        int(child["spi-in"], 16), int(child["spi-out"], 16))
    return None


def down_all(labs):
    """take labs down in parallel (a QKD lab needs a few seconds to stop its daemons)"""
    threads = [threading.Thread(target=lab.down) for lab in labs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)


def cleanup_labs():
    down_all(list(Lab.live))


def guarded(main):
    """Run main() so that labs go down on any exit: error, Ctrl-C, SIGTERM, SIGHUP."""
    def on_signal(signum, _frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, on_signal)
    try:
        return main()
    except KeyboardInterrupt:
        print("\ninterrupted: taking the labs down", file=sys.stderr, flush=True)
        return 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        cleanup_labs()


class Capture:
    """tcpdump in a lab namespace, nanosecond timestamps, until stop()"""

    def __init__(self, lab, node, iface, path, filt, snaplen=128):
        self.path = path
        self.err = path + ".err"
        cmd = lab.nsx(node, ["tcpdump", "-i", iface, "-n", "-U", "--immediate-mode",
                             "--time-stamp-precision=nano", "-B", "8192", "-s", str(snaplen),
                             "-w", path, filt])
        self.errf = open(self.err, "w")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.errf)
        for _ in range(100):
            with open(self.err) as f:
                if "listening on" in f.read():
                    return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("tcpdump on %s %s did not start" % (lab.ns(node), iface))

    def stop(self):
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.errf.close()
        with open(self.err) as f:
            m = re.search(r"(\d+) packets? dropped by kernel", f.read())
        return int(m.group(1)) if m else 0


def esp_sample(lab, src="gwA", timeout=2.0, spi=None):
    """(time, spi, seq, epoch) of the next outbound ESP packet of a gateway on its WAN (the
    first ESP header of a GSO batch; of the SA with that SPI if given), or None"""
    filt = "src %s and udp port 4500 and udp[8:4] != 0" % WAN[src]
    if spi is not None:
        filt += " and udp[8:4] = 0x%08x" % spi
    try:
        r = subprocess.run(lab.nsx(src, ["tcpdump", "-i", "wan", "-n", "-c", "1", "-s", "64",
                                          "--time-stamp-precision=nano", "-w", "-", filt]),
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None
    for p in pcap.read(r.stdout):
        e = pcap.esp(p)
        if e:
            return (p.ts,) + e
    return None


class EspSampler(threading.Thread):
    """Samples an SA's (seq, epoch) on the wire at given offsets (s) after start: the ESP
    packet rate and, with rotation, the window rate and packets per window between samples."""

    def __init__(self, lab, offsets, src="gwA", spi=None, timeout=2.0):
        super().__init__(daemon=True)
        self.lab, self.offsets, self.src, self.spi, self.timeout = lab, offsets, src, spi, timeout
        self.samples = []

    def run(self):
        t0 = time.monotonic()
        for off in self.offsets:
            d = t0 + off - time.monotonic()
            if d > 0:
                time.sleep(d)
            s = esp_sample(self.lab, self.src, timeout=self.timeout, spi=self.spi)
            if s:
                self.samples.append(s)

    def rates(self):
        """(packets/s, windows/s, packets per window) between first and last sample of one SA"""
        if len(self.samples) < 2:
            return None
        a, b = self.samples[0], self.samples[-1]
        if a[1] != b[1] or b[0] <= a[0]:
            return None
        dt = b[0] - a[0]
        dseq = (b[2] - a[2]) % (1 << 32)
        dep = b[3] - a[3]
        return dseq / dt, dep / dt, (dseq / dep if dep > 0 else None)


def iperf(lab, proto="tcp", secs=5, rate=None, length=None, port=5201, host=HOST_B):
    """One iperf3 run hostA -> hostB. Returns dict: mbps (received), retrans (TCP),
    lost_pct / lost / packets (UDP), sent_mbps; or {'error': text}."""
    srv = subprocess.Popen(lab.nsx("hostB", ["iperf3", "-s", "-1", "-J", "-p", str(port)]),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            r = subprocess.run(lab.nsx("hostB", ["ss", "-ltn"]), stdout=subprocess.PIPE, text=True)
            if (":%d " % port) in r.stdout:
                break
            time.sleep(0.05)
        cmd = ["iperf3", "-c", host, "-p", str(port), "-t", str(secs), "-J"]
        if proto == "udp":
            cmd += ["-u", "-b", str(rate or "100M"), "-l", str(length or 1200), "--get-server-output"]
        r = subprocess.run(lab.nsx("hostA", cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=secs + 15)
    except subprocess.TimeoutExpired:
        return {"error": "iperf3 timed out"}
    finally:
        try:
            srv.wait(3)
        except subprocess.TimeoutExpired:
            srv.kill()
            srv.wait()
    try:
        j = json.loads(r.stdout)
    except ValueError:
        return {"error": (r.stderr or r.stdout).strip()[-200:] or "no output"}
    if "error" in j:
        return {"error": j["error"]}
    end = j.get("end", {})
    if proto == "tcp":
        return {"mbps": end["sum_received"]["bits_per_second"] / 1e6,
                "sent_mbps": end["sum_sent"]["bits_per_second"] / 1e6,
                "retrans": end["sum_sent"].get("retransmits", 0)}
    s = end.get("sum", {})
    packets, lost = s.get("packets", 0), s.get("lost_packets", 0)
    secs_run = s.get("seconds", secs) or secs
    size = length or 1200
    # the receiver's per-second intervals: (start, end, packets, lost), for loss over a part of
    # the run (e.g. after a warm-up)
    intervals = []
    for iv in j.get("server_output_json", {}).get("intervals", []):
        x = iv.get("sum", {})
        if "packets" in x:
            intervals.append((x.get("start", 0.0), x.get("end", 0.0), x["packets"], x.get("lost_packets", 0)))
    return {"mbps": (packets - lost) * size * 8 / secs_run / 1e6,
            "sent_mbps": s.get("bits_per_second", 0) / 1e6,
            "lost_pct": s.get("lost_percent", 0.0), "lost": lost, "packets": packets,
            "intervals": intervals}


def loss_after(result, t0):
    """(loss %, delivered Mbit/s of 1200-byte datagrams) over the receiver's intervals that start
    at or after t0 seconds, or (None, None)"""
    iv = [x for x in result.get("intervals", []) if x[0] >= t0 - 0.01]
    sent = sum(x[2] for x in iv)      # iperf3 counts a UDP interval's packets lost ones included
    secs = sum(x[1] - x[0] for x in iv)
    if not iv or sent <= 0 or secs <= 0:
        return None, None
    lost = sum(x[3] for x in iv)
    return 100.0 * lost / sent, (sent - lost) * 1200 * 8 / secs / 1e6


class RekeyDriver(threading.Thread):
    """CHILD_SA rekeys at a fixed rate over one persistent vici session: at every tick the
    current CHILD_SA (by unique id, so old SAs are never hit) is rekeyed if the previous rekey
    completed (child-rekey event); ticks that find a rekey in flight are counted as missed."""

    def __init__(self, lab, rate, gw="gwA"):
        super().__init__(daemon=True)
        self.lab, self.rate, self.gw = lab, rate, gw
        self.stop_ev = threading.Event()
        self.sent = self.completed = self.missed = 0
        self.error = None
        self.t_start = self.t_end = None

    def stop(self):
        self.stop_ev.set()
        self.join(15)

    def run(self):
        try:
            s = vici.Session(os.path.join(self.lab.dir, self.gw, "charon.vici"))
            s.register("child-rekey")
            sa = installed_child(s)
            if not sa:
                raise RuntimeError("no installed CHILD_SA to rekey")
            child = sa[1]
            period = 1.0 / self.rate
            pending = False
            self.t_start = time.monotonic()
            next_t = self.t_start
            while not self.stop_ev.is_set():
                now = time.monotonic()
                if now >= next_t:
                    if pending:
                        self.missed += 1
                    else:
                        r = s.request("rekey", {"child-id": child})
                        if r.get("success") == "yes":
                            pending = True
                            self.sent += 1
                    next_t += period
                    if next_t < now - period:
                        self.missed += int((now - next_t) / period)
                        next_t = now + period
                ev = s.next_event(max(0.0005, min(next_t - time.monotonic(), 0.05)))
                if ev and ev[0] == "child-rekey":
                    for ike in ev[1].values():
                        for c in ike.get("child-sas", {}).values():
                            new = c.get("new", {})
                            if new.get("uniqueid"):
                                child = int(new["uniqueid"])
                                self.completed += 1
                                pending = False
            self.t_end = time.monotonic()
            s.close()
        except Exception as e:  # reported by the caller
            self.error = str(e)
            self.t_end = time.monotonic()


# ---- statistics, CSV, plots, report ---------------------------------------------------------

def percentile(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = (len(v) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (k - lo)


def median(values):
    return percentile(values, 50)


def mmm(values):
    """(min, median, max) of the values that are numbers"""
    v = [x for x in values if x is not None and x == x]
    if not v:
        return (float("nan"),) * 3
    return min(v), median(v), max(v)


def write_csv(path, header, rows):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(",".join(header) + "\n")
        for r in rows:
            f.write(",".join(fmt_csv(x) for x in r) + "\n")


def fmt_csv(x):
    if isinstance(x, float):
        if x != x:
            return "nan"
        return "%.6g" % x
    if isinstance(x, bool):
        return "1" if x else "0"
    return str(x)


def gnuplot(script, out_png, **variables):
    """Run testing/bench/SCRIPT.gp with -e variables (strings quoted); pngcairo if gnuplot has
    it, else png. Returns an error text or None."""
    term = "pngcairo" if "pngcairo" in subprocess.run(
        ["gnuplot", "-e", "set terminal"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True).stdout else "png"
    defs = ["term='%s'" % term, "out='%s'" % out_png]
    for k, v in variables.items():
        defs.append("%s=%s" % (k, v if isinstance(v, (int, float)) else "'%s'" % v))
    r = subprocess.run(["gnuplot", "-e", "; ".join(defs),
                        os.path.join(TOP, "testing", "bench", script + ".gp")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if r.returncode != 0 or not os.path.exists(out_png):
        return r.stdout.strip()[-400:] or "gnuplot failed"
    return None


def stamp():
    """When and at which commit a section was measured: "YYYY-MM-DD HH:MM UTC at commit abc1234"."""
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    try:
        rev = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10).stdout.strip() or "unknown"
        dirty = subprocess.run(["git", "-C", top, "diff", "--quiet", "HEAD"], timeout=10).returncode
    except (OSError, subprocess.SubprocessError):
        rev, dirty = "unknown", 0
    return "%s at commit %s%s" % (time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), rev,
                                  " (with local changes)" if dirty else "")


def machine():
    """one line: CPUs, CPU model, kernel, versions of what the benchmark runs"""
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break

    def pkg(name):
        r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
        return r.stdout.strip() or "?"
    rev = subprocess.run(["git", "-C", TOP, "rev-parse", "--short", "HEAD"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout.strip() or "?"
    return ("%d CPUs (%s), kernel %s; strongSwan charon %s, iperf3 %s, tcpdump %s; suite at git %s"
            % (os.cpu_count(), model, os.uname().release, pkg("strongswan-charon"), pkg("iperf3"),
               pkg("tcpdump"), rev))


def wrap(text, width=100):
    """re-wrap prose paragraphs to width; tables, headings, lists and code stay as they are"""
    import textwrap
    out = []
    for para in text.split("\n\n"):
        lines = para.split("\n")
        # a section's "Summary ..." paragraph stays one line: its last line, whole
        if any(l.startswith(("|", "#", "- ", "    ", "```", "Summary")) for l in lines):
            out.append(para)
        else:
            out.append(textwrap.fill(" ".join(l.strip() for l in lines), width=width,
                                     break_on_hyphens=False, break_long_words=False))
    return "\n\n".join(out)


def update_section(name, text):
    """Replace <!-- bench:NAME:begin --> ... <!-- bench:NAME:end --> in BENCHMARKS.md (or append)."""
    md = os.path.join(TOP, "BENCHMARKS.md")
    begin, end = "<!-- bench:%s:begin -->" % name, "<!-- bench:%s:end -->" % name
    section = "%s\n%s\n%s" % (begin, wrap(text.strip("\n")), end)
    try:
        with open(md) as f:
            doc = f.read()
    except FileNotFoundError:
        doc = "# Benchmarks\n"
    if begin in doc and end in doc:
        a = doc.index(begin)
        b = doc.index(end) + len(end)
        doc = doc[:a] + section + doc[b:]
    else:
        doc = doc.rstrip("\n") + "\n\n" + section + "\n"
    with open(md + ".tmp", "w") as f:
        f.write(doc)
    os.replace(md + ".tmp", md)
    return md


def fmt(x, digits=2):
    if x is None or x != x:
        return "n/a"
    if abs(x) >= 100:
        return "%.0f" % x
    if abs(x) >= 10:
        return "%.1f" % x
    return ("%." + str(digits) + "f") % x
