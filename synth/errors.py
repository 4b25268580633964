"""The one small exception hierarchy of melsynth.

Every error a user can cause is raised as a subclass of :class:`MelsynthError` at the boundary where the bad
input enters, with a message that names the thing (file, field, OSC address) and what is wrong with it. The
console command prints that message on one line and exits non-zero.
"""

__all__ = [
    "MelsynthError",
    "ParameterError",
    "ContractError",
    "DataError",
    "BundleError",
    "PresetError",
    "ScoreError",
    "AudioDeviceError",
    "ExternalToolError",
    "OutputError",
    "ClusterError",
]


class MelsynthError(Exception):
    """Base class of every error melsynth raises on purpose."""


class ParameterError(MelsynthError, ValueError):
    """A function or command received an argument it cannot use."""


class ContractError(MelsynthError, ValueError):
    """A spectrogram contract is malformed, or two artefacts disagree on it."""


class DataError(MelsynthError):
    """A dataset, audio file or features folder is missing, malformed or corrupt."""


class BundleError(MelsynthError):
    """A model bundle is missing, malformed, tampered with or inconsistent."""


class PresetError(MelsynthError):
    """A preset is unknown, malformed, or made for another bundle."""


class ScoreError(MelsynthError):
    """A score (timed OSC messages) is malformed."""


class AudioDeviceError(MelsynthError):
    """The audio device cannot be opened, or failed while playing."""


class ExternalToolError(MelsynthError):
    """An external program (fluidsynth, jackd, ...) is missing or failed."""


class OutputError(ParameterError):
    """An output (``--out``, ``--record``, ``--log-osc``) names something melsynth may not write or replace:
    see :mod:`synth.outputs`."""


class ClusterError(MelsynthError):
    """A worker of a training cluster cannot start (its address is in use), cannot reach the other workers, or
    finds them configured for another cluster."""
