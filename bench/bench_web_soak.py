"""The soak with the page open and playing, beside the soak without it: synth.benchmarks.suites.web_soak's command line."""

import sys

from synth.benchmarks.suites.web_soak import main

if __name__ == "__main__":
    sys.exit(main())
