# SPDX-License-Identifier: GPL-2.0-or-later
"""A minimal client of strongSwan's vici protocol (one persistent session to charon).

Debian 12 ships no python3-vici, and spawning one swanctl per command costs ~6 ms of CPU, which
distorts benchmarks that drive many rekeys per second. This speaks the wire format of
src/libcharon/plugins/vici/README.md directly: a frame is a u32 big-endian length and a packet of
one type byte, for named types a u8-length name, then an encoded message.
"""
import socket
import struct

CMD_REQUEST, CMD_RESPONSE, CMD_UNKNOWN = 0, 1, 2
EVENT_REGISTER, EVENT_UNREGISTER, EVENT_CONFIRM, EVENT_UNKNOWN, EVENT = 3, 4, 5, 6, 7
SECTION_START, SECTION_END, KEY_VALUE, LIST_START, LIST_ITEM, LIST_END = 1, 2, 3, 4, 5, 6


class ViciError(Exception):
    pass


def encode(msg):
    """dict of str -> str/bytes/int, list or dict -> vici message bytes"""
    out = bytearray()
    for key, value in msg.items():
        k = key.encode()
        if isinstance(value, dict):
            out += bytes([SECTION_START, len(k)]) + k + encode(value) + bytes([SECTION_END])
        elif isinstance(value, (list, tuple)):
            out += bytes([LIST_START, len(k)]) + k
            for item in value:
                v = item if isinstance(item, bytes) else str(item).encode()
                out += bytes([LIST_ITEM]) + struct.pack("!H", len(v)) + v
            out += bytes([LIST_END])
        else:
            v = value if isinstance(value, bytes) else str(value).encode()
            out += bytes([KEY_VALUE, len(k)]) + k + struct.pack("!H", len(v)) + v
    return bytes(out)


def decode(data):
    """vici message bytes -> nested dict (values as str, lists as lists of str)"""
    root = {}
    stack = [root]
    lst = None
    i = 0
    while i < len(data):
        t = data[i]
        i += 1
        if t in (SECTION_START, KEY_VALUE, LIST_START):
            n = data[i]
            name = data[i + 1:i + 1 + n].decode(errors="replace")
            i += 1 + n
        if t == SECTION_START:
            sect = {}
            stack[-1][name] = sect
            stack.append(sect)
        elif t == SECTION_END:
            if len(stack) < 2:
                raise ViciError("unbalanced section end")
            stack.pop()
        elif t == KEY_VALUE:
            vl = struct.unpack("!H", data[i:i + 2])[0]
            stack[-1][name] = data[i + 2:i + 2 + vl].decode(errors="replace")
            i += 2 + vl
        elif t == LIST_START:
            lst = []
            stack[-1][name] = lst
        elif t == LIST_ITEM:
            vl = struct.unpack("!H", data[i:i + 2])[0]
            lst.append(data[i + 2:i + 2 + vl].decode(errors="replace"))
            i += 2 + vl
        elif t == LIST_END:
            lst = None
        else:
            raise ViciError("bad element type %d" % t)
    return root


class Session:
    """One connection to charon's vici socket. Events of registered types that arrive while
    waiting for a command's response are queued and returned by next_event()."""

    def __init__(self, path, timeout=10.0):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buf = b""
        self.events = []

    def close(self):
        self.sock.close()

    def _send(self, ptype, name=None, msg=None):
        body = bytes([ptype])
        if name is not None:
            n = name.encode()
            body += bytes([len(n)]) + n
        if msg is not None:
            body += encode(msg)
        self.sock.sendall(struct.pack("!I", len(body)) + body)

    def _recv_packet(self, timeout=None):
        if timeout is not None:
            self.sock.settimeout(timeout)
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack("!I", self.buf[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ViciError("charon closed the vici connection")
            self.buf += chunk
        n = struct.unpack("!I", self.buf[:4])[0]
        pkt, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        return pkt

    def _wait(self, want, timeout=None):
        """next packet of a type in want; events in between are queued"""
        while True:
            pkt = self._recv_packet(timeout)
            if pkt[0] == EVENT:
                n = pkt[1]
                self.events.append((pkt[2:2 + n].decode(), decode(pkt[2 + n:])))
                continue
            if pkt[0] in want:
                return pkt
            raise ViciError("unexpected vici packet type %d" % pkt[0])

    def request(self, cmd, msg=None, timeout=10.0):
        """a command and its response (commands that stream events are not supported)"""
        self._send(CMD_REQUEST, cmd, msg or {})
        pkt = self._wait((CMD_RESPONSE, CMD_UNKNOWN), timeout)
        if pkt[0] == CMD_UNKNOWN:
            raise ViciError("charon does not know the vici command %s" % cmd)
        return decode(pkt[1:])

    def register(self, event, timeout=10.0):
        self._send(EVENT_REGISTER, event)
        pkt = self._wait((EVENT_CONFIRM, EVENT_UNKNOWN), timeout)
        if pkt[0] != EVENT_CONFIRM:
            raise ViciError("charon does not know the vici event %s" % event)

    def next_event(self, timeout):
        """(name, message) of the next event, or None after timeout seconds"""
        if self.events:
            return self.events.pop(0)
        try:
            pkt = self._recv_packet(max(timeout, 0.0001))
        except socket.timeout:
            return None
        if pkt[0] != EVENT:
            raise ViciError("unexpected vici packet type %d" % pkt[0])
        n = pkt[1]
        return pkt[2:2 + n].decode(), decode(pkt[2 + n:])
