"""The FCE flows (docs/fce.md §2.2, §2.3, §7): invertibility, exact log-dets, normalised
densities that agree with their samples, the anchors of the original (parameter counts, the
sigmoid(2) coupling contraction), ActNorm init semantics, and the fast paths against the plain ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from genlab.models.flows import FLOWS, ActNorm, build_flow
from genlab.models.flows.glow import Glow
from genlab.models.flows.maf import MAF
from genlab.registry import UnknownNameError

NAMES = ["glow", "maf"]


def _data(n: int, dtype: torch.dtype = torch.float32, seed: int = 1) -> torch.Tensor:
    """A correlated, shifted 2D Gaussian batch: enough structure for ActNorm init to matter."""
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, 2, generator=g, dtype=dtype)
    return z @ torch.tensor([[1.5, 0.0], [0.8, 0.6]], dtype=dtype) + torch.tensor([0.5, -1.0], dtype=dtype)


@torch.no_grad()
def _perturb(flow: torch.nn.Module, seed: int = 2, size: float = 0.1) -> None:
    """Move every parameter away from init, relative to its size (zero-init ones by ``size**2``)."""
    g = torch.Generator().manual_seed(seed)
    for p in flow.parameters():
        p.add_(size * (p.abs() + size) * torch.randn(p.shape, generator=g, dtype=p.dtype))


def _flow(name: str, dtype: torch.dtype = torch.float32, perturb: bool = True):
    """A flow built with a fixed seed, its ActNorms initialised on data, then perturbed."""
    torch.manual_seed(0)
    flow = build_flow(name).to(dtype)
    flow.log_prob(_data(1000, dtype))
    if perturb:
        _perturb(flow)
    return flow


@pytest.fixture(scope="module", params=NAMES)
def flow64(request):
    return _flow(request.param, torch.float64)


# --- registry and sizes -------------------------------------------------------------------------


def test_registry_builds_both_and_lists_them_on_unknown_name():
    assert FLOWS.names() == ["glow", "maf", "nsf_ar"]
    assert isinstance(build_flow("glow"), Glow) and isinstance(build_flow("maf"), MAF)
    with pytest.raises(UnknownNameError, match="valid flows: glow, maf, nsf_ar"):
        build_flow("nope")


@pytest.mark.parametrize("name, count", [("glow", 46_840), ("maf", 54_020)])
def test_parameter_counts_match_the_original(name, count):
    flow = build_flow(name)
    assert sum(p.numel() for p in flow.parameters()) == count
    assert flow.dim == 2


# --- bijection and log-det ----------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_inverse_undoes_forward_and_logdets_cancel(name, dtype, tol):
    flow = _flow(name, dtype)
    x = _data(500, dtype, seed=3)
    z, logdet = flow(x)
    x_back, logdet_inv = flow.inverse(z)
    assert logdet.shape == logdet_inv.shape == (500,)
    torch.testing.assert_close(x_back, x, atol=tol, rtol=tol)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), atol=tol, rtol=0)
    u = torch.randn(500, 2, dtype=dtype, generator=torch.Generator().manual_seed(4))
    x, logdet_inv = flow.inverse(u)
    u_back, logdet = flow(x)
    torch.testing.assert_close(u_back, u, atol=tol, rtol=tol)
    torch.testing.assert_close(logdet + logdet_inv, torch.zeros_like(logdet), atol=tol, rtol=0)


def _jacobian_logabsdet(fn, points: torch.Tensor) -> torch.Tensor:
    jacobians = [torch.autograd.functional.jacobian(lambda v: fn(v[None])[0][0], p) for p in points]
    return torch.stack([torch.linalg.slogdet(j)[1] for j in jacobians])


def test_logdet_matches_the_autograd_jacobian(flow64):
    x = _data(5, torch.float64, seed=5)
    torch.testing.assert_close(flow64(x)[1], _jacobian_logabsdet(flow64, x), atol=1e-10, rtol=0)
    z = torch.randn(5, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(flow64.inverse(z)[1], _jacobian_logabsdet(flow64.inverse, z), atol=1e-10, rtol=0)


# --- density and samples ------------------------------------------------------------------------

BOX, CELLS = 14.0, 500  # grid over [-BOX, BOX]^2


@pytest.fixture(scope="module")
def grid_moments(flow64):
    """Total mass, mean and covariance of exp(log_prob) by a midpoint rule on the grid."""
    h = 2 * BOX / CELLS
    axis = -BOX + h * (torch.arange(CELLS, dtype=torch.float64) + 0.5)
    points = torch.cartesian_prod(axis, axis)
    with torch.no_grad():
        weights = flow64.log_prob(points).exp() * h * h
    mass = weights.sum()
    mean = (weights[:, None] * points).sum(0) / mass
    centred = points - mean
    cov = (weights[:, None, None] * centred[:, :, None] * centred[:, None, :]).sum(0) / mass
    return mass, mean, cov


def test_density_integrates_to_one(flow64, grid_moments):
    with torch.no_grad():
        x, _ = flow64.sample(20_000, generator=torch.Generator().manual_seed(7))
    assert (x.abs() > BOX).any(dim=1).double().mean() < 1e-3  # the box holds the mass
    assert grid_moments[0].item() == pytest.approx(1.0, abs=2e-3)


def test_sample_moments_agree_with_the_density(flow64, grid_moments):
    _, mean, cov = grid_moments
    with torch.no_grad():
        x, _ = flow64.sample(200_000, generator=torch.Generator().manual_seed(8))
    torch.testing.assert_close(x.mean(0), mean, atol=0.02, rtol=0)
    torch.testing.assert_close(torch.cov(x.T), cov, atol=0.03, rtol=0.03)


@pytest.mark.parametrize("name", NAMES)
def test_sample_log_q_is_the_log_prob_of_the_sample(name):
    flow = _flow(name, torch.float64)
    z = torch.randn(300, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    x, log_q = flow.sample_from(z)
    torch.testing.assert_close(log_q, flow.log_prob(x), atol=1e-10, rtol=0)
    # ``sample`` is ``sample_from`` on noise from the given generator
    x2, log_q2 = flow.sample(300, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close((x2, log_q2), (x, log_q))


def test_log_prob_of_a_fresh_flow_is_the_base_density_through_the_maps():
    """log N(z) + logdet with the plain N(0, I) normaliser -log(2 pi) in 2D."""
    flow = _flow("maf", perturb=False)
    x = _data(10, seed=10)
    z, logdet = flow(x)
    expected = -0.5 * z.square().sum(1) - math.log(2 * math.pi) + logdet
    torch.testing.assert_close(flow.log_prob(x), expected)


# --- gradients ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_through_samples(name):
    flow = _flow(name)
    x, log_q = flow.sample(256, generator=torch.Generator().manual_seed(11))
    (x.square().sum() + log_q.sum()).backward()
    for pname, p in flow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


@pytest.mark.parametrize("name", NAMES)
def test_gradients_reach_every_parameter_through_log_prob(name):
    flow = _flow(name)
    flow.log_prob(_data(256, seed=12)).sum().backward()
    for pname, p in flow.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, pname


def test_fresh_glow_gain_has_zero_gradient():
    """The zero-init last layer times exp(l) gives l no gradient until that layer moves (docs/fce.md §6 item 4)."""
    flow = _flow("glow", perturb=False)
    x, log_q = flow.sample(256, generator=torch.Generator().manual_seed(13))
    (x.square().sum() + log_q.sum() + flow.log_prob(_data(256)).sum()).backward()
    for step in flow.steps:
        assert torch.equal(step.coupling.log_gain.grad, torch.zeros(2))
        assert step.coupling.out_layer.weight.grad.abs().sum() > 0


# --- Glow specifics -----------------------------------------------------------------------------


def test_fresh_glow_coupling_is_the_sigmoid_2_contraction():
    flow = _flow("glow", perturb=False)
    y = _data(100, seed=14)
    for step in flow.steps:
        z, logdet = step.coupling(y)
        torch.testing.assert_close(logdet, torch.full((100,), -0.1269), atol=1e-4, rtol=0)
        torch.testing.assert_close(z[:, 0], torch.sigmoid(torch.tensor(2.0)) * y[:, 0])
        torch.testing.assert_close(z[:, 1], y[:, 1])
    # so the whole forward log-det is 10 log sigmoid(2) plus the ActNorm and W terms
    x = _data(50, seed=15)
    const = sum(-s.actnorm.scale.abs().log().sum() + torch.linalg.slogdet(s.linear.weight)[1] for s in flow.steps)
    torch.testing.assert_close(flow(x)[1], const + 10 * F.logsigmoid(torch.tensor(2.0)).expand(50))


def test_glow_linear_maps_start_orthogonal():
    flow = build_flow("glow")
    for step in flow.steps:
        w = step.linear.weight
        torch.testing.assert_close(w @ w.T, torch.eye(2), atol=1e-6, rtol=0)


@pytest.mark.parametrize("dim", [2, 3])
def test_glow_batched_path_equals_the_stepwise_model(dim):
    torch.manual_seed(0)
    flow = Glow(dim=dim, steps=4, width=16).double()
    g = torch.Generator().manual_seed(16)
    x = torch.randn(200, dim, generator=g, dtype=torch.float64) * 2 + 1
    flow.log_prob(x)
    _perturb(flow)
    torch.testing.assert_close(flow(x), flow.forward_stepwise(x), atol=1e-12, rtol=0)
    z = torch.randn(200, dim, generator=g, dtype=torch.float64)
    torch.testing.assert_close(flow.inverse(z), flow.inverse_stepwise(z), atol=1e-12, rtol=0)


def test_glow_inverse_first_leaves_top_level_actnorms_uninitialised():
    """Sampling first, as the original's iteration 0 does (docs/fce.md §6 item 3): top-level ActNorms act as the
    identity and stay uninitialised; the conditioner ActNorms initialise from the noise pass."""
    torch.manual_seed(0)
    flow = build_flow("glow")
    flow.sample(500)
    for step in flow.steps:
        assert not step.actnorm.ready and torch.equal(step.actnorm.scale, torch.ones(2))
        assert step.coupling.norm1.ready and step.coupling.norm2.ready
    x = _data(500)
    flow.log_prob(x)
    assert all(step.actnorm.ready for step in flow.steps)
    torch.testing.assert_close(flow.steps[0].actnorm.loc, x.mean(0))


# --- MAF specifics ------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [2, 4])
def test_maf_fast_inverse_equals_the_sequential_inverse(dim):
    torch.manual_seed(0)
    flow = MAF(dim=dim, blocks=3, hidden=32).double()
    _perturb(flow)
    u = torch.randn(300, dim, dtype=torch.float64, generator=torch.Generator().manual_seed(17))
    torch.testing.assert_close(flow.inverse(u), flow.inverse_sequential(u), atol=1e-12, rtol=0)
    x, _ = flow.inverse(u)
    torch.testing.assert_close(flow(x)[0], u, atol=1e-10, rtol=0)


def test_maf_orders_alternate_and_first_variable_is_constant():
    flow = _flow("maf")
    x = _data(64, seed=18)
    for k, block in enumerate(flow.blocks):
        first = 0 if k % 2 == 0 else 1
        assert block.input_degrees.tolist() == ([0, 1] if first == 0 else [1, 0])
        mu, alpha = block.params(x)
        # the first-ordered variable's (mu, alpha) are learned constants (docs/fce.md §2.3)
        assert torch.equal(mu[:, first], mu[:1, first].expand(64))
        assert torch.equal(alpha[:, first], alpha[:1, first].expand(64))
        # the other one depends on the first variable only
        moved = x.clone()
        moved[:, 1 - first] += 1.0
        torch.testing.assert_close(block.params(moved), (mu, alpha))


def test_maf_masks_are_buffers_and_first_block_is_natural_order():
    flow = build_flow("maf")
    names = dict(flow.named_buffers())
    assert "blocks.0.net.0.mask" in names and "blocks.0.net.0.mask" not in dict(flow.named_parameters())
    assert names["blocks.0.net.0.mask"][:, 1].sum() == 0  # hidden units see x1 only in block 1


# --- ActNorm ------------------------------------------------------------------------------------


@pytest.mark.parametrize("train", [True, False])
def test_actnorm_first_batch_leaves_standardised(train):
    norm = ActNorm(2).train(train)
    x = _data(1000)
    z, logdet = norm(x)
    torch.testing.assert_close(z.mean(0), torch.zeros(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(0, correction=0), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(logdet, -x.std(0, correction=0).log().sum(), atol=1e-5, rtol=0)
    assert norm.ready and bool(norm.initialised)
    # a second batch uses the stored parameters
    loc = norm.loc.detach().clone()
    norm(x * 3 + 1)
    assert torch.equal(norm.loc.detach(), loc)


def test_actnorm_inverse_before_init_is_the_identity_and_does_not_initialise():
    norm = ActNorm(2)
    z = _data(10)
    x, logdet = norm.inverse(z)
    assert torch.equal(x, z) and logdet.item() == 0.0 and not norm.ready


@pytest.mark.parametrize("name", NAMES)
def test_reloaded_flow_does_not_reinitialise(name):
    flow = _flow(name)
    fresh = build_flow(name)
    fresh.load_state_dict(flow.state_dict())
    other = _data(500, seed=19) * 4 - 2
    torch.testing.assert_close(fresh.log_prob(other), flow.log_prob(other))
    for a, b in zip(fresh.state_dict().values(), flow.state_dict().values()):
        assert torch.equal(a, b)


def test_glow_initialised_flags_are_in_the_state_dict():
    flow = _flow("glow")
    flags = {k: v for k, v in flow.state_dict().items() if k.endswith("initialised")}
    assert len(flags) == 30 and all(bool(v) for v in flags.values())
