"""Checkpoints a run can always resume from: written before the old ones go, never of non-finite
weights, and read back with a fall-back to the next older file when the newest is unreadable.

Files are ``<dir>/checkpoint_<iteration>.pt``, written by Ignite's ``Checkpoint`` through
``SafeDiskSaver``: Ignite removes the oldest kept file *before* writing the new one, so with its
own ``DiskSaver`` a kill during the write leaves a single (old) checkpoint and an orphaned
temporary file; here the new file is written (atomically, through a temporary file and a rename)
and only then are the superseded ones deleted, and ``clean_orphans`` removes the temporary files
an earlier kill left.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver

from genlab.errors import GenlabError

logger = logging.getLogger("genlab.training")

PREFIX = "checkpoint"
_NAME = re.compile(rf"{PREFIX}_(\d+)\.pt")
_TEMPORARY = re.compile(r"tmp[\w]{6,}")  # tempfile.NamedTemporaryFile's names, which DiskSaver writes through


class CheckpointError(GenlabError, RuntimeError):
    """No checkpoint could be read from what ``training.resume`` names."""


class SafeDiskSaver(DiskSaver):
    """Ignite's atomic ``DiskSaver``, except that a file Ignite asks to remove is removed only after
    the next checkpoint has been written completely."""

    def __init__(self, dirname: str | Path, **kwargs):
        super().__init__(str(dirname), atomic=True, require_empty=False, create_dir=True, **kwargs)
        self._superseded: list[str] = []

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        super().__call__(checkpoint, filename, metadata)
        for name in self._superseded:
            if name != filename:
                (Path(self.dirname) / name).unlink(missing_ok=True)
        self._superseded.clear()

    def remove(self, filename: str) -> None:
        self._superseded.append(filename)


def clean_orphans(dirname: str | Path) -> list[Path]:
    """Delete the temporary files an interrupted checkpoint write left in ``dirname``."""
    dirname = Path(dirname)
    if not dirname.is_dir():
        return []
    orphans = [p for p in dirname.iterdir() if p.is_file() and _TEMPORARY.fullmatch(p.name)]
    for path in orphans:
        path.unlink(missing_ok=True)
    if orphans:
        logger.warning("removed %d partial checkpoint file(s) an interrupted write left in %s", len(orphans), dirname)
    return orphans


def finite_state(modules: Iterable[torch.nn.Module]) -> bool:
    """Whether every parameter and floating-point buffer of ``modules`` is finite."""
    for module in modules:
        for tensor in (*module.parameters(), *module.buffers()):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return False
    return True


class Checkpointer:
    """Saves ``to_save`` every ``every`` iterations and when the trainer completes or stops, as
    ``checkpoint_<iteration>.pt`` (``n_saved`` kept), unless ``valid()`` is false or a module of
    ``modules`` holds a non-finite value: a checkpoint is always one a run can continue from.
    ``last`` / ``last_iteration``: the newest file written; ``on_save(path, iteration)`` is called
    after each write (the run's record is flushed there)."""

    def __init__(
        self,
        to_save: dict[str, Any],
        dirname: Path,
        every: int,
        n_saved: int = 2,
        valid: Callable[[], bool] = lambda: True,
        modules: Iterable[torch.nn.Module] = (),
        on_save: Callable[[Path, int], None] | None = None,
    ):
        clean_orphans(dirname)
        self.dirname, self.every, self.valid = Path(dirname), every, valid
        self.modules, self.on_save = list(modules), on_save
        self.handler = Checkpoint(
            to_save, SafeDiskSaver(dirname), filename_prefix="", n_saved=n_saved,
            global_step_transform=lambda engine, _: engine.state.iteration,
        )  # fmt: skip
        self.last: Path | None = None
        self.last_iteration: int | None = None
        self.skipped_at: int | None = None  # the first iteration whose state was not finite

    def attach(self, trainer: Engine) -> "Checkpointer":
        """Save every ``every`` iterations; a save that falls on the last iteration of an epoch waits
        for ``EPOCH_COMPLETED``, so that what the epoch's end changes (a per-epoch learning-rate
        schedule's step) is in the file: a run resumed there starts the next epoch as an uninterrupted
        one does. Attach it after the handlers whose state it saves."""
        trainer.add_event_handler(Events.ITERATION_COMPLETED(every=self.every), self._within_epoch)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._at_epoch_end)
        trainer.add_event_handler(Events.COMPLETED | Events.TERMINATE, self)
        return self

    def _within_epoch(self, engine: Engine) -> None:
        if engine.state.iteration % engine.state.epoch_length:
            self(engine)

    def _at_epoch_end(self, engine: Engine) -> None:
        if engine.state.iteration % self.every == 0:
            self(engine)

    def __call__(self, engine: Engine) -> None:
        iteration = engine.state.iteration
        if iteration == self.last_iteration or not self.valid():
            return
        if not finite_state(self.modules):
            if self.skipped_at is None:
                self.skipped_at = iteration
                logger.warning("iteration %d: the weights are not finite; no checkpoint written", iteration)
            return
        self.handler(engine)
        self.last, self.last_iteration = self.dirname / f"{PREFIX}_{iteration}.pt", iteration
        if self.on_save is not None:
            self.on_save(self.last, iteration)


