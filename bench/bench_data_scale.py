"""Features and training at 1,000 and 100,000 synthetic notes (issue 32): training.data_scale_bench's command
line. Usage: .venv/bin/python bench/bench_data_scale.py --notes 1000 100000"""

import sys

from training.data_scale_bench import main

if __name__ == "__main__":
    sys.exit(main())
