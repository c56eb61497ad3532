"""FactorVAE's total-correlation discriminator (Kim & Mnih 2018; docs/disent.md §3).

An MLP from a latent code to two logits: "sample of q(z)" (class 0) against "sample of the product of
its marginals" (class 1, a per-dimension permutation of a batch). The disent original hard-coded an
input width of 10 and used LeakyReLU slope 0.01 (Kim & Mnih used 0.2); here the input width follows
``latent_size`` and the slope is an argument. Weights keep PyTorch's default initialisation, as the
original (only the VAE is re-initialised).
"""

from __future__ import annotations

import torch
from torch import nn


class Discriminator(nn.Module):
    """``latent_size -> [Linear(width), LeakyReLU] x depth -> Linear(2)``."""

    def __init__(self, latent_size: int, width: int = 1000, depth: int = 6, negative_slope: float = 0.01):
        super().__init__()
        if latent_size <= 0 or width <= 0 or depth < 0:
            raise ValueError(f"bad discriminator size: latent_size={latent_size}, width={width}, depth={depth}")
        self.latent_size = int(latent_size)
        sizes = [self.latent_size] + [int(width)] * int(depth)
        hidden: list[nn.Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            hidden += [nn.Linear(n_in, n_out), nn.LeakyReLU(negative_slope)]
        self.net = nn.Sequential(*hidden, nn.Linear(sizes[-1], 2))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Logits (B, 2)."""
        return self.net(z)


__all__ = ["Discriminator"]
