#!/usr/bin/env python3
"""A meshmon peer in Python, written from proto/PROTOCOL.md alone.

It exists to prove that the wire-protocol specification is complete: everything here follows
the numbered sections of PROTOCOL.md, and the Rust integration test agent/tests/libzmq_peer.rs
runs it against real `meshmon agent` processes. It also shows that a stock libzmq peer
(pyzmq) interoperates with meshmon's guarded listener.

Library use:

    keys = load_key_file("mesh.key")
    peer = Peer("py1", keys, role="node")
    link = peer.connect("127.0.0.1:6130")
    peer.run(6.0)
    print(peer.summary())

CLI:

    python3 meshmon_peer.py --connect 127.0.0.1:6130 --key mesh.key --name py1 \
        --role node --duration 6 --json

Needs the Debian packages python3-zmq, python3-nacl and python3-msgpack.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import platform
import re
import struct
import secrets
import sys
import time
from dataclasses import dataclass, field
from typing import Any

try:
    import msgpack
    import nacl.bindings
    import nacl.exceptions
    import zmq
except ImportError as exc:  # pragma: no cover - environment problem, reported clearly
    sys.stderr.write(
        f"meshmon_peer: {exc}; install the Debian packages "
        "python3-zmq python3-nacl python3-msgpack\n"
    )
    sys.exit(3)

VERSION = "pypeer-0.1"

# --- Section 2: the frame -------------------------------------------------------------------

FRAME_VERSION = 2
MAX_FRAME = 65_536
MAX_HEADER = 256
NONCE_LEN = 24
TAG_LEN = 16

FLAG_LINK = 0x01
FLAG_REPLAY = 0x02

KIND_HELLO = 0x01
KIND_HEARTBEAT = 0x02
KIND_STATUS = 0x03
KIND_HOSTINFO = 0x10
KIND_SAMPLES = 0x11
KIND_SERIES_TABLE = 0x12

KIND_NAMES = {
    KIND_HELLO: "Hello",
    KIND_HEARTBEAT: "Heartbeat",
    KIND_STATUS: "Status",
    KIND_HOSTINFO: "HostInfo",
    KIND_SAMPLES: "Samples",
    KIND_SERIES_TABLE: "SeriesTable",
}

# Frames that do not cost a credit (section 5.2).
CREDIT_FREE = (KIND_HELLO, KIND_HEARTBEAT)

NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
U64_MAX = 2**64 - 1


class FrameError(ValueError):
    """A frame that does not parse (section 2)."""


class AuthError(ValueError):
    """A frame that no accepted key opens (section 3)."""


@dataclass
class Header:
    kind: int
    flags: int
    origin: str
    boot_id: int
    seq: int
    ts_ms: int

    def encode(self) -> bytes:
        return msgpack.packb(
            [self.kind, self.flags, self.origin, self.boot_id, self.seq, self.ts_ms],
            use_bin_type=True,
        )


@dataclass
class Frame:
    """A parsed but not yet opened frame. `raw` keeps the exact bytes for opening."""

    hops: int
    header: Header
    header_len: int
    raw: bytes

    @property
    def associated_data(self) -> bytes:
        # Section 3: byte 0, then bytes 2 .. 4+H (everything before the nonce but the hops).
        return self.raw[0:1] + self.raw[2 : 4 + self.header_len]

    @property
    def nonce(self) -> bytes:
        start = 4 + self.header_len
        return self.raw[start : start + NONCE_LEN]

    @property
    def ciphertext(self) -> bytes:
        return self.raw[4 + self.header_len + NONCE_LEN :]


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= U64_MAX


def decode_frame(data: bytes) -> Frame:
    """Parses the plaintext part of a frame (section 2); never trusts the input."""
    if len(data) > MAX_FRAME:
        raise FrameError(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    if len(data) < 4:
        raise FrameError("frame shorter than its fixed prefix")
    if data[0] != FRAME_VERSION:
        raise FrameError(f"unknown frame version {data[0]}")
    hlen = struct.unpack(">H", data[2:4])[0]
    if hlen > MAX_HEADER:
        raise FrameError(f"header length {hlen} exceeds {MAX_HEADER}")
    if len(data) < 4 + hlen + NONCE_LEN + TAG_LEN:
        raise FrameError("frame shorter than header, nonce and tag")
    try:
        fields = msgpack.unpackb(bytes(data[4 : 4 + hlen]), raw=False, use_list=True)
    except Exception as exc:  # msgpack raises several types, including ExtraData
        raise FrameError(f"header is not one MessagePack value: {exc}") from exc
    if not isinstance(fields, list) or len(fields) != 6:
        raise FrameError("header is not an array of 6")
    kind, flags, origin, boot_id, seq, ts_ms = fields
    for name, v in (("kind", kind), ("flags", flags), ("boot_id", boot_id), ("seq", seq),
                    ("ts_ms", ts_ms)):
        if not _is_uint(v):
            raise FrameError(f"header field {name} is not an unsigned integer")
    if not isinstance(origin, str) or not NAME_RE.match(origin):
        raise FrameError("header origin is not a valid node name")
    return Frame(data[1], Header(kind, flags, origin, boot_id, seq, ts_ms), hlen, bytes(data))


def seal(key: bytes, header: Header, payload: bytes, hops: int = 0) -> bytes:
    """Builds a sealed frame (sections 2 and 3)."""
    hdr = header.encode()
    if len(hdr) > MAX_HEADER:
        raise FrameError("header too long")
    prefix = bytes([FRAME_VERSION, hops]) + struct.pack(">H", len(hdr)) + hdr
    ad = prefix[0:1] + prefix[2:]
    nonce = os.urandom(NONCE_LEN)
    ct = nacl.bindings.crypto_aead_xchacha20poly1305_ietf_encrypt(payload, ad, nonce, key)
    frame = prefix + nonce + ct
    if len(frame) > MAX_FRAME:
        raise FrameError(f"frame of {len(frame)} bytes exceeds {MAX_FRAME}")
    return frame


def open_frame(keys: list[bytes], frame: Frame) -> bytes:
    """Returns the plaintext payload, trying every accepted key (section 3)."""
    ad, nonce, ct = frame.associated_data, frame.nonce, frame.ciphertext
    for key in keys:
        try:
            return nacl.bindings.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, ad, nonce, key)
        except nacl.exceptions.CryptoError:
            continue
    raise AuthError(f"no key opens the frame from {frame.header.origin}")


def with_hops(raw: bytes, hops: int) -> bytes:
    """The same frame with another hop count: what a forwarder sends (section 3)."""
    return raw[0:1] + bytes([hops]) + raw[2:]


# --- Section 3: keys ------------------------------------------------------------------------

NULL_KEY = bytes(32)


def parse_keys(text: str) -> list[bytes]:
    """Key file: base64 32-byte keys, one a line, the first seals, all are accepted.

    Blank lines and lines starting with `#` are skipped and surrounding whitespace is
    ignored, as meshmon does (PROTOCOL.md section 3 does not say so)."""
    keys = []
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except ValueError as exc:
            raise ValueError(f"key file line {lineno}: not base64: {exc}") from exc
        if len(key) != 32:
            raise ValueError(f"key file line {lineno}: {len(key)} bytes, want 32")
        keys.append(key)
    if not keys:
        raise ValueError("key file holds no key")
    return keys


def load_key_file(path: str | None) -> list[bytes]:
    """The keyring of a key file; the null key when there is none (section 3)."""
    if path is None:
        return [NULL_KEY]
    with open(path, encoding="ascii") as f:
        return parse_keys(f.read())


# --- Section 4: payloads --------------------------------------------------------------------


def _packb(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def encode_number(v: int | float | None) -> bytes:
    """Section 4.1: integers when integral, else float32, else float64."""
    if v is None:
        return _packb(None)
    if isinstance(v, bool):
        raise TypeError("a sample value is a number, not a bool")
    if isinstance(v, float) and math.isfinite(v) and v.is_integer() and abs(v) < 2**63:
        v = int(v)
    if isinstance(v, int):
        return _packb(v)
    try:
        as_f32 = struct.pack(">f", v)
    except OverflowError:  # beyond float32's range
        as_f32 = None
    if as_f32 is not None and (struct.unpack(">f", as_f32)[0] == v or math.isnan(v)):
        return b"\xca" + as_f32
    return b"\xcb" + struct.pack(">d", v)


def _pack_numbers(values: list) -> bytes:
    out = bytearray()
    packer = msgpack.Packer(use_bin_type=True)
    out += packer.pack_array_header(len(values))
    for v in values:
        out += encode_number(v)
    return bytes(out)


def encode_payload(kind: int, p: dict) -> bytes:
    """A payload map (section 4). Samples values get the section 4.1 number encoding."""
    if kind != KIND_SAMPLES:
        return _packb(p)
    packer = msgpack.Packer(use_bin_type=True)
    out = bytearray(packer.pack_map_header(len(p)))
    for k, v in p.items():
        out += packer.pack(k)
        out += _pack_numbers(v) if k in ("v", "c") else packer.pack(v)
    return bytes(out)


# Fields and their defaults, per kind (section 4): missing fields take these, unknown fields
# are ignored.
_U, _S, _B = 0, "", False
SCHEMAS: dict[int, dict[str, Any]] = {
    KIND_HELLO: {"name": _S, "boot_id": _U, "role": _S, "version": _S, "window": _U,
                 "nonce": _U, "echo": _U},
    KIND_HEARTBEAT: {"acked": _U, "sent_us": _U, "echo_us": _U, "held_us": _U,
                     "have": [], "prune": [], "graft": []},
    KIND_HOSTINFO: {"os": _S, "kernel": _S, "arch": _S, "version": _S, "tags": [],
                    "interval_ms": _U, "boot_time_s": _U, "cores": _U, "dashboard": _B},
    KIND_SERIES_TABLE: {"t": _U, "s": []},
    KIND_SAMPLES: {"t": _U, "n": _U, "k": _B, "v": [], "c": []},
    KIND_STATUS: {"node": _S, "dashboard": _B, "frames_dropped": _U, "auth_failures": _U,
                  "hosts": [], "links": []},
}
HOST_STATUS = {"name": _S, "boot_id": _U, "last_seen_ms": _U, "hops": _U, "frames": _U,
               "version": _S, "os": _S, "tags": [], "interval_ms": _U, "dashboard": _B,
               "name_conflict": _B, "clock_offset_ms": None}
LINK_STATUS = {"peer": _S, "addr": _S, "direction": _S, "state": _S, "role": _S,
               "rtt_us": None, "frames_in": _U, "frames_out": _U, "dropped": _U,
               "auth_failures": _U, "clock_offset_ms": None}


def _fill(schema: dict[str, Any], m: Any) -> dict[str, Any]:
    if not isinstance(m, dict):
        raise FrameError("payload is not a map")
    out = {}
    for k, default in schema.items():
        v = m.get(k, default)
        out[k] = list(default) if v is None and isinstance(default, list) else v
    return out


def _series_name(entry: Any) -> str:
    """`name{label=value,...}` for one SeriesTable entry `[name, [[label, value], ...]]`."""
    if not isinstance(entry, list) or len(entry) != 2 or not isinstance(entry[0], str):
        raise FrameError("bad SeriesTable entry")
    name, labels = entry
    if not labels:
        return name
    return name + "{" + ",".join(f"{k}={v}" for k, v in labels) + "}"


def decode_payload(kind: int, plaintext: bytes) -> dict[str, Any] | None:
    """The payload as a dict with defaults filled in; None for an unknown kind."""
    try:
        m = msgpack.unpackb(plaintext, raw=False, strict_map_key=False)
    except Exception as exc:
        raise FrameError(f"payload is not MessagePack: {exc}") from exc
    schema = SCHEMAS.get(kind)
    if schema is None:
        return None
    p = _fill(schema, m)
    if kind == KIND_STATUS:
        p["hosts"] = [_fill(HOST_STATUS, h) for h in p["hosts"]]
        p["links"] = [_fill(LINK_STATUS, lk) for lk in p["links"]]
    if kind == KIND_SERIES_TABLE:
        p["names"] = [_series_name(e) for e in p["s"]]
    return p


# --- Section 4.1: sample streams ------------------------------------------------------------


@dataclass
class SampleStream:
    """The receiving side of one origin's samples: tables, then key frames and deltas."""

    boot_id: int = 0
    tables: dict[int, list[str]] = field(default_factory=dict)
    last_n: int = 0
    last_table: int | None = None
    values: list | None = None  # values as of frame last_n, None where unknown
    undecodable: int = 0  # sample frames whose table was not (yet) known

    def table(self, boot_id: int, p: dict) -> None:
        self._boot(boot_id)
        self.tables[p["t"]] = p["names"]

    def samples(self, boot_id: int, p: dict) -> dict[str, Any] | None:
        """Applies a Samples payload; returns the values now known as current, by name."""
        self._boot(boot_id)
        names = self.tables.get(p["t"])
        if names is None:
            self.undecodable += 1
            return None
        n, t = p["n"], p["t"]
        if p["k"]:
            vals = list(p["v"])[: len(names)]
            vals += [None] * (len(names) - len(vals))
        elif self.values is not None and self.last_n == n - 1 and self.last_table == t:
            vals = list(self.values)
        else:
            # Missed frame n - 1: only what this frame lists is current (section 4.1).
            vals = [None] * len(names)
        c = p["c"]
        for i in range(0, len(c) - 1, 2):
            idx, v = c[i], c[i + 1]
            if isinstance(idx, int) and 0 <= idx < len(vals):
                vals[idx] = v
        self.values, self.last_n, self.last_table = vals, n, t
        return {names[i]: v for i, v in enumerate(vals) if v is not None}

    def _boot(self, boot_id: int) -> None:
        if boot_id != self.boot_id:
            self.boot_id, self.tables, self.values, self.last_n = boot_id, {}, None, 0
            self.last_table = None


