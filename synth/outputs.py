"""What an output may replace: the one rule behind every ``--out``, ``--force``, ``--record`` and ``--log-osc``.

Outputs are written whole under a temporary name beside the target and renamed into place (synth/atomic.py),
and a rename replaces whatever held the name. ``--force`` once meant "delete whatever --out names": it deleted
recordings (``dataset audio recs --out recs --force``), every bundle of ``presets/`` (``export --out presets
--force``), a training run (``export --run R --out R --force``) and a dataset (``dataset features D --out D
--force``); ``serve --log-osc`` turned a symlink, and as root a device node, into a small JSON file. So:

- an output never is, and never holds, an input of the same command, with or without ``--force``; an output
  folder never lies inside an input folder either (a rerun would read it as input);
- an output folder that exists is replaced only with ``--force``, and only when it is empty or recognisably
  an output of the same kind that melsynth wrote (:class:`OutputKind`: a bundle has a bundle.json of the
  bundle format, a training run a config.json of the run format, a features folder index.json and
  spectrogram.json, an NSynth-format dataset examples.json); never a symbolic link, a file, or a folder of
  such outputs (``presets/`` holds bundles: the bundle to replace is one of them);
- an output file that exists is replaced only with ``--force``, and only when it is a regular file; never a
  symbolic link, a device, a FIFO, a socket or a folder.

Each refusal is an :class:`~synth.errors.OutputError` naming the path and why. Commands check before any
work, and the atomic writers check again just before the rename, since what holds the name may have changed
while the work ran (a render or an export takes minutes, a take hours).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from synth.errors import OutputError, ParameterError

__all__ = [
    "OutputKind", "BUNDLE", "RUN", "FEATURES", "NSYNTH_DATASET", "CHECKPOINT",
    "check_output_folder", "check_output_file", "check_take_folder", "FORCE_HINT",
]

FORCE_HINT = "use --force to replace it"

# A marker file is read only to see its "format"; anything larger is not one melsynth wrote.
_MAX_MARKER_BYTES = 1 << 20
# A folder with more entries than this is not searched for outputs of the kind (it is refused anyway).
_MAX_SCAN = 10_000


@dataclass(frozen=True)
class OutputKind:
    """A kind of output folder melsynth writes, recognised by the files it always has.

    ``files`` must all be regular files in the folder; ``format``, when set, must be the ``"format"`` field
    of the JSON object in ``files[0]``.
    """

    name: str
    files: tuple[str, ...]
    format: str | None = None

    def recognises(self, folder: str | Path) -> bool:
        """Whether ``folder`` (a real folder, not a link) holds this kind's files."""
        folder = Path(folder)
        for name in self.files:
            try:
                if not stat.S_ISREG(os.lstat(folder / name).st_mode):
                    return False
            except OSError:
                return False
        return self.format is None or _format_of(folder / self.files[0]) == self.format

    def describe(self) -> str:
        """What recognises it, for messages: ``bundle.json of format 'melsynth.bundle/1'``."""
        files = " and ".join(self.files)
        return files + (f" of format {self.format!r}" if self.format else "")


def _format_of(path: Path) -> object:
    """The ``"format"`` field of the JSON object in ``path``; None when it has none or is not small JSON."""
    try:
        if os.lstat(path).st_size > _MAX_MARKER_BYTES:
            return None
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):  # ValueError: bad JSON, bad UTF-8, a 5000-digit integer
        return None
    return doc.get("format") if isinstance(doc, dict) else None


# The formats are spelled out here, not imported: synth.atomic imports this module, and synth.bundle and
# training import synth.atomic. tests/test_outputs.py checks they equal BUNDLE_FORMAT and RUN_FORMAT.
BUNDLE = OutputKind("bundle", ("bundle.json",), format="melsynth.bundle/1")
RUN = OutputKind("training run", ("config.json",), format="melsynth-run/1")
FEATURES = OutputKind("features", ("index.json", "spectrogram.json"))
NSYNTH_DATASET = OutputKind("NSynth-format dataset", ("examples.json",))
CHECKPOINT = OutputKind("checkpoint", ("state.json", "checksums.json"))


def _check_creatable(path: Path) -> None:
    """OutputError unless a folder can be made at ``path`` (its missing parents included): the nearest
    existing folder above it takes a probe folder, removed at once. Before any work: an unwritable --out once
    ended a dataset or a training command in an OSError traceback, and an export after 37 s of work."""
    import tempfile

    ancestor = path.absolute().parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{path}: cannot be made: {ancestor} is not a folder")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".melsynth-probe.", dir=ancestor))
    except OSError as exc:
        raise OutputError(f"{path}: cannot be written: {ancestor}: {exc.strerror or exc}") from None


def _refuse_inputs(path: Path, inputs: Iterable[str | Path | None], *, file: bool = False) -> None:
    """Refuse an output that is, or holds, one of ``inputs`` (compared as resolved paths, so a symlink or a
    ``./`` spelling of the same folder counts). An output folder is refused inside an input folder too: a
    command that reads a folder whole would read it back on the next run (`dataset audio recs --out
    recs/data` once did). An output ``file`` is refused inside an input folder only where it would replace a
    file there (a take log named presets/default/bundle.json); a new file there harms none."""
    target = path.resolve()
    for given in inputs:
        if given is None:
            continue
        source = Path(given).resolve()
        if source == target:
            raise OutputError(f"{path}: is {given}, an input of this command; name another output")
        if target in source.parents:
            raise OutputError(f"{path}: holds {given}, an input of this command; name another output")
        if source in target.parents and not file and source.is_dir():
            raise OutputError(f"{path}: is inside {given}, an input of this command; name a folder outside it")
        if file and source in target.parents and os.path.lexists(path):
            raise OutputError(f"{path}: is a file of {given}, an input of this command; name another output")


