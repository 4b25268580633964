"""A preallocated single-producer single-consumer ring of output samples.

The synthesis thread writes rendered blocks; the audio callback reads them. Each side only advances its own
counter (a plain int assignment, atomic under the GIL), so neither side ever locks, and the callback only
copies slices of a preallocated array.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SampleRing"]


class SampleRing:
    """``capacity`` frames of ``channels`` float32 samples.

    ``written`` and ``read`` count frames since start; ``written - read`` is what the consumer can take.
    """

    def __init__(self, *, capacity: int, channels: int) -> None:
        self.capacity = int(capacity)
        self.channels = int(channels)
        self.buffer = np.zeros((self.capacity, self.channels), dtype=np.float32)
        self.written = 0
        self.read = 0
        self.underflows = 0  # reads that found fewer frames than asked (zero-filled)

    def available(self) -> int:
        return self.written - self.read

    def space(self) -> int:
        return self.capacity - (self.written - self.read)

    def write(self, block: np.ndarray) -> None:
        """Producer: append a mono block (copied to every channel). The caller checks :meth:`space` first."""
        n = len(block)
        start = self.written % self.capacity
        first = min(n, self.capacity - start)
        self.buffer[start : start + first] = block[:first, None]
        if first < n:
            self.buffer[: n - first] = block[first:, None]
        self.written += n

    def read_into(self, out: np.ndarray) -> None:
        """Consumer (the audio callback): fill ``out`` [shape=(frames, channels)], zero-filling a shortfall.

        Copies slices only: no allocation of arrays, no lock, no I/O.
        """
        frames = out.shape[0]
        have = self.written - self.read
        take = frames if have >= frames else have
        if take > 0:
            start = self.read % self.capacity
            first = take if take <= self.capacity - start else self.capacity - start
            out[:first] = self.buffer[start : start + first]
            if first < take:
                out[first:take] = self.buffer[: take - first]
            self.read += take
        if take < frames:
            out[take:] = 0.0
            self.underflows += 1
