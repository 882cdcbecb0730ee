#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Independent decryptor of a capture of IPSeQ ESP (a test tool, not our C code).

  esp_decrypt.py PCAP KEYDIR [KEYDIR...]

KEYDIR is a directory written by charon.plugins.kernel-qkd.save_keys (TEST ONLY):
  esp_sa       "SPI in|out SRC DST esn=0|1 rotating=0|1 KEY"   KEY = AES key || 4-byte salt (hex)
  window_keys  "SPI in|out EPOCH QKEY"                          quantum key of (SPI, EPOCH) (hex)

Every ESP packet of the capture is decrypted with the key docs/derivations.md documents:
  rotating SA:      K_e = HKDF-SHA256(IKM = QKEY(SPI, e), salt = KEY,
                                      info = "IPSeQ ESP window key" || be32(SPI) || be32(e),
                                      L = AES key length), e = first 4 bytes of the explicit IV
  non-rotating SA:  the AES key of KEY
with AES-GCM-16 as RFC 4106 says: nonce = salt (last 4 bytes of KEY) || explicit IV (8),
AAD = SPI || seq (|| with ESN: SPI || seq high (taken as 0) || seq), ICV 16 bytes. The plaintext
must end in RFC 4303 padding (1, 2, 3, ...), pad length and next header 4 (IPv4) or 41 (IPv6),
and carry an IP packet whose length fields (and IPv4 header checksum) agree.

