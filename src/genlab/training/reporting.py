"""Progress of a run: one bar on a terminal, a summary line every few seconds otherwise.

``training.progress`` chooses (``PROGRESS_MODES``):

- ``"bar"``: one tqdm bar over the whole run (the planned iterations of every phase; a resumed run
  starts the bar at the iteration it resumes from, so the ETA is for the rest of the run), closed
  when the run completes, is terminated or raises. It is drawn on the terminal itself, not through
  Sacred's output capture: a bar's carriage returns garble the recorded ``cout.txt`` (the file store
  appends the captured text by position, and the capture rewrites the bar's line), so a run's record
  holds its log lines, not its bar;
- ``"log"``: every ``every_seconds`` of wall time, and once at the end, one INFO line on the logger
  ``genlab.training``::

      iteration 1200/5000 (24%), 85.3 it/s, ETA 0:00:45, loss 1.234, kl 0.5

  with the mean of each scalar quantity the training step returned since the previous line (summed
  on the device as they come and read back only when a line is written);
- ``"auto"`` (the default of the experiments): ``"bar"`` when stderr is a terminal, else ``"log"``,
  so that log files and SLURM output show progress too;
- ``"off"`` (or False); True means ``"bar"``.

"A terminal" is decided from stderr as it was when this module was first imported
(:func:`stderr_is_terminal`): experiments import genlab before Sacred starts its output capture,
which turns stderr into a pipe for the duration of the run.

The end-of-run evaluations follow the run's settings (:func:`evaluation_progress`): long ones write
``log`` lines at the same interval (a bar would be one more thing in the captured output), none when
the run's progress is off.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from datetime import timedelta
from numbers import Number
from typing import Any, Callable, Mapping, Sequence

import torch
from ignite.engine import Engine, Events

from genlab.errors import ConfigError

logger = logging.getLogger("genlab.training")

PROGRESS_MODES = ("auto", "bar", "log", "off")
DEFAULT_EVERY = 30.0  # seconds between log lines


def _isatty(stream) -> bool:
    try:
        return stream is not None and bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # replaced by an object without it, or closed
        return False


def _terminal_stream():
    """A stream of its own to stderr's terminal (a duplicate of its file descriptor), if it is one."""
    if not _isatty(sys.stderr):
        return None
    try:
        return os.fdopen(os.dup(sys.stderr.fileno()), "w", buffering=1, encoding=getattr(sys.stderr, "encoding", None),
                         errors="replace")  # fmt: skip
    except (AttributeError, ValueError, OSError):
        return None


_STDERR_IS_TERMINAL = _isatty(sys.stderr)  # at import, before any output capture
_TERMINAL = _terminal_stream()  # where a bar goes: the terminal itself, past Sacred's capture
_clock = time.monotonic  # the default clock of the reports (tests replace it)


def stderr_is_terminal() -> bool:
    """Whether stderr was a terminal when genlab was imported (before Sacred's capture made it a pipe)."""
    return _STDERR_IS_TERMINAL


def progress_mode(value: Any) -> str:
    """The mode a ``training.progress`` value asks for: one of ``PROGRESS_MODES`` (True is
    ``"bar"``, False or None ``"off"``); anything else is refused, listing the valid values."""
    if value is True:
        return "bar"
    if value is False or value is None:
        return "off"
    if isinstance(value, str) and value in PROGRESS_MODES:
        return value
    raise ConfigError(f"training.progress must be one of {', '.join(map(repr, PROGRESS_MODES))}, True or False; got {value!r}")


def resolve_mode(value: Any) -> str:
    """``"bar"``, ``"log"`` or ``"off"``: ``"auto"`` decided by :func:`stderr_is_terminal`."""
    mode = progress_mode(value)
    if mode == "auto":
        return "bar" if stderr_is_terminal() else "log"
    return mode


def check_every(value: Any) -> float:
    """Seconds between log lines: a number >= 0 (0: a line at every iteration)."""
    if isinstance(value, bool) or not isinstance(value, Number) or not value >= 0:
        raise ConfigError(f"training.progress_every must be a number of seconds >= 0, got {value!r}")
    return float(value)


