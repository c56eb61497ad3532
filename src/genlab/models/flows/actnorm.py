"""ActNorm with data-dependent initialisation, as in the FCE Glow (docs/fce.md §2.2, §6 item 3).

Per dimension, ``z = (x - b) / s`` with ``log|det dz/dx| = -sum log|s|`` (the same for every sample);
the inverse is ``x = z * s + b``. The scale is not constrained to be positive, as in the original.
On the first forward call, in training or eval mode, ``b`` is set to the batch mean and ``s`` to the
biased batch standard deviation + 1e-6, so that batch leaves with zero mean and unit standard deviation.
The "initialised" flag is a registered buffer, so a reloaded or resumed model never re-initialises;
a Python mirror of it is read on the hot path so that checking it costs no device sync.

An inverse call on an uninitialised ActNorm uses it as the identity (s = 1, b = 0) and does not
initialise it, as the original does (docs/fce.md §6 item 3: its iteration 0 samples before any data pass).
genlab's FCE objective always evaluates ``log_prob`` on data first, so the top-level ActNorms are
initialised from data before any sampling; that is a deliberate fix of the original's iteration-0
order. The ActNorms inside the Glow coupling conditioners only ever run forward and are initialised
by whichever pass reaches them first, which is then the data pass too.

Why not a library block (design rule 11): normflows' ``ActNorm`` stores a log-scale (so s > 0),
initialises from the unbiased std, runs in the opposite direction convention (its ``forward`` is
noise -> data and initialises there too) and tests its flag with a Python comparison on a tensor
(a device sync per call); nflows' ``ActNorm`` also uses a log-scale and the unbiased std, and
initialises only in training mode; zuko has no ActNorm.
"""

from __future__ import annotations

import torch
from torch import nn

_STD_EPS = 1e-6


class ActNorm(nn.Module):
    """Per-dimension affine normalisation; ``forward``/``inverse`` return a scalar (0-dim) log-det."""

    def __init__(self, dim: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(dim))
        self.scale = nn.Parameter(torch.ones(dim))
        self.register_buffer("initialised", torch.tensor(False))
        self._ready = False

    @property
    def ready(self) -> bool:
        """Whether the data-dependent init has happened (read without touching the device)."""
        return self._ready

    @torch.no_grad()
    def initialise(self, x: torch.Tensor) -> None:
        """Set b, s from the batch ``x`` (B, dim) so that it is normalised to zero mean, unit std."""
        std, mean = torch.std_mean(x, dim=0, correction=0)
        self.loc.copy_(mean)
        self.scale.copy_(std + _STD_EPS)
        self.initialised.fill_(True)
        self._ready = True

    def log_abs_scale(self) -> torch.Tensor:
        """sum log|s| (0-dim)."""
        return self.scale.abs().log().sum()

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self._ready:
            self.initialise(x)
        return (x - self.loc) / self.scale, -self.log_abs_scale()

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.addcmul(self.loc, z, self.scale), self.log_abs_scale()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        # One sync per load keeps the hot-path mirror equal to the loaded buffer.
        self._ready = bool(self.initialised)

    def extra_repr(self) -> str:
        return f"dim={self.loc.numel()}, initialised={self._ready}"


__all__ = ["ActNorm"]
