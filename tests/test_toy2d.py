"""The 2D toy datasets of FCE (docs/fce.md §1): recipes, the analytic 8-Gaussian density, batching."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.data.toy2d import (
    LOG_DENSITIES,
    Points,
    eight_gaussians_log_density,
    eval_seed,
    load_toy2d,
    make_generator,
    recipe,
    sample_toy2d,
    toy_names,
)
from genlab.data import DATASETS
from genlab.registry import UnknownNameError

NAMES = ["8gaussians", "spiral", "2spirals", "checkerboard", "rings", "pinwheel"]
N = 200_000
R = 2.0 * math.sqrt(2.0)
MEANS = np.array([(R, 0), (-R, 0), (0, R), (0, -R), (2, 2), (2, -2), (-2, 2), (-2, -2)], dtype=np.float64)


@pytest.fixture(scope="module")
def big() -> dict[str, torch.Tensor]:
    return {name: sample_toy2d(name, N, seed=3) for name in NAMES}


# --- the analytic density ---------------------------------------------------------------------


def test_registry_holds_the_six_datasets_and_only_8gaussians_has_a_density():
    assert toy_names() == sorted(NAMES)
    assert all(DATASETS.get(name).kind == "points" and DATASETS.get(name).shape == (2,) for name in NAMES)
    assert set(LOG_DENSITIES) == {"8gaussians"}


def test_density_integrates_to_one():
    xs = torch.linspace(-6, 6, 1201, dtype=torch.float64)
    gx, gy = torch.meshgrid(xs, xs, indexing="ij")
    logp = eight_gaussians_log_density(torch.stack((gx.flatten(), gy.flatten()), 1))
    h = (xs[1] - xs[0]).item()
    assert logp.exp().sum().item() * h * h == pytest.approx(1.0, abs=1e-6)


def test_density_known_values():
    x = torch.tensor([[2.0, 2.0], [0.0, -R], [0.0, 0.0]], dtype=torch.float64)
    logp = eight_gaussians_log_density(x)
    assert logp[0].item() == pytest.approx(-1.8379, abs=5e-5)
    assert logp[1].item() == pytest.approx(-1.8379, abs=5e-5)
    assert logp[2].item() == pytest.approx(math.log(4 / math.pi) - 32.0, abs=1e-9)  # about -31.76
    assert logp[2].item() == pytest.approx(-31.76, abs=0.005)


def test_density_matches_a_direct_mixture_of_normals():
    rng = np.random.default_rng(0)
    x = rng.uniform(-4, 4, size=(500, 2))
    direct = np.log(sum(multivariate_normal(m, np.eye(2) / 8).pdf(x) for m in MEANS) / 8)
    ours = eight_gaussians_log_density(torch.from_numpy(x)).numpy()
    keep = np.isfinite(direct)  # far from every mode the direct sum underflows; logsumexp does not
    assert keep.mean() > 0.9
    np.testing.assert_allclose(ours[keep], direct[keep], rtol=1e-10, atol=1e-10)
    assert np.isfinite(ours).all()


def test_density_float32_batch_shape_and_device_of_means():
    x = torch.zeros(3, 2)
    assert eight_gaussians_log_density(x).shape == (3,)
    assert eight_gaussians_log_density(x).dtype == torch.float32


def test_8gaussians_entropy_and_spread(big):
    x = big["8gaussians"]
    # Well separated modes: E log p = -log 8 + log(4/pi) - 4 E||x - mu||^2 = ... - 4 * 2/8 = -2.838.
    expected = -math.log(8) + math.log(4 / math.pi) - 1.0
    assert eight_gaussians_log_density(x).mean().item() == pytest.approx(expected, abs=0.02)
    # Var per axis = E mu_x^2 + 1/8 = 4 + 1/8.
    np.testing.assert_allclose(x.std(0).numpy(), math.sqrt(4.125), atol=0.02)


# --- the recipes -------------------------------------------------------------------------------


def test_checkerboard_support_parity_and_uniformity(big):
    x = big["checkerboard"]
    assert (x >= -4).all() and (x < 4).all()
    cell = torch.floor(x / 2).long()  # the pre-scaling floor(x1), floor(x2), each in {-2..1}
    assert (torch.remainder(cell[:, 0], 2) == torch.remainder(cell[:, 1], 2)).all()
    _, counts = torch.unique(cell, dim=0, return_counts=True)
    assert len(counts) == 8
    np.testing.assert_allclose(counts.numpy() / N, 1 / 8, atol=0.005)


def test_rings_radii_and_noise(big):
    x = big["rings"]
    radii = torch.tensor([3.0, 2.25, 1.5, 0.75])
    r = x.norm(dim=1)
    ring = (r.unsqueeze(1) - radii).abs().argmin(1)
    resid = r - radii[ring]
    counts = torch.bincount(ring, minlength=4).numpy() / N
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    for k in range(4):
        rk = resid[ring == k]
        # Radial part of N(0, 0.08^2 I) noise: mean sigma^2 / (2r), sd about 0.08.
        assert rk.mean().abs().item() < 0.01
        assert rk.std().item() == pytest.approx(0.08, abs=0.006)


def test_rings_angles_lie_on_the_grid():
    # n = 20: every circle has m = 5 grid angles 2 pi j / 5; the 0.08 noise moves a point's angle by
    # at most about 0.08 / 0.75 rad (innermost circle), well inside the 0.3 * 2 pi / 5 bound.
    x = sample_toy2d("rings", 20, seed=0)
    j = torch.atan2(x[:, 1], x[:, 0]) / (2 * math.pi / 5)
    assert ((j - j.round()).abs() < 0.3).all()


def _tv_between(x: torch.Tensor, y: torch.Tensor, lim: float = 4.0, bins: int = 10) -> float:
    edges = np.linspace(-lim, lim, bins + 1)
    hx, _, _ = np.histogram2d(x[:, 0].numpy(), x[:, 1].numpy(), bins=(edges, edges))
    hy, _, _ = np.histogram2d(y[:, 0].numpy(), y[:, 1].numpy(), bins=(edges, edges))
    return 0.5 * np.abs(hx / len(x) - hy / len(y)).sum()


def test_2spirals_is_point_symmetric_in_distribution(big):
    x = big["2spirals"]
    assert _tv_between(x, -x) < 0.02
    # The statistic has power: a single arm is far from its reflection.
    assert _tv_between(big["spiral"], -big["spiral"]) > 0.5
    np.testing.assert_allclose(x.mean(0).numpy(), 0.0, atol=0.02)


def test_spiral_mean(big):
    np.testing.assert_allclose(big["spiral"].mean(0).numpy(), [0.22, 0.72], atol=0.02)


def test_pinwheel_has_five_arms_rotated_by_minus_phi(big):
    x = big["pinwheel"]
    theta = torch.atan2(x[:, 1], x[:, 0])
    f_r = x.norm(dim=1) / 2  # ignoring the tangential noise
    # The point's angle is -phi = -(2 pi k / 5 + 0.25 exp(f_r)); recover k and the residual.
    base = -theta - 0.25 * f_r.exp()
    k = torch.round(base / (2 * math.pi / 5))
    resid = base - k * (2 * math.pi / 5)
    assert (resid.abs() < 0.3).float().mean().item() > 0.95
    counts = torch.bincount(torch.remainder(k.long(), 5), minlength=5).numpy() / N
    np.testing.assert_allclose(counts, 0.2, atol=0.01)
    # The opposite rotation (+phi) would not line the points up on the arms.
    wrong = theta - 0.25 * f_r.exp()
    wrong_resid = wrong - torch.round(wrong / (2 * math.pi / 5)) * (2 * math.pi / 5)
    assert (wrong_resid.abs() < 0.3).float().mean().item() < 0.8


# --- shape, determinism, validation -------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 7, 1000])
def test_shape_dtype_finite(name, n):
    x = sample_toy2d(name, n, seed=0)
    assert x.shape == (n, 2) and x.dtype == torch.float32
    assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", NAMES)
def test_seeded(name):
    a = sample_toy2d(name, 500, seed=1)
    assert torch.equal(a, sample_toy2d(name, 500, seed=1))
    assert not torch.equal(a, sample_toy2d(name, 500, seed=2))
    # The generator functions take the generator as given.
    assert torch.equal(a, recipe(name)(500, make_generator(1), "cpu"))


def test_sample_validation():
    with pytest.raises(UnknownNameError, match="8gaussians"):
        sample_toy2d("moons", 10, seed=0)
    with pytest.raises(ValueError):
        sample_toy2d("rings", 0, seed=0)
    with pytest.raises(ValueError):
        sample_toy2d("rings", 2.5, seed=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", NAMES)
def test_generates_on_cuda(name):
    x = sample_toy2d(name, 1000, seed=0, device="cuda")
    assert x.is_cuda and x.shape == (1000, 2) and x.dtype == torch.float32
    assert torch.equal(x, sample_toy2d(name, 1000, seed=0, device="cuda"))
    assert eight_gaussians_log_density(x).is_cuda


# --- Points and load_toy2d ------------------------------------------------------------------------


def test_points_with_shuffled_and_sequential_batches():
    pts = Points(sample_toy2d("8gaussians", 5000, seed=0), "8gaussians")
    assert len(pts) == 5000 and pts.device == torch.device("cpu")
    loader = ShuffledBatches(pts, 1000, seed=0)
    shuffled = list(loader)
    assert len(shuffled) == 5
    assert all(set(b) == {"x"} and b["x"].shape == (1000, 2) for b in shuffled)
    seen = torch.cat([b["x"] for b in shuffled])
    assert torch.equal(seen, pts.x[loader.permutation(0)])
    sequential = list(SequentialBatches(Points(pts.x[:2500]), 1000))
    assert [len(b["x"]) for b in sequential] == [1000, 1000, 500]
    assert torch.equal(torch.cat([b["x"] for b in sequential]), pts.x[:2500])


def test_load_toy2d():
    data = load_toy2d("8gaussians", n_train=3000, n_eval=1000, seed=5, device="cpu")
    assert len(data.train) == 3000 and len(data.eval) == 1000
    assert data.name == "8gaussians" and data.log_density is eight_gaussians_log_density
    assert torch.equal(data.train.x, sample_toy2d("8gaussians", 3000, seed=5))
    assert torch.equal(data.eval.x, sample_toy2d("8gaussians", 1000, seed=eval_seed(5)))
    assert not torch.equal(data.eval.x, data.train.x[:1000])
    assert eval_seed(5) != 5
    assert load_toy2d("rings", 10, 10, seed=0).log_density is None


def test_load_toy2d_validation():
    with pytest.raises(UnknownNameError):
        load_toy2d("moons", 10, 10, seed=0)
    with pytest.raises(ValueError):
        load_toy2d("rings", 0, 10, seed=0)
    with pytest.raises(ValueError):
        load_toy2d("rings", 10, -1, seed=0)
