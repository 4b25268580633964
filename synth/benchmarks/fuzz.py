"""Malformed and hostile OSC packets for fuzzing the server, and a driver that fires them over real UDP.

Every packet :func:`fuzz_packets` makes is one the server must refuse: each yields at least one
``/synth/error`` (none is a valid control message), so a test can check afterwards that the engine's state
is exactly what the *valid* messages it sent in between made it. Kinds (see :data:`KINDS`): random bytes,
truncated valid messages, wrong type tags, huge argument lists, NaN/Inf, negative and huge note numbers,
unknown presets and path-like preset names, unknown addresses, nested bundles (up to 1500 deep),
bundles with bad element sizes (negative, zero, unaligned, past the end), and bundles whose messages are
all bad.
"""

from __future__ import annotations

import struct
import time

import numpy as np

__all__ = ["KINDS", "fuzz_packets", "osc_message", "osc_bundle", "negative_size_bundle", "UdpFlood"]

MAX_UDP = 60000  # below the 65507-byte UDP payload limit


def _pad(b: bytes) -> bytes:
    return b + b"\x00" * (4 - len(b) % 4)


def osc_message(address: str, tags: str, args: list) -> bytes:
    """Encode an OSC message by hand (no checks, so any type tag / argument mismatch can be made).

    ``tags`` holds one letter per argument (``i f d s b h T F N``); the argument encoding follows the tag.
    """
    out = _pad(address.encode("utf-8", "surrogatepass")) + _pad(("," + tags).encode())
    if len(tags) > 8 and set(tags) <= {"f", "i"} and len(set(tags)) == 1:  # long lists: pack in one go
        return out + np.asarray(args, dtype=">f4" if tags[0] == "f" else ">i4").tobytes()
    for tag, a in zip(tags, args, strict=False):
        if tag == "i":
            out += struct.pack(">i", a)
        elif tag == "h":
            out += struct.pack(">q", a)
        elif tag == "f":
            out += struct.pack(">f", a)
        elif tag == "d":
            out += struct.pack(">d", a)
        elif tag == "s":
            out += _pad(a.encode("utf-8", "surrogatepass") if isinstance(a, str) else a)
        elif tag == "b":
            out += struct.pack(">i", len(a)) + a + b"\x00" * (-len(a) % 4)
    return out


def osc_bundle(elements: list[bytes], *, timetag: int = 1, sizes: list[int] | None = None) -> bytes:
    """Encode an OSC bundle (``timetag`` 1 means immediately); ``sizes`` may lie about element sizes."""
    out = b"#bundle\x00" + struct.pack(">Q", timetag)
    for i, e in enumerate(elements):
        size = len(e) if sizes is None else sizes[i]
        out += struct.pack(">i", size) + e
    return out


