"""ICE-BeeM's spline flow q_alpha (docs/icebeem.md §3c): the rational-quadratic spline's tails,
boundary derivatives and exact log-det, the flow's invertibility and autograd log-det, a normalised
2D density, samples whose log q agrees with ``log_prob``, ActNorm data init, the logistic base, and
the autoregressive structure of the stacked conditioners."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.autograd.functional import jacobian
from torch.distributions import SigmoidTransform, TransformedDistribution, Uniform

from genlab.models.flows import FLOWS, build_flow
from genlab.models.flows.base import standard_normal_log_prob
from genlab.models.flows.nsf import NSF, AutoregressiveRQS, rq_spline, standard_logistic_log_prob

BOUND, BINS = 3.0, 8


def _data(n: int, dim: int, dtype=torch.float32, seed: int = 1) -> torch.Tensor:
    """A correlated, shifted, scaled Gaussian batch: enough structure for ActNorm init to matter."""
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(dim, dim, generator=g, dtype=dtype) + 2 * torch.eye(dim, dtype=dtype)
    return torch.randn(n, dim, generator=g, dtype=dtype) @ mix + torch.arange(dim, dtype=dtype)


@torch.no_grad()
def _perturb(flow: torch.nn.Module, seed: int = 2, size: float = 0.1) -> None:
    """Move every parameter away from init, relative to its size."""
    g = torch.Generator().manual_seed(seed)
    for p in flow.parameters():
        p.add_(size * (p.abs() + size) * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _flow(dim: int = 5, n_layers: int = 10, dtype=torch.float32, **options) -> NSF:
    """A seeded flow, ActNorms initialised on data, then moved off init."""
    torch.manual_seed(0)
    flow = build_flow("nsf_ar", dim=dim, n_layers=n_layers, **options).to(dtype)
    flow.log_prob(_data(512, dim, dtype))
    _perturb(flow)
    return flow


def _spline_params(shape, scale: float = 2.0, seed: int = 0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [scale * torch.randn(*shape, n, generator=g, dtype=dtype) for n in (BINS, BINS, BINS - 1)]


def _mixed_points(n: int, dim: int, dtype=torch.float64) -> torch.Tensor:
    """Points at data scale and far out, so that some coordinates hit each spline's linear tails."""
    x = _data(n, dim, dtype, seed=3)
    x[: n // 2] *= 4
    return x


@pytest.fixture(scope="module")
def flow64():
    return _flow(dtype=torch.float64)


# --- the spline on its own --------------------------------------------------------------------------


def test_spline_is_identity_with_zero_logdet_outside_the_bound():
    x = torch.cat([torch.linspace(-50, -BOUND - 1e-4, 50), torch.linspace(BOUND + 1e-4, 50, 50)]).double()
    for inverse in (False, True):
        y, logdet = rq_spline(x, *_spline_params(x.shape), BOUND, inverse=inverse)
        assert torch.equal(y, x) and torch.equal(logdet, torch.zeros_like(x))


def test_spline_maps_the_bound_to_itself_with_unit_derivative_there():
    x = torch.tensor([-BOUND, BOUND, -BOUND + 1e-9, BOUND - 1e-9], dtype=torch.float64, requires_grad=True)
    y, logdet = rq_spline(x, *_spline_params(x.shape, scale=3.0), BOUND)
    (grad,) = torch.autograd.grad(y.sum(), x)
    torch.testing.assert_close(y[:2].detach(), x[:2].detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(grad, torch.ones_like(grad), rtol=0, atol=1e-5)
    torch.testing.assert_close(logdet.detach().exp(), torch.ones_like(grad), rtol=0, atol=1e-5)


def test_spline_logdet_is_the_autograd_derivative_and_the_inverse_undoes_it():
    x = torch.linspace(-4, 4, 161, dtype=torch.float64)
    params = _spline_params(x.shape, scale=3.0)
    y, logdet = rq_spline(x, *params, BOUND)
    jac = jacobian(lambda v: rq_spline(v, *params, BOUND)[0], x)
    torch.testing.assert_close(jac, torch.diag(jac.diagonal()))  # elementwise
    torch.testing.assert_close(logdet, jac.diagonal().abs().log())
    assert (jac.diagonal() > 0).all()  # monotone
    x_back, logdet_inv = rq_spline(y, *params, BOUND, inverse=True)
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-9)
    torch.testing.assert_close(logdet_inv, -logdet)


def test_spline_respects_the_minimum_bin_size_and_derivative():
    """Extreme logits still give bins >= 2B * 1e-3 and derivatives >= 1e-3: the map stays invertible."""
    x = torch.linspace(-BOUND, BOUND, 2001, dtype=torch.float64)
    widths, heights, derivatives = (30 * p.expand(*x.shape, -1) for p in _spline_params((1,), seed=4))
    y, logdet = rq_spline(x, widths, heights, derivatives, BOUND)
    assert (y.diff() > 0).all() and torch.isfinite(logdet).all()
    torch.testing.assert_close(rq_spline(y, widths, heights, derivatives, BOUND, inverse=True)[0], x, rtol=0, atol=1e-7)


# --- the flow ---------------------------------------------------------------------------------------


def test_registry_builds_the_icebeem_setting_with_a_logistic_base():
    assert "nsf_ar" in FLOWS.names()
    flow = build_flow("nsf_ar", dim=5, n_layers=10)
    assert isinstance(flow, NSF) and flow.base == "logistic" and len(flow.splines) == 10
    # The original's free parameters: per layer ActNorm 10, LU 55, NSF_AR 23 + sum_i (16 i + 951).
    masked = sum(int((s.mask == 0).sum()) * s.weights[0].shape[-1] for s in flow.splines)
    assert sum(p.numel() for p in flow.parameters()) - masked == 10 * (10 + 55 + 23 + 16 * 10 + 4 * 951)
    with pytest.raises(ValueError, match="valid bases: logistic, normal"):
        build_flow("nsf_ar", base="gaussian")


@pytest.mark.parametrize("options", [{}, {"pre_squash": True, "base": "normal"}])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_inverse_undoes_forward_inside_and_outside_the_tail_bound(options, dtype):
    """float64 on points 4x beyond the data, which reach every layer's tails; float32 at data scale.

    (In float32, 10 layers invert points 4x out only to ~3e-2: the inverse is badly conditioned
    there, while float64 gets ~1e-13 on the same points.)
    """
    flow = _flow(dtype=dtype, **options)
    x = _mixed_points(256, 5, dtype) if dtype == torch.float64 else _data(256, 5, dtype, seed=3)
    with torch.no_grad():
        z, logdet = flow(x)
        x_back, logdet_inv = flow.inverse(z)
    if dtype == torch.float64:
        assert (x.abs() > 4 * BOUND).any() and (x.abs() < BOUND).any()
    torch.testing.assert_close(x_back, x, rtol=0, atol=1e-4 if dtype == torch.float32 else 1e-8)
    torch.testing.assert_close(logdet_inv, -logdet, rtol=0, atol=1e-3 if dtype == torch.float32 else 1e-8)


def test_flow_logdet_is_log_abs_det_of_the_autograd_jacobian(flow64):
    x = _mixed_points(6, 5)
    _, logdet = flow64(x)
    for xi, li in zip(x, logdet):
        jac = jacobian(lambda v: flow64(v[None])[0][0], xi)
        torch.testing.assert_close(li, torch.linalg.slogdet(jac)[1], rtol=0, atol=1e-8)


def test_the_spline_layer_is_autoregressive_with_a_triangular_jacobian(flow64):
    layer = flow64.splines[3]
    x = _mixed_points(4, 5)
    _, logdet = layer(x)
    for xi, li in zip(x, logdet):
        jac = jacobian(lambda v: layer(v[None])[0][0], xi)
        torch.testing.assert_close(jac, jac.tril())  # z_i depends on x_{<=i} only
        torch.testing.assert_close(li, jac.diagonal().log().sum())


def test_2d_density_integrates_to_one():
    """A Riemann sum on a 400 x 400 grid; the data's std is ~2.6 and the logistic tails are
    exponential, so [-12, 12]^2 holds only ~95% of the mass and [-40, 40]^2 all but ~2e-5."""
    flow = _flow(dim=2, n_layers=3, dtype=torch.float64)
    lim, n = 40.0, 400
    axis = torch.linspace(-lim, lim, n, dtype=torch.float64)
    grid = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        mass = flow.log_prob(grid).exp().sum() * (axis[1] - axis[0]) ** 2
    assert abs(float(mass) - 1) < 0.02


@pytest.mark.parametrize("base", ["logistic", "normal"])
def test_samples_are_finite_and_their_log_q_is_log_prob(base):
    flow = _flow(base=base)
    x, log_q = flow.sample(512, generator=torch.Generator().manual_seed(5))
    assert torch.isfinite(x).all() and torch.isfinite(log_q).all()
    with torch.no_grad():
        torch.testing.assert_close(flow.log_prob(x), log_q, rtol=0, atol=2e-3)


def test_logistic_base_is_the_originals_uniform_through_the_logit():
    flow = build_flow("nsf_ar", dim=5, n_layers=1)
    z = flow.sample_base(20000, generator=torch.Generator().manual_seed(6)).double()
    uniform = Uniform(torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64))
    reference = TransformedDistribution(uniform, SigmoidTransform().inv)
    torch.testing.assert_close(standard_logistic_log_prob(z), reference.log_prob(z).sum(-1))
    torch.testing.assert_close(flow.base_log_prob(z), standard_logistic_log_prob(z))
    # Logistic(0, 1): mean 0, variance pi^2 / 3.
    assert z.mean().abs() < 0.05 and (z.var() - torch.pi**2 / 3).abs() < 0.1


