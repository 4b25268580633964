"""onnxruntime sessions for a bundle's decoder and encoder.

The CUDA provider is used when onnxruntime lists it, else the CPU provider; ``.provider`` says which one
the session really runs on (onnxruntime silently falls back to CPU when a listed CUDA provider cannot start,
e.g. the GPU build on a machine without a GPU).
"""

from __future__ import annotations

import functools
import logging
import math
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from synth.errors import BundleError, ParameterError

__all__ = ["Decoder", "Encoder", "release_free_memory", "PITCH_INPUT", "pitch_column", "cuda_status", "cuda_usable", "default_providers", "make_session", "nvidia_driver"]

log = logging.getLogger("melsynth.bundle")

_CPU = "CPUExecutionProvider"
_CUDA = "CUDAExecutionProvider"


def nvidia_driver() -> str:
    """"" when an NVIDIA driver is loaded (its device files exist) or this is not Linux (where the probe
    session alone decides), else why there is none."""
    if sys.platform != "linux" or Path("/dev/nvidiactl").exists() or Path("/proc/driver/nvidia/version").exists():
        return ""
    return "no NVIDIA GPU driver on this machine (no /dev/nvidiactl)"


def _nvidia_wheels() -> list[str]:
    """The pip-installed CUDA libraries (nvidia-* distributions) of this environment."""
    from importlib import metadata

    return sorted({d.metadata["Name"] for d in metadata.distributions() if (d.metadata["Name"] or "").startswith("nvidia-")})


@functools.lru_cache(maxsize=1)
def cuda_status() -> tuple[bool, str]:
    """(whether onnxruntime's CUDA provider really starts a session, and if not, why not).

    The GPU build lists CUDA on every machine; without a GPU (or its libraries) a session falls back to
    CPU after printing errors. One tiny probe session, with onnxruntime's logging silenced, finds out once
    per process. CUDA libraries installed from PyPI (the ``gpu`` extra) are loaded first.
    """
    import onnxruntime as ort

    if _CUDA not in ort.get_available_providers():
        return False, f"this onnxruntime ({ort.__version__}) is built without CUDA: install onnxruntime-gpu"
    driver = nvidia_driver()
    if driver:
        return False, driver
    wheels = _nvidia_wheels()
    if wheels and hasattr(ort, "preload_dlls"):
        ort.preload_dlls()  # the nvidia-* wheels of the gpu extra
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "probe",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    ort.set_default_logger_severity(4)
    try:
        session = ort.InferenceSession(model.SerializeToString(), providers=[_CUDA, _CPU])
        if _CUDA in session.get_providers():
            return True, ""
        failure = "a CUDA session fell back to the CPU"
    except Exception as exc:  # any failure to start CUDA means: not usable
        failure = f"a CUDA session failed to start ({type(exc).__name__})"
    finally:
        ort.set_default_logger_severity(2)  # onnxruntime's default (warnings)
    if not wheels:
        return False, f"{failure}: CUDA/cuDNN libraries not found; pip install -e '.[gpu]'"
    return False, f"{failure} although a driver and the CUDA wheels are present (versions?)"


def cuda_usable() -> bool:
    """True when onnxruntime lists the CUDA provider and a session really starts on it (:func:`cuda_status`)."""
    return cuda_status()[0]


def default_providers() -> list[str]:
    """``[CUDA, CPU]`` when the CUDA provider is usable (:func:`cuda_usable`), else ``[CPU]``."""
    return [_CUDA, _CPU] if cuda_usable() else [_CPU]


def make_session(
    model: bytes, *, name: str, providers: Sequence[str] | None = None, threads: int | None = None,
    memory_arena: bool = True,
):
    """An ``onnxruntime.InferenceSession`` over the model bytes (already hash-checked by the loader).

    ``threads`` sets intra-op threads (None: onnxruntime's default, one per core). ``memory_arena`` False:
    each run's tensors are allocated and freed as they go, not kept in onnxruntime's arena for the next run
    (a session run a few times and dropped, whose memory the process should get back).
    """
    import onnxruntime as ort

    if threads is not None and (not isinstance(threads, int) or isinstance(threads, bool) or threads < 1):
        raise ParameterError(f"threads must be a positive integer, got {threads!r}")
    chosen = list(providers) if providers is not None else default_providers()
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the CPU fallback of the GPU build is expected, not a warning to show
    options.inter_op_num_threads = 1
    # onnxruntime's memory pattern preallocates every intermediate tensor of a run at once: 34 MiB more
    # resident memory for the default decoder (serve: 407 -> 374 MiB after a minute of playing), for a
    # decode about 8 % faster (measured interleaved on a loaded 2-core machine).
    options.enable_mem_pattern = False
    options.enable_cpu_mem_arena = bool(memory_arena)
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(model, sess_options=options, providers=chosen)
    except Exception as exc:  # onnxruntime raises its own non-exported exception types
        raise BundleError(f"{name}: onnxruntime cannot open the model ({exc})") from None
    return session


