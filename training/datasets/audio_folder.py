"""An NSynth-format dataset from a folder of the user's own single-note recordings.

Every audio file under the folder (recursively: WAV, FLAC, AIFF, OGG/Opus, MP3, W64, RF64 and CAF, the
formats libsndfile reads; any rate, any channel count, any length) is taken through the same steps a NSynth
note went through (any other file is reported as left out, by name):

1. read block by block, mixed to mono, resampled to the contract's rate with soxr (VHQ), keeping only the
   span the note is made from (a second before the first audible sample to 4 s after the latest onset):
   memory stays bounded whatever the file's length;
2. its onset found (librosa's onset detector, backtracked to the energy minimum before it), and everything
   before it dropped;
3. trimmed or padded to the contract's 4 s: a longer take keeps its first 4 s and its last second is faded
   out with a raised cosine (a release, not a cut); a shorter one is padded with silence;
4. its pitch estimated with librosa.pyin (the median of the voiced frames of 2 s after the attack) and kept when
   within ``tolerance`` semitones of ``pitch``, or transposed onto it (librosa's phase-vocoder pitch shift)
   when within ``transpose`` semitones;
5. its level kept as recorded (no normalisation: level is what velocity means); the record's velocity is
   estimated from the peak level, -40..0 dBFS onto 1..127.

Families come from the first folder level under the root (``DIR/strings/cello/a.wav``: family "strings",
instrument "strings/cello"); files directly in the root are each their own instrument of family "other".
Every file left out is reported with its reason (unreadable, silent, too short, no stable pitch, too far
from the pitch), and the output folder appears only when complete.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np

from synth.atomic import atomic_directory, atomic_write_text
from synth.data.note_pitch import note_pitch
from synth.errors import DataError, ParameterError
from synth.outputs import NSYNTH_DATASET, check_output_folder

__all__ = ["AUDIO_SUFFIXES", "AudioFolderReport", "NoteSpan", "make_audio_dataset", "prepare_note", "read_note_span"]

AUDIO_SUFFIXES = (".wav", ".flac", ".aif", ".aiff", ".ogg", ".oga", ".opus", ".mp3", ".w64", ".rf64", ".caf")
SAMPLE_RATE = 16000
NOTE_SECONDS = 4.0
FADE_SECONDS = 1.0
SILENT_PEAK = 10 ** (-60 / 20)  # -60 dBFS
MIN_SECONDS = 0.25  # after the onset


@dataclasses.dataclass
class AudioFolderReport:
    kept: list[dict[str, Any]]
    transposed: list[dict[str, Any]]
    skipped: list[dict[str, str]]


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "x"


def _skip(path: Path, reason: str) -> dict[str, str]:
    return {"file": str(path), "reason": reason}


def _onset(y: np.ndarray, rate: int, *, first_loud: int) -> int:
    """The note's start in ``y``: its first onset (backtracked), unless that comes more than ONSET_SLACK after
    the first audible sample ``first_loud``; then just before that sample."""
    import librosa

    onsets = librosa.onset.onset_detect(y=y, sr=rate, units="samples", backtrack=True, hop_length=128)
    if len(onsets) and int(onsets[0]) <= first_loud + int(ONSET_SLACK * rate):
        return int(onsets[0])
    return max(0, first_loud - rate // 200)  # 5 ms before the first audible sample


def _fit_length(y: np.ndarray, rate: int) -> np.ndarray:
    n = int(round(NOTE_SECONDS * rate))
    if len(y) <= n:
        return np.pad(y, (0, n - len(y)))
    out = y[:n].copy()
    fade = int(FADE_SECONDS * rate)
    out[-fade:] *= 0.5 * (1 + np.cos(np.linspace(0.0, math.pi, fade)))
    return out


# What is read of a file: the span from a little before its first audible sample to the 4 s note after the
# latest onset the note may start at. A 691 MB WAV once took 3.7 GB to yield one 4 s note when read whole.
BLOCK_FRAMES = 1 << 16  # source frames read at a time
LEAD_SECONDS = 1.0  # kept before the first audible sample: room for the onset detector to backtrack
ONSET_SLACK = 0.25  # the latest an onset may follow the first audible sample (seconds; see _onset)


@dataclasses.dataclass
class NoteSpan:
    """The part of a file a note is made from: ``audio`` (mono at the analysis rate) begins ``offset``
    samples into the file's resampled audio; ``first_loud`` is the file's first sample above -60 dBFS, counted
    like ``offset`` (None: the file is silent, and ``peak`` is its largest magnitude)."""

    audio: np.ndarray
    offset: int
    first_loud: int | None
    peak: float
    source_rate: int
    channels: int
    seconds: float


def read_note_span(path: Path, *, rate: int = SAMPLE_RATE) -> NoteSpan:
    """Read ``path`` block by block, mixed to mono and resampled to ``rate`` as it is read, keeping only the
    span a note is made from (see LEAD_SECONDS): memory stays bounded whatever the file's length, and
    reading stops once the note is in hand. A silent file is read to its end, one block at a time.

    Raises soundfile's errors for an unreadable file and ValueError for NaN or infinite samples.
    """
    import soundfile as sf
    import soxr

    lead = int(LEAD_SECONDS * rate)
    after = int(ONSET_SLACK * rate) + int(round(NOTE_SECONDS * rate))
    kept: list[np.ndarray] = []
    held = offset = 0  # samples in ``kept``; resampled samples before them
    first_loud: int | None = None
    peak = 0.0
    with sf.SoundFile(path) as f:
        source_rate, channels, frames = int(f.samplerate), int(f.channels), int(f.frames)
        stream = (soxr.ResampleStream(source_rate, rate, 1, dtype="float32", quality="VHQ")
                  if source_rate != rate else None)
        while True:
            block = f.read(BLOCK_FRAMES, dtype="float32", always_2d=True)
            last = len(block) < BLOCK_FRAMES
            if not np.all(np.isfinite(block)):
                raise ValueError("NaN or infinite samples")
            mono = block.mean(axis=1)
            if stream is not None:
                mono = stream.resample_chunk(mono, last=last)
            if len(mono):
                kept.append(mono)
                held += len(mono)
                if first_loud is None:
                    loud = np.flatnonzero(np.abs(mono) > SILENT_PEAK)
                    if len(loud):
                        first_loud = offset + held - len(mono) + int(loud[0])
                    else:
                        peak = max(peak, float(np.max(np.abs(mono))))
                        while kept and held - len(kept[0]) >= lead:  # silence: only the lead is kept
                            offset += len(kept[0])
                            held -= len(kept.pop(0))
            if last or (first_loud is not None and offset + held >= first_loud + after):
                break
    audio = np.concatenate(kept) if kept else np.zeros(0, np.float32)
    if first_loud is not None:
        start = max(0, first_loud - lead - offset)
        audio = audio[start : first_loud + after - offset]
        offset += start
    return NoteSpan(audio=audio.astype(np.float32, copy=False), offset=offset, first_loud=first_loud, peak=peak,
                    source_rate=source_rate, channels=channels, seconds=frames / source_rate)


def prepare_note(path: Path, *, pitch: int, tolerance: float, transpose: float,
                 rate: int = SAMPLE_RATE) -> tuple[np.ndarray | None, dict[str, Any]]:
    """One file -> (4 s of mono audio at ``rate``, facts) or (None, {"reason": why it is left out}).
    Only the span the note is made from is read (:func:`read_note_span`)."""
    import soundfile as sf

    try:
        span = read_note_span(path, rate=rate)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        return None, {"reason": f"unreadable ({str(exc)[:120]})"}
    except ValueError as exc:
        return None, {"reason": f"unreadable ({exc})"}
    if span.seconds == 0:
        return None, {"reason": "unreadable (no samples)"}
    if span.first_loud is None:
        return None, {"reason": f"silent (peak {20 * math.log10(max(span.peak, 1e-12)):.0f} dBFS)"}
    mono = span.audio
    start = _onset(mono, rate, first_loud=span.first_loud - span.offset)
    note = mono[start:]
    if len(note) < MIN_SECONDS * rate:
        return None, {"reason": f"too short ({len(note) / rate:.2f} s after the onset)"}
    note = _fit_length(note, rate)
    found, why = note_pitch(note, rate=rate, around=pitch, spread=transpose)
    if found is None:
        return None, {"reason": why}
    off = found - pitch
    facts: dict[str, Any] = {"source_rate": span.source_rate, "channels": span.channels,
                             "onset_s": round((span.offset + start) / rate, 4), "seconds": round(span.seconds, 3),
                             "pitch_found": round(found, 3)}
    if abs(off) > tolerance:
        if abs(off) > transpose:
            return None, {"reason": f"too far from the pitch ({found:.2f} is {off:+.2f} semitones from {pitch})"}
        import librosa

        note = librosa.effects.pitch_shift(note, sr=rate, n_steps=-off).astype(np.float32)
        facts["transposed_semitones"] = round(-off, 3)
    level = 20 * math.log10(max(float(np.max(np.abs(note))), 1e-12))
    facts["velocity"] = int(np.clip(round(1 + (level + 40) / 40 * 126), 1, 127))
    return np.clip(note, -1.0, 1.0).astype(np.float32), facts


def _free_velocity(examples: dict, instrument_str: str, *, pitch: int, wanted: int, instrument: str) -> int:
    """The velocity nearest above ``wanted`` (wrapping to 1) not yet in a note name of this instrument: two
    takes at one level are both kept. A note name (NSynth's instrument-pitch-velocity) has room for 127."""
    velocity = wanted
    for _ in range(127):
        if f"{instrument_str}-{pitch:03d}-{velocity:03d}" not in examples:
            return velocity
        velocity = velocity + 1 if velocity < 127 else 1
    raise DataError(
        f"{instrument}: more than 127 takes kept at pitch {pitch}, and a note name (instrument-pitch-velocity, "
        "as in NSynth) has room for 127 per instrument: split its takes into subfolders, each one instrument"
    )


def make_audio_dataset(src: str | Path, *, out: str | Path, pitch: int = 60, tolerance: float = 0.5,
                       transpose: float = 2.0, force: bool = False, progress: bool = True) -> AudioFolderReport:
    """Write the NSynth-format folder ``out`` from the recordings under ``src`` (see the module docstring).

    Raises DataError when ``src`` holds no audio file or none is kept (nothing is written then), and
    ParameterError for bad arguments or an existing ``out`` without ``force``.
    """
    from tqdm import tqdm

    from synth.data.nsynth_format import FAMILIES, write_examples, write_note_audio

    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: no such folder of recordings")
    # `dataset audio recs --out recs --force` once deleted the recordings it was to read.
    check_output_folder(out, kind=NSYNTH_DATASET, force=force, inputs=[src])
    if not 0 <= pitch <= 127:
        raise ParameterError(f"--pitch must be a MIDI note 0..127, got {pitch}")
    if not (0 <= tolerance <= transpose <= 12):
        raise ParameterError(f"need 0 <= --tolerance ({tolerance}) <= --transpose ({transpose}) <= 12 semitones")
    visible = sorted(p for p in src.rglob("*") if p.is_file() and not p.name.startswith("."))
    files = [p for p in visible if p.suffix.lower() in AUDIO_SUFFIXES]
    if not files:
        raise DataError(f"{src}: no audio files ({', '.join(AUDIO_SUFFIXES)}) in it or below it")
    report = AudioFolderReport(kept=[], transposed=[], skipped=[])
    for path in visible:
        if path.suffix.lower() not in AUDIO_SUFFIXES:  # an .m4a, say: said, not silently passed over
            report.skipped.append(_skip(path.relative_to(src), "not a format read here (convert it to WAV or FLAC)"))
    instruments: dict[str, int] = {}
    examples: dict[str, dict[str, Any]] = {}
    audio: dict[str, np.ndarray] = {}
    # In a log (not a terminal) a progress line every 30 s, not a redraw every 0.1 s.
    for path in tqdm(files, desc="recordings", unit="file", disable=not progress,
                     mininterval=1.0 if sys.stderr.isatty() else 30.0):
        try:
            y, facts = prepare_note(path, pitch=pitch, tolerance=tolerance, transpose=transpose)
        except Exception as exc:  # a decoder or analysis failure on one file: it is left out, by name and why
            y, facts = None, {"reason": f"could not be analysed ({type(exc).__name__}: {str(exc)[:120]})"}
        if y is None:
            report.skipped.append(_skip(path.relative_to(src), facts["reason"]))
            continue
        parts = path.relative_to(src).parts
        family = _slug(parts[0]) if len(parts) > 1 else "other"
        instrument = "/".join(parts[:-1]) if len(parts) > 1 else path.stem
        index = instruments.setdefault(instrument, len(instruments))
        instrument_str = f"{family}_acoustic_{index:03d}"
        velocity = _free_velocity(examples, instrument_str, pitch=pitch, wanted=facts["velocity"], instrument=instrument)
        note_str = f"{instrument_str}-{pitch:03d}-{velocity:03d}"
        examples[note_str] = {
            "note": len(examples), "note_str": note_str, "instrument": index, "instrument_str": instrument_str,
            "pitch": pitch, "velocity": velocity, "sample_rate": SAMPLE_RATE, "qualities": [0] * 10,
            "qualities_str": [], "instrument_family": FAMILIES.index(family) if family in FAMILIES else -1,
            "instrument_family_str": family, "instrument_source": 0, "instrument_source_str": "acoustic",
            "instrument_name": instrument, "source_file": str(path.relative_to(src)), **facts,
        }
        audio[note_str] = y
        entry = {"file": str(path.relative_to(src)), "note_str": note_str, **facts}
        report.kept.append(entry)
        if "transposed_semitones" in facts:
            report.transposed.append(entry)
    if not examples:
        reasons = sorted({s["reason"].split(" (")[0] for s in report.skipped})
        raise DataError(f"{src}: none of its {len(files)} files could be kept ({'; '.join(reasons)})")
    with atomic_directory(out, kind=NSYNTH_DATASET, force=force, inputs=[src]) as tmp:
        (tmp / "audio").mkdir()
        for note_str, y in audio.items():
            write_note_audio(tmp / "audio" / f"{note_str}.wav", y, sample_rate=SAMPLE_RATE)
        write_examples(tmp, examples)
        atomic_write_text(tmp / "audio_report.json", json.dumps(dataclasses.asdict(report), indent=1) + "\n")
    return report
