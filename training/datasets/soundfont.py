"""Render an NSynth-format dataset from General MIDI SoundFonts with FluidSynth.

Every (font, program, velocity) becomes one 4 s note at 16 kHz: the key is held 3 s and released for 1 s,
reverb and chorus off (NSynth's notes are dry). Each (font, program) is one instrument, filed under an NSynth
family by :mod:`training.datasets.general_midi`; the record keeps the font and program. Programs that are
silent at the chosen key (a font without a sample there) are skipped and reported, not fatal. A render
stopped part-way resumes (:func:`render_soundfont_dataset`, ``resume``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import queue
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from synth.atomic import atomic_write_bytes, atomic_write_text
from synth.data.nsynth_format import make_example, write_examples
from synth.errors import DataError, ExternalToolError, ParameterError
from synth.outputs import NSYNTH_DATASET, check_output_folder
from training.datasets.general_midi import GM_PROGRAMS
from training.datasets.partial import disk_full_is_said, open_partial, publish_partial

__all__ = ["DEFAULT_FONTS", "DEFAULT_VELOCITIES", "render_soundfont_dataset", "RenderReport", "render_note",
           "JOURNAL"]

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
# Dynamic sample loading reads only the samples the note plays, not the whole font: FluidR3_GM (141 MB)
# renders a note in 0.31 s instead of 0.60 s on the 2-core machine under load, and the audio is the same
# (6 notes of FluidR3 at keys 36-84: 5 identical, one 1 LSB apart). Reverb and chorus off, gain 1.
FLUIDSYNTH_OPTIONS = ("-ni", "-q", "-R", "0", "-C", "0", "-g", "1.0", "-o", "synth.dynamic-sample-loading=1")
# A note takes well under a second; a fluidsynth still running after this is stuck (it is killed).
FLUIDSYNTH_TIMEOUT = 60
# The plan a partial render records; a change to what a note is made of bumps it.
RENDER_PLAN_FORMAT = "melsynth.soundfont-render/1"
# In OUT.partial: one JSON line per finished note (its WAV's SHA-256, or null when silent, and its peak).
JOURNAL = "rendered.jsonl"


@dataclasses.dataclass
class RenderReport:
    rendered: int
    skipped: list[dict]
    seconds: float
    kept: int = 0  # notes an earlier, stopped run had finished (resume)


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
        cmd = [fluidsynth, *FLUIDSYNTH_OPTIONS, "-F", str(wav),
               "-r", str(SAMPLE_RATE), "-T", "wav", str(Path(font).absolute()), str(mid)]
        # Tried twice: on the 2-core machine another job's quiet window SIGSTOPs every python and fluidsynth
        # for up to 10 minutes, and a note caught in one times out though nothing is wrong with it. A
        # fluidsynth that times out twice is stuck: a typed error (it was a TimeoutExpired traceback).
        for attempt in (1, 2):
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, timeout=FLUIDSYNTH_TIMEOUT)
                break
            except subprocess.TimeoutExpired:
                if attempt == 2:
                    raise ExternalToolError(
                        f"fluidsynth took more than {FLUIDSYNTH_TIMEOUT} s on {Path(font).name} program {program} "
                        f"pitch {pitch} velocity {velocity}, twice") from None
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


@dataclasses.dataclass(frozen=True)
class _Job:
    """One note to render and the examples.json record it gets."""

    font: Path
    program: int
    pitch: int
    velocity: int
    record: dict

    @property
    def note_str(self) -> str:
        return self.record["note_str"]


def _jobs(fonts: list[Path], programs: list[int], pitches: list[int], velocities: list[int]) -> list[_Job]:
    """Every (font, program, pitch, velocity) in render order, with its record. Instruments are numbered in
    (font, program) order, per (family, source) like NSynth's NNN."""
    counters: dict[tuple[str, str], int] = {}
    jobs = []
    for font_index, font in enumerate(fonts):
        for program in programs:
            name, family, source = GM_PROGRAMS[program]
            instrument_index = counters.get((family, source), 0)
            counters[(family, source)] = instrument_index + 1
            for note_pitch in pitches:
                for velocity in velocities:
                    record = make_example(
                        family=family, source=source, instrument_index=instrument_index,
                        instrument_id=font_index * 128 + program, note_id=0, pitch=note_pitch, velocity=velocity,
                        sample_rate=SAMPLE_RATE, dataset_source="soundfont", soundfont=font.name, program=program,
                        program_name=name,
                    )
                    jobs.append(_Job(font, program, note_pitch, velocity, record))
    return jobs


def _fluidsynth_version(exe: str) -> str:
    """FluidSynth's version line: another version may render other samples, so a resume checks it."""
    try:
        proc = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ExternalToolError(f"fluidsynth --version failed: {exc}") from None
    lines = (proc.stdout or "").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise ExternalToolError(f"fluidsynth --version failed: {(proc.stderr or proc.stdout).strip()[:200]}")
    return lines[0].strip()


