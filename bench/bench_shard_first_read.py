"""What the first read of a many-shard features set costs (issue 32): training.shard_first_read_bench's
command line (its docstring says how to run it)."""

import sys

from training.shard_first_read_bench import main

if __name__ == "__main__":
    sys.exit(main())
