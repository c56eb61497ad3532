"""Ignite engines built from any objective, and ``fit``: the one training loop every paper uses.

``create_trainer`` wraps ``objective.train_step`` and ``create_evaluator`` wraps
``objective.eval_step`` in Ignite ``Engine``s; ``fit`` attaches the shared handlers and runs:

- phases (``genlab.training.phases``): named stretches with their own length, optimizers and stop
  rule, on one step axis; a run of one phase is the usual case;
- metric logging, periodic evaluation on validation batches, NaN stop, graceful Ctrl-C/SIGTERM;
- learning-rate schedules (``genlab.training.schedulers``) stepped per iteration or per epoch;
- an exponential moving average of the weights (Ignite's ``EMAHandler``), optionally the model
  that is evaluated;
- best-checkpoint selection on a validation quantity with a warm-up gate (Ignite's ``Checkpoint``
  with a ``score_function``), early stopping on the same quantity and gate, and optionally the
  best weights, not the last, as the result;
- checkpoints of everything above for an exact resume (``genlab.training.checkpoints``: the new
  file written before old ones go, never of non-finite weights, a corrupt newest file skipped for
  the next older one), the logging accumulators and the last evaluation included, so a resumed
  run logs what an uninterrupted one would, and a run resumed from its final checkpoint goes
  straight to the end-of-run evaluations.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from ignite.engine import Engine, Events
from ignite.handlers import Checkpoint, DiskSaver, EarlyStopping, EMAHandler

from genlab.objectives.base import Objective
from genlab.training.checkpoints import Checkpointer, iteration_of, load_checkpoint
from genlab.training.handlers import (
    DictMean,
    EpochMeans,
    EpochMedians,
    GracefulInterrupt,
    LogFn,
    NonFiniteLossError,
    RNGState,
    StateDictOf,
    StopOnNonFinite,
    TrainLogging,
    attach_evaluation,
)
from genlab.training.phases import Phase, PhaseTracker, parse_phases
from genlab.training.progress import Progress
from genlab.training.reporting import DEFAULT_EVERY, attach_progress

logger = logging.getLogger("genlab.training")


def create_trainer(
    model: torch.nn.Module,
    objective: Objective,
    optimizers: dict[str, torch.optim.Optimizer],
    phases: PhaseTracker | None = None,
) -> Engine:
    """An Engine whose step is ``objective.train_step``, told its ``Progress`` and handed the
    optimizers of the current phase (all of them without ``phases``)."""

    def update(engine: Engine, batch: dict) -> dict[str, Any]:
        if phases is None:
            progress = Progress(iteration=engine.state.iteration - 1, epoch=engine.state.epoch - 1,
                                epoch_length=engine.state.epoch_length)
            return objective.train_step(model, optimizers, batch, progress)
        return objective.train_step(model, phases.optimizers(optimizers), batch, phases.progress(engine))

    return Engine(update)


def create_evaluator(model: torch.nn.Module, objective: Objective) -> Engine:
    """An Engine whose ``state.metrics`` holds batch-size-weighted means of ``objective.eval_step``
    (which decides itself whether it needs gradients)."""

    def step(engine: Engine, batch: dict) -> tuple[dict[str, Any], int]:
        return objective.eval_step(model, batch), len(batch["x"])

    evaluator = Engine(step)
    mean = DictMean()
    evaluator.add_event_handler(Events.EPOCH_STARTED, lambda _: mean.reset())
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: mean.update(e.state.output))
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, mean.completed, "mean")
    if hasattr(objective, "start_evaluation"):  # quantities of a whole pass (MIM's KSG mutual information)
        evaluator.add_event_handler(Events.EPOCH_STARTED, lambda _: objective.start_evaluation())
    if hasattr(objective, "finish_evaluation"):
        evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: e.state.metrics.update(objective.finish_evaluation(model)))
    return evaluator


@dataclass(frozen=True)
class Selection:
    """Which evaluation is best: the validation quantity ``metric`` (``"loss"``; ``"val.loss"`` is
    read the same), smaller or larger (``mode``), counted only from iteration ``after`` (or from the
    end of epoch ``after_epochs``) on: the warm-up gate, shared by early stopping."""

    metric: str = "loss"
    mode: str = "min"
    after: int = 0
    after_epochs: int = 0  # the gate in epochs of the training stream instead (MIM's "epoch >= warm-up")

    def gate(self, epoch_length: int) -> int:
        """The first iteration whose evaluation counts."""
        return max(int(self.after), int(self.after_epochs) * int(epoch_length))

    def __post_init__(self):
        if self.mode not in ("min", "max"):
            raise ValueError(f"selection mode must be 'min' or 'max', got {self.mode!r}")
        object.__setattr__(self, "metric", self.metric.removeprefix("val."))

    def score(self, metrics: Mapping[str, float]) -> float:
        """Larger is better (what Ignite's score functions return)."""
        if self.metric not in metrics:
            raise KeyError(f"selection on val.{self.metric}, but the evaluation returns {', '.join(sorted(metrics))}")
        value = float(metrics[self.metric])
        return -value if self.mode == "min" else value


@dataclass
class FitResult:
    iterations: int
    checkpoint_dir: Path | None
    resumed_from: Path | None
    stopped_early: bool
    val_metrics: dict[str, float]  # of the last evaluation (of the best one, with evaluate_best)
    val_history: list[tuple[int, dict[str, float]]] = field(default_factory=list)  # (iteration, metrics) of every evaluation
    eval_model: torch.nn.Module | None = None  # what the run's results describe: the model, its EMA, or their best
    best_checkpoint: Path | None = None
    best_score: float | None = None  # the selected quantity's value at the best evaluation
    phases: list[tuple[str, int, int]] = field(default_factory=list)  # (name, start, end) of each phase run
    resumed_at: int | None = None  # the iteration of the checkpoint resumed from
    last_checkpoint: Path | None = None  # the newest checkpoint written (or resumed from)


def fit(
    model: torch.nn.Module,
    objective: Objective,
    optimizers: dict[str, torch.optim.Optimizer],
    train_batches,
    *,
    max_iterations: int | None = None,
    phases: Sequence[Phase] | None = None,
    val_batches=None,
    eval_every: int | str = 1000,
    log: LogFn | None = None,
    log_every: int = 100,
    epoch_medians: Sequence[str] = (),
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1000,
    n_saved: int = 2,
    resume: str | Path | None = None,
    schedulers: Mapping[str, Any] | None = None,
    select: Selection | None = None,
    early_stopping_patience: int | None = None,
    early_stopping_after_epochs: int | None = None,
    evaluate_best: bool = False,
    ema_decay: float | None = None,
    ema_warmup: bool = False,
    evaluate_ema: bool = False,
    progress: bool | str = False,
    progress_every: float = DEFAULT_EVERY,
    hooks: Callable[[Engine], None] | None = None,
    on_checkpoint: Callable[[Path, int], None] | None = None,
    on_resume: Callable[[Path], None] | None = None,
) -> FitResult:
    """Train ``model`` with ``objective`` through ``phases`` (or one phase of ``max_iterations``;
    given with ``phases``, ``max_iterations`` caps the whole run: a smoke run of a phased schedule).

    ``train_batches`` is a ``genlab.data.batches.ShuffledBatches`` (or anything with ``bind`` and
    ``len``: its order is a function of the iteration, which makes resume exact). ``eval_every``:
    iterations between evaluations of ``val_batches``, ``"epoch"``, or ``"phase"`` (only at the
    ends of phases with ``evaluate`` and at the end of the run). ``schedulers``: name ->
    ``genlab.training.schedulers.Scheduler``. ``select``: keep the best evaluation's weights in
    ``<checkpoint_dir>/best/``; ``early_stopping_patience`` evaluations without improvement of the
    same quantity (``val.loss`` without ``select``) stop the run; ``early_stopping_after_epochs``: the
    best value is still tracked before the end of this epoch, but evaluations there never count
    towards the patience (the VampPrior code's counter reset during MIM's 100 warm-up epochs,
    docs/mim.md §4.2; None: early stopping starts at the selection gate). ``ema_decay``: keep an
    exponential moving average of the weights (``evaluate_ema``: evaluate it instead of the model);
    ``ema_warmup``: its decay at the t-th update of a phase is min(ema_decay, (1 + t) / (10 + t)), as
    TensorFlow's ``ExponentialMovingAverage`` with ``num_updates`` (TCL's original, docs/icebeem.md §4d),
    so that the average forgets the weights before each phase.
    ``epoch_medians``: training-step quantities whose median over each epoch of the training stream
    is logged as ``epoch.<q>_median`` (ICE-BeeM's transfer metric).
    ``on_checkpoint(path, iteration)`` is called after each checkpoint is written; ``on_resume(path)``
    right after the state is restored from the checkpoint file ``path`` (to apply settings that may
    change on resume).
    ``progress``: ``"bar"``, ``"log"`` (a line every ``progress_every`` seconds), ``"auto"`` or
    ``"off"``; True is ``"bar"``, False ``"off"`` (``genlab.training.reporting``).
    Raises ``NonFiniteLossError`` (naming the last checkpoint with finite weights) if a loss goes
    NaN/inf and ``KeyboardInterrupt`` after a clean stop on Ctrl-C/SIGTERM; both leave the last
    checkpoint.
    """
    log = log or (lambda name, value, step: None)
    n_batches = len(train_batches)
    if phases is None:
        if max_iterations is None:
            raise ValueError("give max_iterations or phases")
        phases = parse_phases(None, iterations=max_iterations)
    phase_end: list[Callable[[Engine], None]] = []  # what runs when a phase with ``evaluate`` ends
    tracker = PhaseTracker(phases, n_batches, log, on_end=lambda phase, e: [f(e) for f in phase_end if phase.evaluate],
                           limit=max_iterations)  # fmt: skip
    trainer = create_trainer(model, objective, optimizers, tracker)
    tracker.attach(trainer, optimizers)
    train_batches.bind(lambda: trainer.state.iteration)
    every = {"epoch": n_batches, "phase": None}[eval_every] if isinstance(eval_every, str) else int(eval_every)

    nonfinite = StopOnNonFinite()
    trainer.add_event_handler(Events.ITERATION_COMPLETED, nonfinite)
    to_save: dict[str, Any] = {"model": model, "trainer": trainer, "objective": StateDictOf(objective), "rng": RNGState(),
                               "phases": tracker}  # fmt: skip
    to_save.update({f"optimizer_{name}": opt for name, opt in optimizers.items()})

    schedulers = dict(schedulers or {})
    if schedulers:
        epoch_means = EpochMeans()
        epoch_means.attach(trainer)
        to_save["epoch_means"] = epoch_means

        @trainer.on(Events.ITERATION_COMPLETED)
        def step_per_iteration(engine: Engine) -> None:
            for scheduler in schedulers.values():
                if scheduler.unit == "iteration":
                    scheduler.step(engine.state.output)

        @trainer.on(Events.EPOCH_COMPLETED)
        def step_per_epoch(engine: Engine) -> None:
            means = epoch_means.means()
            for scheduler in schedulers.values():
                if scheduler.unit == "epoch":
                    scheduler.step(means)

        to_save.update({f"scheduler_{name}": s for name, s in schedulers.items()})

    eval_model = model
    if ema_decay is not None:
        if not 0.0 < ema_decay < 1.0:
            raise ValueError(f"the EMA decay must lie in (0, 1), got {ema_decay}")
        ema = EMAHandler(model, momentum=1.0 - ema_decay)
        if ema_warmup:
            @trainer.on(Events.ITERATION_STARTED)
            def warm_up_ema(engine: Engine) -> None:
                t = tracker.progress(engine).phase_iteration + 1  # this phase's updates, this one included
                engine.state.ema_momentum = 1.0 - min(ema_decay, (1.0 + t) / (10.0 + t))

        ema.attach(trainer, name="ema_momentum", event=Events.ITERATION_COMPLETED, warn_if_exists=False)
        to_save["ema_model"] = ema.ema_model
        if evaluate_ema:
            eval_model = ema.ema_model
    elif evaluate_ema:
        raise ValueError("evaluate_ema needs an EMA (ema_decay)")
    to_save["train_logging"] = TrainLogging(log, every=log_every).attach(trainer)
    if epoch_medians:  # before the checkpointer, so that an epoch's end is closed in the checkpoint written there
        to_save["epoch_medians"] = EpochMedians(epoch_medians, log).attach(trainer)

    early_stopping, best, best_metrics, last_eval = None, None, {}, {}
    history: dict[str, list] = {"evaluations": []}  # (iteration, metrics) of every evaluation of the run
    gate = select.gate(n_batches) if select is not None else 0
    if val_batches is not None:
        if hasattr(val_batches, "bind"):  # validation drawn afresh at each evaluation (genlab.data.streams)
            val_batches.bind(lambda: trainer.state.iteration)
        evaluator = create_evaluator(eval_model, objective)
        phase_end.append(attach_evaluation(trainer, evaluator, val_batches, every=every, log=log))

        @evaluator.on(Events.COMPLETED)
        def remember(engine: Engine) -> None:
            last_eval.clear()
            last_eval.update(engine.state.metrics)
            history["evaluations"].append((trainer.state.iteration, {k: float(v) for k, v in engine.state.metrics.items()}))

        to_save["last_eval"] = StateDictOf(last_eval)
        to_save["val_history"] = StateDictOf(history)
        if select is not None:
            if checkpoint_dir is None:
                raise ValueError("best-checkpoint selection needs a checkpoint directory")
            best = Checkpoint(
                {"model": eval_model},
                DiskSaver(str(Path(checkpoint_dir) / "best"), require_empty=False, create_dir=True),
                filename_prefix="best", n_saved=1, score_name=select.metric,
                score_function=lambda e: select.score(e.state.metrics),
                global_step_transform=lambda *_: trainer.state.iteration,
            )  # fmt: skip
            to_save["best_checkpoint"] = best
            to_save["best_metrics"] = StateDictOf(best_metrics)

            @evaluator.on(Events.COMPLETED)
            def keep_best(engine: Engine) -> None:
                if trainer.state.iteration >= gate and nonfinite.step is None:
                    before = best.last_checkpoint
                    best(engine)
                    if best.last_checkpoint != before:
                        best_metrics.clear()
                        best_metrics.update(engine.state.metrics)

        if early_stopping_patience:
            rule = select or Selection()
            early_stopping = EarlyStopping(early_stopping_patience, lambda e: rule.score(e.state.metrics), trainer)
            counting_from = gate if early_stopping_after_epochs is None else max(gate, int(early_stopping_after_epochs) * n_batches)

            @evaluator.on(Events.COMPLETED)
            def stop_early(engine: Engine) -> None:
                iteration = trainer.state.iteration
                if iteration < gate:
                    return
                if iteration >= counting_from:
                    early_stopping(engine)
                    return
                score = rule.score(engine.state.metrics)  # before counting starts: track the best, reset the counter
                if early_stopping.best_score is None or score > early_stopping.best_score + early_stopping.min_delta:
                    early_stopping.best_score = score
                early_stopping.counter = 0

            to_save["early_stopping"] = early_stopping
    elif select is not None or early_stopping_patience:
        raise ValueError("best-checkpoint selection and early stopping need validation batches")

    checkpointer = None
    if checkpoint_dir is not None:
        modules = [model] + ([to_save["ema_model"]] if "ema_model" in to_save else [])
        checkpointer = Checkpointer(to_save, Path(checkpoint_dir), every=checkpoint_every, n_saved=n_saved,
                                    valid=lambda: nonfinite.step is None, modules=modules, on_save=on_checkpoint)  # fmt: skip
        checkpointer.attach(trainer)

    resumed_from = None
    if resume is not None:
        resumed_from = load_checkpoint(to_save, resume, optional=("phases", "epoch_means", "epoch_medians", "best_metrics", "train_logging", "last_eval",
                                                                  "val_history"))
        tracker.resume_at(trainer.state.iteration)
        if best is not None:
            _carry_best(resumed_from.parent / "best", Path(checkpoint_dir) / "best")
        if on_resume is not None:
            on_resume(resumed_from)
        logger.info("resumed from %s at iteration %d", resumed_from, trainer.state.iteration)

    attach_progress(trainer, progress, tracker.planned_end, every_seconds=progress_every)  # genlab.training.reporting
    if hooks is not None:
        hooks(trainer)

    planned = tracker.planned_end()
    with GracefulInterrupt(trainer) as interrupt:
        if trainer.state.iteration < planned:
            trainer.run(train_batches, max_iters=planned, epoch_length=n_batches)
    last, last_iteration = (checkpointer.last, checkpointer.last_iteration) if checkpointer is not None else (None, None)
    if last is None and resumed_from is not None:
        last, last_iteration = resumed_from, iteration_of(resumed_from)
    if nonfinite.step is not None:
        raise NonFiniteLossError(nonfinite.step, last, last_iteration)
    if interrupt.requested:
        raise KeyboardInterrupt(f"stopped at iteration {trainer.state.iteration}; checkpoint in {checkpoint_dir}")

    val_metrics = dict(last_eval)
    best_file = Path(best.last_checkpoint) if best is not None and best.last_checkpoint is not None else None
    if best_file is not None and not best_file.is_absolute():
        best_file = Path(checkpoint_dir) / "best" / best_file
    if evaluate_best and best_file is not None:
        Checkpoint.load_objects({"model": eval_model}, torch.load(best_file, map_location="cpu", weights_only=False))
        val_metrics = dict(best_metrics)
    elif evaluate_best:
        logger.warning("no evaluation counted for the best weights (none at or after iteration %d, the selection gate); "
                       "the results describe the last weights", gate)
    total = sum(p.length(n_batches) for p in phases)
    return FitResult(
        iterations=trainer.state.iteration,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        resumed_from=resumed_from,
        stopped_early=trainer.state.iteration < total,
        val_metrics=val_metrics,
        val_history=[(int(i), dict(m)) for i, m in history["evaluations"]],
        eval_model=eval_model,
        best_checkpoint=best_file,
        best_score=None if not best_metrics else float(best_metrics[select.metric]),
        phases=list(tracker.spans),
        resumed_at=None if resumed_from is None else iteration_of(resumed_from),
        last_checkpoint=last,
    )


def _carry_best(source: Path, target: Path) -> None:
    """A resumed run's best-weights file lives in the earlier run's ``best/`` folder: copy it, so
    the resumed run's record is complete on its own."""
    if source.is_dir() and source.resolve() != target.resolve():
        target.mkdir(parents=True, exist_ok=True)
        for path in source.glob("*.pt"):
            if not (target / path.name).exists():
                shutil.copy2(path, target / path.name)
