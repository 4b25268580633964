"""The long OSC fuzz at a running engine: synth.benchmarks.suites.fuzz's command line."""

import sys

from synth.benchmarks.suites.fuzz import main

if __name__ == "__main__":
    sys.exit(main())
