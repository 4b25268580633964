"""Offline rendering and the preset workflow: notes and scores to WAV files, audio files to presets.

The renderer drives the very :class:`~synth.engine.Engine` the live engine plays (same voices, inverters
and limiter), with inline decoding, so a render is what would have been heard and the same input always
gives the same samples.

- :mod:`.timeline`: timed commands on an engine, rendered until it falls silent
- :mod:`.note`: one note of a preset (:func:`render_note`)
- :mod:`.score`: scores, i.e. timed OSC messages, checked as a whole (:func:`load_score`)
- :mod:`.performance`: a score on an engine (:func:`render_score`)
- :mod:`.live_replay`: the same messages through the live engine's threads, on a stepped clock
- :mod:`.wav`: atomic 24-bit / float WAV writing, with a last full-scale guard
- :mod:`.plot`: the decoded log-mel beside the render's
- :mod:`.encode`: audio files -> a latent (:func:`encode_audio_files`)
- :mod:`.capture`: the latent a score had at a moment, to keep as a preset (:func:`capture_latent`)
"""

from synth.render.capture import Capture, capture_latent
from synth.render.encode import Encoding, encode_audio_files, read_audio_for_model
from synth.render.note import NoteRender, render_note
from synth.render.performance import ScoreRender, render_score, score_engine
from synth.render.score import Score, ScoreEntry, load_score, parse_score, score_spec
from synth.render.timeline import TimelineResult, iter_timeline, render_timeline, sample_of
from synth.render.wav import FORMATS, open_wav, write_wav

__all__ = [
    "FORMATS",
    "Capture",
    "Encoding",
    "NoteRender",
    "Score",
    "ScoreEntry",
    "ScoreRender",
    "TimelineResult",
    "capture_latent",
    "encode_audio_files",
    "iter_timeline",
    "load_score",
    "open_wav",
    "parse_score",
    "read_audio_for_model",
    "render_note",
    "render_score",
    "render_timeline",
    "sample_of",
    "score_engine",
    "score_spec",
    "write_wav",
]
