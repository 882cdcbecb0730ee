#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Read a pcap (Ethernet or Linux cooked, IPv4, UDP port 4500) and report ESP-in-UDP packets.

  esp_pcap.py epochs FILE      one line per (SPI, IV epoch): "spi epoch packets first_seq last_seq"
  esp_pcap.py count FILE       number of ESP packets
  esp_pcap.py grep FILE HEX    exit 0 if the byte string occurs in any captured packet
"""
import struct
import sys


def packets(path):
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 24:
        return
    magic = data[:4]
    if magic in (b'\xd4\xc3\xb2\xa1', b'\x4d\x3c\xb2\xa1'):
        endian = '<'
    elif magic in (b'\xa1\xb2\xc3\xd4', b'\xa1\xb2\x3c\x4d'):
        endian = '>'
    else:
        raise SystemExit('not a pcap file')
    linktype = struct.unpack(endian + 'I', data[20:24])[0]
    off = 24
    while off + 16 <= len(data):
        incl = struct.unpack(endian + 'I', data[off + 8:off + 12])[0]
        pkt = data[off + 16:off + 16 + incl]
        off += 16 + incl
        yield linktype, pkt


def esp_payloads(path):
    for linktype, pkt in packets(path):
        if linktype == 1:           # Ethernet
            if len(pkt) < 14 or pkt[12:14] != b'\x08\x00':
                continue
            ip = pkt[14:]
        elif linktype == 113:       # Linux cooked
            if len(pkt) < 16 or pkt[14:16] != b'\x08\x00':
                continue
            ip = pkt[16:]
        elif linktype == 101:       # raw IP
            ip = pkt
        else:
            continue
        if len(ip) < 28 or ip[0] >> 4 != 4 or ip[9] != 17:
            continue
        ihl = (ip[0] & 15) * 4
        udp = ip[ihl:]
        if len(udp) < 8:
            continue
        sport, dport = struct.unpack('>HH', udp[:4])
        if 4500 not in (sport, dport) and dport < 4500:
            continue
        esp = udp[8:]
        if len(esp) < 16 or esp[:4] == b'\x00\x00\x00\x00' or len(esp) == 1:
            continue
        yield esp


def main():
    cmd, path = sys.argv[1], sys.argv[2]
    if cmd == 'epochs':
        stats = {}
        for esp in esp_payloads(path):
            spi, seq, epoch = struct.unpack('>III', esp[:12])
            k = (spi, epoch)
            n, first, last = stats.get(k, (0, seq, seq))
            stats[k] = (n + 1, min(first, seq), max(last, seq))
        for (spi, epoch), (n, first, last) in sorted(stats.items()):
            print('%08x %d %d %d %d' % (spi, epoch, n, first, last))
    elif cmd == 'count':
        print(sum(1 for _ in esp_payloads(path)))
    elif cmd == 'grep':
        needle = bytes.fromhex(sys.argv[3])
        for _, pkt in packets(path):
            if needle in pkt:
                sys.exit(0)
        sys.exit(1)
    else:
        raise SystemExit(__doc__)


if __name__ == '__main__':
    main()
