"""The inverters' random sequence is the same in every build: the generator's step, inlined into a numba loop
the way the noise's phase jitter uses it, gives the 63-bit LCG's sequence exactly and never a negative state.

The step written in int64 broke here: numba's multiply may not overflow as far as LLVM is concerned, so it
dropped the mask and states came out negative (the jitter's angles then spread over -135..+45 degrees)."""

from __future__ import annotations

import numpy as np
from numba import njit

from synth.inversion.random_bits import next_state

_TURN = np.exp(2j * np.pi * np.arange(4096) / 4096)
_WIDTH = 1024


@njit
def _jitter(spec, width, state, turn):
    """The noise's phase jitter as the harmonic inverter applies it (steps of 4096 a turn, ``width`` wide)."""
    for b in range(spec.shape[0]):
        state = next_state(state)
        spec[b] *= turn[((state >> 51) * width >> 12) - (width >> 1) & 4095]
    return state


@njit
def _inlined(spec, state):
    # A global table and a literal width, as the inverter's own per-frame function passes them.
    return _jitter(spec, _WIDTH, state, _TURN)


def _reference(state: int, n: int) -> list[int]:
    out = []
    for _ in range(n):
        state = (state * 6364136223846793005 + 1442695040888963407) & 0x7FFFFFFFFFFFFFFF
        out.append(state)
    return out


def test_the_inlined_step_follows_the_generator_and_the_jitter_stays_within_its_width():
    seed = 0x9E3779B97F4A7C15 & 0x7FFFFFFFFFFFFFFF
    spec = np.ones(4096, dtype=np.complex128)
    end = _inlined(spec, seed)
    assert end == _reference(seed, 4096)[-1]
    steps = np.round(np.angle(spec) * 4096 / (2 * np.pi)).astype(int)
    assert steps.min() >= -_WIDTH // 2 and steps.max() < _WIDTH // 2, (steps.min(), steps.max())
    # Spread over the whole width, both ways.
    assert steps.min() < -0.45 * _WIDTH and steps.max() > 0.45 * _WIDTH
