"""The soak: melsynth serve under random valid control (an hour by default): synth.benchmarks.suites.soak's command line."""

import sys

from synth.benchmarks.suites.soak import main

if __name__ == "__main__":
    sys.exit(main())
