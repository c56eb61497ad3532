"""ICE-BeeM's conditional energy-based model for the nonlinear ICA simulations, and the contrastive
flow it is trained against (Khemakhem et al., NeurIPS 2020, section 3 and the simulations of
section 5.1; docs/icebeem.md §3c).

The EBM's unnormalised conditional log density of x given the segment u (one-hot, K segments) is

    log p_theta(x | u) = f(x)^T W u + (f(x)^2)^T (W * W) u + c                 (docs/icebeem.md §3c)

with f the feature MLP below (m = d outputs), g(u) = W u with W (m x K) initialised to ones, the
second term the "augmented" energy (on by default in EBM training; ``augment=False`` drops it), and
one learned log-normaliser c (initialised to -5) shared by every segment. As in the original, the
sign is +: this is a log density, not an energy. Nothing here makes it integrate to 1; FCE fits c
with the rest (docs/icebeem.md §4a).

f (``FeatureMLP``): Linear(d -> h) without activation, then ``n_blocks`` blocks of
[BatchNorm1d on the block's input -> Linear(h -> h) -> LeakyReLU(0.01)], then Linear(h -> m);
h = 32. The original's depth is one more than the data's mixing layers L, which gives L blocks
(docs/icebeem.md §3c, §10.18): ``n_blocks=None`` takes L from the data. The BatchNorm layers see the
mixed batches of data and noise points FCE classifies, as in the original.

``ICEBeeM`` holds the EBM and the flow q_alpha (``genlab.models.flows``, ``nsf_ar`` by default: the
contrastive flow of docs/icebeem.md §3c) as one module, registered as model kind ``icebeem``.
``readouts`` gives what the MCC evaluation scores: the EBM's features f(x) (the representation the
paper means) and the flow's latent z (what the original actually scored, docs/icebeem.md §10.1).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from genlab.models.flows import FLOWS, build_flow
from genlab.models.registry import register_model

FEATURE_SLOPE = 0.01  # F.leaky_relu's default slope, which the original's MLP used


class FeatureMLP(nn.Module):
    """f: R^d -> R^m, Linear, then ``n_blocks`` x [BatchNorm1d -> Linear -> LeakyReLU(0.01)], then Linear."""

    def __init__(self, dim: int, out_dim: int, hidden: int = 32, n_blocks: int = 2):
        super().__init__()
        self.first = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.BatchNorm1d(hidden), nn.Linear(hidden, hidden), nn.LeakyReLU(FEATURE_SLOPE))
            for _ in range(n_blocks)
        )
        self.last = nn.Linear(hidden, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        h = self.first(x)
        for block in self.blocks:
            h = block(h)
        return self.last(h)


class ConditionalEBM(nn.Module):
    """log p_theta(x | u) = f(x)^T W u [+ (f(x)^2)^T (W * W) u] + c, shape (B,)."""

    def __init__(self, dim: int, n_segments: int, hidden: int = 32, n_blocks: int = 2, feature_dim: int | None = None,
                 log_z_init: float = -5.0):  # fmt: skip
        super().__init__()
        m = int(feature_dim or dim)
        self.f = FeatureMLP(dim, m, hidden, n_blocks)
        self.W = nn.Parameter(torch.ones(m, n_segments))  # g(u) = W u, all ones at the start (docs/icebeem.md §10.11)
        self.log_z = nn.Parameter(torch.tensor(float(log_z_init)))

    def g_parameters(self) -> list[nn.Parameter]:
        """W and c: what the original's "g pretraining" phase trains (docs/icebeem.md §4a, phase 2)."""
        return [self.W, self.log_z]

    def log_prob(self, x: Tensor, u: Tensor, augment: bool = True) -> Tensor:
        features = self.f(x)
        g = u @ self.W.T  # (B, m): W u for each row
        value = (features * g).sum(1)
        if augment:
            value = value + (features.square() * (u @ self.W.square().T)).sum(1)
        return value + self.log_z

    forward = log_prob


class ICEBeeM(nn.Module):
    """The conditional EBM and its contrastive flow, saved and checkpointed together."""

    source_target = "s"  # the readouts estimate the sources themselves (up to ICA), docs/icebeem.md §7
    intended_readout = "ebm_ica"  # FastICA of f(x) at the final checkpoint
    paper_readouts: tuple[str, ...] = ()  # the paper's number comes from the in-run evaluations:
    paper_history = "mcc_flow_ica"  # the best of them, of FastICA of the flow's latent (docs/icebeem.md §10.1, §10.2)

    def __init__(self, ebm: ConditionalEBM, flow: nn.Module):
        super().__init__()
        self.ebm, self.flow = ebm, flow

    @torch.no_grad()
    def readouts(self, x: Tensor, u: Tensor) -> dict[str, Tensor]:
        """f(x) (BatchNorm with its running statistics: the caller sets eval mode) and the flow's z."""
        return {"ebm": self.ebm.f(x), "flow": self.flow(x)[0]}


@register_model("icebeem", choices={"flow": (FLOWS, "")})
def build_icebeem(
    hidden: int = 32,
    n_blocks: int | None = None,
    feature_dim: int | None = None,
    log_z_init: float = -5.0,
    flow: str = "nsf_ar",
    flow_options: Mapping[str, Any] | None = None,
    *,
    input_shape: Sequence[int],
    n_segments: int,
    mixing_layers: int | None = None,
) -> ICEBeeM:
    """ICE-BeeM of the simulations: ``hidden`` 32 (the original's comment: 16 was best for IMCA
    L=2), ``n_blocks`` None: the data's mixing depth L, ``feature_dim`` None: the data's dimension;
    the flow ``nsf_ar`` with 10 layers (``flow_options``; the original's comment: 5 best for IMCA L=2)."""
    dim = int(input_shape[0])
    blocks = int(n_blocks if n_blocks is not None else (mixing_layers or 2))
    ebm = ConditionalEBM(dim, int(n_segments), int(hidden), blocks, feature_dim, float(log_z_init))
    return ICEBeeM(ebm, build_flow(flow, **{"dim": dim, **dict(flow_options or {})}))


__all__ = ["ConditionalEBM", "FeatureMLP", "ICEBeeM", "build_icebeem"]
