"""Every benchmark into docs/BENCHMARKS.md (what `make bench` runs): `melsynth bench --all` with these flags."""

import sys

from synth.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", "--all", *sys.argv[1:]]))
