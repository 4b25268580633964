"""Live-engine control latency, voices and memory: synth.benchmarks.suites.engine's command line."""

import sys

from synth.benchmarks.suites.engine import main

if __name__ == "__main__":
    sys.exit(main())
