#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""A fake metro KMS node on one QKD link, for testing/tests/26-kms-relay-forged.sh.

It connects to a qkd-kmsd link master as the link slave NODE (with NODE's KME certificate of the
test PKI), mirrors the master's KEYS, and sends relays through it: one valid relay, then
replayed, forged and malformed ones. For each case it prints one JSON line:
  {"case": NAME, "key_ID": ..., "key": HEX (valid ones), "status": ACK status or "closed",
   "reason": NACK reason}

usage: relay_peer.py PKI_DIR NODE MASTER_NODE HOST:PORT DST MASTER_SAE SLAVE_SAE
(MASTER_NODE: the qkd-kmsd at HOST:PORT, the link master; DST: the node the relays go to)
"""
import json
import os
import socket
import ssl
import struct
import sys
import time
import uuid

HELLO, KEYS, RELAY, RELAY_ACK, RELAY_ALLOC, RELAY_GRANT = 1, 2, 8, 9, 10, 11


class Closed(Exception):
    pass


class Peer:
    def __init__(self, pki, node, addr):
        self.pki, self.node, self.addr = pki, node, addr
        self.blocks = []  # (id, key) in the master's order
        self.req = 100
        self.connect()

    def connect(self):
        host, port = self.addr.rsplit(":", 1)
        ctx = ssl.create_default_context(cafile=self.pki + "/ca.pem")
        ctx.check_hostname = False
        ctx.load_cert_chain(self.pki + "/%s.pem" % self.node, self.pki + "/%s.key" % self.node)
        raw = socket.create_connection((host, int(port)), timeout=10)
        self.s = ctx.wrap_socket(raw)
        self.buf = b""
        self.blocks = []
        name = self.node.encode()
        self.send(HELLO, struct.pack(">BBII", 2, 1, 256, 1000) + bytes([len(name)]) + name)
        t, p = self.frame()
        assert t == HELLO, t
        self.bits = struct.unpack(">I", p[2:6])[0]

    def send(self, t, payload):
        self.s.sendall(struct.pack(">IB", len(payload) + 1, t) + payload)

    def frame(self):
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    t, p = self.buf[4], self.buf[5:4 + n]
                    self.buf = self.buf[4 + n:]
                    return t, p
            try:
                d = self.s.recv(65536)
            except socket.timeout:
                raise
            except (ssl.SSLError, OSError):
                d = b""
            if not d:
                raise Closed()
            self.buf += d

    def until(self, want):
        """Frames until one of type want (None: any one frame); KEYS are mirrored meanwhile."""
        while True:
            t, p = self.frame()
            if t == KEYS:
                n = struct.unpack(">H", p[:2])[0]
                size = self.bits // 8
                for i in range(n):
                    o = 2 + i * (16 + size)
                    self.blocks.append((p[o:o + 16], p[o + 16:o + 16 + size]))
            if t == want or want is None:
                return p

    def fill(self, n):
        end = time.time() + 20
        while len(self.blocks) < n and time.time() < end:
            self.s.settimeout(1)
            try:
                self.until(None)
            except socket.timeout:
                pass
        self.s.settimeout(10)

    def grant(self, nblocks=1):
        self.req += 1
        g = self.req
        self.send(RELAY_ALLOC, struct.pack(">BII", 1, g, nblocks))
        p = self.until(RELAY_GRANT)
        _, req, status, n = struct.unpack(">BIHI", p[:11])
        assert req == g and status == 0, (req, status)
        ids = [p[11 + 16 * i:27 + 16 * i] for i in range(n)]
        keys = []
        for bid in ids:
            head_id, key = self.blocks.pop(0)
            assert head_id == bid, "grant is not the head of our mirror"
            keys.append(key)
        return g, ids, keys

    @staticmethod
    def s8(text):
        b = text.encode()
        return bytes([len(b)]) + b

    def relay_frame(self, grant, block_ids, key_id, ct, route, dst, master, slaves, version=1):
        self.req += 1
        p = struct.pack(">BII", version, self.req, grant) + self.s8(dst) + self.s8(master)
        p += bytes([len(slaves)]) + b"".join(self.s8(s) for s in slaves)
        p += bytes([len(route)]) + b"".join(self.s8(r) for r in route)
        p += struct.pack(">BHIH", 1, 1, len(ct) * 8, len(block_ids))
        p += key_id + b"".join(block_ids) + ct
        return self.req, p

    def ack(self, req):
        while True:
            p = self.until(RELAY_ACK)
            _, r, status, n = struct.unpack(">BIHB", p[:8])
            if r == req:
                return status, p[8:8 + n].decode(errors="replace")


def xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def main():
    pki, node, via, addr, dst, master, slave = sys.argv[1:8]
    peer = Peer(pki, node, addr)
    route = [node, via]
    out = []

    def report(case, key_id, key=None, status=None, reason=""):
        d = {"case": case, "key_ID": str(uuid.UUID(bytes=key_id)), "status": status,
             "reason": reason}
        if key is not None:
            d["key"] = key.hex()
        print(json.dumps(d), flush=True)
        out.append(d)

    def relay(case, key_id, key, route=route, master=master, slaves=(slave,), dst=dst,
              mangle=None):
        g, ids, keys = peer.grant()
        ct = xor(key, keys[0][:len(key)])
        req, frame = peer.relay_frame(g, ids, key_id, ct, route, dst, master, list(slaves))
        if mangle:
            req, frame = mangle(g, ids, key_id, ct)  # (req, frame) of a changed RELAY
        peer.send(RELAY, frame)
        try:
            status, reason = peer.ack(req)
        except Closed:
            status, reason = "closed", ""
        report(case, key_id, key, status, reason)
        return frame

    peer.fill(30)
    k1 = uuid.uuid4().bytes
    frame = relay("valid", k1, os.urandom(32))
    # the same frame again: its grant is used up
    peer.send(RELAY, frame)
    status, reason = peer.ack(struct.unpack(">I", frame[1:5])[0])
    report("replayed_frame", k1, None, status, reason)
    relay("replayed_key_id", k1, os.urandom(32))
    relay("forged_route", uuid.uuid4().bytes, os.urandom(32), route=["N9", via])
    relay("forged_loop", uuid.uuid4().bytes, os.urandom(32), route=[node, via, node, dst])
    relay("unknown_slave", uuid.uuid4().bytes, os.urandom(32), slaves=("SAE_NOPE",))
    relay("unknown_master", uuid.uuid4().bytes, os.urandom(32), master="SAE_EVIL")
    relay("forged_blocks", uuid.uuid4().bytes, os.urandom(32),
          mangle=lambda g, ids, k, ct: peer.relay_frame(g, [uuid.uuid4().bytes], k, ct, route,
                                                        dst, master, [slave]))

    def cut(g, ids, k, ct):
        req, frame = peer.relay_frame(g, ids, k, ct, route, dst, master, [slave])
        return req, frame[:-7]

    relay("unknown_version", uuid.uuid4().bytes, os.urandom(32),
          mangle=lambda g, ids, k, ct: peer.relay_frame(g, ids, k, ct, route, dst, master,
                                                        [slave], version=9))
    # the master dropped the link (its stores resynchronise): come back, and send a cut frame
    time.sleep(0.5)
    peer.connect()
    peer.fill(10)
    relay("truncated", uuid.uuid4().bytes, os.urandom(32), mangle=cut)
    time.sleep(0.5)
    peer.connect()
    peer.fill(10)
    relay("valid_after", uuid.uuid4().bytes, os.urandom(32))


if __name__ == "__main__":
    main()