def checkpoint_files(path: str | Path) -> list[Path]:
    """A checkpoint file itself, or the ``checkpoint_<iteration>.pt`` files of a checkpoint directory
    (or of the ``checkpoints/`` folder of a recorded run's directory), newest first."""
    path = Path(path)
    if path.is_file():
        return [path]
    if (path / "checkpoints").is_dir():
        path = path / "checkpoints"
    if not path.is_dir():
        raise FileNotFoundError(f"training.resume={str(path)!r}: no such checkpoint file or directory")
    found = sorted(((int(m.group(1)), p) for p in path.iterdir() if (m := _NAME.fullmatch(p.name))), reverse=True)
    if not found:
        raise FileNotFoundError(f"training.resume={str(path)!r}: no {PREFIX}_<iteration>.pt file in that directory")
    return [p for _, p in found]


def latest_checkpoint(path: str | Path) -> Path:
    """The newest checkpoint that ``path`` names (see ``checkpoint_files``)."""
    return checkpoint_files(path)[0]


def iteration_of(path: str | Path) -> int | None:
    """The iteration in a ``checkpoint_<iteration>.pt`` file name."""
    m = _NAME.fullmatch(Path(path).name)
    return int(m.group(1)) if m else None


def read_checkpoint(path: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest readable checkpoint ``path`` names and its contents. A directory's newest file
    that cannot be read (truncated, corrupt) is skipped for the next older one, with a warning
    naming both; a named file that cannot be read is an error naming it."""
    candidates = checkpoint_files(path)
    failures: list[str] = []
    for i, candidate in enumerate(candidates):
        try:
            state = torch.load(candidate, map_location="cpu", weights_only=False)
            if not isinstance(state, dict):
                raise ValueError(f"holds a {type(state).__name__}, not a checkpoint dict")
        except Exception as err:  # noqa: BLE001 - any unreadable file: report it, try the next one
            failures.append(f"{candidate} ({type(err).__name__}: {err})")
            if i + 1 < len(candidates):
                logger.warning("checkpoint %s is unreadable (%s: %s); resuming from the older %s instead",
                               candidate, type(err).__name__, err, candidates[i + 1])  # fmt: skip
            continue
        return candidate, state
    raise CheckpointError("no readable checkpoint: " + "; ".join(failures) + " (a corrupt or partly written file)")


def load_checkpoint(to_load: dict[str, Any], path: str | Path, optional: tuple[str, ...] = ()) -> Path:
    """Restore ``to_load`` from the checkpoint ``path`` names (see ``read_checkpoint``); returns the
    file used. Entries named in ``optional`` may be absent from the checkpoint (written before they
    existed): they keep their fresh state."""
    checkpoint, state = read_checkpoint(path)
    Checkpoint.load_objects({k: v for k, v in to_load.items() if k in state or k not in optional}, state)
    return checkpoint
