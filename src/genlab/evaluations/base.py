"""The contract of an end-of-run evaluation.

An evaluation is a function ``fn(ctx: EvalContext, **options) -> (metrics, info)``:

- ``ctx`` holds the trained model, the objective, the data parts, the device, the evaluation
  sets (by default the training and test parts; an experiment may give others, e.g. the composer's
  fixed triplets) and the history of the run's in-training evaluations;
- its keyword options, all with defaults, are configuration: they sit flat in the ``evaluation``
  config (``evaluation.dci_alpha``), shared by every evaluation that takes an option of that name
  (``batch_size``);
- ``metrics`` is a flat ``{"<split>.<quantity>": value}`` dict, logged at the final step and
  returned as the run's result; ``info`` is anything else worth recording (matrices, counts), added
  to the run's ``info``.

Evaluations are registered by name in ``EVALUATIONS`` and run in the order the config lists them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch
from torch import nn

from genlab.data.sources import BatchSource, DataParts
from genlab.registry import Registry, check_options, keyword_defaults
from genlab.training.reporting import format_duration

logger = logging.getLogger("genlab.evaluation")

Metrics = dict[str, float]
Evaluation = Callable[..., "tuple[Metrics, dict[str, Any]]"]

EVALUATIONS: Registry[Evaluation] = Registry("evaluation", discover="genlab.evaluations")


def register_evaluation(name: str) -> Callable[[Evaluation], Evaluation]:
    return EVALUATIONS.register(name)


@dataclass
class EvalContext:
    """What an evaluation may look at once training is over."""

    model: nn.Module
    objective: Any  # genlab.objectives.Objective
    data: DataParts
    device: torch.device
    sets: Mapping[str, BatchSource | Iterable[dict]] = field(default_factory=dict)  # evaluation sets by split name
    history: list = field(default_factory=list)  # (iteration, {quantity: value}) of the run's in-training evaluations
    artifacts: dict = field(default_factory=dict)  # {file name: bytes} an evaluation wants recorded with the run (image grids, samples)

    def __post_init__(self):
        if not self.sets:
            self.sets = {k: v for k, v in (("train", self.data.train), ("test", self.data.test)) if v is not None and len(v)}


def evaluation_options(names: Iterable[str]) -> dict[str, Any]:
    """The options of the named evaluations and their defaults (the first evaluation's default
    where two share an option name)."""
    options: dict[str, Any] = {}
    for name in names:
        for key, value in keyword_defaults(EVALUATIONS.get(name)).items():
            options.setdefault(key, value)
    return options


def run_evaluations(ctx: EvalContext, names: Iterable[str], options: Mapping[str, Any]) -> tuple[Metrics, dict[str, Any]]:
    """Run the named evaluations in order, each with the options it takes; merged metrics and info.

    Each logs an INFO line on ``genlab.evaluation`` when it starts and when it ends (with its
    duration, also in the info's ``evaluation_seconds``)."""
    metrics: Metrics = {}
    info: dict[str, Any] = {}
    seconds: dict[str, float] = {}
    for name in names:
        fn = EVALUATIONS.get(name)
        own = {k: v for k, v in options.items() if k in keyword_defaults(fn)}
        check_options(f"evaluation {name!r}", fn, own)
        shown = ", ".join(f"{k}={v!r}" for k, v in own.items())
        logger.info("evaluation %s: started%s", name, f" ({shown})" if shown else "")
        start = time.monotonic()
        got, extra = fn(ctx, **own)
        seconds[name] = round(time.monotonic() - start, 3)
        logger.info("evaluation %s: done in %s (%.1f s)", name, format_duration(seconds[name]), seconds[name])
        metrics.update(got)
        info.update(extra)
    info["evaluation_seconds"] = seconds
    return metrics, info