@dataclass
class SampleSource:
    """The originating side of section 4.1: a series table, then key frames and deltas."""

    series: list[tuple[str, list[tuple[str, str]]]]
    table_id: int = 1
    n: int = 0
    since_table: int = 0
    new_table: bool = True
    table_wanted: bool = True
    prev: list | None = None

    def table_payload(self) -> dict:
        s = [[name, [list(lv) for lv in sorted(labels)]] for name, labels in self.series]
        self.table_wanted, self.since_table = False, 0
        return {"t": self.table_id, "s": s}

    def samples_payload(self, values: list) -> dict:
        self.n += 1
        self.since_table += 1
        key = self.new_table or self.prev is None or self.n % 10 == 0
        self.new_table = False
        if key:
            p = {"t": self.table_id, "n": self.n, "k": True, "v": list(values), "c": []}
        else:
            c: list = []
            for i, (old, new) in enumerate(zip(self.prev, values)):
                if old != new or type(old) is not type(new):
                    c += [i, new]
            p = {"t": self.table_id, "n": self.n, "k": False, "v": [], "c": c}
        self.prev = list(values)
        if self.since_table >= 30:
            self.table_wanted = True
        return p


# --- Sections 5 to 7: links -----------------------------------------------------------------


def now_us() -> int:
    return time.monotonic_ns() // 1000


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Dedup:
    """Section 6.2: per origin, the newest boot_id and a window of the last 1,024 seq."""

    WINDOW = 1024

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, set[int]]] = {}

    def is_duplicate(self, h: Header) -> bool:
        boot, window = self.seen.get(h.origin, (0, set()))
        if h.boot_id != boot:
            return h.boot_id < boot
        return h.seq in window or (bool(window) and h.seq <= max(window) - self.WINDOW)

    def mark_seen(self, h: Header) -> None:
        boot, window = self.seen.get(h.origin, (0, set()))
        if h.boot_id > boot:
            boot, window = h.boot_id, set()
        window.add(h.seq)
        if len(window) > self.WINDOW:
            top = max(window)
            window = {s for s in window if s > top - self.WINDOW}
        self.seen[h.origin] = (boot, window)


