"""Preallocated single-producer single-consumer rings of output samples.

The synthesis thread writes rendered blocks; the audio side reads them. :class:`SampleRing` is read by a
Python consumer (the null output's clock thread): each side only advances its own counter (a plain int
assignment, atomic under the GIL), so neither side ever locks, and the reader only copies slices of a
preallocated array. :class:`PortAudioRing` has the same producer interface over PortAudio's lock-free ring
buffer (``pa_ringbuffer``), which a sound card's callback written in C reads without the GIL (see
``synth.host.output.SoundDeviceOutput``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["SampleRing", "PortAudioRing"]


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

    def unwrite(self, n: int, *, keep: int) -> int:
        """Producer: take back up to ``n`` of the newest frames, leaving at least ``keep`` (>= one read) for
        the consumer; returns how many were taken back.

        The consumer may finish one read between this look at :attr:`read` and the store, so ``keep`` must
        cover one read: then ``written`` never falls below what it has read.
        """
        n = min(int(n), self.written - self.read - int(keep))
        if n <= 0:
            return 0
        self.written -= n
        return n

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


class PortAudioRing:
    """The producer side of :class:`SampleRing` over rtmixer's ``RingBuffer`` (PortAudio's lock-free ring).

    ``capacity`` is rounded up to a power of two (the ring's requirement). ``read`` is derived from what the
    C reader has left; ``underflows`` is counted by the output, which sees the reader run dry.
    """

    def __init__(self, *, capacity: int, channels: int) -> None:
        import rtmixer

        self.capacity = 1 << (int(capacity) - 1).bit_length()
        self.channels = int(channels)
        self.ringbuffer = rtmixer.RingBuffer(elementsize=4 * self.channels, size=self.capacity)
        self._frames = np.zeros((0, self.channels), dtype=np.float32)  # interleaving scratch (channels > 1)
        self.written = 0
        self.underflows = 0

    @property
    def read(self) -> int:
        return self.written - self.ringbuffer.read_available

    def available(self) -> int:
        return self.ringbuffer.read_available

    def space(self) -> int:
        return self.ringbuffer.write_available

    def unwrite(self, n: int, *, keep: int) -> int:
        """Producer: take back up to ``n`` of the newest frames, leaving at least ``keep`` (>= one callback's
        worth) for the C reader; returns how many were taken back.

        PortAudio's ring has no call for this: the write index goes back by ``n`` (modulo twice the size, as
        the ring counts). The reader only ever advances the read index and reads up to the write index it
        sees; it may finish one callback between this look and the store, so ``keep`` must cover one.
        """
        ptr = self.ringbuffer._ptr
        n = min(int(n), self.ringbuffer.read_available - int(keep))
        if n <= 0:
            return 0
        ptr.writeIndex = (ptr.writeIndex - n) & ptr.bigMask
        self.written -= n
        return n

    def write(self, block: np.ndarray) -> None:
        """Producer: append a mono block (copied to every channel). The caller checks :meth:`space` first."""
        block = np.ascontiguousarray(block, dtype=np.float32)
        n = len(block)
        if self.channels == 1:
            data = block
        else:
            if len(self._frames) < n:
                self._frames = np.zeros((n, self.channels), dtype=np.float32)
            self._frames[:n] = block[:, None]
            data = self._frames[:n]
        self.written += self.ringbuffer.write(data, n)
