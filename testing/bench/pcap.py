# SPDX-License-Identifier: GPL-2.0-or-later
"""Timing from packet captures (tcpdump -w, classic pcap, micro- or nanosecond timestamps).

Only what the benchmarks need: IPv4 over Ethernet (veth) or Linux cooked captures, UDP with IKE
on port 500 and, after a non-ESP marker, on port 4500 (RFC 3948), ESP in UDP 4500, and ICMP
echo. Timestamps are the kernel's, taken where tcpdump listens.
"""
import struct

IKE_SA_INIT, IKE_AUTH, CREATE_CHILD_SA, INFORMATIONAL = 34, 35, 36, 37
IKE_INTERMEDIATE, IKE_FOLLOWUP_KE = 43, 44      # RFC 9242, RFC 9370
EXCHANGES = {IKE_SA_INIT: "IKE_SA_INIT", IKE_AUTH: "IKE_AUTH",
             CREATE_CHILD_SA: "CREATE_CHILD_SA", INFORMATIONAL: "INFORMATIONAL",
             IKE_INTERMEDIATE: "IKE_INTERMEDIATE", IKE_FOLLOWUP_KE: "IKE_FOLLOWUP_KE"}
SKF = 53                                        # encrypted fragment payload (RFC 7383)


class Packet:
    __slots__ = ("ts", "src", "dst", "proto", "sport", "dport", "payload", "frag", "more",
                 "iplen", "ipid")


def read(path_or_bytes):
    """Yield Packet for every IPv4 packet of a capture (ts in seconds, float)."""
    if isinstance(path_or_bytes, (bytes, bytearray)):
        data = bytes(path_or_bytes)
    else:
        with open(path_or_bytes, "rb") as f:
            data = f.read()
    if len(data) < 24:
        return
    magic_le = struct.unpack("<I", data[:4])[0]
    if magic_le in (0xA1B2C3D4, 0xA1B23C4D):
        endian = "<"
        magic = magic_le
    else:
        endian = ">"
        magic = struct.unpack(">I", data[:4])[0]
    nano = magic == 0xA1B23C4D
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    l2 = {1: 14, 113: 16, 276: 20, 101: 0, 228: 0}.get(linktype, 14)
    off = 24
    while off + 16 <= len(data):
        sec, frac, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        ip = frame[l2:]
        if linktype == 1 and len(frame) >= 14 and frame[12:14] == b"\x81\x00":
            ip = frame[18:]
        if len(ip) < 20 or ip[0] >> 4 != 4:
            continue
        ihl = (ip[0] & 0x0F) * 4
        p = Packet()
        p.ts = sec + frac / (1e9 if nano else 1e6)
        p.src = ".".join(str(b) for b in ip[12:16])
        p.dst = ".".join(str(b) for b in ip[16:20])
        p.proto = ip[9]
        fo = struct.unpack("!H", ip[6:8])[0]
        p.frag = fo & 0x1FFF
        p.more = bool(fo & 0x2000)
        # the IP header's length: the packet's size on the wire without the link layer, also
        # when the capture kept only its first bytes (snaplen)
        p.iplen, p.ipid = struct.unpack("!HH", ip[2:6])
        p.sport = p.dport = 0
        p.payload = b""
        if p.frag:
            yield p
            continue
        l4 = ip[ihl:]
        if p.proto == 17 and len(l4) >= 8:
            p.sport, p.dport = struct.unpack("!HH", l4[:4])
            p.payload = l4[8:]
        else:
            p.payload = l4
        yield p


def ike_header(p):
    """(spi_i, spi_r, exchange, is_response, msgid) of an IKE message, else None"""
    if p.proto != 17 or p.frag:
        return None
    msg = p.payload
    if p.sport == 4500 or p.dport == 4500:
        if len(msg) < 4 or msg[:4] != b"\0\0\0\0":
            return None
        msg = msg[4:]
    elif p.sport != 500 and p.dport != 500:
        return None
    if len(msg) < 28:
        return None
    spi_i, spi_r = msg[0:8].hex(), msg[8:16].hex()
    exch, flags = msg[18], msg[19]
    msgid = struct.unpack("!I", msg[20:24])[0]
    return spi_i, spi_r, exch, bool(flags & 0x20), msgid


