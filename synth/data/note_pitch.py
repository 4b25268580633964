"""The pitch of a recorded single note: what a keyboard model's encoder needs to know of an audio file, and
what the audio-folder dataset checks each take against."""

from __future__ import annotations

import numpy as np

__all__ = ["note_pitch", "VOICED_SHARE", "STABLE_CENTS"]

VOICED_SHARE = 0.3  # of the analysed frames
STABLE_CENTS = 50.0  # interquartile spread of the voiced f0


def note_pitch(y: np.ndarray, *, rate: int, around: float = 60.0, spread: float = 0.0) -> tuple[float | None, str]:
    """``(MIDI pitch as a float, "")`` of the note ``y`` [shape=(n,)] starting at its onset, or ``(None, why
    there is no stable pitch)``: librosa.pyin over 2 s after the attack, the median of its voiced frames. The
    search spans C1..C7 and always ``around`` +- ``spread`` + 1 semitones, within what ``rate`` and the frame
    length can resolve."""
    import librosa

    low = min(librosa.note_to_midi("C1"), around - spread - 1)
    high = max(librosa.note_to_midi("C7"), around + spread + 1)
    fmin = max(float(librosa.midi_to_hz(low)), 2.5 * rate / 2048)  # a few periods in a 2048-sample frame
    fmax = min(float(librosa.midi_to_hz(high)), 0.45 * rate)
    part = np.asarray(y, dtype=np.float64)[int(0.05 * rate) : int(2.05 * rate)]  # past the attack
    f0, voiced, _ = librosa.pyin(part, fmin=fmin, fmax=fmax, sr=rate, frame_length=2048, hop_length=512)
    good = f0[voiced & np.isfinite(f0)]
    if len(good) < max(3, VOICED_SHARE * len(f0)):
        return None, f"no stable pitch (voiced in {len(good)} of {len(f0)} frames)"
    midi = librosa.hz_to_midi(good)
    q1, q3 = np.percentile(midi, [25, 75])
    if (q3 - q1) * 100 > STABLE_CENTS:
        return None, f"no stable pitch (it wanders over {(q3 - q1) * 100:.0f} cents)"
    return float(np.median(midi)), ""
