"""Learning-rate schedules by name, stepped by the training loop at a declared unit.

A paper's schedule is config (``training.scheduler`` and its options), not code: every entry of
``SCHEDULERS`` is a builder ``(optimizer, **options) -> Scheduler`` whose keyword defaults are the
options ``scheduler_options`` shows. A ``Scheduler`` wraps one torch LR scheduler and says when the
loop must step it (``unit``: after every training iteration or after every epoch of the training
stream) and, for schedules driven by a metric, which training quantity's epoch mean it reads. Its
whole state is the torch scheduler's ``state_dict``, so a resumed run continues exactly.

Bad option values (an unknown unit, a zero warm-up ...) are refused when the schedule is built,
before any training, rather than when they are first used.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping

import torch
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, ReduceLROnPlateau, StepLR

from genlab.errors import ConfigError
from genlab.registry import Registry, keyword_defaults

UNITS = ("iteration", "epoch")


class MissingQuantityError(KeyError):
    """A schedule's metric is not among the quantities it was given; the message lists them."""

    def __init__(self, metric: str, available: Iterable[str]):
        self.metric, self.available = metric, sorted(available)
        super().__init__(
            f"the schedule reads training quantity {metric!r}, which is missing; "
            f"available quantities: {', '.join(self.available) or '(none)'}"
        )

    def __str__(self) -> str:  # KeyError would quote the whole message
        return self.args[0]


class Scheduler:
    """One torch LR scheduler, stepped once per ``unit`` ("iteration" or "epoch").

    ``metric``: the training quantity (e.g. "loss") whose epoch mean a metric-driven scheduler
    (``ReduceLROnPlateau``) is stepped with; None for schedules of the step count alone.
    """

    def __init__(self, scheduler: LRScheduler, unit: str, metric: str | None = None):
        _check_unit(unit)
        self.scheduler, self.unit, self.metric = scheduler, unit, metric

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.scheduler.optimizer

    def step(self, metrics: Mapping[str, float] | None = None) -> None:
        """Advance one unit; a metric-driven schedule reads its quantity from ``metrics`` (the epoch
        means of the training-step quantities, keyed by quantity name)."""
        if self.metric is None:
            self.scheduler.step()
            return
        if metrics is None or self.metric not in metrics:
            raise MissingQuantityError(self.metric, metrics or ())
        self.scheduler.step(float(metrics[self.metric]))

    def lr(self) -> list[float]:
        """The current learning rate of each of the optimizer's param groups."""
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return self.scheduler.state_dict()

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.scheduler.load_state_dict(dict(state))

    def __repr__(self) -> str:
        metric = f", metric={self.metric!r}" if self.metric is not None else ""
        return f"Scheduler({type(self.scheduler).__name__}, unit={self.unit!r}{metric})"


SchedulerBuilder = Callable[..., Scheduler]

SCHEDULERS: Registry[SchedulerBuilder] = Registry("scheduler")


def _check_unit(unit: object) -> None:
    if unit not in UNITS:
        raise ConfigError(f"option unit must be one of {', '.join(UNITS)}; got {unit!r}")


def _check_positive_int(option: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"option {option} must be an integer >= 1; got {value!r}")


