"""Note and timbre-change latency through JACK, measured from outside the engine: synth.benchmarks.suites.jack_latency's command line."""

import sys

from synth.benchmarks.suites.jack_latency import main

if __name__ == "__main__":
    sys.exit(main())
