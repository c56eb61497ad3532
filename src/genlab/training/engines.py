"""Ignite engines built from any objective, and ``fit``: the one training loop every paper uses.

``create_trainer`` wraps ``objective.train_step`` and ``create_evaluator`` wraps
``objective.eval_step`` in Ignite ``Engine``s; ``fit`` attaches the shared handlers (metric
logging, periodic evaluation, NaN stop, early stopping, checkpoints, graceful Ctrl-C/SIGTERM,
progress bar) and runs, optionally resuming exactly from a checkpoint.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from ignite.engine import Engine, Events
from ignite.handlers import EarlyStopping, ProgressBar

from genlab.objectives.base import Objective
from genlab.training.progress import Progress
from genlab.training.handlers import (
    DictMean,
    GracefulInterrupt,
    LogFn,
    NonFiniteLossError,
    RNGState,
    StateDictOf,
    StopOnNonFinite,
    attach_checkpointing,
    attach_evaluation,
    attach_train_logging,
    evaluate,
    load_checkpoint,
)

logger = logging.getLogger("genlab.training")


def create_trainer(model: torch.nn.Module, objective: Objective, optimizers: dict[str, torch.optim.Optimizer]) -> Engine:
    """An Engine whose step is ``objective.train_step``, told its ``Progress`` (completed updates, epoch)."""

    def update(engine: Engine, batch: dict) -> dict[str, Any]:
        progress = Progress(iteration=engine.state.iteration - 1, epoch=engine.state.epoch - 1)
        return objective.train_step(model, optimizers, batch, progress)

    return Engine(update)


def create_evaluator(model: torch.nn.Module, objective: Objective) -> Engine:
    """An Engine whose ``state.metrics`` holds batch-size-weighted means of ``objective.eval_step``."""

    def step(engine: Engine, batch: dict) -> tuple[dict[str, Any], int]:
        return objective.eval_step(model, batch), len(batch["x"])

    evaluator = Engine(step)
    mean = DictMean()
    evaluator.add_event_handler(Events.EPOCH_STARTED, lambda _: mean.reset())
    evaluator.add_event_handler(Events.ITERATION_COMPLETED, lambda e: mean.update(e.state.output))
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, mean.completed, "mean")
    return evaluator


def evaluate_parts(
    evaluator: Engine, parts: dict, max_samples: int | None = None, batch_size: int = 512, seed: int = 1
) -> dict[str, dict[str, float]]:
    """Run ``evaluator`` on each non-empty ``FactorImages`` of ``parts`` (a seeded random subset of at
    most ``max_samples`` images, all of them when None); returns ``{part: metrics}``."""
    from genlab.data.sources import sample
    from genlab.data.batches import SequentialBatches

    return {
        name: evaluate(evaluator, SequentialBatches(sample(part, max_samples, seed=seed), batch_size))
        for name, part in parts.items()
        if len(part)
    }


@dataclass
class FitResult:
    iterations: int
    checkpoint_dir: Path | None
    resumed_from: Path | None
    stopped_early: bool
    val_metrics: dict[str, float]


def fit(
    model: torch.nn.Module,
    objective: Objective,
    optimizers: dict[str, torch.optim.Optimizer],
    train_batches,
    *,
    max_iterations: int,
    val_batches=None,
    eval_every: int = 1000,
    log: LogFn | None = None,
    log_every: int = 100,
    checkpoint_dir: str | Path | None = None,
    checkpoint_every: int = 1000,
    n_saved: int = 2,
    resume: str | Path | None = None,
    early_stopping_patience: int | None = None,
    early_stopping_metric: str = "loss",
    progress: bool = False,
    hooks: Callable[[Engine], None] | None = None,
) -> FitResult:
    """Train ``model`` with ``objective`` for ``max_iterations`` updates.

    ``train_batches`` is a ``genlab.data.batches.ShuffledBatches`` (its order is a function of the
    iteration, which makes resume exact). Raises ``NonFiniteLossError`` if a loss goes NaN/inf and
    ``KeyboardInterrupt`` after a clean stop on Ctrl-C/SIGTERM; both leave the last checkpoint.
    """
    log = log or (lambda name, value, step: None)
    trainer = create_trainer(model, objective, optimizers)
    train_batches.bind(lambda: trainer.state.iteration)

    nonfinite = StopOnNonFinite()
    trainer.add_event_handler(Events.ITERATION_COMPLETED, nonfinite)
    attach_train_logging(trainer, log, every=log_every)

    early_stopping = None
    if val_batches is not None:
        evaluator = create_evaluator(model, objective)
        attach_evaluation(trainer, evaluator, val_batches, every=eval_every, log=log)
        if early_stopping_patience:
            early_stopping = EarlyStopping(
                early_stopping_patience, lambda e: -e.state.metrics[early_stopping_metric], trainer
            )
            evaluator.add_event_handler(Events.COMPLETED, early_stopping)

    to_save: dict[str, Any] = {"model": model, "trainer": trainer, "objective": StateDictOf(objective), "rng": RNGState()}
    to_save.update({f"optimizer_{name}": opt for name, opt in optimizers.items()})
    if early_stopping is not None:
        to_save["early_stopping"] = early_stopping
    if checkpoint_dir is not None:
        attach_checkpointing(
            trainer, to_save, Path(checkpoint_dir), every=checkpoint_every, n_saved=n_saved, valid=lambda: nonfinite.step is None
        )

    resumed_from = None
    if resume is not None:
        resumed_from = load_checkpoint(to_save, resume)
        logger.info("resumed from %s at iteration %d", resumed_from, trainer.state.iteration)

    if progress:
        ProgressBar(persist=False).attach(trainer)
    if hooks is not None:
        hooks(trainer)

    with GracefulInterrupt(trainer) as interrupt:
        if trainer.state.iteration < max_iterations:
            trainer.run(train_batches, max_iters=max_iterations, epoch_length=len(train_batches))
    if nonfinite.step is not None:
        raise NonFiniteLossError(nonfinite.step)
    if interrupt.requested:
        raise KeyboardInterrupt(f"stopped at iteration {trainer.state.iteration}; checkpoint in {checkpoint_dir}")

    return FitResult(
        iterations=trainer.state.iteration,
        checkpoint_dir=Path(checkpoint_dir) if checkpoint_dir is not None else None,
        resumed_from=resumed_from,
        stopped_early=trainer.state.iteration < max_iterations,
        val_metrics=dict(getattr(trainer.state, "last_eval", {}) or {}),
    )
