# SPDX-License-Identifier: GPL-2.0-or-later
"""scripts/bench ike --distro trixie: classical, post-quantum and QKD key exchanges on strongSwan
6.0 (Debian 13) against Debian 12's x25519qkd, in one run.

On this machine (Debian 12, strongSwan 5.9.8) first: X25519 and x25519qkd, the reference. Then
the same command inside the Debian 13 root of scripts/distro (`scripts/bench ike --part trixie`
there: bootstrap and build in its build tree, then the labs): X25519; X25519 + ML-KEM-768;
X25519 + QKD; X25519 + ML-KEM-768 + QKD, each an RFC 9370 chain. The part in the root prints its
results as one JSON line; this side writes the table. Each part runs its labs side by side with
alternating rounds (ike.measure); the two parts run one after the other, never at once (they
would share the CPUs). Messages, IP packets and bytes are counted from each capture, never
assumed (pcap.ike_sequences).
"""
import json
import os
import subprocess
import sys
import time

import benchlib as B
import pcap

# (release, key) -> (label, IKE proposal, ESP proposal, QKD lab, our plugins)
VARIANTS = {
    "bookworm": [
        ("x25519", "X25519", "aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", False, "qkd"),
        ("x25519qkd", "x25519qkd (QKD in the X25519 exchange)", "aes256gcm16-prfsha256-x25519qkd",
         "aes256gcm16-x25519qkd", True, "qkd"),
    ],
    "trixie": [
        ("x25519", "X25519", "aes256gcm16-prfsha256-x25519", "aes256gcm16-x25519", False, "qkd"),
        ("x25519-mlkem768", "X25519 + ML-KEM-768", "aes256gcm16-prfsha256-x25519-ke1_mlkem768",
         "aes256gcm16-x25519-ke1_mlkem768", False, "qkd mlkem"),
        ("x25519-qkd", "X25519 + QKD", "aes256gcm16-prfsha256-x25519-ke1_qkd",
         "aes256gcm16-x25519-ke1_qkd", True, "qkd"),
        ("x25519-mlkem768-qkd", "X25519 + ML-KEM-768 + QKD",
         "aes256gcm16-prfsha256-x25519-ke1_mlkem768-ke2_qkd",
         "aes256gcm16-x25519-ke1_mlkem768-ke2_qkd", True, "qkd mlkem"),
    ],
}
TITLE = {"bookworm": "Debian 12", "trixie": "Debian 13"}
MARK = "IKE-PART-JSON "


def this_release():
    with open("/etc/os-release") as f:
        for line in f:
            if line.startswith("VERSION_CODENAME="):
                return line.split("=", 1)[1].strip().strip('"')
    return "?"


def pkg(name):
    r = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", name], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True)
    return r.stdout.strip() or "?"


def run_part(release, rounds, outdir):
    """the labs of one release on this system, measured; a JSON-able dict"""
    import ike
    variants = VARIANTS[release]
    labs = []
    for i, (key, _label, ikep, espp, qkd, plugins) in enumerate(variants):
        lab = B.Lab("bt%d%s%d" % (os.getpid(), release[0], i), qkd=qkd, env={"LAB_IKE_PROPOSALS": ikep, "LAB_ESP_PROPOSALS": espp,
                                  "LAB_PLUGINS": plugins})
        lab.up()
        labs.append((key, lab))
    B.progress("%s labs up: %s" % (TITLE[release], ", ".join(l.name for _, l in labs)))
    t0, load0 = time.monotonic(), os.getloadavg()[0]
    try:
        res = ike.measure(labs, rounds, outdir, tag="ike-" + release)
    finally:
        B.down_all([lab for _, lab in labs])
    ssl = pkg("libssl3t64")        # Debian 13's name of the package (the 64-bit time_t ABI)
    out = {"release": release, "charon": pkg("strongswan-charon"),
           "openssl": ssl if ssl != "?" else pkg("libssl3"), "tcpdump": pkg("tcpdump"),
           "seconds": time.monotonic() - t0, "rounds": rounds,
           "load": [load0, os.getloadavg()[0]], "variants": []}
    for key, label, ikep, espp, qkd, plugins in variants:
        r = res[key]
        seqs = pcap.ike_sequences(pcap.ike_datagrams(os.path.join(outdir, "ike-%s-%s.pcap"
                                                                   % (release, key))), B.WAN["gwA"])
        out["variants"].append({"key": key, "label": label, "ike": ikep, "esp": espp, "qkd": qkd,
                                "plugins": plugins, "failed": r["failed"], "errors": r["errors"][:5],
                                "sequences": seqs})
    return out


