"""Epoch time of training.fit.fit in two source trees, alternating runs: training.fit_tree_comparison's command line."""

import sys

from training.fit_tree_comparison import main

if __name__ == "__main__":
    sys.exit(main())