@dataclass
class LinkStats:
    frames_received: int = 0
    frames_opened: int = 0
    auth_failed: int = 0
    malformed: int = 0
    duplicates: int = 0
    own_origin: int = 0
    frames_sent: int = 0
    gossip_sent: int = 0
    dropped_no_credit: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


class Link:
    """One DEALER connection to a node's port (section 1), with hello, credits and
    heartbeats (section 5)."""

    DEAD_AFTER_S = 5.0

    def __init__(self, peer: "Peer", addr: str, role: str, name: str):
        self.peer, self.addr, self.role, self.name = peer, addr, role, name
        self.window = 4096 if role == "viewer" else 1024
        self.stats = LinkStats()
        self.dedup = Dedup()
        self.hosts_seen: dict[str, int] = {}
        self.handshakes = 0
        self.sock: zmq.Socket | None = None
        self.monitor: zmq.Socket | None = None
        self.backoff = 0.2
        self.reconnect_at: float | None = None
        self._open()

    # ZMTP connection -------------------------------------------------------------------

    def _open(self) -> None:
        ctx = self.peer.ctx
        sock = ctx.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        # No ZMTP heartbeats (ZMQ_HEARTBEAT_IVL stays 0): section 1.1.
        self.monitor = sock.get_monitor_socket(
            zmq.EVENT_HANDSHAKE_SUCCEEDED | zmq.EVENT_DISCONNECTED
        )
        sock.connect(f"tcp://{self.addr}")
        self.sock = sock
        self._reset()

    def hello_payload(self, echo: int) -> dict:
        # Section 5.1: a fresh nonce per link; `echo` returns the other side's nonce.
        return {
            "name": self.name, "boot_id": self.peer.boot_id, "role": self.role,
            "version": VERSION, "window": self.window, "nonce": self.nonce, "echo": echo,
        }

    def _reset(self) -> None:
        self.nonce = secrets.randbits(64) | 1
        self.echoed = 0
        self.up = False
        self.hello: dict | None = None
        self.peer_acked = 0
        self.credit_sent = 0
        self.credit_received = 0
        self.last_acked_sent = 0
        self.next_heartbeat = 0.0
        self.last_rx = time.monotonic()
        self.echo: tuple[int, int] | None = None  # (peer's sent_us, our arrival us)
        self.rtt_us: int | None = None
        # Section 6 (broadcast trees): origins this side pruned on the link, prunes still to
        # send, whether the other side pruned our own origin, and the newest seq announced.
        self.lazy: set[str] = set()
        self.prunes: list[str] = []
        self.peer_lazy = False
        self.announced = 0

    def close(self) -> None:
        if self.sock is not None:
            self.sock.disable_monitor()
            self.monitor.close(linger=0)
            self.sock.close(linger=0)
            self.sock = self.monitor = None

    def sockets(self) -> list:
        return [s for s in (self.sock, self.monitor) if s is not None]

    # Events ----------------------------------------------------------------------------

    def on_monitor(self) -> None:
        from zmq.utils.monitor import recv_monitor_message

        while True:
            try:
                ev = recv_monitor_message(self.monitor, zmq.NOBLOCK)
            except zmq.Again:
                return
            if ev["event"] == zmq.EVENT_HANDSHAKE_SUCCEEDED:
                # Section 5.1: the dialling side sends Hello when the handshake completes.
                self._reset()
                self.handshakes += 1
                self.up = True
                self.send_link(KIND_HELLO, self.hello_payload(0))
            elif ev["event"] == zmq.EVENT_DISCONNECTED:
                self.up = False
                self.hello = None

    def on_readable(self) -> None:
        while self.sock is not None:
            try:
                parts = self.sock.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self.last_rx = time.monotonic()
            # Section 1: a single-part message; further parts are ignored.
            self.on_frame(parts[0])

    def on_frame(self, data: bytes) -> None:
        st = self.stats
        st.frames_received += 1
        try:
            frame = decode_frame(data)
        except FrameError:
            st.malformed += 1
            self.credit_received += 1  # not a Hello/Heartbeat we can tell: costs a credit
            return
        h = frame.header
        if h.kind not in CREDIT_FREE:
            self.credit_received += 1
        if h.origin == self.peer.name or h.origin == self.name:
            st.own_origin += 1  # section 6: our own frames are ignored
            return
        gossip = not (h.flags & FLAG_LINK)
        if gossip and self.dedup.is_duplicate(h):
            st.duplicates += 1
            # Section 6.2: a duplicate on a link that pushes this origin prunes it, unless
            # it is a descriptor (a join hands those over whatever the trees).
            descriptor = h.kind in (KIND_HOSTINFO, KIND_SERIES_TABLE)
            if not (h.flags & FLAG_REPLAY) and not descriptor and h.origin not in self.lazy:
                self.lazy.add(h.origin)
                self.prunes.append(h.origin)
            return
        try:
            plaintext = open_frame(self.peer.keys, frame)
        except AuthError:
            st.auth_failed += 1
            return
        st.frames_opened += 1
        kname = KIND_NAMES.get(h.kind, f"0x{h.kind:02x}")
        st.kinds[kname] = st.kinds.get(kname, 0) + 1
        try:
            p = decode_payload(h.kind, plaintext)
        except FrameError:
            st.malformed += 1
            return
        if gossip:
            self.dedup.mark_seen(h)
            self.hosts_seen[h.origin] = self.hosts_seen.get(h.origin, 0) + 1
        if self.peer.trace:
            extra = ""
            if h.kind == KIND_SAMPLES and p is not None:
                extra = f" t={p['t']} n={p['n']} k={p['k']} v={len(p['v'])} c={len(p['c']) // 2}"
            elif h.kind == KIND_SERIES_TABLE and p is not None:
                extra = f" t={p['t']} series={len(p['s'])}"
            sys.stderr.write(f"[{self.name}] {kname} origin={h.origin} boot={h.boot_id} "
                             f"seq={h.seq} hops={frame.hops} flags={h.flags}{extra}\n")
        if h.kind == KIND_HELLO:
            # Section 5.1: accept the link once the other side echoes our nonce; answer a
            # nonce we have not echoed yet.
            if p["echo"] == self.nonce:
                first = self.hello is None
                self.hello = p
                self.next_heartbeat = 0.0
                if p["nonce"] and self.echoed != p["nonce"]:
                    self.echoed = p["nonce"]
                    self.send_link(KIND_HELLO, self.hello_payload(p["nonce"]))
                if first:
                    self.peer.on_hello(self)
            elif p["echo"] == 0 and p["nonce"] and self.echoed != p["nonce"]:
                self.echoed = p["nonce"]
                self.send_link(KIND_HELLO, self.hello_payload(p["nonce"]))
        elif h.kind == KIND_HEARTBEAT:
            self.peer_acked = max(self.peer_acked, min(p["acked"], self.credit_sent))
            self.on_tree(p)
            self.echo = (p["sent_us"], now_us())
            if p["echo_us"]:
                self.rtt_us = max(0, now_us() - p["echo_us"] - p["held_us"])
        elif h.kind == KIND_STATUS:
            self.peer.status = p
        elif p is not None and gossip:
            self.peer.on_gossip(self, frame, p)
        self.maybe_ack()

    # Sending ---------------------------------------------------------------------------

    def _send(self, frame: bytes) -> bool:
        try:
            self.sock.send(frame, zmq.NOBLOCK)
        except zmq.Again:
            return False
        self.stats.frames_sent += 1
        return True

    def send_link(self, kind: int, payload: dict) -> bool:
        """A LINK frame: Hello, Heartbeat (credit-free) in the link sequence."""
        h = Header(kind, FLAG_LINK, self.name, self.peer.boot_id, self.peer.next_link_seq(),
                   wall_ms())
        return self._send(seal(self.peer.keys[0], h, encode_payload(kind, payload)))

    def send_credit(self, frame: bytes) -> bool:
        """A credit-bearing frame, dropped (never queued) when the peer's window is full."""
        if self.hello is None:
            return False
        window = self.hello["window"]
        if self.credit_sent - self.peer_acked >= window:
            self.stats.dropped_no_credit += 1
            return False
        if not self._send(frame):
            self.stats.dropped_no_credit += 1
            return False
        self.credit_sent += 1
        self.stats.gossip_sent += 1
        return True

    def maybe_ack(self) -> None:
        if self.hello is not None and self.credit_received - self.last_acked_sent >= max(
            1, self.window // 4
        ):
            self.heartbeat()

    def on_tree(self, p: dict) -> None:
        """Section 6: the tree part of a heartbeat. This peer originates but never forwards,
        so only its own origin matters: a prune turns the link lazy for it (announced in
        heartbeats), a graft turns it eager and is answered from the recent frames."""
        for origin in p["prune"]:
            if origin == self.peer.name:
                self.peer_lazy = True
        for g in p["graft"]:
            if not (isinstance(g, list) and len(g) == 4):
                continue
            origin, boot, first, last = g
            if origin != self.peer.name or boot != self.peer.boot_id:
                continue
            self.peer_lazy = False
            for seq, frame in self.peer.recent:
                if first <= seq <= last:
                    self.send_credit(frame)

    def heartbeat(self) -> None:
        now = now_us()
        echo_us, held_us = (self.echo[0], now - self.echo[1]) if self.echo else (0, 0)
        hb = {
            "acked": self.credit_received, "sent_us": now, "echo_us": echo_us,
            "held_us": held_us,
        }
        if self.prunes:
            hb["prune"], self.prunes = self.prunes, []
        if self.peer_lazy and self.peer.gossip_seq > self.announced:
            hb["have"] = [[self.peer.name, self.peer.boot_id, self.peer.gossip_seq]]
            hb["have_hops"] = [0]
            self.announced = self.peer.gossip_seq
        self.send_link(KIND_HEARTBEAT, hb)
        self.last_acked_sent = self.credit_received
        self.next_heartbeat = time.monotonic() + 1.0

    def tick(self) -> None:
        now = time.monotonic()
        if self.sock is None:
            if self.reconnect_at is not None and now >= self.reconnect_at:
                self._open()
            return
        if self.hello is not None and now >= self.next_heartbeat:
            self.heartbeat()
        if self.up and now - self.last_rx > self.DEAD_AFTER_S:
            # Section 5.4: the dialling side closes a dead link and dials again.
            self.close()
            self.reconnect_at = now + self.backoff * (0.75 + 0.5 * (os.urandom(1)[0] / 255))
            self.backoff = min(self.backoff * 2, 2.0)

    def summary(self) -> dict:
        d = dict(self.stats.__dict__)
        d.update({
            "addr": self.addr, "role": self.role, "name": self.name,
            "handshake": self.handshakes > 0, "handshakes": self.handshakes,
            "hello": self.hello, "rtt_us": self.rtt_us,
            "hosts_seen": self.hosts_seen, "acked_by_peer": self.peer_acked, "acked_by_us": self.credit_received,
        })
        return d