def build_here():
    """scripts/bootstrap and make in this tree (the root's build tree); logs in .build"""
    os.makedirs(os.path.join(B.TOP, ".build"), exist_ok=True)
    for name, cmd in (("bootstrap", ["scripts/bootstrap"]), ("build", ["make", "-j2"])):
        log = os.path.join(B.TOP, ".build", "bench-ike-%s.log" % name)
        B.progress("%s (log %s)" % (" ".join(cmd), log))
        with open(log, "w") as f:
            r = subprocess.run(cmd, cwd=B.TOP, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            with open(log, errors="replace") as f:
                print("".join(f.readlines()[-20:]), end="")
            raise RuntimeError("%s failed (exit %d), see %s" % (" ".join(cmd), r.returncode, log))


def part_main(release, rounds, outdir):
    """--part RELEASE: inside that release's root: build, measure, one JSON line on stdout"""
    if this_release() != release:
        print("bench ike --part %s: this system is %s" % (release, this_release()), file=sys.stderr)
        return 2
    build_here()
    out = run_part(release, rounds, outdir)
    print(MARK + json.dumps(out), flush=True)
    return 0


def run_in_root(release, rounds):
    """scripts/distro RELEASE run scripts/bench ike --part RELEASE: its output passed on, its JSON
    line returned (or None, with the reason printed)"""
    cmd = [os.path.join(B.TOP, "scripts", "distro"), release, "run", "scripts/bench", "ike",
           "--part", release, "--rounds", str(rounds)]
    B.progress("%s part: %s" % (TITLE[release], " ".join(cmd[1:])))
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    data = None
    for line in p.stdout:
        if line.startswith(MARK):
            data = json.loads(line[len(MARK):])
        else:
            print("  | " + line, end="", flush=True)
    rc = p.wait()
    if rc != 0 or data is None:
        B.unavailable("the %s part" % TITLE[release], "scripts/distro exited %d%s" %
                      (rc, "" if data else " without results"))
        return None
    return data


def stats(seqs, kind):
    """(n, min, median, p95, max ms; messages, packets, bytes as text; exchanges; retrans)"""
    s = [x for x in seqs if x["kind"] == kind]
    ms = [x["duration"] * 1000 for x in s]

    def span(field):
        v = sorted(x[field] for x in s)
        if not v:
            return "n/a"
        return "%d" % v[0] if v[0] == v[-1] else "%d-%d" % (v[0], v[-1])
    exch = {}
    for x in s:
        exch[" + ".join(short(e) for e in x["exchanges"])] = 1
    return {"n": len(ms), "min": min(ms) if ms else float("nan"), "median": B.median(ms),
            "p95": B.percentile(ms, 95), "max": max(ms) if ms else float("nan"),
            "messages": span("messages"), "packets": span("packets"), "bytes": span("bytes"),
            "bytes_median": B.median([x["bytes"] for x in s]),
            "exchanges": " / ".join(exch) or "n/a", "retrans": sum(x["retrans"] for x in s)}


def short(exch):
    return {"IKE_SA_INIT": "SA_INIT", "IKE_AUTH": "AUTH", "IKE_INTERMEDIATE": "INTERMEDIATE",
            "CREATE_CHILD_SA": "CREATE_CHILD_SA", "IKE_FOLLOWUP_KE": "FOLLOWUP_KE"}.get(exch, exch)


def host_main(release, rounds, outdir, update):
    here = this_release()
    if release != "trixie":
        print("bench ike --distro: only trixie (Debian 13 against this Debian 12) is a comparison; "
              "plain 'scripts/bench ike' measures this machine", file=sys.stderr)
        return 2
    parts = []
    B.progress("bench ike --distro %s: %d rounds per variant; Debian 12 here, then Debian 13 in "
               "the root of scripts/distro" % (release, rounds))
    if here == "bookworm":
        parts.append(run_part("bookworm", rounds, outdir))
    else:
        B.unavailable("Debian 12's x25519qkd", "this machine is %s, not Debian 12 (bookworm)" % here)
    if here == release:
        build_here()
        d = run_part(release, rounds, outdir)
    else:
        d = run_in_root(release, rounds)
    if d:
        parts.append(d)
    if not parts:
        return 1

    csv, summ, rows = [], [], {"handshake": [], "rekey": []}
    for p in parts:
        for v in p["variants"]:
            for x in v["sequences"]:
                csv.append((p["release"], v["key"], x["kind"], "%.6f" % x["t"],
                            x["duration"] * 1000, x["messages"], x["packets"], x["bytes"],
                            x["retrans"], " ".join(x["exchanges"])))
            for kind in ("handshake", "rekey"):
                st = stats(v["sequences"], kind)
                st.update(release=p["release"], key=v["key"], label=v["label"],
                          proposal=v["ike"] if kind == "handshake" else v["esp"])
                rows[kind].append(st)
                summ.append((p["release"], v["key"], kind, st["n"], st["min"], st["median"],
                             st["p95"], st["max"], st["messages"], st["packets"], st["bytes"],
                             st["retrans"]))
            if v["failed"] or v["errors"]:
                print("%s %s: %d failed rounds (%s)" % (TITLE[p["release"]], v["key"], v["failed"],
                                                        "; ".join(v["errors"][:3])))
    B.write_csv(os.path.join(outdir, "ike-trixie.csv"),
                ["release", "variant", "kind", "t", "ms", "messages", "packets", "bytes",
                 "retransmissions", "exchanges"], csv)
    B.write_csv(os.path.join(outdir, "ike-trixie-summary.csv"),
                ["release", "variant", "kind", "n", "min_ms", "median_ms", "p95_ms", "max_ms",
                 "messages", "packets", "bytes", "retransmissions"], summ)

    tables = []
    for kind, head in (("handshake", "Handshake (IKE proposal)"),
                       ("rekey", "CHILD_SA rekey with PFS (ESP proposal)")):
        t = ["| %s | key exchanges | exchanges on the wire | messages | IP packets | bytes | n | "
             "min ms | median ms | p95 ms | max ms |" % head,
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for st in rows[kind]:
            t.append("| %s `%s` | %s | %s | %s | %s | %s | %d | %s | %s | %s | %s |" % (
                TITLE[st["release"]], st["proposal"], st["label"], st["exchanges"], st["messages"],
                st["packets"], st["bytes"], st["n"], *(B.fmt(st[k], 3) for k in
                                                       ("min", "median", "p95", "max"))))
        tables.append("\n".join(t))
    retrans = sum(st["retrans"] for k in rows for st in rows[k])
    line = summary_line(rows)
    print()
    print("\n\n".join(tables))
    print()
    print(line)
    if retrans:
        print("%d IKE retransmissions inside the timed sequences (in the times, not in the sizes)"
              % retrans)
    print("CSV: %s/ike-trixie.csv, ike-trixie-summary.csv" % outdir)
    if not update:
        return 0 if len(parts) == 2 else 1
    info = "; ".join("%s: strongSwan charon %s, OpenSSL %s, tcpdump %s, %d rounds in %.0f s, "
                     "load average (1 min) %.1f at its start, %.1f at its end" % (
                         TITLE[p["release"]], p["charon"], p["openssl"], p["tcpdump"], p["rounds"],
                         p["seconds"], p["load"][0], p["load"][1]) for p in parts)
    missing = "" if len(parts) == 2 else " NOT ALL MEASURED: one part failed, see the run's output."
    text = """## IKE on Debian 13: X25519, ML-KEM-768 and QKD (`scripts/bench ike --distro trixie`)

Handshake and CHILD_SA rekey on the wire for the hybrid key exchanges of strongSwan 6.0 (RFC 9370:
X25519 in IKE_SA_INIT, each additional key exchange in an IKE_INTERMEDIATE exchange of the
handshake and an IKE_FOLLOWUP_KE exchange of a rekey), against Debian 12's x25519qkd (QKD inside
the one X25519 exchange). One command, two parts one after the other: first Debian 12 on this
machine (strongSwan 5.9.8), then Debian 13 inside the root of `scripts/distro` (strongSwan 6.0.1,
built and run there: Debian 13's charon, OpenSSL 3.5 under our mlkem plugin). Same kernel, same
CPUs, same lab (`scripts/lab`, datapath kernel-libipsec). Per part one lab per variant, all up
side by side, rounds alternating between them; a round: initiate, one CHILD_SA rekey by unique
id, terminate (one persistent vici session), after one warm-up round per lab that is not counted.
QKD variants are the QKD lab (qkid and qkd-kmsd per site, 200 kbit/s of key): quantum PPK and
QPSK in IKE_AUTH on both releases, so only the key exchange differs; the others are the plain PSK
lab. Every CHILD_SA rekey has PFS with the IKE_SA's key exchanges. From tcpdump on gwA's WAN
(the initiator): handshake = first IKE_SA_INIT request sent -> IKE_AUTH response received; rekey
= CREATE_CHILD_SA request sent -> last IKE_FOLLOWUP_KE response received (the CREATE_CHILD_SA
response where the proposal has no additional key exchange). Exchanges, messages (requests and responses), IP packets and bytes
(IP packets including IP and UDP headers, no link layer; the 4-byte non-ESP marker on port 4500
included; retransmissions not) are counted per round from the capture; a range means rounds
differed. A message larger than charon's fragment_size (1280 bytes by default) goes as IKE
fragments (RFC 7383): one message, more packets. Machine: %s. %s. Everything (2 charons per lab, KMEs, qkids,
tcpdump) shares 2 CPUs with other jobs. Command: `sudo %s`. Measured %s; run time %.0f s (with
the build in the root).%s

%s

%s
""" % (B.machine().split(";")[0], info, "scripts/bench ike --distro trixie" +
       ("" if rounds == 20 else " --rounds %d" % rounds), B.stamp(), B.elapsed(), missing,
       "\n\n".join(tables), line)
    print("updated %s" % B.update_section("ike-trixie", text))
    return 0 if len(parts) == 2 else 1


def summary_line(rows):
    """one line: per variant the median handshake / rekey time, messages and bytes"""
    def get(kind, release, key):
        for st in rows[kind]:
            if st["release"] == release and st["key"] == key:
                return st
        return None
    items = []
    for release, key, name in ([("trixie", k, l) for k, l, *_ in VARIANTS["trixie"]] +
                               [("bookworm", "x25519qkd", "Debian 12 x25519qkd")]):
        h, r = get("handshake", release, key), get("rekey", release, key)
        if not h or not r:
            continue
        items.append("%s %s / %s ms (%s / %s msgs, %s / %s B)" % (
            name, B.fmt(h["median"], 2), B.fmt(r["median"], 2), h["messages"], r["messages"],
            h["bytes"], r["bytes"]))
    return "Summary (medians, handshake / CHILD_SA rekey): " + "; ".join(items) + "."