def _plan(fonts: list[Path], *, exe: str, programs: list[int], pitches: list[int],
          velocities: list[int]) -> dict:
    """What a render makes, as its partial folder records it: a resume continues only the same plan. Fonts
    by name (what the records keep) and content (SHA-256: a font replaced under the same name renders other
    notes); the note's timing, rate, silence threshold, FluidSynth's options and version."""
    from training.datasets.features import sha256_file

    return {
        "format": RENDER_PLAN_FORMAT,
        "fonts": [{"name": f.name, "bytes": f.stat().st_size, "sha256": sha256_file(f)} for f in fonts],
        "programs": programs, "pitches": pitches, "velocities": velocities,
        "sample_rate": SAMPLE_RATE, "note_seconds": NOTE_SECONDS, "hold_seconds": HOLD_SECONDS,
        "silence_peak": SILENCE_PEAK, "fluidsynth": _fluidsynth_version(exe), "options": list(FLUIDSYNTH_OPTIONS),
    }


def _note_wav(y: np.ndarray) -> bytes:
    """The note's WAV file as :func:`synth.data.nsynth_format.write_note_audio` writes it (16-bit PCM mono),
    in memory: its SHA-256 goes in the journal without reading the file back."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(y, -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16", format="WAV")
    return buffer.getvalue()


def _render_job(job: _Job, *, audio: Path, exe: str) -> dict:
    """Render ``job`` and write its WAV into ``audio`` (not when silent); return its journal entry."""
    y = render_note(job.font, program=job.program, pitch=job.pitch, velocity=job.velocity, fluidsynth=exe)
    peak = float(np.max(np.abs(y)))
    if peak < SILENCE_PEAK:
        return {"note_str": job.note_str, "peak": peak, "sha256": None}
    data = _note_wav(y)
    atomic_write_bytes(audio / f"{job.note_str}.wav", data)
    return {"note_str": job.note_str, "peak": peak, "sha256": hashlib.sha256(data).hexdigest()}


def _notes_kept(work: Path, names: set[str], *, progress: bool = False) -> dict[str, dict]:
    """The journal's notes of ``names`` that an earlier run finished and whose files are intact: a silent
    note as recorded, a written one only when its WAV still has the recorded SHA-256 (a truncated, changed
    or missing file is rendered again). A line cut short by a kill is dropped, as is anything unreadable.
    The check reads every kept WAV (7 s for 21,760 notes from the page cache): ``progress`` shows it."""
    from tqdm import tqdm

    path = work / JOURNAL
    kept: dict[str, dict] = {}
    if not path.is_file():
        return kept
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in tqdm(fh, desc="checking the notes kept", unit="note", disable=not progress):
            try:
                entry = json.loads(line)
                name, peak, digest = entry["note_str"], float(entry["peak"]), entry["sha256"]
            except (ValueError, TypeError, KeyError):
                continue
            if name not in names or not (digest is None or isinstance(digest, str)):
                continue
            if digest is not None:
                try:
                    data = (work / "audio" / f"{name}.wav").read_bytes()
                except OSError:
                    continue
                if hashlib.sha256(data).hexdigest() != digest:
                    continue
            kept[name] = {"note_str": name, "peak": peak, "sha256": digest}
    return kept


def render_soundfont_dataset(
    *, fonts: list[Path] | tuple[Path, ...] = DEFAULT_FONTS, out: Path, pitch: int | list[int] | tuple[int, ...] = 60,
    velocities: list[int] | tuple[int, ...] = DEFAULT_VELOCITIES, programs: list[int] | None = None,
    workers: int | None = None, force: bool = False, progress: bool = True, resume: bool = False,
) -> RenderReport:
    """Render every (font, program, pitch, velocity) into an NSynth-format folder ``out``.

    ``pitch`` is one MIDI key or several: notes of one (font, program) at every pitch are one instrument,
    so an instrument split keeps them together (more pitches give a model more of each timbre to learn
    from; the engine itself plays one base pitch and transposes it).

    Notes that render silent are skipped and listed in ``out/render_report.json``. The folder is built in
    ``OUT.partial`` (:mod:`training.datasets.partial`) and renamed to ``out`` when complete: each note's
    WAV is written there as it is rendered, and a journal (``rendered.jsonl``) records every finished note
    with its WAV's SHA-256 (silent ones with their peak). A run that stops (Ctrl-C, SIGTERM, an error, a
    full disk) leaves that folder; ``resume=True`` continues it for the same plan (fonts and their contents,
    programs, pitches, velocities, note timing, FluidSynth), rendering only the notes not finished intact,
    and ends with the folder an uninterrupted run makes; ``force=True`` starts again.
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
    jobs = _jobs(fonts, programs, pitches, velocities)
    plan = _plan(fonts, exe=exe, programs=programs, pitches=pitches, velocities=velocities)
    work = open_partial(out, plan=plan, resume=resume, force=force, what="partial render")
    audio = work / "audio"
    audio.mkdir(exist_ok=True)
    done = _notes_kept(work, {job.note_str for job in jobs}, progress=progress and resume)
    kept = len(done)
    # The journal rewritten with what is kept: a line cut short by a kill would glue onto the next one.
    atomic_write_text(work / JOURNAL, "".join(json.dumps(entry) + "\n" for entry in done.values()))
    todo = [job for job in jobs if job.note_str not in done]
    workers = workers or max(2, 2 * (os.cpu_count() or 1))
    bar = tqdm(total=len(jobs), initial=kept, desc="rendering", unit="note", disable=not progress)
    try:
        with disk_full_is_said(work, "a note", kept="the notes rendered before"), \
                open(work / JOURNAL, "a", encoding="utf-8") as journal:

            # Workers append what they finish to `rendered` (one append, atomic) and wake the main thread
            # through a SimpleQueue, which journals rendered[journaled:]: a stop that lands anywhere in the
            # main thread leaves every finished note in the list, for the journal before it raises. The main
            # thread waits in the queue's C lock, which a signal interrupts cleanly; as_completed's pure-Python
            # Condition.wait, hit by `timeout`'s second SIGTERM (it signals the command, then its process
            # group), once ended in "RuntimeError: release unlocked lock" and a traceback.
            rendered: list[dict] = []
            failed: list[BaseException] = []
            wake: queue.SimpleQueue = queue.SimpleQueue()
            journaled = [0]

            def render(job: _Job) -> None:
                try:
                    rendered.append(_render_job(job, audio=audio, exe=exe))
                except BaseException as exc:  # any failure goes to the main thread, which raises it
                    failed.append(exc)
                finally:
                    wake.put(None)

            def journal_new() -> None:
                while journaled[0] < len(rendered):
                    entry = rendered[journaled[0]]
                    # One line a note, flushed: a stop loses at most the notes being rendered.
                    journal.write(json.dumps(entry) + "\n")
                    journal.flush()
                    done[entry["note_str"]] = entry
                    journaled[0] += 1
                    bar.update(1)

            pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
            try:
                for job in todo:
                    pool.submit(render, job)
                for _ in todo:
                    wake.get()
                    journal_new()
                    if failed:
                        raise failed[0]
            except BaseException:
                # A stop or an error: the notes not begun are dropped and the few being rendered finish
                # (each fluidsynth ends within its timeouts), so no process outlives the command; every note
                # that did finish is journaled.
                pool.shutdown(wait=True, cancel_futures=True)
                with contextlib.suppress(OSError):
                    journal_new()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
    except ExternalToolError as exc:
        raise ExternalToolError(f"{exc}; the notes rendered before are kept in {work}: run again with --resume "
                                "to continue") from None
    finally:
        bar.close()

    examples: dict[str, dict] = {}
    skipped: list[dict] = []
    for job in jobs:
        entry, record = done[job.note_str], job.record
        if entry["sha256"] is not None:
            examples[job.note_str] = dict(record)
        else:
            skipped.append({"note_str": record["note_str"], "soundfont": record["soundfont"],
                            "program": record["program"], "program_name": record["program_name"],
                            "pitch": record["pitch"], "velocity": record["velocity"], "peak": entry["peak"],
                            "reason": "silent"})
    if not examples:
        shutil.rmtree(work, ignore_errors=True)
        raise DataError(f"every note rendered silent at pitches {pitches}: nothing to write")
    for i, key in enumerate(sorted(examples)):
        examples[key]["note"] = i
    # Only the notes kept: a WAV left by a note rendered again, or a temporary file of a killed run, goes.
    wanted = {f"{name}.wav" for name in examples}
    for path in [*audio.iterdir(), *work.glob(".*.tmp")]:
        if path.name not in wanted:
            path.unlink()
    with disk_full_is_said(work, "the index", kept="the notes rendered"):
        write_examples(work, examples)
        seconds = time.perf_counter() - start
        atomic_write_text(work / "render_report.json", json.dumps(
            {"fonts": [str(f) for f in fonts], "pitches": pitches, "velocities": velocities,
             "programs": programs, "rendered": len(examples), "skipped": skipped,
             "seconds": round(seconds, 1)}, indent=1) + "\n")
    (work / JOURNAL).unlink()  # last: a stop before here resumes with every note kept
    publish_partial(work, out, kind=NSYNTH_DATASET, force=force, inputs=fonts)
    return RenderReport(len(examples), skipped, seconds, kept=kept)
