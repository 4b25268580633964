"""One worker of the distributed tests (tests/test_distributed.py), run as its own process: fit() a tiny model
with the cluster TF_CONFIG names (or on one machine without it).

    python distributed_worker.py FEATURES OUT DUMP [--resume] [--kill-after-epoch K] [--eager]
        [--epochs N] [--connect-timeout S]

After each epoch's checkpoint the worker's weights go to ``DUMP`` (an .npz, rewritten each epoch), so the
test can compare what every worker holds; ``--kill-after-epoch K`` makes the worker SIGKILL itself right after
epoch K's checkpoint, a worker dying mid-run.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from training_fixtures import small_config  # noqa: E402

#: no dropout: the pieces of a global batch draw their masks per replica, so only a dropout-free model can
#: equal a single worker's run.
CONFIG = dict(name="no_dense", batch_size=8, patience=50)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("features")
    parser.add_argument("out")
    parser.add_argument("dump")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-after-epoch", type=int)
    parser.add_argument("--eager", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--connect-timeout", type=float, default=60.0)
    args = parser.parse_args()

    import training.fit.loop as loop
    from synth.errors import MelsynthError
    from training.fit import FitOptions, fit

    write = loop.write_checkpoint

    def dumped(run, model, optimizer, state, **kw):
        # What this worker holds after the epoch, whichever folder it writes.
        state = write(run, model, optimizer, state, **kw)
        np.savez(args.dump + ".tmp.npz", *model.get_weights())
        os.replace(args.dump + ".tmp.npz", args.dump)
        if args.kill_after_epoch == state.stopping.epochs_done:
            os.kill(os.getpid(), signal.SIGKILL)
        return state

    loop.write_checkpoint = dumped
    config = small_config(**CONFIG, max_epochs=args.epochs)
    options = FitOptions(verbose=0, run_eagerly=args.eager, resume=args.resume, connect_timeout=args.connect_timeout)
    try:
        fit(features=args.features, config=None if args.resume else config, out=args.out, options=options)
    except MelsynthError as exc:
        print(f"ERROR {type(exc).__name__}: {exc}", flush=True)
        return 2
    print("DONE", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
