"""The 2D energy-based model of FCE (docs/fce.md §2.1, §7): log p_theta(x) = -f_theta(x) - log_z.

f_theta is the repo's MLP 2 -> 128 -> 128 -> 1 with LeakyReLU(0.2) and PyTorch's default Linear
initialisation; ``log_z`` is the learnable scalar c of ``ebm.py``, initialised to 1.0. 17,026
parameters with the defaults. Written here rather than taken from a library because it is a plain
three-layer MLP plus one scalar.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


class EnergyMLP(nn.Module):
    """Energy f_theta(x) and log density log p_theta(x) = -f_theta(x) - log_z, both of shape (B,).

    Nothing forces p_theta to integrate to 1: it is normalised only as far as training has made it.

    ``log_z`` plays the role of log Z in the NCE/FCE objective (docs/fce.md §3.1), which fits it together
    with f. It is redundant with the bias of the last Linear layer (both add a constant to the
    energy), so the learned normalisation is shared between the two: read -f - log_z as a whole,
    never ``log_z`` alone as log Z (docs/fce.md §6 item 7).
    """

    def __init__(self, dim: int = 2, hidden: int = 128, negative_slope: float = 0.2, log_z_init: float = 1.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(dim, hidden),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(negative_slope),
            nn.Linear(hidden, 1),
        )
        self.log_z = nn.Parameter(torch.tensor(float(log_z_init)))

    def energy(self, x: Tensor) -> Tensor:
        """f_theta(x), shape (B,) for x of shape (B, dim)."""
        return self.net(x).squeeze(-1)

    def log_prob(self, x: Tensor) -> Tensor:
        """log p_theta(x) = -f_theta(x) - log_z, shape (B,) (the repo returns (B, 1))."""
        return -(self.energy(x) + self.log_z)

    forward = log_prob
