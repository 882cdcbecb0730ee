# SPDX-License-Identifier: GPL-2.0-or-later
"""A small client of qkid's local API (src/qki/API.md) for the benchmarks: KEY_NEW (to drain
keys as fast as the key supply allows), STATUS (keys obtained from the KME, per peer) and
RPK_ADVICE. It never prints key material."""
import socket
import struct

MAGIC, VERSION = 0x514B, 1
KEY_NEW, STATUS, RPK_ADVICE = 0x02, 0x09, 0x08
A_PEER, A_KEY_ID, A_KEY, A_SIZE, A_SPI, A_DIR, A_WAIT_MS = 1, 2, 3, 4, 5, 6, 9
A_ERROR, A_MESSAGE, A_RPK, A_PEER_INFO, A_SA_INFO = 12, 13, 14, 18, 19
A_KEYS_IN, A_KEYS_OUT, A_RATE_IN, A_PKT_RATE, A_LEVEL = 27, 28, 29, 37, 22
A_CAPACITY, A_RATE_OUT, A_STARVED, A_NEXT_EPOCH = 23, 30, 38, 40
# an SA's key economy as its datapath reports it (API.md: DP_RPK .. SHARE)
A_DP_RPK, A_DP_LEVEL, A_DP_CAPACITY, A_WINDOWS, A_BEYOND_RPK = 47, 48, 49, 50, 51
A_STALL_DROPS, A_EPISODES, A_SHARE, A_PACKETS = 52, 53, 54, 10
SA_FIELDS = {A_LEVEL: "level", A_CAPACITY: "capacity", A_NEXT_EPOCH: "next_epoch", A_RPK: "rpk",
             A_KEYS_OUT: "keys_out", A_STARVED: "starved", A_PACKETS: "packets",
             A_PKT_RATE: "pkt_rate_milli", A_RATE_OUT: "keys_per_s_milli", A_SHARE: "share_milli",
             A_DP_RPK: "dp_rpk", A_DP_LEVEL: "dp_level", A_DP_CAPACITY: "dp_capacity",
             A_WINDOWS: "windows", A_BEYOND_RPK: "beyond_rpk", A_STALL_DROPS: "stall_drops",
             A_EPISODES: "episodes"}
STRINGS = {1, 2, 13, 20, 32, 35, 36}     # attributes that are text (the rest are numbers)
ERRORS = {8: "NO_KEY", 11: "KME", 12: "PEER_DOWN", 14: "BUSY"}


class QkidError(Exception):
    def __init__(self, code, text):
        super().__init__("qkid error %s (%d): %s" % (ERRORS.get(code, "?"), code, text))
        self.code = code


def attr(t, value):
    return struct.pack("!HH", t, len(value)) + value


def u32(t, v):
    return attr(t, struct.pack("!I", v))


def string(t, s):
    return attr(t, s.encode())


def parse(payload):
    """attribute list -> list of (type, raw value)"""
    out, i = [], 0
    while i + 4 <= len(payload):
        t, n = struct.unpack("!HH", payload[i:i + 4])
        out.append((t, payload[i + 4:i + 4 + n]))
        i += 4 + n
    return out


def num(raw):
    return int.from_bytes(raw, "big")


