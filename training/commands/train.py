"""``melsynth train``: fit an autoencoder variant on a features folder into a resumable run folder.

Examples::

    melsynth train --data features/soundfont --variant no_dense --out runs/no_dense
    melsynth train --data features/soundfont --config my.json --out runs/mine --max-epochs 50 --limit 500
    melsynth train --data features/soundfont --out runs/no_dense --resume      # continue after a kill
    melsynth train --data features/soundfont --out runs/no_dense --resume --learning-rate 3e-4 \
        --lr-patience 2 --patience 5 --max-epochs 60      # finish a run within an epoch budget
    melsynth train --data features/soundfont --out runs/two --workers 2 --global-batch 32   # 2 local workers
    TF_CONFIG='{"cluster": {"worker": ["a:2222", "b:2222"]}, "task": {"type": "worker", "index": 0}}' \
        melsynth train --data /shared/features --out /shared/runs/big          # one worker of a cluster
"""

from __future__ import annotations

import argparse

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, metavar="FEATURES_DIR", help="features folder to train on")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--config", metavar="CONFIG.json", help="a ModelConfig JSON file (name, layout, architecture, schedule: every field)")
    which.add_argument("--variant", metavar="NAME", help="a named row of the paper's tables (default no_dense)")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder to write (e.g. runs/NAME)")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    mode.add_argument("--force", action="store_true", help="replace an existing run folder")
    parser.add_argument("--max-epochs", type=int, metavar="N", help="override the config's epoch bound")
    parser.add_argument("--learning-rate", type=float, metavar="RATE",
                        help="Adam learning rate (on --resume: replaces the rate the run reached)")
    parser.add_argument("--patience", type=int, metavar="N",
                        help="early stopping after N epochs without a better validation loss")
    parser.add_argument("--lr-patience", type=int, metavar="N",
                        help="multiply the learning rate by --lr-factor after N epochs without a better "
                             "validation loss (0: never)")
    parser.add_argument("--lr-factor", type=float, metavar="F", help="learning-rate reduction factor in (0, 1)")
    parser.add_argument("--min-delta", type=float, metavar="F",
                        help="a validation loss must be this fraction lower than the best to reset the patience "
                             "counters (default 0: any improvement)")
    parser.add_argument("--clipnorm", type=float, metavar="NORM",
                        help="clip each gradient's norm to this (guards against a collapse of a long run)")
    parser.add_argument("--init-from", metavar="RUN_DIR",
                        help="start a new run from this run's best weights (same architecture): fine-tuning, or "
                             "restarting a run that diverged")
    parser.add_argument("--start-from", metavar="BUNDLE",
                        help="a home-key model keeps this one-pitch patch bundle's trained maps at its home key "
                             "(its presets then sound there as in that bundle) and fits its key maps to them")
    parser.add_argument("--limit", type=int, metavar="N", help="train on at most N notes (a seeded subset)")
    parser.add_argument("--mixed-precision", action="store_true", help="mixed precision: float16 on a GPU, bfloat16 on a CPU with AMX or AVX512-BF16 (refused on other CPUs)")
    parser.add_argument("--seed", type=int, metavar="N", help="override the config's seed")
    parser.add_argument("--deterministic", action="store_true",
                        help="TensorFlow op determinism (bitwise-reproducible, ~1.5-2x slower on CPU)")
    parser.add_argument("--xla", choices=("auto", "on", "off"), default="auto",
                        help="compile the train step with XLA: auto (default) is off on the CPU, where it is "
                             "measured slower, and on with a GPU")
    parser.add_argument("--global-batch", type=int, metavar="N",
                        help="notes per step over all replicas and workers (default: the config's batch_size)")
    parser.add_argument("--input-parallelism", type=int, metavar="N",
                        help="batches each worker's input pipeline reads at once and prefetches (default 2)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="run N workers of this run on this machine (loopback ports; worker 0 writes --out): "
                             "a try-out of training on several machines, which TF_CONFIG sets up (see README)")
    parser.add_argument("--connect-timeout", type=float, metavar="SECONDS",
                        help="how long a worker of a cluster waits for the others to start (default 300)")
    parser.add_argument("--quiet", action="store_true", help="one line per epoch instead of a progress bar")


def _without_workers(argv: list[str]) -> list[str]:
    """``melsynth train``'s own arguments less ``--workers N``: what each local worker is started with."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workers":
            skip = True
        elif not arg.startswith("--workers="):
            out.append(arg)
    return out


def run(args: argparse.Namespace) -> int:
    import os
    import sys

    from synth.errors import ParameterError

    if args.workers is not None:
        from training.cluster.launcher import launch_local_workers

        argv = sys.argv[sys.argv.index("train") + 1:] if "train" in sys.argv else []
        return launch_local_workers(args.workers, _without_workers(argv))
    from training.quiet_tensorflow import import_tensorflow

    # A worker of a cluster takes no warm-up step: TensorFlow's context must still be unset for the strategy.
    import_tensorflow(training=not os.environ.get("TF_CONFIG"))
    from training.model.config import ModelConfig, default_config, variant

    config: ModelConfig | None
    if args.config:
        config = ModelConfig.load(args.config)
    elif args.variant:
        config = variant(args.variant)
    elif args.resume:
        config = None  # the run's own config.json
    else:
        config = default_config()
    if args.seed is not None:
        if config is None:
            raise ParameterError("--seed cannot change a resumed run's seed")
        config = config.with_schedule(seed=args.seed)

    from training.fit import FitOptions, fit
    from training.model.schedule import RESUMABLE_FIELDS

    # Each schedule flag is named after the FitSchedule field it overrides (--lr-factor: lr_factor); --seed
    # and --global-batch set the two fields a resumed run keeps, so they change the config instead.
    schedule = {key: getattr(args, key) for key in RESUMABLE_FIELDS if getattr(args, key) is not None}
    options = FitOptions(
        resume=args.resume, force=args.force, schedule=schedule, limit=args.limit,
        mixed_precision=args.mixed_precision, verbose=2 if args.quiet else 1, deterministic=args.deterministic,
        xla=args.xla, init_from=args.init_from, start_from=args.start_from, global_batch=args.global_batch,
        **({} if args.input_parallelism is None else {"input_parallelism": args.input_parallelism}),
        **({} if args.connect_timeout is None else {"connect_timeout": args.connect_timeout}),
    )
    out = fit(features=args.data, config=config, out=args.out, options=options)
    import json

    status = json.loads((out / "status.json").read_text())
    print(
        f"melsynth train: {out}: {status['epochs_done']} epochs, best epoch {status['best_epoch']} "
        f"(val loss {status['best_val_loss']:.5f}), stopped by {status['stopped']}"
    )
    return 0
