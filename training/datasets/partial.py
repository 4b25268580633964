"""A long dataset job that resumes: its output is built in ``OUT.partial`` and renamed to ``OUT`` when done.

Shared by ``dataset features --shards`` (:func:`training.datasets.compute_features.write_sharded`) and
``dataset soundfont`` (:func:`training.datasets.soundfont.render_soundfont_dataset`), so that both follow one
rule: the folder holds a plan file (``progress.json``: what the job makes, as JSON) and whatever the job has
finished; a run finding the folder continues it only with ``resume`` and only for the same plan (refused
otherwise, naming what differs), starts again with ``force``, and is refused without either. The job keeps
what it finished in the folder as it goes; an interruption (Ctrl-C, SIGTERM, a full disk, an error) leaves
the folder for ``--resume``. The finished folder replaces ``OUT`` by rename, so OUT appears whole or not at
all.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from synth.atomic import atomic_write_text, replace_directory
from synth.errors import DataError, OutputError
from synth.outputs import OutputKind

__all__ = ["PARTIAL_SUFFIX", "PLAN_FILE", "partial_folder", "open_partial", "publish_partial", "plan_differences",
           "disk_full_is_said"]

# A resumable run is built in OUT + this suffix, so that a run stopped part-way can resume there.
PARTIAL_SUFFIX = ".partial"
PLAN_FILE = "progress.json"


def partial_folder(out: str | Path) -> Path:
    """Where the resumable run of ``out`` is built: ``OUT.partial`` beside it."""
    out = Path(out)
    return out.with_name(out.name + PARTIAL_SUFFIX)


def open_partial(out: str | Path, *, plan: dict[str, Any], resume: bool, force: bool,
                 what: str = "partial run") -> Path:
    """Make or reopen ``OUT.partial`` for a run of ``plan`` (JSON-able) and return it.

    An existing folder is continued with ``resume`` when its plan file records ``plan`` (keys the file has
    beyond ``plan`` are not compared); a different plan is a DataError naming the first differences. It is
    removed with ``force`` (or with ``resume`` when it has no plan file yet: a run killed as it began), and
    refused without either. A link, a file or a folder melsynth did not make there is an OutputError and is
    never removed. The caller checks ``out`` itself (:func:`synth.outputs.check_output_folder`).
    """
    work = partial_folder(out)
    plan = json.loads(json.dumps(plan))  # tuples become lists, as the recorded plan has them
    plan_file = work / PLAN_FILE
    if os.path.lexists(work):
        _check_ours(work)
        if resume and plan_file.is_file():
            try:
                recorded = json.loads(plan_file.read_text())
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise DataError(f"{plan_file}: unreadable plan of the {what} ({exc}); --force starts again") from None
            if not isinstance(recorded, dict):
                raise DataError(f"{plan_file}: not a plan of the {what}; --force starts again")
            differences = plan_differences({k: recorded.get(k) for k in plan}, plan)
            if differences:
                raise DataError(f"{work}: a {what} of another plan is there ({'; '.join(differences)}); "
                                "--resume continues only the same plan, --force starts again")
        elif force or resume:
            shutil.rmtree(work)
        else:
            raise DataError(f"{work}: a {what} is there: --resume continues it, --force starts again")
    work.mkdir(parents=True, exist_ok=True)
    if not plan_file.is_file():
        atomic_write_text(plan_file, json.dumps(plan) + "\n")
    return work


def _check_ours(work: Path) -> None:
    """Refuse a ``work`` that melsynth did not make: --force and --resume remove an unusable partial folder,
    and must never remove a link, a file or a user's folder that happens to bear the name."""
    if work.is_symlink() or not work.is_dir():
        raise OutputError(f"{work}: is {'a symbolic link' if work.is_symlink() else 'not a folder'}, not a partial "
                          "run melsynth made; melsynth does not replace it: remove it yourself or name another output")
    if (work / PLAN_FILE).is_file():
        return
    # A run killed between making the folder and writing its plan leaves it empty (or with the plan's
    # temporary file): that is ours too.
    strangers = [p.name for p in work.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]
    if strangers:
        raise OutputError(f"{work}: exists and is not a partial run melsynth made (it has no {PLAN_FILE}); "
                          "melsynth does not replace it: remove it yourself or name another output")


def plan_differences(recorded: Any, plan: Any, *, where: str = "", limit: int = 3) -> list[str]:
    """Where ``recorded`` and ``plan`` (JSON values) differ, as ``key[i].field: A then, B now`` lines, the
    first ``limit`` of them, followed by ``...`` when there are more."""
    found: list[str] = []

    def walk(a: Any, b: Any, at: str) -> None:
        if a == b:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(b) + [k for k in a if k not in b]:
                walk(a.get(key), b.get(key), f"{at}.{key}" if at else str(key))
        elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b) \
                and any(isinstance(x, (dict, list)) for x in a + b):  # a list of numbers is shown whole
            for i, (x, y) in enumerate(zip(a, b, strict=True)):
                walk(x, y, f"{at}[{i}]")
        else:
            found.append(f"{at or 'plan'}: {_shown(a)} then, {_shown(b)} now")

    walk(recorded, plan, where)
    return found[:limit] + (["..."] if len(found) > limit else [])


def _shown(value: Any, width: int = 60) -> str:
    text = json.dumps(value)
    return text if len(text) <= width else text[:width - 3] + "..."


def publish_partial(work: Path, out: Path, *, kind: OutputKind, force: bool, inputs: list[Path]) -> Path:
    """Put the finished ``work`` folder at ``out``: its plan file removed, ``out``'s rule checked again
    (what holds the name may have changed during a long run) and the folder renamed onto it
    (:func:`synth.atomic.replace_directory`). Returns ``out``."""
    (work / PLAN_FILE).unlink(missing_ok=True)
    return replace_directory(work, out, kind=kind, force=force, inputs=inputs)


@contextlib.contextmanager
def disk_full_is_said(work: Path, what: str, *, kept: str = "the shards written before") -> Iterator[None]:
    """A full disk while ``what`` is written becomes an OutputError that says what is kept and how to go on
    (every file is written atomically: nothing is half-written)."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise OutputError(f"{work}: the disk is full while writing {what} ({exc}); {kept} are "
                          "kept: free some space and run again with --resume") from None
