"""retune: an inverter tuned to another fundamental plays exactly what one built for it plays (a keyboard
bundle's voices retune to their key at each note)."""

from __future__ import annotations

import numpy as np
import pytest
from inversion_fixtures import C4, PARAMS, harmonic_note, note_mel

from synth.inversion import make_inverter
from synth.inversion.frames import hop_samples

RATE = 48000
G3 = C4 * 2 ** (-5 / 12)


def _render(inverter, mel: np.ndarray, *, ratio: float) -> np.ndarray:
    hop = hop_samples(params=PARAMS, output_rate=RATE)
    out, made = [], 0.0
    for k in range(mel.shape[1]):
        n = int(round((k + 1) * hop - made))
        block = np.zeros(n, np.float32)
        inverter.process_frame(mel[:, k], pitch_ratio=ratio, out=block)
        out.append(block)
        made += n
    return np.concatenate(out)


@pytest.mark.parametrize("method, extra", [("harmonic", {"keep_envelope": True}), ("harmonic", {}),
                                           ("sinusoidal", {}), ("griffinlim", {})])
@pytest.mark.parametrize("ratio", [1.0, 2 ** (1 / 12)])
def test_a_retuned_inverter_plays_what_one_built_for_that_fundamental_plays(method, extra, ratio):
    mel = note_mel(harmonic_note(G3, seconds=0.4))
    fresh = make_inverter(method, params=PARAMS, output_rate=RATE, harmonic_f0=G3, **extra)
    retuned = make_inverter(method, params=PARAMS, output_rate=RATE, harmonic_f0=C4, **extra)
    _render(retuned, note_mel(harmonic_note(C4, seconds=0.2)), ratio=1.0)  # it played a C4 before
    retuned.retune(G3)
    retuned.reset()
    assert retuned.harmonic_f0 == pytest.approx(G3)
    np.testing.assert_array_equal(_render(retuned, mel, ratio=ratio), _render(fresh, mel, ratio=ratio))


def test_an_inverter_without_a_fundamental_stays_without_one():
    inverter = make_inverter("harmonic", params=PARAMS, output_rate=RATE)
    inverter.retune(G3)
    assert inverter.harmonic_f0 is None
