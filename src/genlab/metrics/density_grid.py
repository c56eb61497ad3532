"""Log densities evaluated on a square grid, for density plots of 2D models (docs/fce.md §4.3).

The repo plots exp(log q) and exp(-f - c) on linspace(-4, 4, 1000)^2 ('ij' meshgrid) without any
renormalisation, so the EBM's picture depends on its learned c. ``normalise_on_grid`` is the
optional numerical renormalisation, for comparing shapes when the learned normaliser is off.
Results come back on the CPU, ready for plotting (the repo's ``util.plot`` called ``.numpy()`` on
CUDA tensors, docs/fce.md §6 item 12).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import Tensor


def grid_cell_area(lim: float, n: int) -> float:
    """Area of one cell of the n x n grid ``grid_log_density`` uses on [-lim, lim]^2."""
    step = 2.0 * lim / (n - 1)
    return step * step


def grid_log_density(
    log_prob_fn: Callable[[Tensor], Tensor],
    lim: float = 4.0,
    n: int = 200,
    device: torch.device | str = "cpu",
    chunk: int = 1 << 16,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(xs, ys, logp)``: the axes linspace(-lim, lim, n) and logp[i, j] = log_prob_fn((xs[i], ys[j])).

    ``log_prob_fn`` maps (B, 2) points on ``device`` to (B,) log densities; it runs without
    gradients, ``chunk`` points at a time (a 1000^2 grid through a 128-unit MLP would otherwise
    hold 0.5 GB per hidden layer). It is called as is: put models in eval mode first, and note
    that a flow with data-initialised ActNorm must have seen data before, or the grid initialises it.
    """
    if n < 2:
        raise ValueError(f"the grid needs n >= 2 points per axis, got {n}")
    if not lim > 0:
        raise ValueError(f"lim must be positive, got {lim}")
    axis = torch.linspace(-lim, lim, n, device=device)
    gx, gy = torch.meshgrid(axis, axis, indexing="ij")
    points = torch.stack((gx.reshape(-1), gy.reshape(-1)), dim=1)
    with torch.no_grad():
        logp = torch.cat([log_prob_fn(part).reshape(-1) for part in points.split(chunk)])
    axis = axis.cpu()
    return axis, axis.clone(), logp.reshape(n, n).cpu()


def normalise_on_grid(logp: Tensor, cell_area: float) -> Tensor:
    """logp - logsumexp(logp) - log(cell_area): the log density whose Riemann sum over the grid is 1
    (exp(result) sums to 1 / cell_area), i.e. the model renormalised on the plotted square."""
    return logp - torch.logsumexp(logp.reshape(-1), dim=0) - math.log(cell_area)
