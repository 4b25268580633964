"""Output gain and a peak limiter that keeps every sample within the ceiling.

The limiter follows a peak envelope with instant attack and exponential release,
``env[n] = max(|x[n]|, c * env[n-1])``, and applies ``gain = min(1, ceiling / env)``. Since ``env >= |x|``,
no output sample can exceed the ceiling, and because the envelope decays slowly (``release`` seconds) the
gain is steady across the cycles of a tone instead of clipping each peak. The recursion is evaluated per
call in closed form, ``env[n] = c**n * max(c * env[-1], cummax(|x[k]| * c**-k))``, so it is vectorised and
its result does not depend on how the samples are cut into calls. A gain change ramps linearly over
``ramp_samples`` samples (one frame; no zipper noise), counted across calls.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Limiter", "CEILING"]

CEILING = 0.98  # ~ -0.2 dBFS


class Limiter:
    """Streaming gain + peak limiter over calls of at most ``max_samples`` samples.

    Parameters
    ----------
    rate : int  sample rate (Hz)
    max_samples : int  the most samples one :meth:`process` call is given
    release : float  release time constant in seconds
    ceiling : float  largest absolute output value
    ramp_samples : int  length of a gain change's ramp (None: ``max_samples``)
    """

    def __init__(
        self, *, rate: int, max_samples: int, release: float = 0.1, ceiling: float = CEILING,
        ramp_samples: int | None = None,
    ) -> None:
        self.ceiling = ceiling
        self._ramp_samples = int(ramp_samples or max_samples)
        self._ramp_from = 1.0
        self._ramp_done = self._ramp_samples
        self._c = math.exp(-1.0 / (release * rate))
        k = np.arange(max_samples, dtype=np.float64)
        self._pow = self._c**k  # c**n
        self._inv_pow = self._c ** (-k)  # c**-k (at most e**(max_samples / (release*rate)), small)
        self._steps = k + 1.0  # 1, 2, ... n: the samples of a gain ramp a call advances
        self._y = np.empty(max_samples, dtype=np.float64)
        self._envelope = np.empty(max_samples, dtype=np.float64)
        self._scratch = np.empty(max_samples, dtype=np.float64)
        self._env = 0.0
        self._gain = 1.0
        self._target_gain = 1.0
        self.limited_frames = 0
        self.nonfinite_frames = 0

    def reset(self) -> None:
        self._env = 0.0
        self._gain = self._target_gain
        self._ramp_done = self._ramp_samples

    def set_gain(self, gain: float) -> None:
        """Ramp to ``gain`` from the gain applied now, over the next ``ramp_samples`` samples."""
        if float(gain) == self._target_gain:
            return
        self._ramp_from = self._current_gain()
        self._target_gain = float(gain)
        self._ramp_done = 0

    def _current_gain(self) -> float:
        if self._ramp_done >= self._ramp_samples:
            return self._target_gain
        return self._ramp_from + (self._target_gain - self._ramp_from) * self._ramp_done / self._ramp_samples

    def process(self, x: np.ndarray) -> None:
        """Apply gain and limit ``x`` (float32, 1-D, at most ``max_samples``) in place.

        Allocates nothing: it runs on the synthesis thread once a frame, so every intermediate lives in a
        buffer made by the constructor.
        """
        n = len(x)
        if n == 0:
            return
        y, env, t = self._y[:n], self._envelope[:n], self._scratch[:n]
        y[:] = x
        # The float64 sum of float32 samples cannot overflow: it is non-finite only for a NaN or Inf sample.
        if not math.isfinite(y.sum()):
            # A broken inverter must never reach the speakers: silence this frame and count it.
            self.nonfinite_frames += 1
            y[:] = 0.0
        g1 = self._target_gain
        if self._ramp_done < self._ramp_samples:
            np.add(self._steps[:n], self._ramp_done, out=t)
            t /= self._ramp_samples
            np.minimum(t, 1.0, out=t)
            t *= g1 - self._ramp_from
            t += self._ramp_from
            y *= t
            self._ramp_done += n
        else:
            y *= g1
        self._gain = self._current_gain()
        np.abs(y, out=t)
        t *= self._inv_pow[:n]
        np.maximum.accumulate(t, out=env)
        np.maximum(env, self._c * self._env, out=env)
        env *= self._pow[:n]
        self._env = float(env[-1])
        if env.max() > self.ceiling:
            self.limited_frames += 1
            np.maximum(env, 1e-30, out=t)
            np.divide(self.ceiling, t, out=t)
            np.minimum(t, 1.0, out=t)
            y *= t
        np.clip(y, -self.ceiling, self.ceiling, out=y)
        x[:] = y
