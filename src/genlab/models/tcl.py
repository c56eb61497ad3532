"""The feature MLP and classifier of time-contrastive learning (TCL; Hyvärinen & Morioka, NeurIPS 2016,
"Unsupervised Feature Extraction by Time-Contrastive Learning and Nonlinear ICA"), as the ICE-BeeM
simulations train it (Khemakhem et al., NeurIPS 2020; docs/icebeem.md §3e).

A feature extractor h: R^D -> R^d and a multinomial logistic regression (MLR) on h that tells the
segment of a point: logits = W h(x) + b. With node list [2d] * (L - 1) + [d] (L = 2: [10, 5]; L = 4:
[10, 10, 10, 5] for d = 5), each layer but the last is an affine map to ``maxout_k`` times its nodes
followed by maxout over consecutive groups of ``maxout_k`` units; the last is an affine map to d
units followed by the absolute value, so the features are non-negative: TCL's features estimate the
sufficient statistics of the sources (functions of s_j^2 for the variance-modulated Gaussian
sources), which is why a run scores them against s**2 (``source_target``; docs/icebeem.md §7, §10
item 3). The input is PCA-whitened first, as in the original: by the fixed affine map the data
provides (model input ``whitening``, computed on all training points; ``whiten=False`` skips it),
held in buffers so that ``model.pt`` carries it.

Initialisation (docs/icebeem.md §3e): the reference's TensorFlow code uses
``tf.contrib.layers.variance_scaling_initializer()`` with its defaults, factor 2.0, mode FAN_IN,
uniform False: a normal of standard deviation sqrt(1.3 * 2 / fan_in) truncated at two of those
standard deviations, whose actual standard deviation is about sqrt(2 / fan_in) (He initialisation;
the 1.3 undoes the truncation). That is what ``variance_scaling_`` draws here, for the MLP's and the
MLR's weights. (``tf.variance_scaling_initializer``, scale 1.0, is a different initializer, not the
one the reference called.) Biases start at zero.

Written here rather than taken from a library: three to five small ``nn.Linear`` layers and a
maxout, which no maintained package provides as one block.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import Tensor, nn

from genlab.models.registry import register_model

TRUNCATION_FIX = 1.3  # TF contrib's factor: a normal truncated at 2 sd has ~1/1.3 of its variance
HE_FACTOR = 2.0  # the TF contrib initializer's default ``factor``


@torch.no_grad()
def variance_scaling_(weight: Tensor, factor: float = HE_FACTOR) -> Tensor:
    """Fill a ``(fan_out, fan_in)`` weight as TF1's ``contrib.layers.variance_scaling_initializer``
    with ``uniform=False`` and mode FAN_IN: N(0, sigma^2) truncated to [-2 sigma, 2 sigma], with
    sigma = sqrt(1.3 * factor / fan_in)."""
    sigma = math.sqrt(TRUNCATION_FIX * factor / weight.shape[1])
    return nn.init.trunc_normal_(weight, mean=0.0, std=sigma, a=-2.0 * sigma, b=2.0 * sigma)


class Maxout(nn.Module):
    """Maximum over consecutive groups of ``k`` units of the last axis: (..., m k) -> (..., m); unit
    j of the output is max(y[j k], ..., y[j k + k - 1])."""

    def __init__(self, k: int = 2):
        super().__init__()
        self.k = int(k)

    def forward(self, y: Tensor) -> Tensor:
        return y.unflatten(-1, (y.shape[-1] // self.k, self.k)).amax(-1)

    def extra_repr(self) -> str:
        return f"k={self.k}"


def hidden_nodes(latent_dim: int, n_layers: int) -> list[int]:
    """The TCL node list [2d] * (L - 1) + [d] (docs/icebeem.md §3e)."""
    return [2 * latent_dim] * (n_layers - 1) + [latent_dim]


class TCL(nn.Module):
    """TCL's feature MLP ``features(x)`` (B, d) >= 0 and its MLR, ``forward(x)`` -> segment logits
    (B, n_segments). The parameter groups the two training stages need are ``mlp_parameters`` (the
    feature extractor), ``mlr_parameters`` (the classifier) and ``weight_parameters`` (every weight
    matrix, no bias: what the weight decay covers)."""

    source_target = "s_squared"  # its features are scored against s**2 (docs/icebeem.md §7)
    intended_readout = "features_ica"  # FastICA of the features of the final (averaged) model ...
    paper_readouts = ("features_ica",)  # ... which is also how the paper's number was made (no max)

    def __init__(self, input_dim: int, n_segments: int, latent_dim: int | None = None, n_layers: int = 2,
                 maxout_k: int = 2, whitening: Mapping[str, Sequence] | None = None):  # fmt: skip
        super().__init__()
        mean = torch.zeros(int(input_dim)) if whitening is None else torch.as_tensor(whitening["mean"], dtype=torch.float32)
        matrix = torch.eye(int(input_dim)) if whitening is None else torch.as_tensor(whitening["matrix"], dtype=torch.float32)
        self.register_buffer("whiten_mean", mean)
        self.register_buffer("whiten_matrix", matrix)
        latent_dim = int(input_dim if latent_dim is None else latent_dim)
        if n_layers < 1 or maxout_k < 1 or latent_dim < 1 or n_segments < 2:
            raise ValueError(
                f"TCL needs n_layers >= 1, maxout_k >= 1, latent_dim >= 1 and n_segments >= 2; got "
                f"{n_layers}, {maxout_k}, {latent_dim}, {n_segments}"
            )
        self.input_dim, self.latent_dim, self.n_segments = int(input_dim), latent_dim, int(n_segments)
        self.nodes = hidden_nodes(latent_dim, int(n_layers))
        layers: list[nn.Module] = []
        width = self.input_dim
        for nodes in self.nodes[:-1]:
            layers += [nn.Linear(width, maxout_k * nodes), Maxout(maxout_k)]
            width = nodes
        layers.append(nn.Linear(width, self.nodes[-1]))
        self.mlp = nn.Sequential(*layers)  # the absolute value follows, in ``features``
        self.mlr = nn.Linear(latent_dim, self.n_segments)
        for linear in self.linears():
            variance_scaling_(linear.weight)
            nn.init.zeros_(linear.bias)

    def linears(self) -> Iterator[nn.Linear]:
        yield from (m for m in self.mlp if isinstance(m, nn.Linear))
        yield self.mlr

    def features(self, x: Tensor) -> Tensor:
        """h(x) = |affine(maxout(... affine(whitened x)))|, shape (B, latent_dim)."""
        return self.mlp((x - self.whiten_mean) @ self.whiten_matrix).abs()

    def forward(self, x: Tensor) -> Tensor:
        """The MLR's segment logits W h(x) + b, shape (B, n_segments)."""
        return self.mlr(self.features(x))

    def readouts(self, x: Tensor, u: Tensor | None = None) -> dict[str, Tensor]:
        """What a run scores against the true sources: the features (the segment is not used)."""
        return {"features": self.features(x)}

    def mlp_parameters(self) -> list[nn.Parameter]:
        return list(self.mlp.parameters())

    def mlr_parameters(self) -> list[nn.Parameter]:
        return list(self.mlr.parameters())

    def weight_parameters(self, mlp: bool = True) -> list[nn.Parameter]:
        """The weight matrices (no biases) of the MLR and, unless ``mlp`` is False, of the MLP."""
        linears = list(self.linears()) if mlp else [self.mlr]
        return [linear.weight for linear in linears]


@register_model("tcl")
def build_tcl(
    n_layers: int | None = None,
    maxout_k: int = 2,
    whiten: bool = True,
    *,
    input_shape: Sequence[int],
    n_segments: int,
    latent_dim: int | None = None,
    mixing_layers: int | None = None,
    whitening: Mapping[str, Any] | None = None,
) -> TCL:
    """TCL feature MLP + MLR (Hyvärinen & Morioka 2016): depth ``n_layers`` (None: the L of the data's
    mixing, as in the ICE-BeeM simulations), node list [2d] * (L - 1) + [d] with maxout over groups of
    ``maxout_k``; d is the data's ``latent_dim`` (its input dimension when it gives none); the
    input PCA-whitened with the data's ``whitening`` when ``whiten`` (identity without one)."""
    if len(input_shape) != 1:
        raise ValueError(f"TCL takes vectors; the data's input_shape is {tuple(input_shape)}")
    depth = int(n_layers if n_layers is not None else (mixing_layers or 2))
    return TCL(int(input_shape[0]), int(n_segments), latent_dim, depth, int(maxout_k), whitening if whiten else None)