def _bad_message(rng: np.random.Generator, presets: tuple[str, ...], latent_size: int, *, heavy: bool = False) -> bytes:
    """One well-formed OSC message that the melsynth vocabulary must refuse (``heavy``: huge argument
    lists among the choices)."""
    nan, inf = float("nan"), float("inf")
    choice = int(rng.integers(0, 16)) if heavy else int(rng.choice([0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15]))
    if choice == 0:  # NaN/Inf numbers
        return osc_message("/synth/note/on", "ff", [float(rng.choice([nan, inf, -inf])), 100.0])
    if choice == 1:
        return osc_message("/synth/gain", "f", [float(rng.choice([nan, inf, -inf]))])
    if choice == 2:  # negative and huge note numbers
        note = int(rng.choice([-1, -60, -(2**31), 128, 1000, 2**31 - 1, 0, 7]))
        return osc_message("/synth/note/on", "ii", [note, 100])
    if choice == 3:
        return osc_message("/synth/note/off", "h", [int(rng.choice([-(2**63), 2**63 - 1, 2**40]))])
    if choice == 4:  # unknown presets, path-like names
        name = str(rng.choice(["../../etc/passwd", "/etc/passwd", "..", ".", "", "nope", "bright/../dark",
                               "a" * 5000, "\u00e9\u00e9\u00e9", "presets/bright", "bright.json", "~root"]))
        return osc_message("/synth/preset", "s", [name])
    if choice == 5:
        return osc_message("/synth/morph", "ssf", [presets[0], "../" + presets[-1], 0.5])
    if choice == 6:  # wrong type tags
        return osc_message("/synth/note/on", "s", ["sixty"])
    if choice == 7:
        return osc_message("/synth/method", "i", [1])
    if choice == 8:
        return osc_message("/synth/xy", "bb", [b"\x00\x01", b"\xff" * 9])
    if choice == 9:  # huge argument lists
        n = int(rng.integers(latent_size + 1, min(14000, latent_size * 3)))
        return osc_message("/synth/latent", "f" * n, [0.0] * n)
    if choice == 10:
        values = rng.standard_normal(latent_size).astype(np.float32).tolist()
        values[int(rng.integers(0, latent_size))] = float(rng.choice([nan, inf]))
        return osc_message("/synth/latent", "f" * latent_size, values)
    if choice == 11:
        n = int(rng.integers(3, 1000))
        return osc_message("/synth/note/on", "i" * n, [60] * n)
    if choice == 12:  # out of range
        return osc_message("/synth/latent/set", "if", [int(rng.choice([-1, latent_size, 2**31 - 1])), 0.0])
    if choice == 13:
        return osc_message("/synth/macro", "if", [0, float(rng.choice([1e9, -1e9, 11.0]))])
    if choice == 14:  # unknown addresses, bad characters
        address = str(rng.choice(["/synth/nope", "/synth", "/", "/synth/note/on/extra", "/SYNTH/note/on",
                                  "/synth/*", "/synth/note/{on,off}", "/synth/\u2603", "/synth/" + "x" * 3000]))
        return osc_message(address, "i", [60])
    return osc_message("/synth/status", "i", [1])  # a query with arguments


def fuzz_packets(count: int, *, seed: int = 0, presets: tuple[str, ...] = ("bright",), latent_size: int = 2048):
    """Yield ``(kind, datagram)`` for ``count`` packets, each of which the server must refuse.

    The mix is deterministic for a ``seed``. ``presets``/``latent_size`` come from the bundle, so that
    near-miss packets (one NaN in an otherwise valid latent) are made to measure.
    """
    rng = np.random.default_rng(seed)
    for _ in range(count):
        kind = KINDS[int(rng.integers(0, len(KINDS)))]
        data = _make(kind, rng, presets, latent_size)
        yield kind, data if len(data) <= MAX_UDP else data[:MAX_UDP]


def _make(kind: str, rng, presets, latent_size) -> bytes:
    if kind == "random_bytes":
        n = int(rng.integers(1, 2000))
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        if data.startswith(b"/") or data.startswith(b"#"):
            data = b"\x01" + data
        return data
    if kind == "random_tail":  # a plausible address, then garbage
        return _pad(b"/synth/note/on") + rng.integers(0, 256, int(rng.integers(0, 64)), dtype=np.uint8).tobytes()
    if kind == "truncated":
        whole = osc_message("/synth/note/on", "ii", [60, 100])
        return whole[: int(rng.integers(1, len(whole) - 1))]
    if kind == "bad_type_tags":
        tags = "".join(rng.choice(list("ifdsbhTFNIcrm[]tXYZ?"), int(rng.integers(1, 12))))
        # 0x7fffffff reads as an out-of-range int, a NaN float or double, or invalid UTF-8: never valid.
        return _pad(b"/synth/note/on") + _pad(("," + tags).encode()) + b"\x7f\xff\xff\xff" * 4
    if kind == "no_type_tags":
        return _pad(b"/synth/gain") + struct.pack(">f", 1.0)
    if kind == "bad_message":
        return _bad_message(rng, presets, latent_size)
    if kind == "huge_arguments":
        return _bad_message(rng, presets, latent_size, heavy=True)
    if kind == "nested_bundle":
        depth = int(rng.choice([2, 8, 64, 300, 1500]))
        inner = osc_message("/synth/note/on", "i", [int(rng.choice([-1, 200]))])
        for _ in range(depth):
            if len(inner) + 20 > MAX_UDP:
                break
            inner = osc_bundle([inner])
        return inner
    if kind == "bad_bundle":
        element = osc_message("/synth/gain", "f", [99.0])  # refused even where python-osc reads it anyway
        sizes = [int(rng.choice([-4, -(2**31), 0, 3, len(element) + 4, 2**31 - 1]))]
        return osc_bundle([element], sizes=sizes)
    if kind == "bundle_of_bad":
        elements = [_bad_message(rng, presets, latent_size) for _ in range(int(rng.integers(1, 6)))]
        while sum(len(e) + 4 for e in elements) + 16 > MAX_UDP:
            elements.pop()
        return osc_bundle(elements or [osc_message("/synth/nope", "", [])])
    if kind == "short_bundle":
        return b"#bundle\x00" + rng.integers(0, 256, int(rng.integers(0, 8)), dtype=np.uint8).tobytes()
    raise ValueError(kind)


