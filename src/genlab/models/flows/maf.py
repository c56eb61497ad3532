"""The 2D MAF of the FCE reference code, as actually built (docs/fce.md §2.3, §6 item 6, §7).

Five MADE blocks, no BatchNorm and no permutation layers (the original's BatchNorm line is commented
out). Each MADE is masked Linear(dim -> 100) -> ReLU -> masked Linear(100 -> 100) -> ReLU -> masked
Linear(100 -> 2 dim) with PyTorch's default init (the mask multiplies the weight on every call); its
outputs are mu (first dim) and alpha = log-std (last dim), alpha unclamped. The original's
``n_hidden=1`` means two hidden layers, so ``hidden_layers=2`` here; 54,020 parameters.

Degrees (MADE, Germain et al. 2015): inputs get their position in the block's order, hidden units
``k mod (dim - 1)``; a hidden unit sees inputs of degree <= its own, an output sees hidden units of
degree strictly below its variable's. Block 1 uses the natural order and each next block flips the
previous input degrees, so the order alternates (docs/fce.md §2.3). Data -> noise per block:
``u = (x - mu(x)) * exp(-alpha(x))``, ``log|det du/dx| = -sum alpha``.

Inverse: the first variable in the order has mu/alpha that depend on no input (its output rows are
fully masked), so they are the output layer's bias; starting from them, ``dim - 1`` MADE passes fill
in the rest, one variable per pass. With dim = 2 that is one MADE pass per block instead of the
textbook two (``inverse_sequential``, kept for checking; both give the same function and gradients).

Why not a library block (design rule 11): nflows' ``MaskedAffineAutoregressiveTransform`` uses
``scale = softplus(raw) + 1e-3`` and ``z = scale * x + shift`` (not exp(-alpha) with alpha
unclamped), interleaves the (scale, shift) outputs, defaults to residual blocks (whose last layer
starts near zero), and inverts with ``dim`` full passes from zeros. zuko's ``MAF`` has the same
masked 2-100-100-4 layout but its ``MonotonicAffineTransform`` soft-clamps the log-scale
(``a / (1 + |a / log 1e-3|)``), maps ``x * exp(a) + b``, interleaves outputs, and builds a lazy
distribution object per call. normflows' ``MaskedAffineAutoregressive`` is a port of nflows' with
``scale = sigmoid(raw + 2) + 1e-3`` (bounded). Matching the original would mean re-parametrising
their outputs, so it is written here.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.flows.base import FLOWS, Flow


class MaskedLinear(nn.Linear):
    """``y = x (W * M)^T + b`` with a fixed 0/1 mask buffer M (out x in).

    A mask of all ones (every hidden-to-hidden mask when dim = 2) is not stored or applied.
    """

    def __init__(self, mask: torch.Tensor):
        super().__init__(mask.shape[1], mask.shape[0])
        self.register_buffer("mask", None if bool(mask.all()) else mask.to(torch.get_default_dtype()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight if self.mask is None else self.weight * self.mask
        return F.linear(x, weight, self.bias)


def made_masks(input_degrees: torch.Tensor, hidden: int, hidden_layers: int) -> list[torch.Tensor]:
    """Masks (out x in) of a MADE whose inputs have the given degrees (0 = first in the order)."""
    dim = input_degrees.numel()
    hidden_degrees = torch.arange(hidden) % (dim - 1)
    degrees = [input_degrees] + [hidden_degrees] * hidden_layers
    masks = [d_out[:, None] >= d_in[None, :] for d_in, d_out in zip(degrees[:-1], degrees[1:])]
    output_degrees = input_degrees.repeat(2)  # mu then alpha
    masks.append(output_degrees[:, None] > hidden_degrees[None, :])
    return masks


class MADEBlock(nn.Module):
    """One MAF block: masked MLP giving (mu, alpha), ``u = (x - mu) * exp(-alpha)``."""

    def __init__(self, input_degrees: torch.Tensor, hidden: int, hidden_layers: int):
        super().__init__()
        self.dim = input_degrees.numel()
        self.register_buffer("input_degrees", input_degrees)
        layers: list[nn.Module] = []
        for mask in made_masks(input_degrees, hidden, hidden_layers):
            layers += [MaskedLinear(mask), nn.ReLU()]
        self.net = nn.Sequential(*layers[:-1])

    def params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.net(x)
        return out[:, : self.dim], out[:, self.dim :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(u, alpha)``; the block's log-det is ``-alpha.sum(1)``."""
        mu, alpha = self.params(x)
        return (x - mu) * torch.exp(-alpha), alpha

    def inverse(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(x, alpha)`` in ``dim - 1`` MADE passes; the log-det of x wrt u is ``alpha.sum(1)``."""
        bias = self.net[-1].bias
        # The first-ordered variable's mu/alpha are the output bias: exact for it, a start for the rest.
        x = torch.addcmul(bias[: self.dim], u, bias[self.dim :].exp())
        alpha = bias[self.dim :].expand_as(u)
        for _ in range(self.dim - 1):
            mu, alpha = self.params(x)
            x = torch.addcmul(mu, u, alpha.exp())
        return x, alpha

    def inverse_sequential(self, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The textbook inverse: ``dim`` passes from zeros, each fixing one more variable."""
        x = torch.zeros_like(u)
        for _ in range(self.dim):
            mu, alpha = self.params(x)
            x = torch.addcmul(mu, u, alpha.exp())
        return x, alpha


@FLOWS.register("maf")
class MAF(Flow):
    """``MAF(dim=2, blocks=5, hidden=100, hidden_layers=2)``: 54,020 parameters at the FCE setting."""

    def __init__(self, dim: int = 2, blocks: int = 5, hidden: int = 100, hidden_layers: int = 2):
        super().__init__(dim)
        degrees = torch.arange(dim)
        made_blocks = []
        for _ in range(blocks):
            made_blocks.append(MADEBlock(degrees, hidden, hidden_layers))
            degrees = degrees.flip(0)
        self.blocks = nn.ModuleList(made_blocks)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alphas = []
        for block in self.blocks:
            x, alpha = block(x)
            alphas.append(alpha)
        return x, -torch.stack(alphas).sum((0, 2))

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        alphas = []
        for block in reversed(self.blocks):
            z, alpha = block.inverse(z)
            alphas.append(alpha)
        return z, torch.stack(alphas).sum((0, 2))

    def inverse_sequential(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``inverse`` with every block's textbook ``dim``-pass inverse (for checking)."""
        alphas = []
        for block in reversed(self.blocks):
            z, alpha = block.inverse_sequential(z)
            alphas.append(alpha)
        return z, torch.stack(alphas).sum((0, 2))


__all__ = ["MAF", "MADEBlock", "MaskedLinear", "made_masks"]