Prints one line per (SPI, epoch), per SPI and a summary; exits 1 if any packet fails, 2 on bad
input.
"""
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'src',
                                'libipsec-qkd', 'tests'))
import esp_pcap  # noqa: E402

WINDOW_LABEL = b'IPSeQ ESP window key'
ICV = 16


def fail(msg):
    sys.stderr.write('esp_decrypt: %s\n' % msg)
    sys.exit(2)


def read_keys(dirs):
    """SAs {spi: dict} and window keys {(spi, epoch): qkey} of all key directories; the same
    SPI or window exported twice (by both gateways, or twice by one) must agree."""
    sas, windows = {}, {}
    for d in dirs:
        path = os.path.join(d, 'esp_sa')
        if not os.path.exists(path):
            fail('%s: no esp_sa file (is charon.plugins.kernel-qkd.save_keys set?)' % d)
        with open(path) as f:
            for n, line in enumerate(f, 1):
                w = line.split()
                if len(w) != 7 or not w[4].startswith('esn=') or not w[5].startswith('rotating='):
                    fail('%s:%d: not an esp_sa line' % (path, n))
                sa = {'dir': w[1], 'src': w[2], 'dst': w[3], 'esn': w[4] == 'esn=1',
                      'rotating': w[5] == 'rotating=1', 'key': bytes.fromhex(w[6])}
                if len(sa['key']) not in (20, 36):
                    fail('%s:%d: key of %d bytes (AES-GCM-16 128/256 || salt expected)'
                         % (path, n, len(sa['key'])))
                spi = int(w[0], 16)
                if spi in sas and sas[spi]['key'] != sa['key']:
                    fail('SPI %08x exported twice with different keys' % spi)
                sas[spi] = sa
        path = os.path.join(d, 'window_keys')
        if not os.path.exists(path):
            continue
        with open(path) as f:
            for n, line in enumerate(f, 1):
                w = line.split()
                if len(w) != 4:
                    fail('%s:%d: not a window_keys line' % (path, n))
                k = (int(w[0], 16), int(w[2]))
                q = bytes.fromhex(w[3])
                if k in windows and windows[k] != q:
                    fail('SPI %08x epoch %d exported twice with different keys' % k)
                windows[k] = q
    return sas, windows


def window_key(qkey, salt, spi, epoch, length):
    """K_e of docs/derivations.md"""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt,
                info=WINDOW_LABEL + struct.pack('>II', spi, epoch)).derive(qkey)


def inner_ok(pt):
    """RFC 4303 trailer and an IP packet that parses"""
    if len(pt) < 2:
        return False
    padlen, nh = pt[-2], pt[-1]
    inner = pt[:len(pt) - 2 - padlen]
    if len(pt) < 2 + padlen or pt[len(inner):-2] != bytes(range(1, padlen + 1)):
        return False
    if nh == 4:
        if len(inner) < 20 or inner[0] >> 4 != 4 or (inner[0] & 15) < 5:
            return False
        ihl = (inner[0] & 15) * 4
        if struct.unpack('>H', inner[2:4])[0] != len(inner) or len(inner) < ihl:
            return False
        s = sum(struct.unpack('>%dH' % (ihl // 2), inner[:ihl]))
        while s >> 16:
            s = (s & 0xffff) + (s >> 16)
        return s == 0xffff
    if nh == 41:
        return len(inner) >= 40 and inner[0] >> 4 == 6 and \
            struct.unpack('>H', inner[4:6])[0] == len(inner) - 40
    return False


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    sas, windows = read_keys(sys.argv[2:])
    stats = {}          # (spi, epoch) -> [ok, failed]
    reasons = {}
    cache = {}
    for esp in esp_pcap.esp_payloads(sys.argv[1]):
        spi, seq = struct.unpack('>II', esp[:8])
        iv = esp[8:16]
        sa = sas.get(spi)
        epoch = struct.unpack('>I', iv[:4])[0] if sa and sa['rotating'] else None
        st = stats.setdefault((spi, epoch), [0, 0])
        why = None
        if sa is None:
            why = 'no exported SA for SPI %08x' % spi
        elif len(esp) < 16 + ICV + 2:
            why = 'packet too short'
        else:
            aes, salt = sa['key'][:-4], sa['key'][-4:]
            if sa['rotating']:
                if (spi, epoch) not in windows:
                    why = 'no exported window key for SPI %08x epoch %d' % (spi, epoch)
                else:
                    if (spi, epoch) not in cache:
                        cache[(spi, epoch)] = window_key(windows[(spi, epoch)], sa['key'], spi,
                                                         epoch, len(aes))
                    aes = cache[(spi, epoch)]
            if why is None:
                aad = esp[:4] + (b'\0\0\0\0' if sa['esn'] else b'') + esp[4:8]
                try:
                    pt = AESGCM(aes).decrypt(salt + iv, esp[16:], aad)
                    if not inner_ok(pt):
                        why = 'decrypted, but no IP packet inside'
                except InvalidTag:
                    why = 'authentication failed (wrong key)'
        if why:
            st[1] += 1
            reasons[why] = reasons.get(why, 0) + 1
        else:
            st[0] += 1
    per_spi = {}
    for (spi, epoch), (ok, bad) in sorted(stats.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        print('window %08x epoch %s ok %d failed %d'
              % (spi, '-' if epoch is None else epoch, ok, bad))
        p = per_spi.setdefault(spi, [0, 0, 0])
        p[0] += ok
        p[1] += bad
        p[2] += 1
    for spi, (ok, bad, n) in sorted(per_spi.items()):
        sa = sas.get(spi)
        print('sa %08x %s %s -> %s %s ok %d failed %d epochs %d'
              % (spi, sa['dir'] if sa else '?', sa['src'] if sa else '?',
                 sa['dst'] if sa else '?',
                 ('rotating' if sa['rotating'] else 'static') if sa else '?', ok, bad,
                 n if sa and sa['rotating'] else 0))
    for why, n in sorted(reasons.items()):
        print('failure %d: %s' % (n, why))
    ok = sum(v[0] for v in stats.values())
    bad = sum(v[1] for v in stats.values())
    print('packets %d decrypted %d failed %d' % (ok + bad, ok, bad))
    sys.exit(1 if bad or not ok + bad else 0)


if __name__ == '__main__':
    main()
