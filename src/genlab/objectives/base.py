"""The contract between a paper's objective and the shared Ignite training loop.

An objective owns its optimizers and any auxiliary network (FactorVAE's discriminator, FCE's flow),
runs one training step in a fixed order, and returns a flat dict of floats that become the logged
metrics. Its hyperparameters are its constructor's keyword arguments; their defaults are what
``print_config`` shows under ``training.loss``.
"""

from __future__ import annotations

import abc
import inspect
from typing import Any

import torch
from torch import nn

from genlab.registry import Registry

OBJECTIVES: Registry[type["Objective"]] = Registry("objective")


def adam(params, **kwargs) -> torch.optim.Adam:
    """Adam with PyTorch's fused kernel where it exists (CPU and CUDA): the same update rule,
    one kernel instead of a dozen per tensor (2.6 ms instead of 6.8 ms per step for FactorVAE's
    6 x 1000 discriminator on 2 CPU cores)."""
    params = list(params)
    fused = all(p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.Adam(params, fused=fused, **kwargs)


class Objective(abc.ABC):
    """Base class; subclasses implement ``train_step`` and ``eval_step`` and register a name."""

    def make_optimizers(self, model: nn.Module, lr: float, weight_decay: float = 0.0) -> dict[str, torch.optim.Optimizer]:
        """The model's Adam; objectives with auxiliary networks add theirs."""
        return {"model": adam(model.parameters(), lr=lr, weight_decay=weight_decay)}

    @abc.abstractmethod
    def train_step(
        self, model: nn.Module, optimizers: dict[str, torch.optim.Optimizer], batch: dict, step: int
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
        return {
            name: p.default
            for name, p in inspect.signature(cls.__init__).parameters.items()
            if name != "self" and p.default is not inspect.Parameter.empty
        }


def check_hyperparameters(name: str, params: dict[str, Any]) -> type[Objective]:
    """The registered objective class, after refusing hyperparameters it does not have."""
    cls = OBJECTIVES.get(name)
    known = cls.hyperparameters()
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise ValueError(
            f"objective {name!r} has no hyperparameter(s) {', '.join(unknown)}; "
            f"its hyperparameters are: {', '.join(sorted(known)) or '(none)'}"
        )
    return cls


def build_objective(name: str, **params: Any) -> Objective:
    """Instantiate a registered objective, rejecting hyperparameters it does not have."""
    return check_hyperparameters(name, params)(**params)
