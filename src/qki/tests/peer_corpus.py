#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Malformed, forged and replayed messages against a master qkid's peer port.

usage: peer_corpus.py HOST PORT AUTH_KEY_FILE LOCAL_SAE PEER_SAE {handshake|session}

handshake: garbage and bad handshakes, an old protocol version, a HELLO1 replayed on another
           connection; the real slave's session must survive them.
session:   (run while the real slave qkid is stopped) completes a genuine handshake as the slave,
           then sends a replayed, a forged, a malformed and an unexpected message; the master
           must drop each one and keep the session. Last, a sequence gap (a lost message):
           the master must close the session.
Prints one line per case: "case NAME: RESULT". Exit 0 if the script itself ran through.
"""
import hashlib
import hmac
import os
import socket
import struct
import sys
import time

MAGIC, VERSION, HDR, TAG = 0x5150, 2, 16, 32
HELLO1, HELLO2, READY, ASSIGN, ACK, NEED, STALE, PING, PONG, CHALLENGE = range(1, 11)
A_SAE_FROM, A_SAE_TO, A_ROLE, A_NONCE, A_NONCE_PEER, A_BOOT, A_ENTRY, A_KEY_ID, A_USE, \
    A_SPI, A_RX, A_EPOCH, A_STATUS, A_COUNT, A_IKE_LEVEL = range(1, 16)
MASTER, SLAVE = 1, 2


def tlv(t, v):
    return struct.pack(">HH", t, len(v)) + v


def frame(mtype, seq, payload, key, length=None, version=VERSION):
    hdr = struct.pack(">HBBIQ", MAGIC, version, mtype,
                      len(payload) if length is None else length, seq)
    return hdr + payload + hmac.new(key, hdr + payload, hashlib.sha256).digest()


def mac(key, *parts):
    return hmac.new(key, b"".join(parts), hashlib.sha256).digest()


def parse_tlvs(b):
    out, i = {}, 0
    while i + 4 <= len(b):
        t, l = struct.unpack(">HH", b[i:i + 4])
        out.setdefault(t, b[i + 4:i + 4 + l])
        i += 4 + l
    return out


class Peer:
    def __init__(self, host, port, psk, local_sae, peer_sae):
        self.host, self.port, self.psk = host, port, psk
        self.local_sae, self.peer_sae = local_sae.encode(), peer_sae.encode()
        self.hello_key = mac(psk, b"qkid v2 hello")

    def connect(self):
        """Connect and read the master's challenge; returns (socket, nm or None)."""
        s = socket.create_connection((self.host, self.port), timeout=3)
        s.settimeout(2)
        r = recv_frame(s)
        nm = None
        if r and r != "timeout" and r[0] == CHALLENGE:
            nm = parse_tlvs(r[2][HDR:-TAG]).get(A_NONCE)
        return s, nm

    def hello1(self, nonce, boot, nm, role=SLAVE, key=None, sae_from=None):
        p = tlv(A_SAE_FROM, sae_from or self.local_sae) + tlv(A_SAE_TO, self.peer_sae) + \
            tlv(A_ROLE, bytes([role])) + tlv(A_NONCE, nonce) + tlv(A_NONCE_PEER, nm) + \
            tlv(A_BOOT, boot)
        return frame(HELLO1, 0, p, key or self.hello_key)


def recv_frame(s):
    buf = b""
    try:
        while len(buf) < HDR:
            chunk = s.recv(HDR - len(buf))
            if not chunk:
                return None
            buf += chunk
        _, _, mtype, length, seq = struct.unpack(">HBBIQ", buf)
        need = HDR + length + TAG
        while len(buf) < need:
            chunk = s.recv(need - len(buf))
            if not chunk:
                return None
            buf += chunk
        return mtype, seq, buf
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return None


def closed_by_peer(s, wait=1.5):
    s.settimeout(wait)
    try:
        return s.recv(1) == b""
    except socket.timeout:
        return False
    except ConnectionResetError:
        return True


def report(name, result):
    print(f"case {name}: {result}", flush=True)


