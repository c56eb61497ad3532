"""Ignite handlers shared by every experiment: metric logging, evaluation, NaN stop, graceful
interruption and the state an exact resume needs (checkpoint files: ``genlab.training.checkpoints``).

Logging goes through a plain callable ``log(name, value, step)`` (Sacred's ``_run.log_scalar`` in
experiments), so nothing here knows Sacred.
"""

from __future__ import annotations

import random
import signal
from numbers import Number
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from ignite.engine import Engine, Events
from ignite.handlers import TerminateOnNan
from ignite.metrics import Metric

from genlab.training.distributed import mean_over_processes

LogFn = Callable[[str, float, int], None]


def as_float(value: Any) -> float:
    return float(value.item() if isinstance(value, torch.Tensor) else value)


class DictMean(Metric):
    """Batch-size-weighted means of the dict an engine's step returns."""

    def __init__(self, output_transform=lambda out: out, device="cpu"):
        self._sums: dict[str, torch.Tensor | float] = {}
        self._count = 0
        super().__init__(output_transform=output_transform, device=device)

    def reset(self) -> None:
        self._sums, self._count = {}, 0

    def update(self, output: tuple[Mapping[str, Any], int]) -> None:
        values, n = output
        for k, v in values.items():
            v = v.detach() if isinstance(v, torch.Tensor) else v
            self._sums[k] = self._sums.get(k, 0.0) + v * n
        self._count += n

    def compute(self) -> dict[str, float]:
        return {k: as_float(s) / self._count for k, s in self._sums.items()}

    def completed(self, engine: Engine, name: str) -> None:  # flatten into state.metrics
        engine.state.metrics.update(self.compute())


class EpochMeans:
    """Means of the training-step quantities over the current epoch of the training stream, read at
    ``EPOCH_COMPLETED`` (epoch-driven schedules read them); checkpointed, so an epoch cut by a resume
    still averages all of its iterations. Quantities are summed on their device and read back once
    per epoch."""

    def __init__(self):
        self._sums: dict[str, Any] = {}
        self._count = 0
        self._last: dict[str, float] = {}

    def attach(self, trainer: Engine) -> None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._add)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._close)

    def _add(self, engine: Engine) -> None:
        for k, v in engine.state.output.items():
            if isinstance(v, (Number, torch.Tensor)):
                self._sums[k] = self._sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
        self._count += 1

    def _close(self, engine: Engine) -> None:
        self._last = {k: as_float(s) / self._count for k, s in self._sums.items()} if self._count else {}
        self._sums, self._count = {}, 0

    def means(self) -> dict[str, float]:
        """The means over the epoch that just completed."""
        return dict(self._last)

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self._sums), "count": self._count, "last": dict(self._last)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums, self._count, self._last = dict(state["sums"]), int(state["count"]), dict(state["last"])


class EpochMedians:
    """The median over the current epoch of each named training-step quantity, logged as
    ``epoch.<q>_median`` at the epoch's last iteration (ICE-BeeM's transfer metric is the median of
    the last epoch's batch losses, docs/icebeem.md §7). Checkpointed, so an epoch cut by a resume
    still takes all of its iterations. Attach it before the checkpointer: its epoch closes first."""

    def __init__(self, names: Sequence[str], log: LogFn):
        self.names, self.log = tuple(names), log
        self._values: dict[str, list[float]] = {name: [] for name in self.names}

    def attach(self, trainer: Engine) -> "EpochMedians":
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._add)
        trainer.add_event_handler(Events.EPOCH_COMPLETED, self._close)
        return self

    def _add(self, engine: Engine) -> None:
        output = engine.state.output
        for name in self.names:
            if name not in output:
                raise KeyError(f"training.epoch_medians names {name!r}, but the train step returns {', '.join(sorted(output))}")
            self._values[name].append(as_float(output[name]))

    def _close(self, engine: Engine) -> None:
        for name, values in self._values.items():
            if values:
                self.log(f"epoch.{name}_median", float(np.median(values)), engine.state.iteration)
        self._values = {name: [] for name in self.names}

    def state_dict(self) -> dict[str, Any]:
        return {"values": {k: list(v) for k, v in self._values.items()}}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._values = {name: list(state["values"].get(name, [])) for name in self.names}


