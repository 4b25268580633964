"""Run-long timing figures (control latency, render time) kept in fixed bins.

``/synth/status`` asks for the run's latency percentiles while the engine plays. Computed from a list of
every event (as an earlier version did, up to 100,000 of them) that took ~40 ms holding the GIL in the OSC
thread, long enough to starve the synthesis thread: a 10-minute soak counted an underflow at nearly every
status request from its fourth minute on. A histogram costs one increment per event and a cumulative sum
over its bins per query (tens of microseconds), whatever the length of the run.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Histogram"]


class Histogram:
    """Counts of values (ms) in bins of ``resolution`` from 0 to ``limit``, and one bin for anything beyond.

    Written by one thread (:meth:`add`); read by any (:meth:`counts`, :meth:`percentile`, ...): a reader may
    miss the event being added, never more. Percentiles are bin centres, so they are within
    ``resolution / 2`` of the exact order statistic; values beyond ``limit`` read as ``limit``.

    Parameters
    ----------
    resolution : float  bin width in ms
    limit : float  the largest value binned exactly, in ms
    """

    def __init__(self, *, resolution: float = 0.1, limit: float = 2000.0) -> None:
        if not (resolution > 0 and limit > resolution):
            raise ValueError(f"need 0 < resolution < limit, got resolution={resolution}, limit={limit}")
        self.resolution = float(resolution)
        self.limit = float(limit)
        self._bins = int(np.ceil(limit / resolution))
        self._counts = np.zeros(self._bins + 1, dtype=np.int64)
        self.count = 0

    def add(self, value: float) -> None:
        """Count one value (negative values count as 0)."""
        index = int(value / self.resolution) if value > 0 else 0
        self._counts[index if index < self._bins else self._bins] += 1
        self.count += 1

    def counts(self) -> np.ndarray:
        """A copy of the bin counts, to measure a window with ``since=`` later."""
        return self._counts.copy()

    def _window(self, since: np.ndarray | None) -> np.ndarray:
        return self._counts - since if since is not None else self._counts

    def total(self, *, since: np.ndarray | None = None) -> int:
        """Values counted (since the ``since`` snapshot of :meth:`counts`)."""
        return int(self._window(since).sum())

    def percentile(self, q: float, *, since: np.ndarray | None = None) -> float:
        """The ``q``-th percentile (0..100) of the values (since ``since``); 0.0 when there are none."""
        counts = self._window(since)
        cumulative = np.cumsum(counts)
        n = int(cumulative[-1])
        if n == 0:
            return 0.0
        # The smallest bin holding at least q% of the values (nearest rank).
        rank = max(1, int(np.ceil(q / 100.0 * n)))
        index = int(np.searchsorted(cumulative, rank))
        return self._centre(index)

    def maximum(self, *, since: np.ndarray | None = None) -> float:
        """The largest value's bin centre (since ``since``); 0.0 when there are none."""
        nonzero = np.flatnonzero(self._window(since))
        return self._centre(int(nonzero[-1])) if nonzero.size else 0.0

    def _centre(self, index: int) -> float:
        if index >= self._bins:
            return self.limit
        return (index + 0.5) * self.resolution
