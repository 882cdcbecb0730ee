#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/bench ike: IKEv2 handshake time and CHILD_SA rekey time, QKD vs plain PSK.

One lab per variant (scripts/lab, Debian's charon on both gateways), all up side by side; the
rounds alternate between them, so drift of the shared machine hits every variant alike. A round
on a lab: initiate the tunnel, rekey its CHILD_SA once (by unique id), terminate, all over one
persistent vici session to gwA's charon. Times come from tcpdump timestamps on gwA's WAN:
handshake = first IKE_SA_INIT request sent -> IKE_AUTH response received; rekey =
CREATE_CHILD_SA request sent -> response received. charon's log (1 s resolution) and swanctl
(~6 ms of CPU per spawn) are never used for timing.
"""
import argparse
import os
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as B  # noqa: E402
import pcap  # noqa: E402

VARIANTS = {
    "psk": ("plain PSK (X25519 IKE; CHILD_SA rekey without PFS)",
            {"qkd": False, "env": {}}),
    "psk-pfs": ("plain PSK, CHILD_SA rekey with X25519 PFS",
                {"qkd": False, "env": {"LAB_ESP_PROPOSALS": "aes256gcm16-x25519"}}),
    "qkd": ("QKD: x25519qkd IKE + quantum PPK + QPSK; rekey with x25519qkd PFS (fresh quantum key)",
            {"qkd": True, "env": {}}),
}


def one_round(lab, timeout=10.0):
    """initiate, rekey the CHILD_SA once, terminate; raises on failure"""
    s = lab.vici("gwA")
    if not getattr(s, "_rekey_registered", False):
        s.register("child-rekey")
        s._rekey_registered = True
    s.events[:] = [e for e in s.events if e[0] != "child-rekey"]
    lab.initiate()
    sa = lab.child_sa("gwA")
    if not sa:
        raise RuntimeError("no installed CHILD_SA after initiate")
    time.sleep(0.02)
    r = s.request("rekey", {"child-id": sa[1]})
    if r.get("success") != "yes":
        raise RuntimeError("rekey refused: %s" % r.get("errmsg"))
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError("CHILD_SA rekey did not complete within %.0f s" % timeout)
        ev = s.next_event(left)
        if ev and ev[0] == "child-rekey":
            break
    time.sleep(0.02)
    r = s.request("terminate", {"ike-id": sa[0], "timeout": 5000}, timeout=10)
    if r.get("success") != "yes":
        raise RuntimeError("terminate failed: %s" % r.get("errmsg"))
    time.sleep(0.05)


def measure(labs, rounds, outdir, tag="ike", quiet=False):
    """labs: list of (name, Lab), all up. Returns {name: {'handshake': [s], 'rekey': [s],
    'retrans': n, 'failed': n, 'errors': [..]}}"""
    res = {name: {"handshake": [], "rekey": [], "retrans": 0, "failed": 0, "errors": []}
           for name, _ in labs}
    for name, lab in labs:          # warm-up round, not captured (first qkid/KME connections)
        try:                        # no IKE_SA of an earlier step may stay up
            lab.vici("gwA").request("terminate", {"ike": "lab", "timeout": 5000}, timeout=10)
        except Exception:
            pass
        try:
            one_round(lab)
        except Exception as e:
            res[name]["errors"].append("warm-up: %s" % e)
    os.makedirs(outdir, exist_ok=True)
    caps = {}
    for name, lab in labs:
        caps[name] = B.Capture(lab, "gwA", "wan", os.path.join(outdir, "%s-%s.pcap" % (tag, name)),
                               B.IKE_FILTER, snaplen=256)
    try:
        for i in range(rounds):
            order = labs if i % 2 == 0 else list(reversed(labs))
            for name, lab in order:
                try:
                    one_round(lab)
                except Exception as e:
                    res[name]["failed"] += 1
                    res[name]["errors"].append(str(e))
                    try:     # leave no half-open IKE_SA behind for the next round
                        lab.vici("gwA").request("terminate", {"ike": "lab", "timeout": 3000})
                    except Exception:
                        pass
            if not quiet and ((i + 1) % 10 == 0 or i + 1 == rounds):
                B.progress("ike: %d/%d rounds" % (i + 1, rounds))
    finally:
        for c in caps.values():
            c.stop()
    for name, _lab in labs:
        ex = pcap.ike_exchanges(caps[name].path)
        hs = pcap.handshakes(ex)
        rk = pcap.exchange_rtts(ex, pcap.CREATE_CHILD_SA)
        res[name]["handshake"] = [d for _t, d, _r in hs]
        res[name]["rekey"] = [d for _t, d, _r in rk]
        res[name]["retrans"] = sum(r for _t, _d, r in hs) + sum(r for _t, _d, r in rk)
        res[name]["rows"] = ([("handshake", t, d, r) for t, d, r in hs] +
                             [("rekey", t, d, r) for t, d, r in rk])
    return res


def stats_ms(values):
    ms = [v * 1000 for v in values]
    return (len(ms), min(ms) if ms else float("nan"), B.median(ms), B.percentile(ms, 95),
            max(ms) if ms else float("nan"))


def main():
    ap = argparse.ArgumentParser(prog="scripts/bench ike", description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, help="rounds per variant (default 30; 20 with --distro)")
    ap.add_argument("--variants", default="psk,psk-pfs,qkd",
                    help="comma separated: %s (default all)" % ",".join(VARIANTS))
    ap.add_argument("--datapath", default="kernel-libipsec", choices=("kernel-libipsec", "kernel-qkd"),
                    help="IPsec backend of both gateways (default kernel-libipsec)")
    ap.add_argument("--quick", action="store_true", help="10 rounds, no BENCHMARKS.md update")
    ap.add_argument("--no-update", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--out", default=None, help="results folder (default results/ike, with "
                    "--distro results/ike-RELEASE)")
    ap.add_argument("--distro", metavar="RELEASE",
                    help="trixie: X25519, + ML-KEM-768, + QKD, + both on Debian 13's strongSwan 6 "
                    "(in the root of scripts/distro) against Debian 12's x25519qkd measured here "
                    "(section ike-trixie; --rounds default 20; --variants and --datapath do not apply)")
    ap.add_argument("--part", metavar="RELEASE", help=argparse.SUPPRESS)  # --distro's part in the root
    a = ap.parse_args()
    if os.geteuid() != 0:
        print("bench ike: needs root (network namespaces)", file=sys.stderr)
        return 77
    if a.distro or a.part:
        import ike_releases
        rel = a.distro or a.part
        rounds = 10 if a.quick else (a.rounds or 20)
        out = a.out or os.path.join(B.TOP, "results", "ike-" + rel)
        if a.part:
            return ike_releases.part_main(rel, rounds, out)
        return ike_releases.host_main(rel, rounds, out, not (a.quick or a.no_update))
    a.out = a.out or os.path.join(B.TOP, "results", "ike")
    a.rounds = a.rounds or 30
    rounds = 10 if a.quick else a.rounds
    names = [v.strip() for v in a.variants.split(",") if v.strip()]
    for v in names:
        if v not in VARIANTS:
            ap.error("unknown variant %s" % v)
    cmd = "scripts/bench ike" + (" --quick" if a.quick else "") + \
        ("" if a.quick or a.rounds == 30 else " --rounds %d" % a.rounds) + \
        ("" if a.variants == "psk,psk-pfs,qkd" else " --variants " + a.variants) + \
        ("" if a.datapath == "kernel-libipsec" else " --datapath " + a.datapath)
    B.progress("bench ike: %d rounds per variant (%s), datapath %s; bounded by ~%d s"
               % (rounds, ", ".join(names), a.datapath, 10 + rounds * len(names)))
    labs = []
    for v in names:
        lab = B.Lab("bi%d%s" % (os.getpid(), v.replace("-", "")), datapath=a.datapath,
                    qkd=VARIANTS[v][1]["qkd"], env=VARIANTS[v][1]["env"])
        lab.up()
        labs.append((v, lab))
    B.progress("labs up: %s" % ", ".join(l.name for _, l in labs))
    res = measure(labs, rounds, a.out)
    for _, lab in labs:
        lab.down()

    rows, table = [], []
    table.append("| variant | handshake n | min ms | median ms | p95 ms | max ms | "
                 "CHILD_SA rekey n | min ms | median ms | p95 ms | max ms |")
    table.append("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    csv = []
    for v in names:
        r = res[v]
        for kind, t, d, rt in r["rows"]:
            csv.append((v, kind, "%.6f" % t, d * 1000, rt))
        h, k = stats_ms(r["handshake"]), stats_ms(r["rekey"])
        table.append("| %s | %d | %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
            v, h[0], *(B.fmt(x, 3) for x in h[1:]), k[0], *(B.fmt(x, 3) for x in k[1:])))
        rows.append((v, *h, *k))
        if r["failed"] or r["errors"]:
            print("%s: %d failed rounds (%s)" % (v, r["failed"], "; ".join(r["errors"][:3])))
        if r["retrans"]:
            print("%s: %d IKE retransmissions inside the timed exchanges" % (v, r["retrans"]))
    B.write_csv(os.path.join(a.out, "ike.csv"), ["variant", "kind", "t", "ms", "retransmissions"], csv)
    B.write_csv(os.path.join(a.out, "ike-summary.csv"),
                ["variant", "hs_n", "hs_min", "hs_median", "hs_p95", "hs_max",
                 "rk_n", "rk_min", "rk_median", "rk_p95", "rk_max"], rows)
    png = os.path.join(a.out, "ike.png")
    err = B.gnuplot("ike", png, csv=os.path.join(a.out, "ike-summary.csv"))
    if err:
        print("plot failed: %s" % err)
    summ = {v: (B.median(res[v]["handshake"]), B.median(res[v]["rekey"])) for v in names}
    if "qkd" in summ and "psk" in summ and summ["psk"][0] > 0 and summ["psk"][1] > 0:
        d = summ["qkd"][0] - summ["psk"][0], summ["qkd"][1] - summ["psk"][1]
        table.append("")
        table.append("Medians: QKD adds %.2f ms to the handshake (%.2fx plain PSK) and %.2f ms to a "
                     "CHILD_SA rekey (%.2fx)." % (d[0] * 1000, summ["qkd"][0] / summ["psk"][0],
                                                   d[1] * 1000, summ["qkd"][1] / summ["psk"][1]))
    print()
    print("\n".join(table))
    print("CSV: %s/ike.csv, ike-summary.csv; plot: %s" % (a.out, png))
    if a.quick or a.no_update:
        return 0
    plot = ""
    if not err:
        os.makedirs(os.path.join(B.TOP, "docs", "plots"), exist_ok=True)
        shutil.copyfile(png, os.path.join(B.TOP, "docs", "plots", "ike.png"))
        plot = " Plot: [docs/plots/ike.png](docs/plots/ike.png) (bar: median, whiskers: min..p95)."
    text = """## IKE (`scripts/bench ike`)

Handshake (IKE_SA_INIT + IKE_AUTH) and CHILD_SA rekey (CREATE_CHILD_SA) on the wire, QKD vs
plain PSK. One namespace lab per variant (`scripts/lab`, Debian's unmodified charon on both
gateways, datapath %s), all up side by side; %d rounds per variant, alternating between the labs.
A round: initiate, one CHILD_SA rekey by unique id, terminate, over one persistent vici session
(no swanctl spawn). Times are tcpdump timestamps on gwA's WAN (the initiator): handshake = first
IKE_SA_INIT request sent -> IKE_AUTH response received; rekey = CREATE_CHILD_SA request ->
response. Variants: %s. QKD keys come from qkid/qkd-kmsd at the lab's 200 kbit/s key rate.
Machine: %s. Everything (2 charons per lab, KMEs, qkids, tcpdump) shares its CPUs. Command:
`sudo %s`. Measured %s; run time %.0f s.%s

%s
""" % (a.datapath, rounds, "; ".join("**%s** %s" % (v, VARIANTS[v][0]) for v in names),
       B.machine(), cmd, B.stamp(), B.elapsed(), plot, "\n".join(table))
    print("updated %s" % B.update_section("ike", text))
    return 0


if __name__ == "__main__":
    sys.exit(B.guarded(main))
