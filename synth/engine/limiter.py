"""Output gain and a peak limiter that keeps every sample within the ceiling.

The limiter follows a peak envelope with instant attack and exponential release,
``env[n] = max(|x[n]|, c * env[n-1])``, and applies ``gain = min(1, ceiling / env)``. Since ``env >= |x|``,
no output sample can exceed the ceiling, and because the envelope decays slowly (``release`` seconds) the
gain is steady across the cycles of a tone instead of clipping each peak. The recursion is evaluated per
frame in closed form, ``env[n] = c**n * max(c * env[-1], cummax(|x[k]| * c**-k))``, so it is vectorised and
its result does not depend on block sizes. A gain change ramps over one frame (no zipper noise).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Limiter", "CEILING"]

CEILING = 0.98  # ~ -0.2 dBFS


class Limiter:
    """Streaming gain + peak limiter over frames of at most ``max_samples`` samples.

    Parameters
    ----------
    rate : int  sample rate (Hz)
    max_samples : int  longest frame that :meth:`process` will be given
    release : float  release time constant in seconds
    ceiling : float  largest absolute output value
    """

    def __init__(self, *, rate: int, max_samples: int, release: float = 0.1, ceiling: float = CEILING) -> None:
        self.ceiling = ceiling
        self._c = math.exp(-1.0 / (release * rate))
        k = np.arange(max_samples, dtype=np.float64)
        self._pow = self._c**k  # c**n
        self._inv_pow = self._c ** (-k)  # c**-k (at most e**(max_samples / (release*rate)), small)
        self._env = 0.0
        self._gain = 1.0
        self._target_gain = 1.0
        self.limited_frames = 0
        self.nonfinite_frames = 0

    def reset(self) -> None:
        self._env = 0.0
        self._gain = self._target_gain

    def set_gain(self, gain: float) -> None:
        self._target_gain = float(gain)

    def process(self, x: np.ndarray) -> None:
        """Apply gain and limit ``x`` (float32, 1-D) in place."""
        n = len(x)
        if n == 0:
            return
        if not np.all(np.isfinite(x)):
            # A broken inverter must never reach the speakers: silence this frame and count it.
            self.nonfinite_frames += 1
            x[:] = 0.0
        g0, g1 = self._gain, self._target_gain
        y = x.astype(np.float64)
        if g0 != g1:
            y *= g0 + (g1 - g0) * (np.arange(1, n + 1) / n)
            self._gain = g1
        else:
            y *= g1
        a = np.abs(y)
        env = np.maximum.accumulate(a * self._inv_pow[:n])
        np.maximum(env, self._c * self._env, out=env)
        env *= self._pow[:n]
        self._env = float(env[-1])
        peak = float(env.max())
        if peak > self.ceiling:
            self.limited_frames += 1
            y *= np.minimum(1.0, self.ceiling / np.maximum(env, 1e-30))
        np.clip(y, -self.ceiling, self.ceiling, out=y)
        x[:] = y
