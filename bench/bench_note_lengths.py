"""Notes of any length and preset loudness against FluidSynth's own notes: synth.benchmarks.suites.note_lengths,
the real notes rendered by training.datasets.soundfont.render_note.

Usage: .venv/bin/python bench/bench_note_lengths.py [--bundle presets/default] [--limit N] [--json]
"""

import sys

from synth.benchmarks.suites.note_lengths import main
from training.datasets.soundfont import DEFAULT_FONTS, render_note

if __name__ == "__main__":
    sys.exit(main(real_note=render_note, fonts=DEFAULT_FONTS))