def format_duration(seconds: float) -> str:
    """``0:00:45``; ``?`` when unknown."""
    if seconds is None or not math.isfinite(seconds):
        return "?"
    return str(timedelta(seconds=round(max(seconds, 0.0))))


def _rate(rate: float) -> str:
    return f"{rate:.1f}" if rate >= 10 else f"{rate:.2f}"


class ProgressReporter:
    """The handlers :func:`attach_progress` attaches (use that)."""

    def __init__(self, mode: str, total: int | Callable[[], int] | None, every_seconds: float, log: logging.Logger,
                 main_losses: Sequence[str] | None, label: str, clock: Callable[[], float]):  # fmt: skip
        self.mode, self._total, self.every = mode, total, float(every_seconds)
        self.log, self.main_losses, self.label, self.clock = log, main_losses, label, clock
        self.bar = None  # the tqdm bar of a run in "bar" mode
        self.lines = 0  # log lines written
        self._start_time = self._last_time = 0.0
        self._start_iteration = self._last_iteration = 0
        self._sums: dict[str, torch.Tensor | float] = {}
        self._counts: dict[str, int] = {}

    @staticmethod
    def stream():
        """Where the bar is drawn: the terminal stderr was at import (Sacred's capture keeps a log of
        the run's output, which a bar's carriage returns would garble: its file store appends what is
        new by position), else stderr."""
        return _TERMINAL if _TERMINAL is not None and not _TERMINAL.closed else sys.stderr

    @property
    def closed(self) -> bool:
        """Whether the bar has been closed (True when there is none)."""
        return self.bar is None or bool(getattr(self.bar, "disable", True))

    def total(self, engine: Engine) -> int | None:
        if callable(self._total):
            return int(self._total())
        if self._total is not None:
            return int(self._total)
        state = engine.state
        if state.max_iters is not None:
            return int(state.max_iters)
        if state.epoch_length is not None and state.max_epochs is not None:
            return int(state.epoch_length * state.max_epochs)
        return None

    # --- events ----------------------------------------------------------------------------------

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED | Events.TERMINATE, self.finished)
        if self.mode == "bar":
            engine.add_event_handler(Events.EXCEPTION_RAISED, self.raised)

    def started(self, engine: Engine) -> None:
        self._start_time = self._last_time = self.clock()
        self._start_iteration = self._last_iteration = int(engine.state.iteration)
        self._sums, self._counts = {}, {}
        if self.mode == "bar":
            from tqdm.auto import tqdm

            self.close()
            self.bar = tqdm(total=self.total(engine), initial=self._start_iteration, unit="it", file=self.stream(),
                            leave=True, dynamic_ncols=True, mininterval=0.5)  # fmt: skip

    def iteration_completed(self, engine: Engine) -> None:
        if self.mode == "bar":
            if self.bar is not None:
                total = self.total(engine)
                if total is not None and total != self.bar.total:  # a phase ended early: the run is shorter
                    self.bar.total = total
                self.bar.update(engine.state.iteration - self.bar.n)
            return
        self._accumulate(engine.state.output)
        if self.clock() - self._last_time >= self.every:
            self.report(engine)

    def finished(self, engine: Engine) -> None:
        if self.mode == "bar":
            if self.bar is not None:
                self.bar.update(engine.state.iteration - self.bar.n)
            self.close()
        elif engine.state.iteration != self._last_iteration:
            self.report(engine)

    def raised(self, engine: Engine, error: BaseException) -> None:
        self.close()
        # a handler of EXCEPTION_RAISED makes Ignite leave the exception to its handlers: when this
        # one is the only one, raise it, as Ignite does without handlers
        if len(getattr(engine, "_event_handlers", {}).get(Events.EXCEPTION_RAISED, ())) <= 1:
            raise error

    def close(self) -> None:
        if self.bar is not None and not self.closed:
            self.bar.close()

    # --- log lines -------------------------------------------------------------------------------

    def _accumulate(self, output: Any) -> None:
        if not isinstance(output, Mapping):
            return
        names = output.keys() if self.main_losses is None else [n for n in self.main_losses if n in output]
        for name in names:
            value = output[name]
            if isinstance(value, torch.Tensor):
                if value.numel() != 1 or value.is_complex():
                    continue
                value = value.detach().reshape(()).float()
            elif isinstance(value, bool) or not isinstance(value, Number):
                continue
            self._sums[name] = self._sums[name] + value if name in self._sums else value
            self._counts[name] = self._counts.get(name, 0) + 1

    def line(self, engine: Engine) -> str:
        """The summary line of where ``engine`` stands (and the means since the previous line)."""
        now, iteration, total = self.clock(), int(engine.state.iteration), self.total(engine)
        elapsed, done = now - self._start_time, iteration - self._start_iteration
        rate = done / elapsed if elapsed > 0 else float("nan")
        parts = [f"{self.label} {iteration}/{total} ({100 * iteration // total if total else 100}%)" if total
                 else f"{self.label} {iteration}"]  # fmt: skip
        parts.append(f"{_rate(rate)} it/s" if math.isfinite(rate) else "? it/s")
        if total:
            parts.append(f"ETA {format_duration((total - iteration) / rate) if rate > 0 else '?'}")
        for name, value in self._sums.items():
            parts.append(f"{name} {float(value) / self._counts[name]:.4g}")
        return ", ".join(parts)

    def report(self, engine: Engine) -> None:
        self.log.info("%s", self.line(engine))
        self.lines += 1
        self._last_time, self._last_iteration = self.clock(), int(engine.state.iteration)
        self._sums, self._counts = {}, {}