@SCHEDULERS.register("plateau")
def plateau(
    optimizer: torch.optim.Optimizer,
    metric: str = "loss",
    mode: str = "min",
    factor: float = 0.1,
    patience: int = 10,
    threshold: float = 1e-4,
    threshold_mode: str = "rel",
    cooldown: int = 0,
    min_lr: float = 0.0,
) -> Scheduler:
    """Multiply the learning rate by ``factor`` once the epoch mean of training quantity ``metric``
    has not improved for more than ``patience`` epochs (torch ``ReduceLROnPlateau``; iVAE in
    ICE-BeeM: factor 0.1, patience 20 on the epoch-mean negative ELBO)."""
    if not isinstance(metric, str) or not metric:
        raise ConfigError(f"option metric must be the name of a training quantity; got {metric!r}")
    if mode not in ("min", "max"):
        raise ConfigError(f"option mode must be one of min, max; got {mode!r}")
    if threshold_mode not in ("rel", "abs"):
        raise ConfigError(f"option threshold_mode must be one of rel, abs; got {threshold_mode!r}")
    if not 0.0 < factor < 1.0:
        raise ConfigError(f"option factor must be in (0, 1); got {factor!r}")
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ConfigError(f"option patience must be an integer >= 0; got {patience!r}")
    if isinstance(cooldown, bool) or not isinstance(cooldown, int) or cooldown < 0:
        raise ConfigError(f"option cooldown must be an integer >= 0; got {cooldown!r}")
    torch_scheduler = ReduceLROnPlateau(
        optimizer, mode=mode, factor=factor, patience=patience, threshold=threshold,
        threshold_mode=threshold_mode, cooldown=cooldown, min_lr=min_lr,
    )
    return Scheduler(torch_scheduler, "epoch", metric=metric)


def noam_factor(completed: int, warmup: int) -> float:
    """The Noam multiplier after ``completed`` units: with k = completed + 1,
    sqrt(w) * min(k * w**-1.5, k**-0.5), i.e. k / w while k <= w and sqrt(w / k) after."""
    k = completed + 1
    return math.sqrt(warmup) * min(k * warmup**-1.5, k**-0.5)


@SCHEDULERS.register("noam")
def noam(optimizer: torch.optim.Optimizer, warmup: int = 4000, unit: str = "iteration") -> Scheduler:
    """The warm-up of Vaswani et al. (2017): linear rise to the base rate over ``warmup`` units,
    then decay as 1 / sqrt(k) (MIM's toys use it per epoch with warmup 3)."""
    _check_positive_int("warmup", warmup)
    _check_unit(unit)
    return Scheduler(LambdaLR(optimizer, lambda n: noam_factor(n, warmup)), unit)


@SCHEDULERS.register("step")
def step(optimizer: torch.optim.Optimizer, step_size: int = 1000, gamma: float = 0.1, unit: str = "iteration") -> Scheduler:
    """Staircase decay: the base rate times ``gamma ** floor(n / step_size)`` after n units (torch
    ``StepLR``; TCL: x0.1 every 50,000 steps)."""
    _check_positive_int("step_size", step_size)
    _check_unit(unit)
    return Scheduler(StepLR(optimizer, step_size=step_size, gamma=gamma), unit)


def scheduler_options(name: str) -> dict[str, Any]:
    """The options of schedule ``name`` and their defaults, with ``optimizers``: None (all of them)."""
    return {**keyword_defaults(SCHEDULERS.get(name), skip=("optimizer",)), "optimizers": None}


def build_schedulers(
    name: str | None, optimizers: Mapping[str, torch.optim.Optimizer], options: Mapping[str, Any]
) -> dict[str, Scheduler]:
    """One ``Scheduler`` per targeted optimizer, keyed by optimizer name; {} when ``name`` is None.

    ``options["optimizers"]``: the names of the optimizers the schedule applies to (default None:
    all of them); the other options go to the builder, which must take them.
    """
    if name is None:
        return {}
    builder = SCHEDULERS.get(name)
    options = dict(options)
    targets = options.pop("optimizers", None)
    known = scheduler_options(name)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(
            f"scheduler {name!r} has no option(s) {', '.join(unknown)}; its options are: {', '.join(sorted(known))}"
        )
    if targets is None:
        targets = list(optimizers)
    elif isinstance(targets, str):
        targets = [targets]
    else:
        targets = list(targets)
    missing = [t for t in targets if t not in optimizers]
    if missing:
        raise ConfigError(
            f"scheduler {name!r}: no optimizer(s) {', '.join(map(repr, missing))}; "
            f"available optimizers: {', '.join(optimizers) or '(none)'}"
        )
    return {target: builder(optimizers[target], **options) for target in dict.fromkeys(targets)}
