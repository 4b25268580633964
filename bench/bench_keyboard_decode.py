"""A keyboard bundle's decode per latent change (all trained keys, fewer keys, the timbres), beside a one-pitch
bundle's: synth.benchmarks.suites.keyboard_decode.

Usage: .venv/bin/python bench/bench_keyboard_decode.py --keyboard BUNDLE [--bundle presets/default]
"""

import sys

from synth.benchmarks.suites.keyboard_decode import main

if __name__ == "__main__":
    sys.exit(main())