_run_settings = {"mode": "auto", "every_seconds": DEFAULT_EVERY}


def run_settings() -> tuple[str, float]:
    """``(mode, every_seconds)`` the process's training was last told (``("auto", 30)`` before any)."""
    return _run_settings["mode"], _run_settings["every_seconds"]


def attach_progress(
    engine: Engine,
    mode: Any = "auto",
    total: int | Callable[[], int] | None = None,
    *,
    every_seconds: float = DEFAULT_EVERY,
    log: logging.Logger = logger,
    main_losses: Sequence[str] | None = None,
    label: str = "iteration",
    clock: Callable[[], float] | None = None,
    remember: bool = True,
) -> ProgressReporter | None:
    """Report the progress of ``engine`` as ``mode`` says (a ``training.progress`` value); None when off.

    ``total``: the iterations of the whole run (or a function giving them, read as the run goes;
    None: the engine's ``max_iters``). ``main_losses``: the quantities of the step's output whose
    means a log line shows (None: every scalar one). ``label`` starts each line. ``remember``: make
    these the process's progress settings, which the end-of-run evaluations follow. ``clock``: seconds
    (None: ``time.monotonic``). Only the process
    of rank 0 reports in data-parallel training.
    """
    resolved, every = resolve_mode(mode), check_every(every_seconds)
    if remember:
        _run_settings.update(mode=resolved, every_seconds=every)
    if resolved == "off" or _rank() != 0:
        return None
    reporter = ProgressReporter(resolved, total, every, log, main_losses, label, clock or (lambda: _clock()))
    reporter.attach(engine)
    return reporter


def evaluation_progress(engine: Engine, total: int | None, label: str, log: logging.Logger | None = None,
                        clock: Callable[[], float] | None = None) -> ProgressReporter | None:  # fmt: skip
    """Log lines of a long evaluation run by ``engine`` (an Ignite evaluator over ``total`` batches)
    at the interval of the run's progress settings; none when the run's progress is off."""
    mode, every = run_settings()
    if resolve_mode(mode) == "off":
        return None
    return attach_progress(engine, "log", total, every_seconds=every, log=log or logging.getLogger("genlab.evaluation"),
                           main_losses=(), label=label, clock=clock, remember=False)  # fmt: skip


def _rank() -> int:
    try:
        import ignite.distributed as idist

        return int(idist.get_rank())
    except Exception:  # no distributed context
        return 0


__all__ = ["PROGRESS_MODES", "ProgressReporter", "attach_progress", "check_every", "evaluation_progress",
           "progress_mode", "resolve_mode", "run_settings", "stderr_is_terminal"]  # fmt: skip