def handshake_cases(p):
    s, nm = p.connect()
    report("challenge-first", "nonce" if nm and len(nm) == 32 else "none")
    s.sendall(os.urandom(300))
    report("garbage", "closed" if closed_by_peer(s) else "open")

    s, nm = p.connect()
    s.sendall(struct.pack(">HBBIQ", MAGIC, VERSION, HELLO1, 0x7fffffff, 0))
    report("oversized-length", "closed" if closed_by_peer(s) else "open")

    s, nm = p.connect()
    s.sendall(p.hello1(os.urandom(32), os.urandom(16), nm, key=os.urandom(32)))
    report("forged-hello1", "closed" if closed_by_peer(s) else "open")

    s, nm = p.connect()
    s.sendall(p.hello1(os.urandom(32), os.urandom(16), nm, sae_from=b"SAE_EVE"))
    report("unknown-sae", "closed" if closed_by_peer(s) else "open")

    s, nm = p.connect()
    s.sendall(p.hello1(os.urandom(32), os.urandom(16), nm, role=MASTER))
    report("role-conflict", "closed" if closed_by_peer(s) else "open")

    s, nm = p.connect()
    s.sendall(p.hello1(os.urandom(32), os.urandom(16), nm)[:20])   # truncated, then silence
    report("truncated-hello1", "closed" if closed_by_peer(s, 7) else "open")

    # a qkid speaking link protocol version 1 (it sends HELLO1 at once, no challenge)
    s, nm = p.connect()
    s.sendall(frame(HELLO1, 0, b"", os.urandom(32), version=1))
    report("old-version-hello1", "closed" if closed_by_peer(s) else "open")

    # a genuine HELLO1 gets a HELLO2 on its own connection, but without the PSK nobody can send
    # the READY; recorded and replayed on another connection it answers the wrong challenge
    s, nm = p.connect()
    rec = p.hello1(os.urandom(32), os.urandom(16), nm)
    for name in ("valid-hello1-no-ready", "replayed-hello1"):
        if name == "replayed-hello1":
            s, nm = p.connect()
        s.sendall(rec)
        r = recv_frame(s)
        got = "hello2" if r and r != "timeout" and r[0] == HELLO2 else "none"
        # send a READY under a made-up key: must be refused
        try:
            s.sendall(frame(READY, 1, b"", os.urandom(32)))
        except OSError:
            pass
        report(name, f"{got}, bad READY " + ("closed" if closed_by_peer(s) else "open"))


def session_cases(p):
    s, nm = p.connect()
    if not nm:
        report("session-handshake", "no challenge")
        return
    ns, bs = os.urandom(32), os.urandom(16)
    s.sendall(p.hello1(ns, bs, nm))
    r = recv_frame(s)
    if not r or r == "timeout" or r[0] != HELLO2:
        report("session-handshake", "no HELLO2")
        return
    a = parse_tlvs(r[2][HDR:-TAG])
    if not hmac.compare_digest(r[2][-TAG:], mac(p.hello_key, r[2][:-TAG])) or \
            a.get(A_NONCE_PEER) != ns or a.get(A_NONCE) != nm:
        report("session-handshake", "HELLO2 not authentic")
        return
    bm = a[A_BOOT]
    secret = mac(p.psk, b"qkid v2 session", ns, nm, bs, bm)
    k_s2m = mac(secret, b"slave to master")
    s.sendall(frame(READY, 1, tlv(A_IKE_LEVEL, struct.pack(">I", 4)), k_s2m))
    report("session-handshake", "ready sent")
    time.sleep(0.5)

    need = tlv(A_ENTRY, tlv(A_SPI, struct.pack(">I", 0x0badc0de)) + tlv(A_RX, bytes([MASTER])) +
               tlv(A_EPOCH, struct.pack(">I", 0)) + tlv(A_COUNT, struct.pack(">I", 1)))
    good = frame(NEED, 2, need, k_s2m)
    s.sendall(good)
    report("valid-need", "sent")
    s.sendall(good)                                        # replay: same seq, same tag
    report("replayed-need", "sent")
    s.sendall(frame(NEED, 3, need, os.urandom(32)))        # forged tag: seq 3 stays due
    report("forged-need", "sent")
    s.sendall(frame(NEED, 3, b"\x00\x07\x00\x09\x00", k_s2m))  # authentic but malformed TLV
    report("malformed-need", "sent")
    s.sendall(frame(ASSIGN, 4, b"", k_s2m))                # a master never gets ASSIGN
    report("unexpected-assign", "sent")
    ack = tlv(A_ENTRY, tlv(A_KEY_ID, b"00000000-0000-4000-8000-000000000000") +
              tlv(A_STATUS, bytes([0])))
    s.sendall(frame(ACK, 5, ack, k_s2m))                   # ack for a key nobody assigned
    report("bogus-ack", "sent")
    s.sendall(frame(PING, 6, b"", k_s2m))
    r = recv_frame(s)
    # skip the master's own traffic (ASSIGN of the stash, etc.) until the PONG
    deadline = time.time() + 3
    while r and r != "timeout" and r[0] != PONG and time.time() < deadline:
        r = recv_frame(s)
    report("session-alive-after-bad-messages",
           "pong" if r and r != "timeout" and r[0] == PONG else "no pong")
    # seq 7 is "lost": an authentic PING with seq 8 shows the gap; the master must close
    s.sendall(frame(PING, 8, b"", k_s2m))
    deadline, r = time.time() + 3, "timeout"
    while r == "timeout" or (r and r[0] != PONG and time.time() < deadline):
        r = recv_frame(s)
        if r == "timeout" and time.time() >= deadline:
            break
    report("sequence-gap", "pong" if r and r != "timeout" and r[0] == PONG else
           "closed" if r is None else "open")
    s.close()


def main():
    if len(sys.argv) != 7:
        print(__doc__)
        return 2
    host, port, keyfile, local_sae, peer_sae, mode = sys.argv[1:]
    psk = bytes.fromhex("".join(open(keyfile).read().split()))
    p = Peer(host, int(port), psk, local_sae, peer_sae)
    if mode == "handshake":
        handshake_cases(p)
    else:
        session_cases(p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
