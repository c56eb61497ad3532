"""The contrastive flow q_alpha of ICE-BeeM's simulations (docs/icebeem.md §3c, §4a): an autoregressive
rational-quadratic neural spline flow (NSF_AR, Durkan et al. 2019, "Neural Spline Flows") on a logistic base.

Data -> noise, ``n_layers`` (10) times: ActNorm -> LU linear -> NSF_AR; then the base is a standard
logistic per dimension, ``log p_0(z) = sum_j log sigmoid(z_j) + log sigmoid(-z_j)``, sampled as
``z = logit(U)``, U ~ Uniform(0, 1) (the original's ``TransformedDistribution(Uniform, SigmoidTransform().inv)``).

- ActNorm: ``actnorm.ActNorm``, initialised on the first forward batch so that batch leaves with zero
  mean and unit std per dimension. The original stores a log-scale and uses the unbiased std; here the
  scale is free and the std biased (+1e-6): the same map at init up to a factor sqrt(n / (n - 1)).
- LU linear: ``z = x W`` (row vectors, as the original), ``W = P L (U + diag(sign * exp(log|s|)))``
  with P a fixed permutation buffer, L unit lower and U strictly upper triangular, started at the LU
  factors of a random orthogonal matrix; ``log|det| = sum log|s|``. The original keeps s itself as the
  parameter; the sign/log form (Glow's) cannot pass through a singular W.
- NSF_AR: dimension i's spline parameters (K widths, K heights, K - 1 inner derivatives; K = 8) come
  from an MLP on x_{<i} (3 hidden layers of 16, LeakyReLU(0.2), PyTorch's default Linear init);
  dimension 0's are free parameters drawn from U(-1/2, 1/2). The d - 1 MLPs are the original's one
  MLP per dimension, with the same per-MLP fan-in init, stored stacked and run as one batched matmul
  per layer: the same function and init with 4 kernel calls instead of 4 (d - 1) Python module calls.
  A MADE with equivalent connectivity would need block-diagonal hidden masks, i.e. the same network
  padded with zeros, and a different init (one fan-in for all blocks).
- Parametrisation, as the original builds it: the conditioner output goes through
  ``2B softmax`` (widths, heights) and ``softplus`` (derivatives) and *then* into the Durkan spline,
  which applies its own ``softmax`` with min bin width/height 1e-3 and ``1e-3 + softplus`` to
  whatever it is given. So the effective bin widths are ``1e-3 + (1 - 8e-3) softmax(6 softmax(a))``
  and inner derivatives are ``1e-3 + softplus(softplus(a)) >= 0.694``: the parametrisation is applied
  twice, an accident of the code the original copied, which bounds every inner derivative away from
  0. genlab's default ``pre_squash=False`` is the spline of Durkan et al. (one softmax, one softplus,
  each with its 1e-3 floor); ``pre_squash=True`` (named config ``model.original_spline``) is the
  original's, with which its published numbers were made. Boundary derivatives are 1 and the tails linear
  (identity outside [-B, B], B = 3), so the spline is C^1 at +-B.

The spline ``rq_spline`` is written here, not taken from a library (design rule 11).
nflows 0.14's ``unconstrained_rational_quadratic_spline`` has exactly this spline (it is the code the
original copied): linear tails, min bin width/height/derivative 1e-3, boundary derivatives
``1e-3 + softplus(log(e^(1 - 1e-3) - 1)) = 1``. But it routes inside/outside points through boolean-mask
indexing with ``torch.any``, an ``assert`` on the discriminant and an in-place eps on the last knot,
i.e. host syncs and scatter kernels on every call of a loop that is Python/launch-overhead bound
(d = 5, batch 128), and it brings tensorboard along. zuko 1.4.0's ``MonotonicRQSTransform`` is a
different parametrisation: it soft-clamps the logits (``a / (1 + |2a / log slope|)``, slope 1e-4)
instead of adding a minimum bin size, takes derivatives as ``exp`` of soft-clamped logits (no
softplus, no 1e-3 floor), so it would not be the reference's spline. The version here is branch-free
(``torch.where`` picks the tails), works on any batch shape, and is checked against autograd and for
inverse consistency in ``tests/test_nsf_flow.py`` (and was checked once against nflows 0.14's function:
equal to 1e-14 in float64, forward and inverse).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genlab.models.flows.actnorm import ActNorm
from genlab.models.flows.base import FLOWS, Flow, standard_normal_log_prob

MIN_BIN = MIN_DERIVATIVE = 1e-3
LEAKY_SLOPE = 0.2


def rq_spline(
    x: torch.Tensor,
    widths: torch.Tensor,
    heights: torch.Tensor,
    derivatives: torch.Tensor,
    bound: float,
    inverse: bool = False,
    min_bin: float = MIN_BIN,
    min_derivative: float = MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Monotone rational-quadratic spline on [-B, B], identity outside (Durkan et al. 2019, §3.1).

    ``widths``, ``heights`` (shape ``x.shape + (K,)``) and ``derivatives`` (``x.shape + (K - 1,)``) are
    unnormalised: bin widths and heights are ``2B (min_bin + (1 - K min_bin) softmax)``, the inner knot
    derivatives ``min_derivative + softplus``, the two boundary derivatives 1. Returns ``(y, log|dy/dx|)``
    elementwise; with ``inverse=True`` it maps y back to x and returns ``log|dx/dy|``.
    """
    bins = widths.shape[-1]
    # Widths and heights are normalised together, (..., 2, K) -> knots (..., 2, K + 1), the end
    # knots exactly -B and B so that the linear tails join; fewer kernels in a launch-bound loop.
    sizes = torch.softmax(torch.stack([widths, heights], -2), -1) * (1 - min_bin * bins) + min_bin
    inner = torch.cumsum(sizes[..., :-1], -1) * (2 * bound) - bound
    knots = F.pad(F.pad(inner, (1, 0), value=-bound), (0, 1), value=bound)
    slopes = F.pad(F.softplus(derivatives) + min_derivative, (1, 1), value=1.0)
    table = torch.cat([knots, slopes.unsqueeze(-2)], -2)  # rows: x knots, y knots, derivatives

    inside = x.abs() <= bound
    # Outside points (inf and nan included) are computed at 0, where every branch is finite, and then
    # replaced by the identity tails; a clamp would have zero gradient at x = +-B itself.
    v = torch.where(inside, x, 0.0)
    k = (v.unsqueeze(-1) >= table[..., int(inverse), 1:-1]).sum(-1, keepdim=True)  # bin in 0..K-1
    index = torch.cat([k, k + 1], -1).unsqueeze(-2).expand(*k.shape[:-1], 3, 2)
    lo, hi = table.gather(-1, index).unbind(-1)  # the bin's left and right (x, y, derivative)
    x0, y0, d0 = lo.unbind(-1)
    d1 = hi[..., 2]
    bin_w, bin_h = (hi[..., :2] - lo[..., :2]).unbind(-1)
    slope = bin_h / bin_w
    curvature = d0 + d1 - 2 * slope

    if inverse:
        # theta solves a theta^2 + b theta + c = 0 (Durkan et al. 2019, appendix); this root form is the
        # numerically stable one.
        u = v - y0
        a = torch.addcmul(bin_h * (slope - d0), u, curvature)
        b = torch.addcmul(bin_h * d0, u, curvature, value=-1)
        c = -slope * u
        theta = 2 * c / (-b - (b * b - 4 * a * c).clamp_min(0).sqrt())
        out = torch.addcmul(x0, theta, bin_w)
    else:
        theta = (v - x0) / bin_w
    one_minus = 1 - theta
    t1 = theta * one_minus
    denom = torch.addcmul(slope, curvature, t1)
    if not inverse:
        out = y0 + bin_h * torch.addcmul(slope * theta.square(), d0, t1) / denom
    # dy/dx = s^2 (d1 theta^2 + 2 s theta (1 - theta) + d0 (1 - theta)^2) / denom^2 (Durkan et al. 2019, §3.1).
    numer = d1 * theta.square() + 2 * slope * t1 + d0 * one_minus.square()
    logdet = (slope.square() * numer / denom.square()).log()
    if inverse:
        logdet = -logdet
    return torch.where(inside, out, x), torch.where(inside, logdet, 0.0)


