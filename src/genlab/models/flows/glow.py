"""The 2D Glow of the FCE reference code, as actually built (docs/fce.md §2.2, §6 items 1, 4 and 5, §7).

Ten steps, each (data -> noise) ActNorm(dim, data-init) -> unconstrained invertible linear map W ->
affine coupling. The original's constructor (Glow(width=64, depth=5, n_levels=1)) builds one level of
5 steps plus 5 more, so it has 10 steps and 46,840 parameters (docs/fce.md §6 item 1); ``steps=10`` is that.

- W is a free dim x dim matrix initialised to the Q of a QR of a standard normal matrix, with
  ``log|det dz/dx| = log|det W|``; nothing keeps it well conditioned (docs/fce.md §6 item 5).
- The coupling transforms the first half x_a (for dim = 2, coordinate 0) conditioned on the second
  half x_b: conditioner Linear -> ActNorm -> ReLU -> Linear -> ActNorm -> ReLU -> Linear, the last
  layer zero-initialised and its output multiplied by exp(l), l learnable and zero-initialised;
  ``t = out[:, :h]``, ``s = sigmoid(out[:, h:] + 2)``, ``z_a = s * x_a + t``, ``log|det| = sum log s``.
  The conditioner's ActNorm log-dets are not part of the flow's (they act inside the conditioner).
  At init every coupling is the contraction s = sigmoid(2), log-det -0.1269 (docs/fce.md §6 item 4), and l has
  zero gradient until the last layer moves.

The step modules (``GlowStep``, ``forward_stepwise``) are the plain statement of the model and do
the ActNorm data init. ``forward``/``inverse`` compute the same function faster, which matters in
FCE's hot loop: every parameter-only quantity of all steps is computed in one batched pass (each
ActNorm folded into the adjacent linear map, exp(l) and the +2 into the last layer, 2 x 2
determinants and inverses in closed form), so each step costs four matmuls (its linear map and the
conditioner's three layers) and a few small ops. Tests check it against the stepwise model.

Why not a library block (design rule 11): normflows' ``AffineCoupling`` with ``scale_map="sigmoid"``
divides by the scale and shifts after scaling (data -> noise ``z_a = (x_a - t) * s``, where the
original has ``z_a = s * x_a + t``), its MLP has no ActNorm and no exp(l) output gain (only
``init_zeros``), its ``Invertible1x1Conv``/``InvertibleAffine`` take an LU parametrisation by default
and, unparametrised, call ``torch.inverse`` in float64 and ``slogdet`` on every call; its ``ActNorm``
differs as noted in ``actnorm.py``. nflows' Glow-style pieces are LU/permutation based with
exp/softplus scales; zuko has no Glow. Assembling normflows' blocks would change the parametrisation
(hence the training dynamics) and add per-block list/Split/Merge overhead.
"""

from __future__ import annotations

from operator import attrgetter

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.flows.actnorm import ActNorm
from genlab.models.flows.base import FLOWS, Flow

_SCALE_OFFSET = 2.0  # s = sigmoid(raw + 2): the coupling starts as a contraction by sigmoid(2)


class InvertibleLinear(nn.Module):
    """``z = W x`` with a free W (no LU, no fixed permutation), orthogonal at init (docs/fce.md §2.2)."""

    def __init__(self, dim: int):
        super().__init__()
        q, _ = torch.linalg.qr(torch.randn(dim, dim))
        self.weight = nn.Parameter(q)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.linear(x, self.weight), torch.linalg.slogdet(self.weight)[1]

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return F.linear(z, torch.linalg.inv(self.weight)), -torch.linalg.slogdet(self.weight)[1]


