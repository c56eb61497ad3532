"""Denoising score matching, as ICE-BeeM's image experiments train their EBMs (Khemakhem et al.,
"ICE-BeeM", NeurIPS 2020, section 4; Vincent 2011; docs/icebeem.md §4b).

With x~ = x + sigma eps, eps ~ N(0, I), and the model's score s(x~) = -grad_{x~} E(x~) (the energy
E of p ∝ exp(-E); conditional DSM differentiates E(x~, y) with y fixed), the loss of a batch is

    L = 1/(2R) sum_rows || sigma^2 s(x~) + sigma eps ||^2_row
      = sigma^4 / (2 C H) * mean_b sum_pixels (s(x~) + eps / sigma)^2

where a "row" is one (sample, channel, image row) triple, the norm runs over the LAST tensor axis
only (the image width W), and R = B*C*H is the number of rows. This is exactly the original's
normalisation (``torch.norm(..., dim=-1) ** 2`` then ``.mean() / 2``), on which the published
"x1e4" loss values depend: it is neither a mean over pixels nor a sum per image. The score needs
``create_graph=True`` for training (the loss is differentiated through the gradient: double
back-propagation); an evaluation without parameter gradients passes ``create_graph=False``.

``gaussian_dsm_value`` is the loss's expectation in closed form for Gaussian data and a Gaussian
energy (the known-answer test of tests/test_dsm.py).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import Tensor


def dsm_loss(energy_fn: Callable[[Tensor], Tensor], x: Tensor, sigma: float = 0.01, noise: Tensor | None = None,
             create_graph: bool = True) -> Tensor:  # fmt: skip
    """The DSM loss of docs/icebeem.md §4b (module docstring) on the batch ``x``, a scalar.

    ``energy_fn``: x~ -> E(x~), shape (B,) (bind the labels for conditional DSM). ``noise``: eps, of
    x's shape (default: standard normal draws from the global RNG on x's device). ``create_graph``:
    keep the graph of the score, so that the loss can be back-propagated to the parameters."""
    eps = torch.randn_like(x) if noise is None else noise.to(x)
    if eps.shape != x.shape:
        raise ValueError(f"noise has shape {tuple(eps.shape)}, the data {tuple(x.shape)}")
    noisy = (x.detach() + sigma * eps).requires_grad_(True)
    energy = energy_fn(noisy)
    (grad,) = torch.autograd.grad(energy.sum(), noisy, create_graph=create_graph)
    residual = -(sigma**2) * grad + sigma * eps  # sigma^2 s(x~) + sigma eps
    return residual.square().sum(-1).mean() / 2


def gaussian_dsm_value(width: int, data_var: float, sigma: float, energy_var: float, offset: float = 0.0) -> float:
    """E[L] for data x ~ N(mu, data_var I) with images of width ``width`` and the energy
    E(x) = ||x - m||^2 / (2 energy_var) summed over pixels, ``offset`` = mu - m (per pixel):

        E[L] = width / 2 * (sigma^4 (data_var + offset^2) / energy_var^2 + sigma^2 (1 - sigma^2 / energy_var)^2)

    (per pixel, sigma^2 s + sigma eps = -(sigma^2 / v)(x - m) + sigma (1 - sigma^2 / v) eps). It is
    smallest at m = mu, v = data_var + sigma^2, where it is width sigma^2 data_var / (2 (data_var + sigma^2))."""
    s2, v = sigma**2, energy_var
    return width / 2 * (s2**2 * (data_var + offset**2) / v**2 + s2 * (1 - s2 / v) ** 2)


__all__ = ["dsm_loss", "gaussian_dsm_value"]
