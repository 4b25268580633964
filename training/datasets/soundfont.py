"""Render an NSynth-format dataset from General MIDI SoundFonts with FluidSynth.

Every (font, program, velocity) becomes one 4 s note at 16 kHz: the key is held 3 s and released for 1 s,
reverb and chorus off (NSynth's notes are dry). Each (font, program) is one instrument, filed under an NSynth
family by :mod:`training.datasets.general_midi`; the record keeps the font and program. Programs that are
silent at the chosen key (a font without a sample there) are skipped and reported, not fatal.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from synth.atomic import atomic_directory, atomic_write_text
from synth.data.nsynth_format import make_example, write_examples, write_note_audio
from synth.errors import DataError, ExternalToolError, ParameterError
from synth.outputs import NSYNTH_DATASET, check_output_folder
from training.datasets.general_midi import GM_PROGRAMS

__all__ = ["DEFAULT_FONTS", "DEFAULT_VELOCITIES", "render_soundfont_dataset", "RenderReport", "render_note"]

DEFAULT_FONTS = (
    Path("/usr/share/sounds/sf2/FluidR3_GM.sf2"),
    Path("/usr/share/sounds/sf2/TimGM6mb.sf2"),
)
DEFAULT_VELOCITIES = (25, 50, 75, 100, 127)
SAMPLE_RATE = 16000
NOTE_SECONDS = 4.0
HOLD_SECONDS = 3.0
# A rendered note whose peak stays below this (-80 dBFS) is treated as "no sample at this key".
SILENCE_PEAK = 1e-4


@dataclasses.dataclass
class RenderReport:
    rendered: int
    skipped: list[dict]
    seconds: float


def _write_midi(path: Path, *, program: int, pitch: int, velocity: int, hold: float, seconds: float) -> None:
    import mido

    ticks = 480  # per beat; tempo 120 bpm -> 960 ticks a second
    mid = mido.MidiFile(ticks_per_beat=ticks)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))
    track.append(mido.Message("program_change", program=program, channel=0, time=0))
    track.append(mido.Message("note_on", note=pitch, velocity=velocity, channel=0, time=0))
    track.append(mido.Message("note_off", note=pitch, velocity=0, channel=0, time=int(round(hold * 960))))
    track.append(mido.MetaMessage("end_of_track", time=int(round((seconds - hold) * 960))))
    mid.save(path)


def render_note(font: Path, *, program: int, pitch: int, velocity: int, fluidsynth: str = "fluidsynth",
                hold: float = HOLD_SECONDS, seconds: float = NOTE_SECONDS) -> np.ndarray:
    """Render one note with FluidSynth (key held ``hold`` s), downmixed to mono and trimmed/padded to
    ``seconds`` at 16 kHz (NSynth's 3 s hold in a 4 s note by default).

    Returns
    -------
    np.ndarray [shape=(round(seconds * 16000),), dtype=float32]
    """
    import soundfile as sf

    if not 0 < hold < seconds:
        raise ParameterError(f"render_note: need 0 < hold < seconds, got hold={hold!r}, seconds={seconds!r}")
    n = int(round(seconds * SAMPLE_RATE))
    with tempfile.TemporaryDirectory(prefix="melsynth-sf-") as tmp:
        mid, wav = Path(tmp) / "note.mid", Path(tmp) / "note.wav"
        _write_midi(mid, program=program, pitch=pitch, velocity=velocity, hold=hold, seconds=seconds)
        # Absolute paths: a font named `-Fx.sf2` once reached fluidsynth as its option -F (write to x.sf2).
        # Dynamic sample loading reads only the samples the note plays, not the whole font: FluidR3_GM
        # (141 MB) renders a note in 0.31 s instead of 0.60 s on the 2-core machine under load, and the
        # audio is the same (6 notes of FluidR3 at keys 36-84: 5 identical, one 1 LSB apart).
        cmd = [fluidsynth, "-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-o", "synth.dynamic-sample-loading=1",
               "-F", str(wav),
               "-r", str(SAMPLE_RATE), "-T", "wav", str(Path(font).absolute()), str(mid)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if proc.returncode != 0 or not wav.exists():
            raise ExternalToolError(
                f"fluidsynth failed on {font.name} program {program} velocity {velocity}: "
                f"{(proc.stderr or proc.stdout).strip()[:200]}"
            )
        y, sr = sf.read(wav, dtype="float32", always_2d=True)
    if sr != SAMPLE_RATE:
        raise ExternalToolError(f"fluidsynth wrote {sr} Hz instead of {SAMPLE_RATE} Hz")
    y = y.mean(axis=1)[:n]
    return np.pad(y, (0, n - y.size)).astype(np.float32)


def _check_inputs(fonts: list[Path], pitches: list[int], velocities: list[int], programs: list[int]) -> str:
    exe = shutil.which("fluidsynth")
    if exe is None:
        raise ExternalToolError("fluidsynth: program not found (Debian: apt-get install fluidsynth)")
    if not fonts:
        raise ParameterError("no SoundFont given")
    for font in fonts:
        if not font.is_file():
            raise DataError(f"{font}: SoundFont not found (Debian: fluid-soundfont-gm, timgm6mb-soundfont)")
        with open(font, "rb") as fh:
            head = fh.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"sfbk":
            raise DataError(f"{font}: not a SoundFont 2 file")
    bad = [p for p in pitches if not 0 <= p <= 127]
    if bad or not pitches:
        raise ParameterError(f"pitches {pitches}: each must be a MIDI key 0..127")
    bad = [v for v in velocities if not 1 <= v <= 127]
    if bad or not velocities:
        raise ParameterError(f"velocities {velocities}: each must be 1..127")
    bad = [p for p in programs if not 0 <= p <= 127]
    if bad or not programs:
        raise ParameterError(f"programs {programs}: each must be 0..127")
    return exe


def render_soundfont_dataset(
    *, fonts: list[Path] | tuple[Path, ...] = DEFAULT_FONTS, out: Path, pitch: int | list[int] | tuple[int, ...] = 60,
    velocities: list[int] | tuple[int, ...] = DEFAULT_VELOCITIES, programs: list[int] | None = None,
    workers: int | None = None, force: bool = False, progress: bool = True,
) -> RenderReport:
    """Render every (font, program, pitch, velocity) into an NSynth-format folder ``out``.

    ``pitch`` is one MIDI key or several: notes of one (font, program) at every pitch are one instrument,
    so an instrument split keeps them together (more pitches give a model more of each timbre to learn
    from; the engine itself plays one base pitch and transposes it).

    The folder appears complete or not at all (rendered in a temporary folder, then renamed). Notes that
    render silent are skipped and listed in ``out/render_report.json``.
    """
    import time

    from tqdm import tqdm

    fonts = [Path(f) for f in fonts]
    programs = list(range(128)) if programs is None else list(programs)
    velocities = list(velocities)
    pitches = [pitch] if isinstance(pitch, int) else list(pitch)
    exe = _check_inputs(fonts, pitches, velocities, programs)
    out = Path(out)
    # The fonts are inputs: --out --force may not replace a folder that holds one.
    check_output_folder(out, kind=NSYNTH_DATASET, force=force, inputs=fonts)
    start = time.perf_counter()

    # Instruments are numbered in (font, program) order, per (family, source) like NSynth's NNN.
    counters: dict[tuple[str, str], int] = {}
    jobs = []
    for font_index, font in enumerate(fonts):
        for program in programs:
            name, family, source = GM_PROGRAMS[program]
            instrument_index = counters.get((family, source), 0)
            counters[(family, source)] = instrument_index + 1
            instrument_id = font_index * 128 + program
            for note_pitch in pitches:
                for velocity in velocities:
                    jobs.append((font, program, name, family, source, instrument_index, instrument_id,
                                 note_pitch, velocity))

    workers = workers or max(2, 2 * (os.cpu_count() or 1))
    examples: dict[str, dict] = {}
    skipped: list[dict] = []
    with atomic_directory(out, kind=NSYNTH_DATASET, force=force, inputs=fonts) as tmp:
        (tmp / "audio").mkdir()

        def work(job):
            font, program, name, family, source, instrument_index, instrument_id, note_pitch, velocity = job
            y = render_note(font, program=program, pitch=note_pitch, velocity=velocity, fluidsynth=exe)
            record = make_example(
                family=family, source=source, instrument_index=instrument_index, instrument_id=instrument_id,
                note_id=0, pitch=note_pitch, velocity=velocity, sample_rate=SAMPLE_RATE,
                dataset_source="soundfont", soundfont=font.name, program=program, program_name=name,
            )
            peak = float(np.max(np.abs(y)))
            if peak < SILENCE_PEAK:
                return record, None, peak
            write_note_audio(tmp / "audio" / f"{record['note_str']}.wav", y, sample_rate=SAMPLE_RATE)
            return record, True, peak

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            results = pool.map(work, jobs)
            for record, ok, peak in tqdm(results, total=len(jobs), desc="rendering", unit="note",
                                         disable=not progress):
                if ok:
                    examples[record["note_str"]] = record
                else:
                    skipped.append({"note_str": record["note_str"], "soundfont": record["soundfont"],
                                    "program": record["program"], "program_name": record["program_name"],
                                    "pitch": record["pitch"], "velocity": record["velocity"], "peak": peak,
                                    "reason": "silent"})
        if not examples:
            raise DataError(f"every note rendered silent at pitches {pitches}: nothing to write")
        for i, key in enumerate(sorted(examples)):
            examples[key]["note"] = i
        write_examples(tmp, examples)
        seconds = time.perf_counter() - start
        atomic_write_text(tmp / "render_report.json", json.dumps(
            {"fonts": [str(f) for f in fonts], "pitches": pitches, "velocities": velocities,
             "programs": programs, "rendered": len(examples), "skipped": skipped,
             "seconds": round(seconds, 1)}, indent=1) + "\n")
    return RenderReport(len(examples), skipped, seconds)
