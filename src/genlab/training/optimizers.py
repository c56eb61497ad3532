"""Optimizers by name, so a paper's choice of update rule is config rather than code.

Every entry of ``OPTIMIZERS`` is a builder ``(params, lr, **options) -> torch.optim.Optimizer``.
Its keyword arguments with defaults are the user-facing options (``training.optimizer_options``),
so each has an explicit default that ``optimizer_options`` can show, and ``make_optimizer`` refuses
a misspelt option before any model is built instead of letting torch fail (or silently ignore it).

The entries are the update rules the reproduced papers use: Adam (most of them), SGD with momentum
(TCL) and AdamNormGrad (MIM's image experiments, taken from the VampPrior code of Tomczak & Welling).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

import torch

from genlab.errors import ConfigError
from genlab.registry import Registry, check_options, keyword_defaults

OptimizerBuilder = Callable[..., torch.optim.Optimizer]

OPTIMIZERS: Registry[OptimizerBuilder] = Registry("optimizer")

_RUNTIME = ("params", "lr")  # what the run supplies; never an option


def _fusable(params: list) -> bool:
    """Whether PyTorch's fused Adam kernel exists for every parameter's device (CPU and CUDA)."""
    return all(p.device.type in ("cpu", "cuda") for p in params)


@OPTIMIZERS.register("adam")
def adam(
    params: Iterable[torch.Tensor],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> torch.optim.Adam:
    """Adam with the fused kernel where it exists: the same update rule, one kernel instead of a
    dozen per tensor (as ``genlab.objectives.base.adam``)."""
    params = list(params)
    return torch.optim.Adam(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, fused=_fusable(params)
    )


@OPTIMIZERS.register("sgd")
def sgd(
    params: Iterable[torch.Tensor],
    lr: float,
    momentum: float = 0.0,
    dampening: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> torch.optim.SGD:
    """Plain or momentum SGD (TCL trains with momentum 0.9)."""
    return torch.optim.SGD(
        params, lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov, weight_decay=weight_decay
    )


class AdamNormGrad(torch.optim.Adam):
    """Adam on unit-norm gradients: before each step every parameter tensor's gradient ``g`` is
    replaced, in place, by ``g / (||g||_2 + grad_eps)``, then a plain Adam step is taken.

    The step size then no longer depends on the scale of the loss, only on the direction of each
    tensor's gradient. ``grad_eps`` is stored in every param group, so ``state_dict`` and
    ``load_state_dict`` round-trip it exactly as Adam's own hyperparameters.
    """

    def __init__(self, params: Iterable, lr: float = 1e-3, grad_eps: float = 1e-7, **adam_options: Any):
        if not grad_eps >= 0.0:
            raise ConfigError(f"AdamNormGrad: grad_eps must be >= 0, got {grad_eps!r}")
        super().__init__(params, lr=lr, **adam_options)
        self.defaults["grad_eps"] = grad_eps  # for param groups added later
        for group in self.param_groups:
            group.setdefault("grad_eps", grad_eps)

    @torch.no_grad()
    def normalize_gradients(self) -> None:
        """Divide each gradient by its own L2 norm plus the group's ``grad_eps``, in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(torch.linalg.vector_norm(p.grad) + group["grad_eps"])

    def step(self, closure: Callable[[], float] | None = None):  # type: ignore[override]
        if closure is not None:  # the closure recomputes the gradients, so it must run before normalising
            with torch.enable_grad():
                loss = closure()
            self.normalize_gradients()
            super().step()
            return loss
        self.normalize_gradients()
        return super().step()


@OPTIMIZERS.register("adam_norm_grad")
def adam_norm_grad(
    params: Iterable[torch.Tensor],
    lr: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    grad_eps: float = 1e-7,
) -> AdamNormGrad:
    """AdamNormGrad of MIM's image experiments (Livne et al. 2019, from the VampPrior code): Adam on
    per-tensor unit-norm gradients; fused where Adam is."""
    params = list(params)
    return AdamNormGrad(
        params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, grad_eps=grad_eps,
        fused=_fusable(params),
    )


def optimizer_options(name: str) -> dict[str, Any]:
    """The options of optimizer ``name`` and their defaults (not ``params`` or ``lr``)."""
    return keyword_defaults(OPTIMIZERS.get(name), skip=_RUNTIME)


def make_optimizer(name: str, params: Iterable[torch.Tensor], lr: float, **options: Any) -> torch.optim.Optimizer:
    """Build optimizer ``name`` over ``params``, refusing options its builder does not take."""
    builder = OPTIMIZERS.get(name)
    check_options(f"optimizer {name!r}", builder, options, skip=_RUNTIME)
    return builder(params, lr, **options)


@dataclass(frozen=True)
class OptimizerFactory:
    """The run's optimizer choice (``training.optimizer``, ``lr``, ``optimizer_options``), handed to
    ``Objective.make_optimizers``: ``factory(params, **overrides)`` builds one optimizer, an objective
    overriding what its paper sets per player (FCE's flow learning rate)."""

    name: str = "adam"
    lr: float = 1e-3
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        check_options(f"optimizer {self.name!r}", OPTIMIZERS.get(self.name), self.options, skip=_RUNTIME)
        try:  # torch's own checks of the values (a negative lr, betas outside [0, 1)), on one scalar
            self([torch.nn.Parameter(torch.zeros(()))])
        except ValueError as err:
            raise ConfigError(f"training.optimizer={self.name!r} with lr={self.lr!r}, options {dict(self.options)}: {err}") from None

    def __call__(self, params: Iterable[torch.Tensor], **overrides: Any) -> torch.optim.Optimizer:
        options = {**self.options, **overrides}
        return make_optimizer(self.name, params, options.pop("lr", self.lr), **options)