def _outputs_held(folder: Path, kind: OutputKind) -> list[str]:
    """Names of the subfolders of ``folder`` that are outputs of ``kind`` (a folder of bundles, say)."""
    held = []
    try:
        with os.scandir(folder) as entries:
            for i, entry in enumerate(entries):
                if i >= _MAX_SCAN:
                    break
                if entry.is_dir(follow_symlinks=False) and kind.recognises(entry.path):
                    held.append(entry.name)
    except OSError:
        return []
    return sorted(held)


def _a(name: str) -> str:
    """``name`` with its article: "a bundle", "an NSynth-format dataset"."""
    return ("an " if name[:1].lower() in "aeiou" or name.startswith("NSynth") else "a ") + name


def _is_empty(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return next(entries, None) is None


def check_output_folder(
    path: str | Path, *, kind: OutputKind, force: bool, inputs: Iterable[str | Path | None] = (),
    hint: str = FORCE_HINT,
) -> Path:
    """Return ``path`` if an output folder of ``kind`` may be written there (see the module docstring).

    Parameters
    ----------
    kind : the kind of output the command writes; only a folder of that kind (or an empty one) is replaced
    force : whether the user asked to replace an existing output (``--force``)
    inputs : the command's inputs (files or folders; None is skipped): the output may not be or hold one
    hint : what to tell a user whose output exists and may be replaced (default: use --force)

    Raises :class:`~synth.errors.OutputError` naming ``path`` and why; nothing is touched either way.
    """
    if not isinstance(kind, OutputKind):
        raise ParameterError(f"kind must be an OutputKind, got {type(kind).__name__}")
    path = Path(path)
    _refuse_inputs(path, inputs)
    if not os.path.lexists(path):
        _check_creatable(path)
        return path
    # Whether --force could replace it is said first: "use --force" must never be advice that deletes data.
    if path.is_symlink():
        raise OutputError(f"{path}: is a symbolic link; an output folder is never written through or over one "
                          "(name the folder itself)")
    if not path.is_dir():
        raise OutputError(f"{path}: is a file, not {_a(kind.name)} folder; melsynth does not replace it")
    try:
        empty = _is_empty(path)
    except OSError as exc:
        raise OutputError(f"{path}: cannot be read ({exc.strerror or exc}); melsynth does not replace it") from None
    if not empty and not kind.recognises(path):
        held = _outputs_held(path, kind)
        if held:
            shown = ", ".join(held[:3]) + (", ..." if len(held) > 3 else "")
            raise OutputError(
                f"{path}: holds {len(held)} {kind.name} folder{'s' if len(held) > 1 else ''} ({shown}) and is not "
                f"one; name the {kind.name} folder to write (e.g. {path / held[0]}), never the folder of them"
            )
        raise OutputError(
            f"{path}: exists and is not {_a(kind.name)} folder melsynth wrote (it has no {kind.describe()}); "
            f"melsynth replaces only an earlier {kind.name} folder or an empty one: name another output, or "
            "remove it yourself"
        )
    if not force:
        raise OutputError(f"{path} already exists ({hint})")
    return path


def check_output_file(
    path: str | Path, *, force: bool, what: str = "output", inputs: Iterable[str | Path | None] = (),
) -> Path:
    """Return ``path`` if an output file may be written there: nothing there, or (with ``force``) a regular
    file that is not one of ``inputs``. Never a symbolic link, a device, a FIFO, a socket or a folder.

    ``what`` names the output in messages ("the recording", "the OSC log"). Raises
    :class:`~synth.errors.OutputError` naming ``path`` and why; nothing is touched either way.
    """
    path = Path(path)
    try:
        _refuse_inputs(path, inputs, file=True)
    except OutputError as exc:
        raise OutputError(f"{what} {exc}") from None
    try:
        mode = os.lstat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return path  # a missing folder on the way is the writer's to report, in its own words
    except OSError as exc:
        raise OutputError(f"{what} {path}: cannot be checked ({exc.strerror or exc})") from None
    if stat.S_ISLNK(mode):
        raise OutputError(f"{what} {path}: is a symbolic link; melsynth never writes through or over one "
                          "(name the file itself)")
    if stat.S_ISDIR(mode):
        raise OutputError(f"{what} {path}: is a folder; name a file")
    if not stat.S_ISREG(mode):
        raise OutputError(f"{what} {path}: is a device, FIFO or socket, not a regular file; melsynth never "
                          "replaces one")
    if not force:
        raise OutputError(f"{what} {path} already exists ({FORCE_HINT})")
    return path


def check_take_folder(path: str | Path, *, what: str) -> Path:
    """Return ``path`` if the folder it would be written into exists. A live take's files (``serve --record``,
    ``--log-osc``) are never given folders: a typo in a folder name should not silently create folders, even
    as root; the log once made them while the recording refused (one rule for both now).

    Raises :class:`~synth.errors.OutputError`: ``cannot write {what} {path}: no such folder {parent}``.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"cannot write {what} {path}: no such folder {path.parent}")
    return path
