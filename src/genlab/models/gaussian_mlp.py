"""The Gaussian encoder / decoder MLPs of MIM's toy and PCA experiments (Livne, Swersky & Fleet 2019,
"MIM: Mutual Information Machine"; docs/mim.md §2.1).

    encoder  q(z|x) = N(mu(x), diag sigma(x)^2)      decoder  p(x|z) = N(mu(z), diag sigma(z)^2)
    prior    p(z)   = N(0, (1 + std_floor)^2 I)      fixed; the sampling "anchor" P(z) = N(0, I)

Each network is ``layers - 1`` Linear layers of width ``mid_dim`` with an activation after each
(the original's ``--layers 2``: one hidden layer), then a Gaussian head: a mean and a log-std, each
an affine map of the last hidden layer, and sigma = exp(log-std) + ``std_floor``. The floor is on the
standard deviation and additive: the original's ``--min-logvar L`` is ``std_floor = 10**-L`` (its
name says log-variance, its code does this); the experiments use L = 6, ``std_floor = 1e-6``.
``delta_encoder`` (the auto-encoder baseline, ``--ae-loss``) fixes the encoder's sigma at the floor.

The two heads of a network are one Linear layer of twice the width, split in halves: the same
function and the same initial distribution as two layers (PyTorch's default initialisation depends
only on the fan-in), one matrix product fewer per pass on these tiny networks. Initialisation is
PyTorch's default, as the original. Log-densities keep their normalising constants, so the
single-sample NLL of the toys is in nats of a continuous density.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.registry import register_model

ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU, "swish": nn.SiLU}  # swish(x) = x sigmoid(x) = SiLU
_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """log N(x; mean, diag std^2), summed over the last axis."""
    return (-0.5 * ((x - mean) / std).square() - std.log() - _HALF_LOG_2PI).sum(-1)


class GaussianMLP(nn.Module):
    """x -> (mean, std) of a diagonal Gaussian over ``out_dim`` values."""

    def __init__(self, in_dim: int, out_dim: int, mid_dim: int, layers: int, activation: str, std_floor: float,
                 fixed_std: bool = False):  # fmt: skip
        super().__init__()
        body: list[nn.Module] = []
        width = in_dim
        for _ in range(layers - 1):
            body += [nn.Linear(width, mid_dim), ACTIVATIONS[activation]()]
            width = mid_dim
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(width, 2 * out_dim)
        self.out_dim, self.std_floor, self.fixed_std = out_dim, float(std_floor), bool(fixed_std)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        mean, log_std = self.head(self.body(x)).split(self.out_dim, dim=-1)
        if self.fixed_std:
            return mean, torch.full_like(mean, self.std_floor)
        return mean, log_std.exp() + self.std_floor


class GaussianMIMModel(nn.Module):
    """The encoder q(z|x), the decoder p(x|z) and the fixed prior p(z) of docs/mim.md §2.1."""

    def __init__(self, x_dim: int, z_dim: int = 2, mid_dim: int = 50, layers: int = 2, activation: str = "tanh",
                 std_floor: float = 1e-6, delta_encoder: bool = False):  # fmt: skip
        super().__init__()
        self.x_dim, self.z_dim, self.std_floor = int(x_dim), int(z_dim), float(std_floor)
        self.encoder = GaussianMLP(self.x_dim, self.z_dim, mid_dim, layers, activation, std_floor, fixed_std=delta_encoder)
        self.decoder = GaussianMLP(self.z_dim, self.x_dim, mid_dim, layers, activation, std_floor)

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.encoder(x)

    def decode(self, z: Tensor) -> tuple[Tensor, Tensor]:
        return self.decoder(z)

    def prior_log_prob(self, z: Tensor) -> Tensor:
        """log p(z): N(0, (1 + std_floor)^2 I), the original's inactive prior layer with its floor."""
        std = 1.0 + self.std_floor
        return (-0.5 * (z / std).square()).sum(-1) - self.z_dim * (math.log(std) + _HALF_LOG_2PI)

    def sample_anchor(self, n: int, like: Tensor) -> Tensor:
        """n draws of the anchor P(z) = N(0, I) (the S-MIM decoding pass's z)."""
        return torch.randn(n, self.z_dim, device=like.device, dtype=like.dtype)


@register_model("gaussian_mlp")
def build_gaussian_mlp(
    z_dim: int = 2,
    mid_dim: int = 50,
    layers: int = 2,
    activation: str = "tanh",
    std_floor: float = 1e-6,
    delta_encoder: bool = False,
    *,
    input_shape: Sequence[int],
) -> GaussianMIMModel:
    """MIM's Gaussian encoder/decoder MLPs (docs/mim.md §2.1): ``layers`` Linear layers each (2: one hidden
    layer of ``mid_dim``), ``activation`` tanh, relu or swish, sigma = exp(.) + ``std_floor`` (the
    original's ``--min-logvar 6`` is 1e-6), ``delta_encoder`` the auto-encoder's fixed sigma."""
    if len(input_shape) != 1:
        raise ConfigError(f"gaussian_mlp models vectors; the data's examples have shape {list(input_shape)}")
    if activation not in ACTIVATIONS:
        raise ConfigError(f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}")
    for name, value in (("z_dim", z_dim), ("mid_dim", mid_dim)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"model option {name} must be a positive integer, got {value!r}")
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 1:
        raise ConfigError(f"model option layers must be an integer >= 1 (Linear layers, the head included), got {layers!r}")
    if not float(std_floor) > 0:
        raise ConfigError(f"model option std_floor must be > 0 (an additive floor on every std), got {std_floor!r}")
    return GaussianMIMModel(int(input_shape[0]), z_dim, mid_dim, layers, activation, std_floor, delta_encoder)