def ike_datagrams(path):
    """Every IKE datagram of a capture as a dict: ts, src, dst, spi_i, exch, resp, msgid, frag
    (its IKE fragment number, RFC 7383, 0 for an unfragmented message), bytes (IP bytes, the
    later IP fragments of the datagram included) and packets (IP packets)."""
    out, cont = [], {}
    for p in read(path):
        if p.frag:      # a later IP fragment: its bytes belong to the datagram it continues
            d = cont.get((p.src, p.dst, p.ipid))
            if d is not None:
                d["bytes"] += p.iplen
                d["packets"] += 1
            continue
        h = ike_header(p)
        if not h:
            continue
        msg = p.payload[4:] if 4500 in (p.sport, p.dport) else p.payload
        frag = struct.unpack("!H", msg[32:34])[0] if len(msg) >= 36 and msg[16] == SKF else 0
        d = {"ts": p.ts, "src": p.src, "dst": p.dst, "spi_i": h[0], "exch": h[2], "resp": h[3],
             "msgid": h[4], "frag": frag, "bytes": p.iplen, "packets": 1}
        if p.more:
            cont[(p.src, p.dst, p.ipid)] = d
        out.append(d)
    return out


def ike_sequences(datagrams, initiator):
    """The handshakes and CHILD_SA rekeys that `initiator` (an IP address) started, counted on
    the wire. Exchanges are told apart by initiator SPI, message ID, type and requester; a
    datagram seen again (same exchange, direction and IKE fragment) is a retransmission, counted
    but not in the sizes. A handshake is IKE_SA_INIT with message ID 0, the IKE_INTERMEDIATE
    exchanges after it and IKE_AUTH, timed from the first IKE_SA_INIT request to the IKE_AUTH
    response (its last fragment); a rekey is a CREATE_CHILD_SA and the IKE_FOLLOWUP_KE exchanges
    that follow it, timed from the request to the last response. Returns a list of dicts: kind
    (handshake or rekey), t, duration (s), exchanges (names in order), messages, packets,
    bytes, retrans; only complete ones (every exchange answered)."""
    ex, order, seen = {}, [], set()
    for d in datagrams:
        requester = d["dst"] if d["resp"] else d["src"]
        key = (d["spi_i"], d["msgid"], d["exch"], requester)
        e = ex.get(key)
        if e is None:
            if d["resp"]:
                continue     # a response to a request before the capture started
            e = {"exch": d["exch"], "msgid": d["msgid"], "spi_i": d["spi_i"], "t_req": d["ts"],
                 "t_resp": None, "requester": requester, "messages": set(), "packets": 0,
                 "bytes": 0, "retrans": 0}
            ex[key] = e
            order.append(key)
        copy = key + (d["resp"], d["frag"])
        if copy in seen:
            e["retrans"] += 1
            continue
        seen.add(copy)
        e["messages"].add(d["resp"])
        e["packets"] += d["packets"]
        e["bytes"] += d["bytes"]
        if d["resp"]:
            e["t_resp"] = d["ts"] if e["t_resp"] is None else max(e["t_resp"], d["ts"])
    per_sa = {}
    for k in order:
        e = ex[k]
        if e["requester"] == initiator:
            per_sa.setdefault(e["spi_i"], []).append(e)

    def seq(kind, chain):
        if any(e["t_resp"] is None for e in chain):
            return None
        return {"kind": kind, "t": chain[0]["t_req"],
                "duration": chain[-1]["t_resp"] - chain[0]["t_req"],
                "exchanges": [EXCHANGES.get(e["exch"], str(e["exch"])) for e in chain],
                "messages": sum(len(e["messages"]) for e in chain),
                "packets": sum(e["packets"] for e in chain),
                "bytes": sum(e["bytes"] for e in chain),
                "retrans": sum(e["retrans"] for e in chain)}
    out = []
    for chain in per_sa.values():
        chain.sort(key=lambda e: e["t_req"])
        i = 0
        while i < len(chain):
            e = chain[i]
            if e["exch"] == IKE_SA_INIT and e["msgid"] == 0:
                j = i + 1
                while j < len(chain) and chain[j]["exch"] == IKE_INTERMEDIATE:
                    j += 1
                if j < len(chain) and chain[j]["exch"] == IKE_AUTH:
                    s = seq("handshake", chain[i:j + 1])
                    if s:
                        out.append(s)
                    i = j + 1
                    continue
            elif e["exch"] == CREATE_CHILD_SA:
                j = i + 1
                while j < len(chain) and chain[j]["exch"] == IKE_FOLLOWUP_KE:
                    j += 1
                s = seq("rekey", chain[i:j])
                if s:
                    out.append(s)
                i = j
                continue
            i += 1
    out.sort(key=lambda s: s["t"])
    return out