def test_glow_and_maf_keep_the_normal_base():
    z = torch.randn(7, 2)
    for name in ("glow", "maf"):
        flow = build_flow(name)
        torch.testing.assert_close(flow.base_log_prob(z), standard_normal_log_prob(z))
        drawn = flow.sample_base(7, generator=torch.Generator().manual_seed(8))
        torch.testing.assert_close(drawn, torch.randn(7, 2, generator=torch.Generator().manual_seed(8)))


def test_actnorms_normalise_their_first_batch_layer_by_layer():
    torch.manual_seed(0)
    flow = build_flow("nsf_ar", dim=5, n_layers=4)
    x = _data(1000, 5)
    flow.log_prob(x)
    with torch.no_grad():
        for actnorm, weight, spline in zip(flow.actnorms, flow.linears.weights(), flow.splines):
            assert actnorm.ready
            y, _ = actnorm(x)
            std, mean = torch.std_mean(y, dim=0, correction=0)
            torch.testing.assert_close(mean, torch.zeros(5), rtol=0, atol=1e-5)
            torch.testing.assert_close(std, torch.ones(5), rtol=0, atol=1e-5)
            x, _ = spline(y @ weight)


def test_first_dimension_parameters_are_free_and_start_in_a_half_unit_box():
    layer = AutoregressiveRQS(5, pre_squash=True)  # the original's: the squashed parameters are the spline's input
    assert layer.first.shape == (3 * BINS - 1,) and layer.first.abs().max() <= 0.5
    widths, heights, derivatives = layer.spline_params(torch.randn(3, 5))
    torch.testing.assert_close(widths[:, 0], (2 * BOUND * torch.softmax(layer.first[:BINS], 0)).expand(3, -1))
    torch.testing.assert_close(derivatives[:, 0], F.softplus(layer.first[2 * BINS :]).expand(3, -1))


def test_a_reloaded_state_dict_gives_the_same_density_without_reinitialising():
    flow = _flow(n_layers=3)
    x = _data(64, 5, seed=9)
    fresh = build_flow("nsf_ar", dim=5, n_layers=3)
    fresh.load_state_dict(flow.state_dict())
    assert all(actnorm.ready for actnorm in fresh.actnorms)
    with torch.no_grad():
        torch.testing.assert_close(fresh.log_prob(x), flow.log_prob(x))
