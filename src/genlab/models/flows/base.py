"""The normalizing-flow interface shared by the FCE flows (docs/fce.md §2.2, §2.3).

A flow is a bijection f from data x to noise z with a base density p_0, standard normal N(0, I_dim)
unless a subclass overrides ``base_log_prob`` and ``sample_base`` (the ICE-BeeM spline flow's base is
logistic, ``nsf.py``), so ``log q(x) = log p_0(f(x)) + log|det df/dx|``. Sampling runs the inverse on base noise and
returns ``log q(x~) = log p_0(z) - log|det df^{-1}/dz|`` without a second density pass, as the
original's ``inverse`` does (docs/fce.md §2.2 "Sampling", §2.3 "Inverse"). Everything is differentiable
in the parameters, so FCE's flow update can use pathwise (reparameterised) gradients through both
the samples and their log-density (docs/fce.md §3.2).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import nn

from genlab.registry import Registry

FLOWS: Registry[type["Flow"]] = Registry("flow", discover="genlab.models.flows")

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I), summed over the last dimension: shape (B,)."""
    return -0.5 * z.square().sum(-1) - z.shape[-1] * _HALF_LOG_2PI


class Flow(nn.Module, abc.ABC):
    """A bijection data -> noise with a base density (standard normal unless overridden); subclasses
    define ``forward`` and ``inverse``.

    ``forward(x) -> (z, logdet)`` with ``logdet = log|det dz/dx|`` of shape (B,);
    ``inverse(z) -> (x, logdet)`` with ``logdet = log|det dx/dz|`` of shape (B,).
    """

    def __init__(self, dim: int):
        super().__init__()
        if dim < 2:
            raise ValueError(f"a flow needs dim >= 2 (the coupling/autoregressive split needs two parts), got {dim}")
        self.dim = int(dim)

    @abc.abstractmethod
    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(z, log|det dz/dx|)``."""

    @abc.abstractmethod
    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log|det dx/dz|)``."""

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        """log p_0(z) of the base, summed over the last dimension: shape (B,)."""
        return standard_normal_log_prob(z)

    def sample_base(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` base draws (n, dim) on the flow's device and in its dtype; a ``generator`` must live there."""
        ref = next(self.parameters())
        return torch.randn(n, self.dim, generator=generator, device=ref.device, dtype=ref.dtype)

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        """log q(x), shape (B,)."""
        z, logdet = self(x)
        return self.base_log_prob(z) + logdet

    def sample_from(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, log q(x))`` for ``x = f^{-1}(z)``; gradients reach the parameters through both."""
        x, logdet = self.inverse(z)
        return x, self.base_log_prob(z) - logdet

    def sample(self, n: int, generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` reparameterised samples and their log-density (base noise from ``sample_base``)."""
        return self.sample_from(self.sample_base(n, generator))


__all__ = ["FLOWS", "Flow", "standard_normal_log_prob"]