def ike_exchanges(path):
    """Request/response pairs: list of dicts with exchange, spi_i, msgid, t_req (first request),
    t_resp (first response), retrans (requests seen beyond the first)."""
    pairs = {}
    order = []
    for p in read(path):
        h = ike_header(p)
        if not h:
            continue
        spi_i, _spi_r, exch, resp, msgid = h
        key = (spi_i, msgid, exch)
        e = pairs.get(key)
        if e is None:
            if resp:
                continue     # a response to a request before the capture started
            e = {"exchange": exch, "spi_i": spi_i, "msgid": msgid, "t_req": p.ts,
                 "t_resp": None, "retrans": 0, "req_src": p.src}
            pairs[key] = e
            order.append(key)
        elif not resp:
            if e["t_resp"] is None:
                e["retrans"] += 1
        elif e["t_resp"] is None:
            e["t_resp"] = p.ts
    return [pairs[k] for k in order]


def handshakes(exchanges):
    """Full handshakes per IKE_SA (by initiator SPI): first IKE_SA_INIT request to the first
    IKE_AUTH response, in seconds. Returns list of (t_start, duration, retransmissions)."""
    start, out = {}, []
    for e in exchanges:
        if e["exchange"] == IKE_SA_INIT and e["msgid"] == 0:
            start.setdefault(e["spi_i"], e)
    for e in exchanges:
        if e["exchange"] == IKE_AUTH and e["t_resp"] is not None and e["spi_i"] in start:
            s = start.pop(e["spi_i"])
            out.append((s["t_req"], e["t_resp"] - s["t_req"], s["retrans"] + e["retrans"]))
    return out


def exchange_rtts(exchanges, exch):
    """(t_req, rtt, retransmissions) of every answered exchange of one type"""
    return [(e["t_req"], e["t_resp"] - e["t_req"], e["retrans"]) for e in exchanges
            if e["exchange"] == exch and e["t_resp"] is not None]


def esp(p):
    """(spi, seq, epoch) of an ESP-in-UDP packet (epoch = first 4 IV bytes: IPSeQ's window
    number when rotation is on, 0 for standard ESP with sequence numbers below 2^32)"""
    if p.proto != 17 or p.frag or (p.sport != 4500 and p.dport != 4500):
        return None
    m = p.payload
    if len(m) < 16 or m[:4] == b"\0\0\0\0" or (len(m) == 1 and m[0] == 0xFF):
        return None
    spi, seq, epoch = struct.unpack("!III", m[:12])
    return spi, seq, epoch


def icmp_echo(p):
    """(type, id, seq) of an ICMP echo request (8) or reply (0)"""
    if p.proto != 1 or p.frag or len(p.payload) < 8 or p.payload[0] not in (0, 8):
        return None
    t = p.payload[0]
    ident, seq = struct.unpack("!HH", p.payload[4:8])
    return t, ident, seq


def datapath_latency(lan_pcap, wan_pcap, lan_host, wan_local):
    """Per-packet time one gateway's datapath needs, from two captures on the same gateway while
    its LAN host pings through the tunnel: TX = echo request arriving on the LAN -> its ESP packet
    leaving on the WAN; RX = ESP packet arriving on the WAN -> its decrypted echo reply leaving on
    the LAN. Packets are paired in order (ESP sequence numbers, ICMP order). A packet whose IV
    epoch differs from the previous one of its SA is the first packet of a new key window.
    Returns (rows, note): rows = list of (direction, epoch, window_switch, latency_s)."""
    req, rep = [], []
    for p in read(lan_pcap):
        e = icmp_echo(p)
        if not e:
            continue
        if e[0] == 8 and p.src == lan_host:
            req.append(p.ts)
        elif e[0] == 0 and p.dst == lan_host:
            rep.append(p.ts)
    out_esp, in_esp = [], []
    for p in read(wan_pcap):
        e = esp(p)
        if not e:
            continue
        (out_esp if p.src == wan_local else in_esp).append((p.ts, e))
    rows, notes = [], []
    for direction, plain, enc, plain_first in (("tx", req, out_esp, True), ("rx", rep, in_esp, False)):
        if len(plain) != len(enc):
            notes.append("%s: %d plaintext vs %d ESP packets, not paired" % (direction, len(plain), len(enc)))
            continue
        prev = None
        for t_plain, (t_esp, (spi, _seq, epoch)) in zip(plain, enc):
            switch = prev is not None and prev == (spi, epoch - 1)
            lat = (t_esp - t_plain) if plain_first else (t_plain - t_esp)
            rows.append((direction, epoch, switch, lat))
            prev = (spi, epoch)
    return rows, "; ".join(notes)
