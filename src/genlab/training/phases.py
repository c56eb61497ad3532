"""Phases of a run: named stretches of training, each with its own length, optimizers and stop rule.

A run is one or more phases, run in order on one step axis with one checkpoint folder (TCL's two
stages, ICE-BeeM's flow and EBM rounds, warm-up then fine-tuning). A phase lasts ``iterations``
updates or ``epochs`` passes over the training stream (``epochs * batches_per_epoch`` updates), and
may end earlier by a ``stop`` rule on the objective's returned quantities: ``{"metric": q, "above":
x}`` or ``{"metric": q, "below": x}``, checked at the end of every epoch *of the phase* (every
``batches_per_epoch`` updates counted from the phase's start) against the mean of ``q`` over that
epoch. ``optimizers`` names the optimizers the objective is handed in the phase (None: all of
them); ``lr`` sets learning rates at the phase's start (``{optimizer name: lr}``).
``finish_epoch``: a phase of ``iterations`` updates runs on to the end of the epoch its last
update falls in (iVAE's 70,000 iterations "finishing the current epoch"). ``evaluate``: the
validation batches are evaluated when the phase ends (ICE-BeeM's evaluations after each EBM phase).

:class:`PhaseTracker` is the Ignite handler that moves the run through its phases. Its state (the
current phase, where it started, the partial epoch's sums for the stop rule) is checkpointed with
the run, so a resumed run takes the same phase decisions as an uninterrupted one. A run of several
phases logs ``train.phase`` (the phase's index) at the step where each phase starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import torch
from ignite.engine import Engine

from genlab.errors import ConfigError
from genlab.training.progress import Progress

PHASE_KEYS = ("name", "iterations", "epochs", "optimizers", "stop", "lr", "finish_epoch", "evaluate")


@dataclass(frozen=True)
class StopRule:
    metric: str
    above: float | None = None
    below: float | None = None

    def __post_init__(self):
        if (self.above is None) == (self.below is None):
            raise ConfigError(f"a phase's stop rule gives exactly one of 'above' or 'below' for {self.metric!r}")

    def met(self, value: float) -> bool:
        return value > self.above if self.above is not None else value < self.below

    def __str__(self) -> str:
        return f"{self.metric} > {self.above}" if self.above is not None else f"{self.metric} < {self.below}"


@dataclass(frozen=True)
class Phase:
    name: str = "train"
    iterations: int | None = None
    epochs: int | None = None
    optimizers: tuple[str, ...] | None = None
    stop: StopRule | None = None
    lr: Mapping[str, float] = field(default_factory=dict)
    finish_epoch: bool = False
    evaluate: bool = False

    def __post_init__(self):
        if (self.iterations is None) == (self.epochs is None):
            raise ConfigError(f"phase {self.name!r}: give exactly one of 'iterations' or 'epochs'")
        length = self.iterations if self.iterations is not None else self.epochs
        if int(length) != length or length < 0:
            raise ConfigError(f"phase {self.name!r}: its length must be a non-negative integer, got {length!r}")

    def length(self, batches_per_epoch: int) -> int:
        """The most updates the phase takes."""
        if self.iterations is None:
            return int(self.epochs) * batches_per_epoch
        if self.finish_epoch:
            return -(-int(self.iterations) // batches_per_epoch) * batches_per_epoch
        return int(self.iterations)


def parse_phases(specs: Sequence[Mapping[str, Any]] | None, *, iterations: int | None = None, epochs: int | None = None) -> list[Phase]:
    """Phases from a config list of dicts (keys ``PHASE_KEYS``); ``None`` gives the one phase
    ``train`` of ``iterations`` updates (or ``epochs`` epochs). Bad entries fail with the phase named."""
    if specs is None:
        if iterations is not None:
            return [Phase("train", iterations=int(iterations))]
        return [Phase("train", epochs=int(epochs))]
    if isinstance(specs, (str, bytes)) or not isinstance(specs, Sequence) or not specs:
        raise ConfigError(f"training.phases must be a non-empty list of phases (dicts with {', '.join(PHASE_KEYS)})")
    phases = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, Mapping):
            raise ConfigError(f"phase #{i} must be a dict with keys among {', '.join(PHASE_KEYS)}, got {spec!r}")
        unknown = sorted(set(spec) - set(PHASE_KEYS))
        if unknown:
            raise ConfigError(f"phase #{i} has no key(s) {', '.join(unknown)}; phase keys: {', '.join(PHASE_KEYS)}")
        stop = spec.get("stop")
        if stop is not None:
            if not isinstance(stop, Mapping) or not set(stop) <= {"metric", "above", "below"} or "metric" not in stop:
                raise ConfigError(f"phase #{i}: stop must be {{'metric': name, 'above' or 'below': value}}, got {stop!r}")
            stop = StopRule(**dict(stop))
        optimizers = spec.get("optimizers")
        phases.append(Phase(
            name=str(spec.get("name", f"phase{i}")),
            iterations=spec.get("iterations"),
            epochs=spec.get("epochs"),
            optimizers=None if optimizers is None else tuple(optimizers),
            stop=stop,
            lr=dict(spec.get("lr") or {}),
            finish_epoch=bool(spec.get("finish_epoch", False)),
            evaluate=bool(spec.get("evaluate", False)),
        ))  # fmt: skip
    names = [p.name for p in phases]
    if len(set(names)) != len(names):
        raise ConfigError(f"phase names must be unique, got {names}")
    return phases


def check_phase_optimizers(phases: Sequence[Phase], optimizers: Mapping[str, Any]) -> None:
    """Every optimizer a phase names (to train or to set a learning rate for) exists."""
    for phase in phases:
        for name in (*(phase.optimizers or ()), *phase.lr):
            if name not in optimizers:
                raise ConfigError(
                    f"phase {phase.name!r} names optimizer {name!r}; the objective's optimizers are: {', '.join(optimizers)}"
                )


class PhaseTracker:
    """Moves a trainer through its phases; ``progress`` and ``optimizers`` say where a step stands.

    Attach with :meth:`attach` before the run and start the trainer with ``max_iters =
    planned_end()``: the current phase's start plus the full lengths of it and the phases after it
    (at most ``limit``, which cuts the run short wherever it falls).
    A phase that stops early brings the end forward (the trainer's ``max_iters`` follows), and the
    end of the last phase ends the run.
    """

    def __init__(self, phases: Sequence[Phase], batches_per_epoch: int, log=None, on_end=None, limit: int | None = None):
        if not phases:
            raise ConfigError("a run needs at least one phase")
        self.phases, self.batches_per_epoch = list(phases), int(batches_per_epoch)
        self.log = log or (lambda name, value, step: None)
        self.on_end = on_end or (lambda phase, engine: None)  # called when a phase ends during a run
        self.limit = limit  # the most updates of the whole run (None: as the phases say)
        self.index, self.start, self.over = 0, 0, False
        self.spans: list[tuple[str, int, int, bool]] = []  # finished phases: (name, start, end, stopped by rule)
        self._sum: float | torch.Tensor = 0.0  # the stop rule's metric over the phase's current epoch
        self._count = 0
        self._optimizers: Mapping[str, torch.optim.Optimizer] = {}
        self._skip_empty(0)

    # --- where the run stands --------------------------------------------------------------------

    @property
    def phase(self) -> Phase:
        return self.phases[self.index]

    def planned_end(self) -> int:
        if self.over:
            return self.spans[-1][2]
        end = self.start + sum(p.length(self.batches_per_epoch) for p in self.phases[self.index :])
        return end if self.limit is None else min(end, int(self.limit))

    def progress(self, engine: Engine) -> Progress:
        """The ``Progress`` of the step the trainer is running (its ``iteration`` already counts it)."""
        completed = engine.state.iteration - 1
        return Progress(
            iteration=completed,
            epoch=completed // self.batches_per_epoch,
            phase=self.phase.name,
            phase_index=self.index,
            phase_iteration=completed - self.start,
            epoch_length=self.batches_per_epoch,
        )

    def optimizers(self, all_optimizers: Mapping[str, torch.optim.Optimizer]) -> dict[str, torch.optim.Optimizer]:
        """The optimizers of the current phase."""
        names = self.phase.optimizers
        return dict(all_optimizers) if names is None else {n: all_optimizers[n] for n in names}

    # --- events ----------------------------------------------------------------------------------

    def attach(self, trainer: Engine, optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
        from ignite.engine import Events

        check_phase_optimizers(self.phases, optimizers)
        self._optimizers = optimizers
        trainer.add_event_handler(Events.ITERATION_STARTED, self._begin)
        trainer.add_event_handler(Events.ITERATION_COMPLETED, self._completed)

    def _begin(self, engine: Engine) -> None:
        if engine.state.iteration - 1 == self.start:  # the phase's first step (not repeated on resume)
            if len(self.phases) > 1:  # a run of one phase has nothing to mark
                self.log("train.phase", float(self.index), self.start)
            for name, lr in self.phase.lr.items():
                for group in self._optimizers[name].param_groups:
                    group["lr"] = float(lr)

    def _completed(self, engine: Engine) -> None:
        phase = self.phase
        done = engine.state.iteration - self.start
        finished, stopped = done >= phase.length(self.batches_per_epoch), False
        if phase.stop is not None:
            output = engine.state.output
            if phase.stop.metric not in output:
                raise KeyError(
                    f"phase {phase.name!r} stops on {phase.stop.metric!r}, which the objective's train_step does "
                    f"not return; it returns: {', '.join(sorted(output))}"
                )
            value = output[phase.stop.metric]
            self._sum = self._sum + (value.detach() if isinstance(value, torch.Tensor) else float(value))
            self._count += 1
            if not finished and done % self.batches_per_epoch == 0:
                finished = stopped = phase.stop.met(float(self._sum) / self._count)
                self._sum, self._count = 0.0, 0
        if finished:
            self._next(engine.state.iteration, stopped)
            engine.state.max_iters = self.planned_end()
            self.on_end(phase, engine)

    def _next(self, end: int, stopped: bool = False) -> None:
        """The current phase ended at update ``end`` (by its stop rule if ``stopped``)."""
        self.spans.append((self.phase.name, self.start, end, stopped))
        self._sum, self._count = 0.0, 0
        if self.index + 1 == len(self.phases):
            self.over = True  # index and start stay: the last phase's span tells where the run ended
            return
        self.index, self.start = self.index + 1, end
        self._skip_empty(end)

    def _skip_empty(self, at: int) -> None:
        """Phases of length 0 are passed over at once (the run is over if only such phases remain)."""
        while not self.over and self.phase.length(self.batches_per_epoch) == 0:
            self.spans.append((self.phase.name, at, at, False))
            if self.index + 1 == len(self.phases):
                self.over = True
            else:
                self.index += 1

    def resume_at(self, iteration: int) -> None:
        """After loading a checkpoint taken at ``iteration``. A phase its stop rule ended stays ended;
        the current phase is reopened if it ended by its length, so a resumed run may be given more
        updates (a longer last phase) and continues; phases the plan says are complete are passed."""
        if len(self.spans) > self.index and self.spans[self.index][3]:
            self.over = True
            return
        self.over = False
        self.spans = self.spans[: self.index]
        self._skip_empty(self.start)
        while not self.over and iteration - self.start >= self.phase.length(self.batches_per_epoch):
            self._next(min(iteration, self.start + self.phase.length(self.batches_per_epoch)))

    # --- checkpoint ------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"index": self.index, "start": self.start, "spans": list(self.spans), "sum": self._sum, "count": self._count}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.index, self.start = int(state["index"]), int(state["start"])
        self.spans = [tuple(s) for s in state["spans"]]
        self._sum, self._count = state["sum"], int(state["count"])


__all__ = ["Phase", "PhaseTracker", "StopRule", "check_phase_optimizers", "parse_phases"]