class LULinears(nn.Module):
    """``n`` maps ``z = x W_l``, ``W_l = P_l L_l (U_l + diag(sign_l * exp(log|s_l|)))``, random-orthogonal at init.

    The layers' factors are stacked, so all ``n`` weights are assembled by one batched product per pass.
    """

    def __init__(self, n: int, dim: int):
        super().__init__()
        q = torch.stack([nn.init.orthogonal_(torch.empty(dim, dim)) for _ in range(n)])
        perm, lower, upper = torch.linalg.lu(q)
        diag = upper.diagonal(dim1=-2, dim2=-1)
        self.register_buffer("perm", perm)
        self.register_buffer("sign", diag.sign())
        self.register_buffer("eye", torch.eye(dim), persistent=False)
        self.lower = nn.Parameter(lower.tril(-1))
        self.upper = nn.Parameter(upper.triu(1))
        self.log_abs_diag = nn.Parameter(diag.abs().log())

    def weights(self) -> torch.Tensor:
        """W_l stacked, (n, dim, dim)."""
        lower = self.lower.tril(-1) + self.eye
        upper = self.upper.triu(1) + torch.diag_embed(self.sign * self.log_abs_diag.exp())
        return self.perm @ lower @ upper

    def logabsdets(self) -> torch.Tensor:
        """log|det W_l| = sum log|s_l|, (n,)."""
        return self.log_abs_diag.sum(-1)