class Client:
    def __init__(self, path, timeout=5.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.seq = 0

    def close(self):
        self.sock.close()

    def _recv_exact(self, n):
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise QkidError(15, "qkid closed the connection")
            buf += chunk
        return buf

    def call(self, mtype, payload=b""):
        self.seq += 1
        self.sock.sendall(struct.pack("!HBBII", MAGIC, VERSION, mtype, self.seq, len(payload)) + payload)
        magic, _ver, _rtype, _seq, length = struct.unpack("!HBBII", self._recv_exact(12))
        if magic != MAGIC:
            raise QkidError(1, "bad magic in reply")
        attrs = parse(self._recv_exact(length))
        err = [num(v) for t, v in attrs if t == A_ERROR]
        if err:
            msg = [v.decode(errors="replace") for t, v in attrs if t == A_MESSAGE]
            raise QkidError(err[0], msg[0] if msg else "")
        return attrs

    def key_new(self, peer, size=32, wait_ms=1000):
        """a fresh key; returns its key_ID only (the key itself is dropped at once)"""
        attrs = self.call(KEY_NEW, string(A_PEER, peer) + u32(A_SIZE, size) + u32(A_WAIT_MS, wait_ms))
        return [v.decode() for t, v in attrs if t == A_KEY_ID][0]

    def keys_in(self, peer=None):
        """keys this qkid obtained from its KME so far (summed over its peers)"""
        attrs = self.call(STATUS, string(A_PEER, peer) if peer else b"")
        total = 0
        for t, v in attrs:
            if t == A_PEER_INFO:
                total += sum(num(x) for tt, x in parse(v) if tt == A_KEYS_IN)
        return total

    def sas(self, peer=None):
        """every SA qkid knows: dicts with spi, dir ('in'/'out') and the SA_FIELDS names
        (rates x 1000, as on the wire)"""
        return [sa_fields(sa) for sa in self.status(peer)["sas"]]

    def status(self, peer=None):
        """STATUS as {"peers": [{attr: value}], "sas": [{attr: value}], attr: value}: numbers
        as int, text attributes as str; attributes this client does not know are kept by their
        number, so counters added to qkid later show up without a change here"""
        attrs = self.call(STATUS, string(A_PEER, peer) if peer else b"")
        out = {"peers": [], "sas": []}
        for t, v in attrs:
            if t in (A_PEER_INFO, A_SA_INFO):
                out["peers" if t == A_PEER_INFO else "sas"].append(
                    dict((tt, x.decode(errors="replace") if tt in STRINGS else num(x))
                         for tt, x in parse(v)))
            else:
                out[t] = v.decode(errors="replace") if t in STRINGS else num(v)
        return out

    def rpk_advice(self, spi, direction):
        """qkid's advised rpk for an SA (direction 'in' or 'out')"""
        d = 1 if direction == "in" else 2
        attrs = self.call(RPK_ADVICE, u32(A_SPI, spi) + attr(A_DIR, bytes([d])))
        return dict((t, num(v)) for t, v in attrs if t in (A_RPK, A_LEVEL, A_PKT_RATE, A_RATE_IN))


def sa_fields(sa):
    """one SA_INFO of status() by the SA_FIELDS names, with spi and dir ('in'/'out')"""
    out = dict((SA_FIELDS[t], v) for t, v in sa.items() if t in SA_FIELDS)
    out["spi"] = sa.get(A_SPI)
    out["dir"] = "in" if sa.get(A_DIR) == 1 else "out"
    return out


def drain(path, peer, stop, counter, lock, wait_ms=200):
    """Take keys with KEY_NEW until stop (a threading.Event) is set; counter[0] counts them.
    A connection whose reply does not come within WAIT_MS + 1 s is replaced by a new one (qkid
    0.1.0 sometimes leaves a KEY_NEW unanswered when its pool runs dry and closes the
    connection after client_idle_timeout)."""
    c = None
    while not stop.is_set():
        try:
            if c is None:
                c = Client(path, timeout=wait_ms / 1000.0 + 1.0)
            c.key_new(peer, wait_ms=wait_ms)
            with lock:
                counter[0] += 1
        except QkidError as e:
            if e.code not in (8, 11, 14):
                c.close()
                c = None
                stop.wait(0.05)
        except OSError:
            if c is not None:
                c.close()
            c = None
            with lock:
                counter[1] += 1
            stop.wait(0.05)
    if c is not None:
        c.close()


def drain_for(path, peer, secs, takers=3):
    """Take the keys qkid and its KME stored while nothing used them (they would let the first
    seconds of a run use more than the key rate) for secs seconds; returns how many."""
    import threading
    import time
    stop, cnt, lk = threading.Event(), [0, 0], threading.Lock()
    threads = [threading.Thread(target=drain, args=(path, peer, stop, cnt, lk), daemon=True)
               for _ in range(takers)]
    for t in threads:
        t.start()
    time.sleep(secs)
    stop.set()
    for t in threads:
        t.join(3)
    return cnt[0]
