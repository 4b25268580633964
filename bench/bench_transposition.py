"""Playing the key-60 note at other keys against FluidSynth's real notes there: synth.benchmarks.suites.transposition,
the real notes rendered by training.datasets.soundfont.render_note.

Usage: .venv/bin/python bench/bench_transposition.py [--programs 0,24,40] [--json]
"""

import sys

from synth.benchmarks.suites.transposition import main
from training.datasets.soundfont import DEFAULT_FONTS, render_note

if __name__ == "__main__":
    sys.exit(main(real_note=render_note, fonts=DEFAULT_FONTS))