class AutoregressiveRQS(nn.Module):
    """NSF_AR: x_i -> rq_spline(x_i; theta_i(x_{<i})), theta_0 free (docs/icebeem.md §3c).

    The d - 1 conditioner MLPs (MLP i: i inputs -> 16 -> 16 -> 16 -> 3K - 1) are stacked along a
    leading axis; MLP i reads all d - 1 candidate inputs through a fixed mask that zeroes x_{>=i}.
    """

    def __init__(self, dim: int, bins: int = 8, bound: float = 3.0, hidden: int = 16, pre_squash: bool = False):
        super().__init__()
        self.dim, self.bins, self.bound, self.pre_squash = dim, bins, float(bound), pre_squash
        n_params = 3 * bins - 1
        self.first = nn.Parameter(torch.empty(n_params).uniform_(-0.5, 0.5))
        m = dim - 1
        # mask[k, j]: MLP k (which parametrises dimension k + 1) sees x_j for j <= k.
        mask = torch.tril(torch.ones(m, m)).unsqueeze(-1)
        self.register_buffer("mask", mask, persistent=False)
        fan_in0 = torch.arange(1, m + 1, dtype=torch.get_default_dtype()).view(m, 1, 1)
        sizes = [(m, hidden), (hidden, hidden), (hidden, hidden), (hidden, n_params)]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for layer, (n_in, n_out) in enumerate(sizes):
            # PyTorch's nn.Linear default init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), per MLP.
            limit = fan_in0.rsqrt() if layer == 0 else torch.tensor(n_in**-0.5)
            u_w, u_b = torch.rand(m, n_in, n_out), torch.rand(m, 1, n_out)
            weight = (2 * u_w - 1) * limit
            self.weights.append(nn.Parameter(weight * mask if layer == 0 else weight))
            self.biases.append(nn.Parameter((2 * u_b - 1) * limit))

    def spline_params(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Unnormalised ``(widths, heights, derivatives)`` of shape (B, d, K | K | K - 1)."""
        m = self.dim - 1
        h = x[:, :m].expand(m, *x[:, :m].shape)
        last = len(self.weights) - 1
        for layer, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(bias, h, weight * self.mask if layer == 0 else weight)
            if layer < last:
                h = F.leaky_relu(h, LEAKY_SLOPE)
        params = torch.cat([self.first.expand(x.shape[0], 1, -1), h.transpose(0, 1)], 1)
        widths, heights, derivatives = params.split([self.bins, self.bins, self.bins - 1], -1)
        if self.pre_squash:
            # The original's NSF_AR squashes before its spline squashes again (module docstring).
            widths = 2 * self.bound * torch.softmax(widths, -1)
            heights = 2 * self.bound * torch.softmax(heights, -1)
            derivatives = F.softplus(derivatives)
        return widths, heights, derivatives

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z, logdet = rq_spline(x, *self.spline_params(x), self.bound)
        return z, logdet.sum(1)

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # Pass t fixes dimension t (its parameters see only the already fixed x_{<t}), so d passes
        # from zeros give x exactly, and the last pass's log-det is the right one.
        x = torch.zeros_like(z)
        for _ in range(self.dim):
            x, logdet = rq_spline(z, *self.spline_params(x), self.bound, inverse=True)
        return x, logdet.sum(1)


def standard_logistic_log_prob(z: torch.Tensor) -> torch.Tensor:
    """sum_j log Logistic(z_j; 0, 1) = sum_j log sigmoid(z_j) + log sigmoid(-z_j): shape (B,)."""
    return (F.logsigmoid(z) + F.logsigmoid(-z)).sum(-1)


@FLOWS.register("nsf_ar")
class NSF(Flow):
    """``NSF(dim=5, n_layers=10)``: ICE-BeeM's q_alpha (docs/icebeem.md §3c); ``base`` "logistic" | "normal"."""

    BASES = ("logistic", "normal")

    def __init__(
        self,
        dim: int = 5,
        n_layers: int = 10,
        bins: int = 8,
        bound: float = 3.0,
        hidden: int = 16,
        base: str = "logistic",
        pre_squash: bool = False,
    ):
        super().__init__(dim)
        if base not in self.BASES:
            raise ValueError(f"unknown base {base!r}; valid bases: {', '.join(self.BASES)}")
        self.base = base
        # Layer l (data -> noise) is actnorms[l] -> linears (its W_l) -> splines[l].
        self.actnorms = nn.ModuleList(ActNorm(dim) for _ in range(n_layers))
        self.linears = LULinears(n_layers, dim)
        self.splines = nn.ModuleList(
            AutoregressiveRQS(dim, bins=bins, bound=bound, hidden=hidden, pre_squash=pre_squash)
            for _ in range(n_layers)
        )

    def base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return standard_logistic_log_prob(z) if self.base == "logistic" else standard_normal_log_prob(z)

    def sample_base(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.base == "normal":
            return super().sample_base(n, generator)
        ref = next(self.parameters())
        u = torch.rand(n, self.dim, generator=generator, device=ref.device, dtype=ref.dtype)
        # The clamp of torch's SigmoidTransform inverse, as the original's base: u = 0 stays finite.
        finfo = torch.finfo(u.dtype)
        return torch.logit(u.clamp(finfo.tiny, 1 - finfo.eps))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = self.linears.logabsdets().sum()
        for actnorm, weight, spline in zip(self.actnorms, self.linears.weights().unbind(0), self.splines):
            x, logdet_an = actnorm(x)
            x, logdet_s = spline(x @ weight)
            logdet = logdet + logdet_an + logdet_s
        return x, logdet

    def inverse(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = -self.linears.logabsdets().sum()
        inverses = torch.linalg.inv(self.linears.weights()).unbind(0)
        for actnorm, weight_inv, spline in zip(reversed(self.actnorms), reversed(inverses), reversed(self.splines)):
            z, logdet_s = spline.inverse(z)
            z, logdet_an = actnorm.inverse(z @ weight_inv)
            logdet = logdet + logdet_an + logdet_s
        return z, logdet


__all__ = ["AutoregressiveRQS", "LULinears", "NSF", "rq_spline", "standard_logistic_log_prob"]