class AffineCoupling(nn.Module):
    """``z_a = sigmoid(raw + 2) * x_a + t`` with ``(t, raw) = exp(l) * NN(x_b)`` (docs/fce.md §2.2)."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.n_a = dim // 2
        self.in_layer = nn.Linear(dim - self.n_a, width)
        self.norm1 = ActNorm(width)
        self.hidden = nn.Linear(width, width)
        self.norm2 = ActNorm(width)
        self.out_layer = nn.Linear(width, 2 * self.n_a)
        nn.init.zeros_(self.out_layer.weight)
        nn.init.zeros_(self.out_layer.bias)
        self.log_gain = nn.Parameter(torch.zeros(2 * self.n_a))
        offset = torch.cat([torch.zeros(self.n_a), torch.full((self.n_a,), _SCALE_OFFSET)])
        self.register_buffer("offset", offset, persistent=False)

    def conditioner(self, x_b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, raw + 2)``; the ActNorms initialise from these activations on their first call."""
        h = F.relu(self.norm1(self.in_layer(x_b))[0])
        h = F.relu(self.norm2(self.hidden(h))[0])
        out = self.out_layer(h) * self.log_gain.exp() + self.offset
        return out[:, : self.n_a], out[:, self.n_a :]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x_a, x_b = x[:, : self.n_a], x[:, self.n_a :]
        t, raw = self.conditioner(x_b)
        z_a = torch.sigmoid(raw) * x_a + t
        return torch.cat([z_a, x_b], dim=1), F.logsigmoid(raw).sum(1)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z_a, x_b = z[:, : self.n_a], z[:, self.n_a :]
        t, raw = self.conditioner(x_b)
        x_a = (z_a - t) / torch.sigmoid(raw)
        return torch.cat([x_a, x_b], dim=1), -F.logsigmoid(raw).sum(1)


class GlowStep(nn.Module):
    """ActNorm -> invertible linear -> affine coupling (data -> noise); log-dets of shape (B,)."""

    def __init__(self, dim: int, width: int):
        super().__init__()
        self.actnorm = ActNorm(dim)
        self.linear = InvertibleLinear(dim)
        self.coupling = AffineCoupling(dim, width)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, logdet_an = self.actnorm(x)
        x, logdet_w = self.linear(x)
        z, logdet_c = self.coupling(x)
        return z, logdet_c + (logdet_an + logdet_w)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, logdet_c = self.coupling.inverse(z)
        y, logdet_w = self.linear.inverse(y)
        x, logdet_an = self.actnorm.inverse(y)
        return x, logdet_c + (logdet_w + logdet_an)


def _batched_logabsdet(weight: torch.Tensor) -> torch.Tensor:
    """log|det W_k| for a stack (S, d, d); ad - bc for 2 x 2, cheaper than LAPACK and its backward."""
    if weight.shape[-1] == 2:
        w = weight.flatten(1)
        return (w[:, 0] * w[:, 3] - w[:, 1] * w[:, 2]).abs().log()
    return torch.linalg.slogdet(weight)[1]