def release_free_memory() -> None:
    """Give the C heap's free memory back to the system (glibc's ``malloc_trim``; elsewhere nothing).

    An onnxruntime session and a parsed ONNX graph leave their memory in the heap when they are dropped,
    in pieces too scattered for the allocator to return on its own: after a keyboard bundle's decoder is
    checked and dropped (:meth:`~synth.bundle.Bundle.keyed_decoder`), 90 MB of it stayed resident."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim)
        pass


#: glibc's mallopt parameter of the size from which a block is mapped on its own (returned when freed).
_M_MMAP_THRESHOLD = -3
#: That size, fixed: glibc's default (128 KiB), which glibc otherwise raises to the largest mapped block freed.
MMAP_THRESHOLD_BYTES = 128 * 1024


def map_large_blocks(threshold: int = MMAP_THRESHOLD_BYTES) -> None:
    """Have the C heap map every block of ``threshold`` bytes or more on its own, for good (glibc's
    ``mallopt(M_MMAP_THRESHOLD)``; elsewhere nothing), so that memory goes back to the system when freed.

    By default glibc raises the threshold to the size of each mapped block freed (up to 32 MB): once a
    decode's output (2 MB for a keyboard bundle's key) has come and gone, every timbre's arrays (64-192 KB
    each) come from the heaps of the thread that made them, where the live engine's stream of timbres made
    and dropped by two threads leaves them scattered: a keyboard bundle's engine, driven like the soak for 60
    s, grew 452 -> 500 MB with the default and 419 -> 453 MB with the threshold fixed (/tmp/h28g_mem.py)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, int(threshold))
    except (OSError, AttributeError):  # not glibc
        pass


#: The name of the second input of a keyboard bundle's networks: one MIDI key per batch row, int32 (batch, 1).
PITCH_INPUT = "pitch"


def pitch_column(pitch: Any, *, batch: int, role: str) -> np.ndarray:
    """``pitch`` (one MIDI key, or one per batch row) as the int32 [shape=(batch, 1)] a keyed network takes;
    ParameterError naming ``role`` for anything else."""
    keys = np.asarray(pitch)
    if keys.ndim == 0:
        keys = np.full(batch, keys)
    keys = keys.reshape(-1)
    if keys.shape != (batch,) or not (np.issubdtype(keys.dtype, np.integer) or np.all(np.mod(keys, 1) == 0)):
        raise ParameterError(f"{role}: pitch must be one MIDI key or one per batch row ({batch}), got "
                             f"{np.asarray(pitch).tolist()!r}")
    if keys.size and (keys.min() < 0 or keys.max() > 127):
        raise ParameterError(f"{role}: pitch must be MIDI keys 0..127, got {keys.tolist()!r}")
    return keys.astype(np.int32).reshape(batch, 1)


class _Network:
    """Shared part of :class:`Decoder` and :class:`Encoder`: one session, one input (and, for a keyboard
    bundle's networks, the MIDI key of each batch row as a second input, :data:`PITCH_INPUT`), one output."""

    _role = "network"

    def __init__(
        self,
        model: bytes,
        *,
        name: str,
        input_name: str,
        output_name: str,
        input_shape: tuple[int, ...],
        output_shape: tuple[int, ...],
        providers: Sequence[str] | None,
        threads: int | None,
        probe_pitch: int | None = None,
        memory_arena: bool = True,
    ) -> None:
        self.name = name
        self.input_shape = input_shape
        self.output_shape = output_shape
        #: Whether the network takes the pitch beside its input (a keyboard bundle).
        self.keyed = probe_pitch is not None
        self._input_name = input_name
        self._output_name = output_name
        self._session = make_session(model, name=name, providers=providers, threads=threads,
                                     memory_arena=memory_arena)
        self.provider: str = self._session.get_providers()[0]
        log.info("%s runs on %s", name, self.provider)
        # One probe run: proves the graph really maps input_shape to output_shape (an ONNX file may leave
        # output dimensions undeclared) and takes the first-call cost out of the audio path.
        probe = self._run(np.zeros((1, *input_shape), dtype=np.float32),
                          None if probe_pitch is None else np.full((1, 1), probe_pitch, np.int32))
        if probe.shape != (1, *output_shape):
            raise BundleError(
                f"{name}: maps {list(input_shape)} to {list(probe.shape[1:])}, expected {list(output_shape)}"
            )

    def _run(self, x: np.ndarray, pitch: np.ndarray | None = None) -> np.ndarray:
        feeds = {self._input_name: x}
        if pitch is not None:
            feeds[PITCH_INPUT] = pitch
        try:
            out = self._session.run([self._output_name], feeds)[0]
        except Exception as exc:  # onnxruntime's own exception types (Fail, InvalidArgument, ...) are not exported
            raise BundleError(f"{self.name}: the model failed to run ({str(exc)[:300]})") from None
        return np.asarray(out, dtype=np.float32)

    def _pitch(self, pitch: Any, *, batch: int) -> np.ndarray | None:
        if not self.keyed:
            if pitch is not None:
                raise ParameterError(f"{self._role} {self.name} knows one pitch and takes none; got pitch {pitch!r}")
            return None
        if pitch is None:
            raise ParameterError(f"{self._role} {self.name} is pitch-conditioned: give the pitch (MIDI key) of each "
                                 "batch row")
        return pitch_column(pitch, batch=batch, role=self._role)

    def _check(self, x: np.ndarray, *, what: str) -> np.ndarray:
        x = np.asarray(x)
        if x.ndim != 1 + len(self.input_shape) or x.shape[1:] != self.input_shape:
            raise ParameterError(
                f"{self._role}: {what} must have shape (batch, {', '.join(map(str, self.input_shape))}), "
                f"got {x.shape}"
            )
        if x.shape[0] == 0:
            raise ParameterError(f"{self._role}: empty batch")
        if not np.issubdtype(x.dtype, np.floating) and not np.issubdtype(x.dtype, np.integer):
            raise ParameterError(f"{self._role}: {what} must be numeric, got {x.dtype}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        if not np.all(np.isfinite(x)):
            raise ParameterError(f"{self._role}: {what} contains NaN or Inf")
        return x

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, provider={self.provider!r})"


