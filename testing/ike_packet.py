#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Capture, tamper with and replay IKEv2 messages for the qkd plugin's bad-input tests.

  ike_packet.py extract PCAP OUT        first IKE_SA_INIT request in a pcap (Ethernet/IPv4/UDP)
  ike_packet.py ke-resize IN OUT DELTA  grow (DELTA > 0) or shrink the KE payload's data
  ike_packet.py ke-info IN              print the KE payload's method and data length
  ike_packet.py ke-set IN OUT OFF HEX   overwrite the KE payload's data from byte OFF with HEX
  ike_packet.py send-each DST PORT IN... send each message once, as fast as possible, without
                                        waiting for replies (for rates), each under a fresh
                                        random initiator SPI
  ike_packet.py send IN DST PORT [N]    send the message N times over UDP (from any local port),
                                        each copy under a fresh random initiator SPI, so the
                                        responder takes it for a new IKE_SA (not a retransmit);
                                        a COOKIE demand (charon's DoS guard) is answered, as any
                                        on-path attacker could
"""
import os
import socket
import struct
import sys

IKE_HDR = 28
KE = 34
NOTIFY = 41
COOKIE = 16390


def pcap_udp_payloads(path):
    data = open(path, "rb").read()
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        _, _, caplen, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        l2 = {1: 14, 113: 16, 276: 20}.get(linktype, 14)
        ip = frame[l2:]
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 0x0F) * 4
        sport, dport = struct.unpack("!HH", ip[ihl:ihl + 4])
        yield sport, dport, ip[ihl + 8:]


def payloads(msg):
    """(offset, type) of each payload in the chain"""
    nxt = msg[16]
    off = IKE_HDR
    while nxt and off + 4 <= len(msg):
        length = struct.unpack("!H", msg[off + 2:off + 4])[0]
        yield off, nxt, length
        nxt = msg[off]
        off += length


def find_ke(msg):
    for off, typ, length in payloads(msg):
        if typ == KE:
            return off, length
    raise SystemExit("no KE payload")


def cookie_of(reply):
    """the COOKIE data of a responder's reply, or None"""
    if len(reply) < IKE_HDR:
        return None
    for off, typ, length in payloads(reply):
        if typ == NOTIFY and struct.unpack("!H", reply[off + 6:off + 8])[0] == COOKIE:
            spi_size = reply[off + 5]
            return bytes(reply[off + 8 + spi_size:off + length])
    return None


def with_cookie(msg, cookie):
    """the message with a COOKIE notify as its first payload"""
    first = msg[16]
    notify = struct.pack("!BBHBBH", first, 0, 8 + len(cookie), 0, 0, COOKIE) + cookie
    out = bytearray(msg[:IKE_HDR]) + notify + msg[IKE_HDR:]
    out[16] = NOTIFY
    struct.pack_into("!I", out, 24, len(out))
    return out


def send(msg, dst, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(1.0)
    s.sendto(bytes(msg), (dst, port))
    try:
        reply = s.recv(65535)
    except socket.timeout:
        return
    cookie = cookie_of(reply)
    if cookie is not None:
        s.sendto(bytes(with_cookie(msg, cookie)), (dst, port))
        try:
            s.recv(65535)
        except socket.timeout:
            pass


def main():
    cmd = sys.argv[1]
    if cmd == "send-each":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for path in sys.argv[4:1004]:
            msg = bytearray(open(path, "rb").read())
            msg[0:8] = os.urandom(8)
            s.sendto(bytes(msg), (sys.argv[2], int(sys.argv[3])))
        return
    if cmd == "extract":
        for sport, dport, payload in pcap_udp_payloads(sys.argv[2]):
            if dport == 4500 and payload[:4] == b"\0\0\0\0":
                payload = payload[4:]
            if dport in (500, 4500) and len(payload) >= IKE_HDR and payload[18] == 34 \
                    and payload[19] & 0x08:  # IKE_SA_INIT, initiator flag
                open(sys.argv[3], "wb").write(payload)
                return
        raise SystemExit("no IKE_SA_INIT request in " + sys.argv[2])
    msg = bytearray(open(sys.argv[2], "rb").read())
    if cmd == "ke-info":
        off, length = find_ke(msg)
        method = struct.unpack("!H", msg[off + 4:off + 6])[0]
        print(method, length - 8)
    elif cmd == "ke-resize":
        delta = int(sys.argv[4])
        off, length = find_ke(msg)
        end = off + length
        if delta >= 0:
            msg[end:end] = b"\x5a" * delta
        else:
            del msg[end + delta:end]
        struct.pack_into("!H", msg, off + 2, length + delta)
        struct.pack_into("!I", msg, 24, len(msg))
        open(sys.argv[3], "wb").write(msg)
    elif cmd == "ke-set":
        off, length = find_ke(msg)
        at, data = int(sys.argv[4]), bytes.fromhex(sys.argv[5])
        if at < 0 or at + len(data) > length - 8:
            raise SystemExit("ke-set: outside the KE data")
        msg[off + 8 + at:off + 8 + at + len(data)] = data
        open(sys.argv[3], "wb").write(msg)
    elif cmd == "send":
        dst, port = sys.argv[3], int(sys.argv[4])
        count = int(sys.argv[5]) if len(sys.argv) > 5 else 1
        for _ in range(min(count, 1000)):
            msg[0:8] = os.urandom(8)
            send(msg, dst, port)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