def _batched_inverse(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W_k^{-1}, log|det W_k|)`` for a stack (S, d, d); adjugate / determinant for 2 x 2."""
    if weight.shape[-1] == 2:
        w = weight.flatten(1)
        det = w[:, 0] * w[:, 3] - w[:, 1] * w[:, 2]
        adj = torch.stack([w[:, 3], -w[:, 1], -w[:, 2], w[:, 0]], dim=1).view_as(weight)
        return adj / det[:, None, None], det.abs().log()
    return torch.linalg.inv(weight), torch.linalg.slogdet(weight)[1]


@FLOWS.register("glow")
class Glow(Flow):
    """``Glow(dim=2, steps=10, width=64)``: 46,840 parameters at the FCE setting (docs/fce.md §2.2, §7)."""

    def __init__(self, dim: int = 2, steps: int = 10, width: int = 64):
        super().__init__(dim)
        self.n_a = dim // 2
        self._halves = [self.n_a, dim - self.n_a]  # (transformed x_a, conditioning x_b)
        self.steps = nn.ModuleList(GlowStep(dim, width) for _ in range(steps))

    # -- the model stated step by step (reference; does the ActNorm data init) --------------------

    def forward_stepwise(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = x.new_zeros(x.shape[0])
        for step in self.steps:
            x, step_logdet = step(x)
            logdet = logdet + step_logdet
        return x, logdet

    def inverse_stepwise(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = z.new_zeros(z.shape[0])
        for step in reversed(self.steps):
            z, step_logdet = step.inverse(z)
            logdet = logdet + step_logdet
        return z, logdet

    # -- the same function, batched over steps -------------------------------------------------

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not all(step.actnorm.ready and self._conditioner_ready(step) for step in self.steps):
            with torch.no_grad():
                self.forward_stepwise(x)
        weight, bias, const = self._folded_linears()
        raws = []
        for w, b, cond in zip(weight.unbind(0), bias.unbind(0), self._folded_conditioners()):
            y_a, y_b = F.linear(x, w, b).split(self._halves, dim=1)
            t, raw = self._conditioner(y_b, *cond)
            x = torch.cat([torch.addcmul(t, torch.sigmoid(raw), y_a), y_b], dim=1)
            raws.append(raw)
        return x, F.logsigmoid(torch.cat(raws, dim=1)).sum(1) + const

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not all(self._conditioner_ready(step) for step in self.steps):
            with torch.no_grad():
                self.inverse_stepwise(z)
        weight, bias, const = self._folded_inverse_linears()
        raws = []
        steps = zip(weight.unbind(0), bias.unbind(0), self._folded_conditioners())
        for w, b, cond in reversed(list(steps)):
            z_a, x_b = z.split(self._halves, dim=1)
            t, raw = self._conditioner(x_b, *cond)
            z = F.linear(torch.cat([(z_a - t) / torch.sigmoid(raw), x_b], dim=1), w, b)
            raws.append(raw)
        return z, const - F.logsigmoid(torch.cat(raws, dim=1)).sum(1)

    @staticmethod
    def _conditioner_ready(step: GlowStep) -> bool:
        return step.coupling.norm1.ready and step.coupling.norm2.ready

    @staticmethod
    def _conditioner(x_b: torch.Tensor, w1t, b1, w2, b2, w3, b3) -> tuple[torch.Tensor, torch.Tensor]:
        """``(t, raw + 2)`` from folded weights."""
        h = F.relu(torch.addmm(b1, x_b, w1t), inplace=True)
        h = F.relu(F.linear(h, w2, b2), inplace=True)
        t, raw = F.linear(h, w3, b3).chunk(2, dim=1)
        return t, raw

    def _stack(self, name: str) -> torch.Tensor:
        get = attrgetter(name)
        return torch.stack([get(step) for step in self.steps])

    def _folded_linears(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per step the affine map ``W diag(1/s) (x - b)`` as (S, d, d), (S, d), and the summed log-det."""
        loc, scale, weight = self._stack("actnorm.loc"), self._stack("actnorm.scale"), self._stack("linear.weight")
        folded = weight / scale[:, None, :]
        bias = -(folded * loc[:, None, :]).sum(-1)
        return folded, bias, _batched_logabsdet(weight).sum() - scale.abs().log().sum()

    def _folded_inverse_linears(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per step the inverse map ``diag(s) W^{-1} y + b``, and its summed log-det."""
        loc, scale, weight = self._stack("actnorm.loc"), self._stack("actnorm.scale"), self._stack("linear.weight")
        weight_inv, logabsdet = _batched_inverse(weight)
        return scale[:, :, None] * weight_inv, loc, scale.abs().log().sum() - logabsdet.sum()

    def _folded_conditioners(self) -> list[tuple[torch.Tensor, ...]]:
        """Per step ``(W1^T, b1, W2, b2, W3, b3)`` with both ActNorms, exp(l) and the +2 folded in."""
        stack = self._stack
        scale1, scale2 = stack("coupling.norm1.scale"), stack("coupling.norm2.scale")
        w1t = (stack("coupling.in_layer.weight") / scale1[:, :, None]).transpose(1, 2)
        b1 = (stack("coupling.in_layer.bias") - stack("coupling.norm1.loc")) / scale1
        w2 = stack("coupling.hidden.weight") / scale2[:, :, None]
        b2 = (stack("coupling.hidden.bias") - stack("coupling.norm2.loc")) / scale2
        gain = stack("coupling.log_gain").exp()
        w3 = stack("coupling.out_layer.weight") * gain[:, :, None]
        b3 = torch.addcmul(self.steps[0].coupling.offset, stack("coupling.out_layer.bias"), gain)
        return list(zip(*(t.unbind(0) for t in (w1t, b1, w2, b2, w3, b3))))


__all__ = ["AffineCoupling", "Glow", "GlowStep", "InvertibleLinear"]