class TrainLogging:
    """Every ``every`` iterations, log the mean of each train-step quantity since the last log as
    ``<prefix>.<q>``.

    Quantities are accumulated on the device and read back only when logged, so a GPU does not
    synchronise on every step. In data-parallel training the logged value is the mean over the
    processes. The running sums are checkpointed, so the first mean after a resume still covers
    every iteration since the previous log.
    """

    def __init__(self, log: LogFn, every: int, prefix: str = "batch"):
        self.log, self.every, self.prefix = log, every, prefix
        self._sums: dict[str, Any] = {}
        self._count = 0

    def attach(self, trainer: Engine) -> "TrainLogging":
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._accumulate)
        return self

    def _accumulate(self, engine: Engine) -> None:
        for k, v in engine.state.output.items():
            self._sums[k] = self._sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
        self._count += 1
        if engine.state.iteration % self.every == 0:
            means = mean_over_processes({k: as_float(s) / self._count for k, s in self._sums.items()})
            for k, value in means.items():
                self.log(f"{self.prefix}.{k}", value, engine.state.iteration)
            self._sums, self._count = {}, 0

    def state_dict(self) -> dict[str, Any]:
        return {"sums": dict(self._sums), "count": self._count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._sums, self._count = dict(state["sums"]), int(state["count"])


def evaluate(evaluator: Engine, data) -> dict[str, float]:
    """Run ``evaluator`` over ``data`` and return its batch-weighted means."""
    evaluator.run(data)
    return dict(evaluator.state.metrics)


def log_metrics(log: LogFn, prefix: str, metrics: Mapping[str, float], step: int) -> None:
    for k, v in metrics.items():
        log(f"{prefix}.{k}", float(v), step)


def attach_evaluation(trainer: Engine, evaluator: Engine, data, every: int | None, log: LogFn, prefix: str = "val"):
    """Evaluate every ``every`` iterations (None: never periodically) and once more when training
    completes; returns the function that evaluates now (at most once per iteration), for other
    events to call (the end of a phase with ``evaluate``)."""
    evaluated_at: list[int] = []

    def run(engine: Engine) -> None:
        if evaluated_at and evaluated_at[-1] == engine.state.iteration:
            return
        evaluated_at[:] = [engine.state.iteration]
        log_metrics(log, prefix, evaluate(evaluator, data), engine.state.iteration)

    if every is not None:
        trainer.add_event_handler(Events.ITERATION_COMPLETED(every=every), run)
    trainer.add_event_handler(Events.COMPLETED, run)
    return run


class StopOnNonFinite(TerminateOnNan):
    """Ignite's TerminateOnNan that remembers the iteration at which the loss went non-finite."""

    def __init__(self):
        super().__init__(output_transform=lambda out: {k: v for k, v in out.items() if isinstance(v, (Number, torch.Tensor))})
        self.step: int | None = None

    def __call__(self, engine: Engine) -> None:
        super().__call__(engine)
        if engine.should_terminate and self.step is None:
            self.step = engine.state.iteration


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite at iteration ``step``; ``last_checkpoint`` (at
    ``last_iteration``) is the newest checkpoint whose weights are all finite, or None."""

    def __init__(self, step: int, last_checkpoint: Path | None = None, last_iteration: int | None = None):
        self.step, self.last_checkpoint, self.last_iteration = step, last_checkpoint, last_iteration
        if last_checkpoint is None:
            advice = "no checkpoint with finite weights was written before it; start again with other settings"
        else:
            advice = (f"the last checkpoint with finite weights is {last_checkpoint} (iteration {last_iteration}): "
                      f"resume from it with a smaller learning rate, e.g. training.resume={last_checkpoint} training.lr=<smaller> "
                      f"training.resume_changes=\"['training.lr']\"")
        super().__init__(f"training stopped at iteration {step}: a loss became NaN or infinite; {advice}")


RECEIVED_SIGNALS: list[int] = []  # the interrupting signals this process received, in order


class GracefulInterrupt:
    """Turn the first Ctrl-C / SIGTERM into a clean stop at the end of the current iteration.

    The trainer then saves a consistent checkpoint and the caller re-raises KeyboardInterrupt, so
    the run is recorded as INTERRUPTED and can resume. A second signal interrupts at once.
    """

    def __init__(self, trainer: Engine):
        self.trainer, self.requested, self._previous = trainer, False, {}
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._check)

    def _handle(self, signum, frame) -> None:
        RECEIVED_SIGNALS.append(signum)
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def _check(self, engine: Engine) -> None:
        if self.requested:
            engine.terminate()

    def __enter__(self) -> "GracefulInterrupt":
        try:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread (e.g. inside a notebook worker): leave signals alone
            self._previous = {}
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


class RNGState:
    """Global random generators (python, numpy, torch, CUDA) as a checkpointable object."""

    def state_dict(self) -> dict[str, Any]:
        state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if "cuda" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])


class StateDictOf:
    """Adapts anything with ``state_dict``/``load_state_dict`` (e.g. an objective), or a plain dict
    kept in place, for ignite's Checkpoint."""

    def __init__(self, obj):
        self.obj = obj

    def state_dict(self):
        return dict(self.obj) if isinstance(self.obj, dict) else self.obj.state_dict()

    def load_state_dict(self, state):
        if isinstance(self.obj, dict):
            self.obj.clear()
            self.obj.update(state)
        else:
            self.obj.load_state_dict(state)
