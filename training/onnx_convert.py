"""A Keras model -> ONNX bytes with named input/output and a dynamic batch axis (tf2onnx)."""

from __future__ import annotations

from typing import Any

from synth.bundle.runtime import PITCH_INPUT
from synth.errors import BundleError

__all__ = ["keras_to_onnx", "OPSET"]

OPSET = 17


def keras_to_onnx(
    model: Any, *, input_name: str, input_shape: tuple[int | None, ...], output_name: str, doc: str = "",
    pitch: bool = False,
) -> bytes:
    """Convert ``model`` (one input of shape (batch, *input_shape), one float32 output) to ONNX; with
    ``pitch``, a model of a pitch-conditioned family whose second input is the MIDI key of each row, exported
    as the input ``synth.bundle.PITCH_INPUT``, int32 [batch, 1].

    The graph's input is called ``input_name`` with shape ``[batch, *input_shape]`` and its output
    ``output_name``; the batch axis is a named dynamic dimension "batch", and a None in ``input_shape`` (only
    a latent's column axis may be one) the dynamic dimension "columns". Opset :data:`OPSET`.
    """
    import tensorflow as tf
    import tf2onnx

    specs = [tf.TensorSpec([None, *input_shape], tf.float32, name=input_name)]
    if pitch:
        specs.append(tf.TensorSpec([None, 1], tf.int32, name=PITCH_INPUT))

    # A dict output gives the ONNX output its name; training=False freezes dropout/batch-norm behaviour.
    @tf.function(input_signature=specs)
    def forward(*inputs):
        return {output_name: model(list(inputs) if pitch else inputs[0], training=False)}

    try:
        proto, _ = tf2onnx.convert.from_function(forward, input_signature=specs, opset=OPSET)
    except Exception as exc:  # tf2onnx raises many unrelated types for unsupported graphs
        raise BundleError(
            f"tf2onnx could not convert {getattr(model, 'name', 'the model')} ({exc})"
        ) from None
    for value in (*proto.graph.input, *proto.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_param = "batch"
    if None in input_shape:  # a latent's time columns (synth.bundle.bundle.COLUMNS_DIM); nothing else may be
        if len(input_shape) != 3 or input_shape[1] is not None or input_name != "latent":
            raise BundleError(f"only a latent's column axis may be dynamic, got input {input_name} {input_shape}")
        proto.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "columns"
    names_in = [v.name for v in proto.graph.input]
    names_out = [v.name for v in proto.graph.output]
    want_in = [input_name, PITCH_INPUT] if pitch else [input_name]
    if names_in != want_in or names_out != [output_name]:
        raise BundleError(
            f"converted graph has inputs {names_in} and outputs {names_out}, expected {want_in} and [{output_name!r}]"
        )
    proto.producer_name = "melsynth.export"
    proto.doc_string = doc
    return proto.SerializeToString(deterministic=True)
