"""The inverters' pseudo-random sequence: a 63-bit linear congruential generator, in numba.

Each inverter draws its random phases (noise bins, the noise's phase jitter, partials' births) from a state of
its own, so a render is the same every time. The step is computed in uint64, where numba's arithmetic wraps:
in int64 numba emits a multiply that LLVM may assume never overflows (``mul nsw``), and with the state known
to be non-negative after the mask it dropped the mask where it inlined the step, handing out negative states
depending on how the caller compiled (the noise's phase jitter, meant within +-45 degrees, then spread over
-135..+45 degrees in some builds and not in others).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["next_state"]

_MULTIPLIER = np.uint64(6364136223846793005)  # Knuth's MMIX constants
_INCREMENT = np.uint64(1442695040888963407)
_MASK = np.uint64(0x7FFFFFFFFFFFFFFF)


@njit(cache=True, inline="always")
def next_state(state):
    """The generator's next state (int64 in [0, 2**63)) after ``state`` (int64 in the same range); its top
    bits are the random ones (``state >> 51``: 12 random bits, ``state >> 11``: 52)."""
    s = (np.uint64(state) * _MULTIPLIER + _INCREMENT) & _MASK
    return np.int64(s)
