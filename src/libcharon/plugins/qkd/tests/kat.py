#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Recompute every IPSeQ key derivation with python3-cryptography and compare with our C code.

  kat.py KAT_OUTPUT...    files of "name hex" lines from qkd_kat and kat_window_key

The derivations are written out here from docs/derivations.md, not taken from the C code: a
changed label, a dropped quantum key or a changed formula on the C side makes a comparison
fail. Exit status 0 only if every value matches.
"""
import sys

from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

VERSION = 2
LABEL_CONFIRM = b"IPSeQ x25519qkd v2 confirm"
LABEL_KE_SECRET = b"IPSeQ x25519qkd v2 ke secret"
LABEL_ADD_CONFIRM = b"IPSeQ qkd v2 additional ke confirm"
LABEL_ADD_SECRET = b"IPSeQ qkd v2 additional ke secret"
LABEL_PPK = b"IPSeQ qkd v2 ppk"
LABEL_QPSK = b"IPSeQ qkd v2 qpsk"
LABEL_WINDOW = b"IPSeQ ESP window key"
ID_FQDN = 2


def prf(key, data):
    """PRF_HMAC_SHA2_256, the IKE PRF of the lab's proposals"""
    h = hmac.HMAC(key, hashes.SHA256())
    h.update(data)
    return h.finalize()


def prf_plus(key, seed, length):
    """RFC 7296 2.13: T1 = prf(K, S | 0x01), Tn = prf(K, Tn-1 | S | n)"""
    out, t, n = b"", b"", 1
    while len(out) < length:
        t = prf(key, t + seed + bytes([n]))
        out += t
        n += 1
    return out[:length]


def hkdf(ikm, info, length=32, salt=None):
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=salt, info=info).derive(ikm)


def x25519_pub(priv):
    return X25519PrivateKey.from_private_bytes(priv).public_key().public_bytes(
        Encoding.Raw, PublicFormat.Raw)


def expected(v):
    """name -> value, from the printed inputs only"""
    e = {}
    pub_i, pub_r = x25519_pub(v["priv_i"]), x25519_pub(v["priv_r"])
    kei = bytes([VERSION]) + pub_i + v["key_id"]
    confirm = prf(hkdf(v["qkey"], LABEL_CONFIRM), kei + pub_r)[:16]
    e["kei"] = kei
    e["ker"] = bytes([VERSION]) + pub_r + confirm
    dh = X25519PrivateKey.from_private_bytes(v["priv_i"]).exchange(
        X25519PublicKey.from_public_bytes(pub_r))
    ss = dh + hkdf(v["qkey"], LABEL_KE_SECRET)
    e["ke_secret"] = ss

    # RFC 7296 2.14 with AES-256-GCM (no integrity keys, 36-byte encryption keys)
    nonces = v["nonce_i"] + v["nonce_r"]
    skeyseed = prf(nonces, ss)
    keys = prf_plus(skeyseed, nonces + v["spi_i"] + v["spi_r"], 32 + 2 * 36 + 2 * 32)
    sk_d, sk_pi, sk_pr = keys[:32], keys[104:136], keys[136:168]
    e["skd_no_ppk"] = sk_d

    if "qkey3" in v:
        # strongSwan 6: the additional QKD key exchange (qkd) in IKE_INTERMEDIATE, RFC 9370:
        # SKEYSEED(1) = prf(SK_d(0), SK(1) | Ni | Nr), keys as before from SKEYSEED(1)
        add_kei = bytes([VERSION]) + v["key_id"]
        e["add_kei"] = add_kei
        e["add_ker"] = bytes([VERSION]) + prf(hkdf(v["qkey3"], LABEL_ADD_CONFIRM), add_kei)[:16]
        add_secret = hkdf(v["qkey3"], LABEL_ADD_SECRET)
        e["add_secret"] = add_secret
        skeyseed = prf(sk_d, add_secret + nonces)
        keys = prf_plus(skeyseed, nonces + v["spi_i"] + v["spi_r"], 32 + 2 * 36 + 2 * 32)
        sk_d, sk_pi, sk_pr = keys[:32], keys[104:136], keys[136:168]
        e["skd_add"] = sk_d

    # RFC 8784 section 3: SK_d' = prf+(PPK, SK_d), SK_pi' and SK_pr' alike
    ppk = hkdf(v["qkey2"], LABEL_PPK)
    e["ppk"] = ppk
    sk_d, sk_pi, sk_pr = (prf_plus(ppk, k, 32) for k in (sk_d, sk_pi, sk_pr))
    e["skd"] = sk_d
    # RFC 7296 2.15: octets = message | nonce of the peer | prf(SK_px, IDx')
    idi = bytes([ID_FQDN, 0, 0, 0]) + v["idi"]
    idr = bytes([ID_FQDN, 0, 0, 0]) + v["idr"]
    e["octets_i"] = v["init_i"] + v["nonce_r"] + prf(sk_pi, idi)
    e["octets_r"] = v["init_r"] + v["nonce_i"] + prf(sk_pr, idr)

    qpsk = prf(hkdf(v["qkey2"], LABEL_QPSK), v["psk"])
    e["qpsk"] = qpsk
    e["auth_i"] = prf(prf(qpsk, b"Key Pad for IKEv2"), e["octets_i"])
    return e


def expected_window(v):
    e = {}
    info = LABEL_WINDOW + v["we_spi"] + v["we_epoch"]
    for n, length in ((0, 32), (1, 16)):
        e["we_key_%d" % n] = hkdf(v["we_qkey"], info, length, salt=v["we_salt_%d" % n])
    return e


def main():
    v = {}
    for path in sys.argv[1:]:
        for line in open(path):
            name, _, value = line.strip().partition(" ")
            v[name] = bytes.fromhex(value)
    e = {}
    if "priv_i" in v:
        e.update(expected(v))
    if "we_qkey" in v:
        e.update(expected_window(v))
    if not e:
        sys.exit("kat.py: no known-answer input found")
    bad = 0
    for name, want in e.items():
        got = v.get(name)
        ok = got == want
        bad += not ok
        print("%s %s" % ("ok  " if ok else "FAIL", name))
        if not ok:
            print("  C:      %s\n  python: %s" % (got.hex() if got else None, want.hex()))
    print("kat.py: %d of %d derivations match" % (len(e) - bad, len(e)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
