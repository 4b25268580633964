"""Training throughput with and without XLA: training.benchmarks' command line."""

import sys

from training.benchmarks import main

if __name__ == "__main__":
    sys.exit(main())
