"""Offline rendering speed, one note per method on one core: synth.benchmarks.suites.render's command line."""

import sys

from synth.benchmarks.suites.render import main

if __name__ == "__main__":
    sys.exit(main())
