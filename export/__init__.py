"""Export a trained run to a model bundle (TensorFlow, tf2onnx): ``melsynth export``.

- :mod:`export.parity`: ONNX against Keras on real and random inputs;
- :mod:`export.preset_notes`: which real notes become presets, and their names;
- :mod:`export.bundle_writer`: the whole export, written atomically and checked with the loader;
- :mod:`export.commands`: the console subcommand.

The bundle format itself is owned by :mod:`synth.bundle` (no TensorFlow there); a Keras model becomes ONNX
bytes in :mod:`training.onnx_convert`, which training's own timing benchmarks use too (export builds on
training, never the other way).
"""

__all__ = ["export_run"]


def export_run(*args, **kwargs):
    """See :func:`export.bundle_writer.export_run` (imported lazily: it needs TensorFlow)."""
    from export.bundle_writer import export_run as _export_run

    return _export_run(*args, **kwargs)
