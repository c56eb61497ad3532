"""The contract between a paper's objective and the shared Ignite training loop.

An objective owns its optimizers and any auxiliary network (FactorVAE's discriminator, FCE's flow),
runs one training step in a fixed order, and returns a flat dict of floats that become the logged
metrics. Its hyperparameters are its constructor's keyword arguments; their defaults are what
``print_config`` shows under ``training.loss``.

The engine calls ``train_step(model, optimizers, batch, progress)`` with the optimizers of the
current phase only (all of them in a run of one phase) and a ``Progress`` record (iteration, epoch,
phase). ``eval_step`` runs outside any ``torch.no_grad``: an objective that needs no gradients there
says so itself (``@torch.no_grad()``); one that needs input gradients (score matching) takes them.

An objective may also define ``start_evaluation()`` and ``finish_evaluation(model) -> dict[str,
float]``: the evaluator calls them before and after each pass, for quantities of the whole pass
that are not means of batches (MIM's KSG mutual information of all test pairs); ``eval_step`` then
keeps what they need.

``model_options``: settings of the model that the objective depends on (FCE needs the EBM, the
flow's maximum-likelihood baseline does not); the experiment writes them into ``config["model"]``
so the recorded config alone rebuilds the model. ``model_kind``: the model kind the objective trains,
for experiments whose methods train different models (``model.kind`` follows the objective there).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Mapping

import torch
from torch import nn

from genlab.registry import Registry, check_options, keyword_defaults
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress

OBJECTIVES: Registry[type["Objective"]] = Registry("objective", discover="genlab.objectives")


def optimizer_step(optimizer: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    """Zero the optimizer's gradients, back-propagate ``loss`` and take one step."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


class Objective(abc.ABC):
    """Base class; subclasses implement ``train_step`` and ``eval_step`` and register a name."""

    model_options: ClassVar[Mapping[str, Any]] = {}
    model_kind: ClassVar[str | None] = None  # the model kind it trains, where an experiment offers several

    def make_optimizers(self, model: nn.Module, optimizer: OptimizerFactory) -> dict[str, torch.optim.Optimizer]:
        """The model's optimizer (the run's choice); objectives with auxiliary networks add theirs."""
        return {"model": optimizer(model.parameters())}

    @abc.abstractmethod
    def train_step(
        self, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], batch: dict, progress: Progress
    ) -> dict[str, float]:
        """One update of every player, in a fixed order; returns ``{quantity: value}``."""

    @abc.abstractmethod
    def eval_step(self, model: nn.Module, batch: dict) -> dict[str, float]:
        """Per-batch means of the evaluation quantities; must not change any parameter or buffer."""

    def to(self, device: torch.device) -> "Objective":
        """Move auxiliary networks (if any) to the training device."""
        for value in vars(self).values():
            if isinstance(value, nn.Module):
                value.to(device)
        return self

    def state_dict(self) -> dict[str, Any]:
        """Auxiliary networks' weights, for exact resume (optimizers are checkpointed separately)."""
        return {k: v.state_dict() for k, v in vars(self).items() if isinstance(v, nn.Module)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state.items():
            getattr(self, k).load_state_dict(v)

    @classmethod
    def hyperparameters(cls) -> dict[str, Any]:
        """Constructor keyword arguments with their defaults: the objective's config."""
        return keyword_defaults(cls.__init__)


def check_hyperparameters(name: str, params: dict[str, Any]) -> type[Objective]:
    """The registered objective class, after refusing hyperparameters it does not have."""
    cls = OBJECTIVES.get(name)
    check_options(f"objective {name!r}", cls.__init__, params, noun="hyperparameter")
    return cls


def build_objective(name: str, **params: Any) -> Objective:
    """Instantiate a registered objective, rejecting hyperparameters it does not have."""
    return check_hyperparameters(name, params)(**params)