class Decoder(_Network):
    """Latents -> unit-scale log-mel spectrograms."""

    _role = "decoder"

    def decode(self, latents: np.ndarray, *, pitch: Any = None) -> np.ndarray:
        """Decode a batch of latents.

        Parameters
        ----------
        latents : np.ndarray [shape=(B, *latent_shape), finite]
        pitch : for a keyboard bundle's decoder, the MIDI key to sound, one or one per row; else None

        Returns
        -------
        np.ndarray [shape=(B, n_mels, frames), dtype=float32], unit scale (the model's sigmoid keeps it in
        [0, 1]; values are returned as the network made them, not clipped).
        """
        z = self._check(latents, what="latents")
        return self._run(z, self._pitch(pitch, batch=len(z)))

    def decode_at_keys(self, latent: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """One latent decoded at each of ``keys`` (a keyboard bundle's decoder).

        Parameters
        ----------
        latent : np.ndarray [shape=(1, *latent_shape), finite]
        keys : np.ndarray [shape=(K,)], MIDI keys

        Returns
        -------
        np.ndarray [shape=(K, n_mels, frames), dtype=float32], row ``i`` at ``keys[i]``.

        A graph whose per-key part broadcasts over the batch (the home-key family's: its home map runs once on
        the one latent, each key adds only its own low-rank map) is fed the latent once beside the K keys; the
        first call checks that this gives what K copies of the latent give, and a graph that cannot
        broadcast is fed K copies from then on.
        """
        z = self._check(latent, what="latent")
        if len(z) != 1:
            raise ParameterError(f"{self._role}: decode_at_keys takes one latent, got {len(z)}")
        pitch = self._pitch(np.asarray(keys), batch=len(keys))
        copies = np.repeat(z, len(pitch), axis=0)
        if self._broadcasts is None:
            expected = self._run(copies, pitch)
            try:
                once = self._run(z, pitch)
            except BundleError:  # the graph's shapes do not broadcast: K copies it is
                once = None
            self._broadcasts = once is not None and once.shape == expected.shape and bool(
                np.allclose(once, expected, atol=1e-5))
            return expected
        return self._run(z if self._broadcasts else copies, pitch)

    _broadcasts: bool | None = None

    @property
    def broadcasts_keys(self) -> bool | None:
        """Whether :meth:`decode_at_keys` feeds the latent once (None: not called yet)."""
        return self._broadcasts

    @property
    def latent_size(self) -> int:
        return math.prod(self.input_shape)


class Encoder(_Network):
    """Unit-scale log-mel spectrograms -> latents."""

    _role = "encoder"

    def encode(self, mels: np.ndarray, *, pitch: Any = None) -> np.ndarray:
        """Encode a batch of spectrograms.

        Parameters
        ----------
        mels : np.ndarray [shape=(B, n_mels, frames), finite, unit scale]
        pitch : for a keyboard bundle's encoder, the MIDI key of each note, one or one per row; else None

        Returns
        -------
        np.ndarray [shape=(B, *latent_shape), dtype=float32]
        """
        x = self._check(mels, what="mels")
        return self._run(x, self._pitch(pitch, batch=len(x)))
