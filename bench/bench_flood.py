"""OSC floods beside a 16-voice chord (underflows, commands dropped, reply bytes per request byte):
synth.benchmarks.suites.flood's command line."""

import sys

from synth.benchmarks.suites.flood import main

if __name__ == "__main__":
    sys.exit(main())
