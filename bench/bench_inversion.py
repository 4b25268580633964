"""Streaming inversion against librosa.griffinlim: synth.benchmarks.suites.inversion, --features read by training.benchmarks."""

import sys

from synth.benchmarks.suites.inversion import main
from training.benchmarks import real_notes

if __name__ == "__main__":
    sys.exit(main(load_real_notes=real_notes))