class Peer:
    """A meshmon peer: one identity (name, boot), any number of links."""

    def __init__(self, name: str, keys: list[bytes], role: str = "viewer",
                 interval_s: float = 1.0, tags: list[str] | None = None):
        if not NAME_RE.match(name):
            raise ValueError(f"invalid node name {name!r}")
        if role not in ("node", "viewer"):
            raise ValueError("role is 'node' or 'viewer'")
        self.name, self.keys, self.role = name, keys, role
        self.boot_id = time.time_ns() // 1000  # section 2: larger after a restart
        self.ctx = zmq.Context.instance()
        self.links: list[Link] = []
        self.link_seq = 0
        self.gossip_seq = 0
        self.recent: list[tuple[int, bytes]] = []  # our own recent frames, for grafts
        self.interval_s = interval_s
        self.tags = tags or ["python"]
        self.started = time.monotonic()
        self.trace = False
        # Receiving state.
        self.dedup = Dedup()  # so that a frame heard on two links is decoded once
        self.hostinfo: dict[str, dict] = {}
        self.streams: dict[str, SampleStream] = {}
        self.latest: dict[str, dict[str, Any]] = {}
        self.tables_received: dict[str, int] = {}
        self.status: dict | None = None
        # Originating state (role node).
        self.source = SampleSource([
            ("py.counter", []),
            ("py.constant", []),
            ("py.half", [("unit", "ratio"), ("kind", "test")]),
            ("host.uptime_s", []),
        ])
        self.next_sample = time.monotonic()
        self.samples_sent = 0

    def connect(self, addr: str, role: str | None = None, name: str | None = None) -> Link:
        link = Link(self, addr, role or self.role, name or self.name)
        self.links.append(link)
        return link

    def next_link_seq(self) -> int:
        self.link_seq += 1
        return self.link_seq

    def on_gossip(self, link: Link, frame: Frame, p: dict) -> None:
        h = frame.header
        if self.dedup.is_duplicate(h):
            return
        self.dedup.mark_seen(h)
        stream = self.streams.setdefault(h.origin, SampleStream())
        if h.kind == KIND_HOSTINFO:
            self.hostinfo[h.origin] = p
        elif h.kind == KIND_SERIES_TABLE:
            stream.table(h.boot_id, p)
            self.tables_received[h.origin] = self.tables_received.get(h.origin, 0) + 1
        elif h.kind == KIND_SAMPLES:
            vals = stream.samples(h.boot_id, p)
            if vals is not None:
                self.latest[h.origin] = {"ts_ms": h.ts_ms, "n": p["n"], "values": vals}

    def on_hello(self, link: Link) -> None:
        # Section 4.1: the table is sent whenever a new neighbour joins the origin.
        if self.role == "node" and link.role == "node":
            self.source.table_wanted = True
            self.source.new_table = True
            self.originate(KIND_HOSTINFO, self.hostinfo_payload(), only=link)

    def hostinfo_payload(self) -> dict:
        boot_time = 0
        try:
            with open("/proc/stat") as f:
                for line in f:
                    if line.startswith("btime "):
                        boot_time = int(line.split()[1])
        except OSError:
            pass
        return {
            "os": f"{platform.system()} (python peer)", "kernel": platform.release(),
            "arch": platform.machine(), "version": VERSION, "tags": self.tags,
            "interval_ms": int(self.interval_s * 1000), "boot_time_s": boot_time,
            "cores": os.cpu_count() or 0, "dashboard": False,
        }

    def originate(self, kind: int, payload: dict, only: Link | None = None) -> None:
        """A gossip frame from this peer (hops 0) to every node link that said Hello."""
        self.gossip_seq += 1
        h = Header(kind, 0, self.name, self.boot_id, self.gossip_seq, wall_ms())
        frame = seal(self.keys[0], h, encode_payload(kind, payload))
        self.recent.append((self.gossip_seq, frame))
        del self.recent[:-8]
        for link in self.links:
            if link.role == "node" and link.hello is not None and (only in (None, link)):
                # Section 6: a link that pruned this origin gets an announcement instead.
                if link.peer_lazy and only is None:
                    continue
                link.send_credit(frame)

    def sample_tick(self) -> None:
        if self.role != "node" or not any(lk.hello for lk in self.links if lk.role == "node"):
            return
        now = time.monotonic()
        if now < self.next_sample:
            return
        self.next_sample = now + self.interval_s
        if self.source.table_wanted:
            if self.source.since_table >= 30:
                self.originate(KIND_HOSTINFO, self.hostinfo_payload())
            self.originate(KIND_SERIES_TABLE, self.source.table_payload())
        n = self.source.n + 1
        values = [n, 42, 0.5 if n % 2 else 1.25, int(now - self.started)]
        self.originate(KIND_SAMPLES, self.source.samples_payload(values))
        self.samples_sent += 1

    def run(self, duration: float) -> None:
        deadline = time.monotonic() + duration
        poller_for: dict = {}
        while True:
            now = time.monotonic()
            if now >= deadline:
                break
            poller = zmq.Poller()
            poller_for.clear()
            for link in self.links:
                for s in link.sockets():
                    poller.register(s, zmq.POLLIN)
                    poller_for[s] = link
            events = dict(poller.poll(timeout=max(1, int(min(0.1, deadline - now) * 1000))))
            for s in list(events):
                link = poller_for[s]
                if s is link.monitor:
                    link.on_monitor()
                elif s is link.sock:
                    link.on_readable()
            for link in self.links:
                link.tick()
            self.sample_tick()

    def close(self) -> None:
        for link in self.links:
            link.close()

    def summary(self) -> dict:
        main = self.links[0] if self.links else None
        status = self.status
        return {
            "name": self.name,
            "role": self.role,
            "boot_id": self.boot_id,
            "handshake": bool(main and main.handshakes),
            "hello_received": bool(main and main.hello),
            "peer": main.hello if main else None,
            "frames_received": sum(lk.stats.frames_received for lk in self.links),
            "frames_opened": sum(lk.stats.frames_opened for lk in self.links),
            "auth_failed": sum(lk.stats.auth_failed for lk in self.links),
            "malformed": sum(lk.stats.malformed for lk in self.links),
            "kinds": main.stats.kinds if main else {},
            "hosts_seen": sorted(main.hosts_seen) if main else [],
            "hostinfo": self.hostinfo,
            "tables_received": self.tables_received,
            "samples": self.latest,
            "samples_sent": self.samples_sent,
            "gossip_seq": self.gossip_seq,
            "status": status,
            "status_hosts": sorted(h["name"] for h in status["hosts"]) if status else [],
            "links": [lk.summary() for lk in self.links],
        }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="A meshmon peer written from PROTOCOL.md.")
    ap.add_argument("--connect", required=True, help="HOST:PORT of a meshmon node")
    ap.add_argument("--key", help="key file (default: the null key)")
    ap.add_argument("--name", default="py1", help="our node name")
    ap.add_argument("--role", choices=["node", "viewer"], default="viewer")
    ap.add_argument("--duration", type=float, default=5.0, help="seconds to run")
    ap.add_argument("--interval", type=float, default=1.0, help="sample interval (node)")
    ap.add_argument("--no-status-link", action="store_true",
                    help="as a node, do not open a second link as viewer for Status")
    ap.add_argument("--json", action="store_true", help="print a JSON summary at exit")
    ap.add_argument("--trace", action="store_true", help="log every opened frame to stderr")
    args = ap.parse_args(argv)

    keys = load_key_file(args.key)
    peer = Peer(args.name, keys, role=args.role, interval_s=args.interval)
    peer.trace = args.trace
    peer.connect(args.connect)
    if args.role == "node" and not args.no_status_link:
        # Section 7: Status goes to viewers, so a node peer attaches a viewer link as well.
        peer.connect(args.connect, role="viewer", name=f"{args.name}.viewer")
    try:
        peer.run(args.duration)
    finally:
        peer.close()
    s = peer.summary()
    if args.json:
        json.dump(s, sys.stdout, indent=1, sort_keys=True, default=repr)
        sys.stdout.write("\n")
    else:
        print(f"{s['name']}: handshake={s['handshake']} hello={s['hello_received']} "
              f"opened={s['frames_opened']} auth_failed={s['auth_failed']} "
              f"hosts={s['hosts_seen']} status_hosts={s['status_hosts']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
