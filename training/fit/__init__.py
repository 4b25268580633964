"""Fit one autoencoder variant on a features folder, into a resumable run folder.

Run folder layout (``out``)::

    config.json          {"format", "config": ModelConfig, "spectrogram": contract, "data": features
                          description, "fit": {limit, mixed_precision, train_notes, devices, ...}}
    history.csv          epoch, loss, val_loss, seconds, learning_rate (one row per finished epoch)
    best.weights.h5      autoencoder weights of the best validation epoch (Keras .weights.h5)
    status.json          epochs_done, best_epoch, best_val_loss, stopped ("running", "early_stopping",
                          "max_epochs", "non_finite_loss"), best_weights_sha256, seconds_per_epoch
    checkpoints/epoch-NNNN/   weights.weights.h5, optimizer.npz, state.json, checksums.json
                          (the last ``KEEP_CHECKPOINTS`` epochs while it trains, the newest once it
                          has stopped; each folder appears atomically)
    metrics.json         test-split metrics from synth.metrics.summary, when that module is available

Exact resume: a checkpoint holds the weights, every optimizer variable (Adam moments and step count), the
epoch, the early-stopping state and the history. The rest of the randomness is a pure function of
(seed, epoch) (:mod:`training.fit.epoch`). So a run stopped or killed after epoch k and resumed ends with the
same weights as an uninterrupted run with the same seed on CPU. TensorFlow's CPU kernels gave
bitwise-identical weights run to run here without op determinism; ``FitOptions(deterministic=True)`` switches
on ``tf.config.experimental.enable_op_determinism()`` (a guarantee rather than an observation, at about 1.5-2x
the CPU step time measured here, and needed on GPU).

One idea a module:

    fitting      fit(): check everything, then build the models and train
    options      FitOptions, the choices of one fit
    resolve      new or resumed run, its config, data and starting checkpoint, checked before anything is written
    devices      GPUs, distribution strategy (MultiWorkerMirroredStrategy from TF_CONFIG), XLA, precision policy
    notes        the training rows, each epoch's order, the tf.data note source, each replica's pieces
    models       build, compile and start the models (init_from, a fitted start)
    steps        the train and validation steps, one pair for every tf.distribute strategy
    epoch        one epoch, a pure function of (seed, epoch)
    stopping     the stopping rule: early stopping, the plateau schedule, the epoch bound (no TensorFlow)
    loop         the epoch loop
    checkpoints  checkpoint folders and the training state they carry
    weights      loading weights files whole
    run_lock     one writer per run folder
    run_folder   config.json, history.csv, status.json
    metrics      metrics.json

TensorFlow is imported only inside the functions that need it, so importing this package is cheap.
"""

from __future__ import annotations

from training.fit.checkpoints import KEEP_CHECKPOINTS, TrainingState, latest_checkpoint, read_checkpoint_state
from training.fit.devices import XLA_CHOICES, use_xla
from training.fit.fitting import fit
from training.fit.notes import NoteSource, epoch_order, note_pitches, training_rows
from training.fit.options import FitOptions
from training.fit.run_folder import RUN_FORMAT
from training.fit.stopping import Stop, StoppingRule, StoppingState, Verdict
from training.fit.weights import load_weights_whole

__all__ = ["fit", "FitOptions", "NoteSource", "load_weights_whole", "RUN_FORMAT", "KEEP_CHECKPOINTS", "XLA_CHOICES",
           "latest_checkpoint", "read_checkpoint_state", "training_rows", "note_pitches", "epoch_order", "use_xla",
           "Stop", "StoppingRule", "StoppingState", "Verdict", "TrainingState"]