# Weights: the kinds that take python-osc milliseconds to parse (huge lists, deep nesting) are rarer, so
# that 10,000 packets fit in a test's time on a loaded 2-core machine.
KINDS = ("random_bytes",) * 4 + ("random_tail", "truncated", "truncated", "bad_type_tags", "bad_type_tags",
         "no_type_tags", "bad_bundle", "short_bundle") + ("bad_message",) * 8 + (
         "huge_arguments", "nested_bundle", "bundle_of_bad")


def negative_size_bundle() -> bytes:
    """A bundle whose element claims a size of -4 bytes.

    python-osc 1.10.2's ``OscBundle._parse_contents`` adds the size to its read position without checking
    it, so this size steps back onto itself: the parser loops forever unless the server checks the framing
    first (synth/osc/server.py's ``bundle_problem`` does). Also among the ``bad_bundle`` kind.
    """
    return osc_bundle([osc_message("/synth/gain", "f", [0.1])], sizes=[-4])


class UdpFlood:
    """Send datagrams to ``target`` from a socket bound to ``source``, keeping at most ``window`` packets in
    flight (counted by ``received()``, e.g. the server's packet counter) so the kernel never drops one."""

    def __init__(self, target: tuple[str, int], *, received, source: str = "127.0.0.1", window: int = 64,
                 window_bytes: int = 100_000) -> None:
        import socket

        self.target = target
        self.received = received
        self.window = window
        self.window_bytes = window_bytes  # below the default socket receive buffer (~208 KB on Linux)
        self._ends = [0]  # cumulative bytes sent after each packet
        self.sent = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((source, 0))
        self.sock.setblocking(False)
        self.replies = 0

    def send(self, data: bytes, *, timeout: float = 10.0) -> None:
        """Send one datagram; waits while ``window`` packets are not yet counted by the receiver."""
        deadline = time.monotonic() + timeout
        while True:
            done = min(self.received(), self.sent)
            in_flight = self._ends[-1] - self._ends[done]
            if self.sent - done < self.window and (done == self.sent or in_flight + len(data) <= self.window_bytes):
                break
            self.drain()
            if time.monotonic() > deadline:
                raise TimeoutError(f"the receiver stopped counting packets ({self.received()} of {self.sent})")
            time.sleep(0.0005)
        self.sock.sendto(data, self.target)
        self.sent += 1
        self._ends.append(self._ends[-1] + len(data))

    def drain(self) -> int:
        """Read and count the replies waiting (error replies would otherwise fill our buffer)."""
        n = 0
        while True:
            try:
                self.sock.recv(65536)
            except (BlockingIOError, OSError):
                break
            n += 1
        self.replies += n
        return n

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until every sent packet has been counted by the receiver."""
        deadline = time.monotonic() + timeout
        while self.received() < self.sent and time.monotonic() < deadline:
            self.drain()
            time.sleep(0.002)
        return self.received() >= self.sent

    def close(self) -> None:
        self.sock.close()
