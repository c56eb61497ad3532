"""Known answers for the Mutual Information Gap (genlab.metrics.mig), Chen et al. (2018)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genlab.data.base import FactorGrid
from genlab.metrics.mig import discretise, mig


def grid_classes(sizes) -> np.ndarray:
    """Every combination of the factors' classes once: the factors are exactly independent and
    uniform, so the plug-in MI between a latent that copies factor a and any factor b != a is
    exactly 0 and H(v_k) = log(size_k)."""
    return FactorGrid(tuple(f"f{i}" for i in range(len(sizes))), tuple(np.arange(s) for s in sizes)).classes()


def test_one_latent_per_factor_gives_one():
    c = grid_classes((3, 6, 10, 5))  # 900 rows, every factor with <= 20 values
    # Extra latents that are constant carry no information (one bin). Scaling and shifting a latent
    # leaves the equal-width bins (and so the MI) unchanged.
    codes = np.concatenate([c * np.array([1.0, -2.0, 0.5, 3.0]) + 7.0, np.full((len(c), 3), 2.5)], axis=1)
    out = mig(codes, c)
    # With <= bins classes spread over the latent's range, each class lands in its own bin:
    # I(z_k; v_k) = H(v_k), I(z_j; v_k) = 0 for j != k (exact independence on the full grid).
    np.testing.assert_allclose(out["entropy"], np.log([3, 6, 10, 5]), rtol=1e-12)
    expected_mi = np.zeros((7, 4))
    expected_mi[np.arange(4), np.arange(4)] = np.log([3, 6, 10, 5])
    np.testing.assert_allclose(out["mutual_information"], expected_mi, atol=1e-12)
    np.testing.assert_allclose(out["per_factor"], 1.0, atol=1e-12)
    assert out["mig"] == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_array_equal(out["top_latents"][:, 0], np.arange(4))
    assert not out["constant_factors"].any()


def test_factor_copied_onto_two_latents_gives_zero():
    c = grid_classes((4, 5, 6))
    codes = np.concatenate([c, 2.0 * c + 3.0], axis=1)  # latents k and k + 3 both carry factor k
    out = mig(codes, c)
    # The top two latents have the same information H(v_k): the gap vanishes.
    np.testing.assert_allclose(out["mutual_information"][:3], np.diag(np.log([4, 5, 6])), atol=1e-12)
    np.testing.assert_allclose(out["mutual_information"][3:], np.diag(np.log([4, 5, 6])), atol=1e-12)
    np.testing.assert_allclose(out["per_factor"], 0.0, atol=1e-12)
    assert out["mig"] == pytest.approx(0.0, abs=1e-12)
    assert sorted(out["top_latents"][0].tolist()) == [0, 3]


def test_runner_up_with_half_the_information():
    c = grid_classes((4, 5))
    codes = np.stack([c[:, 0], c[:, 0] // 2, c[:, 1]], axis=1).astype(float)  # latent 1: one bit of factor 0
    out = mig(codes, c)
    # I(z0; v0) = log 4, I(z1; v0) = log 2: gap (log 4 - log 2) / log 4 = 1/2. Factor 1: gap 1.
    assert out["mutual_information"][1, 0] == pytest.approx(math.log(2), abs=1e-12)
    np.testing.assert_allclose(out["per_factor"], [0.5, 1.0], atol=1e-12)
    assert out["mig"] == pytest.approx(0.75, abs=1e-12)
    assert out["top_latents"][0].tolist() == [0, 1]


def test_factor_with_more_classes_than_bins_is_capped():
    c = grid_classes((40, 3))
    out = mig(c.astype(float), c, bins=20)
    # 40 evenly spaced values in 20 equal-width bins: exactly two classes a bin, I = log 20.
    assert out["mutual_information"][0, 0] == pytest.approx(math.log(20), abs=1e-12)
    assert out["per_factor"][0] == pytest.approx(math.log(20) / math.log(40), abs=1e-12)
    assert mig(c.astype(float), c, bins=40)["per_factor"][0] == pytest.approx(1.0, abs=1e-12)


def test_codes_independent_of_factors_give_about_zero():
    n, d, n_classes, bins = 20_000, 10, 5, 20
    rng = np.random.default_rng(0)
    codes = rng.uniform(size=(n, d))  # uniform: every bin holds ~N/bins samples
    c = rng.integers(0, n_classes, size=(n, 4))
    out = mig(codes, c, bins=bins)
    mi = out["mutual_information"]
    # For independent variables 2N * (plug-in MI) is the G-statistic, ~ chi^2 with
    # df = (bins - 1)(V - 1) = 76 degrees of freedom: mean df / (2N) = 1.9e-3 nats (the estimator's
    # bias), sd sqrt(2 df) / (2N) = 3.1e-4. The mean of the 40 entries has sd
    # sqrt(2 df / 40) / (2N) = 4.9e-5, 2.6% of the bias (over 40 seeds: mean 1.000, sd 0.026 of the
    # bias; this seed is at 0.913), so 15% is ~6 sds:
    df = (bins - 1) * (n_classes - 1)
    assert mi.mean() == pytest.approx(df / (2 * n), rel=0.15)
    # Every entry is below chi^2_76's 150 (6 sds above its mean; P < 1e-6 each), and the gap is at
    # most the largest entry, so MIG < 150 / (2N log 5) = 2.3e-3 -- against 1 for a perfect code.
    assert mi.max() < 150 / (2 * n)
    assert 0.0 <= out["mig"] < 150 / (2 * n * math.log(n_classes))
    assert np.all(out["per_factor"] >= 0)


def test_permuting_latents_does_not_change_mig():
    rng = np.random.default_rng(1)
    c = rng.integers(0, 6, size=(3000, 4))
    codes = c @ rng.standard_normal((4, 7)) + 0.5 * rng.standard_normal((3000, 7))  # entangled
    perm = rng.permutation(7)
    a, b = mig(codes, c), mig(codes[:, perm], c)
    assert b["mig"] == pytest.approx(a["mig"], abs=1e-12)
    np.testing.assert_allclose(b["per_factor"], a["per_factor"], atol=1e-12)
    np.testing.assert_allclose(b["mutual_information"], a["mutual_information"][perm], atol=1e-12)
    np.testing.assert_array_equal(perm[b["top_latents"]], a["top_latents"])
    assert 0.0 <= a["mig"] <= 1.0


def test_constant_factor_is_excluded():
    c = grid_classes((4, 5))
    with_const = np.concatenate([c, np.full((len(c), 1), 3)], axis=1)
    codes = np.stack([c[:, 0], c[:, 0] // 2, c[:, 1]], axis=1).astype(float)
    out = mig(codes, with_const)
    assert out["constant_factors"].tolist() == [False, False, True]
    assert out["entropy"][2] == 0.0 and np.isnan(out["per_factor"][2])
    np.testing.assert_array_equal(out["mutual_information"][:, 2], 0.0)
    assert out["top_latents"][2].tolist() == [-1, -1]
    assert out["mig"] == pytest.approx(0.75, abs=1e-12)  # the mean over the two others only
    assert np.isnan(mig(codes, np.ones((len(c), 2)))["mig"])  # nothing to average


def test_labels_need_not_be_class_indices_and_single_latent():
    c = grid_classes((3, 4))
    labels = np.stack([c[:, 0] * 10 - 5, c[:, 1] + 100], axis=1)  # arbitrary labels, same partition
    codes = c.astype(float)
    np.testing.assert_allclose(mig(codes, labels)["mutual_information"], mig(codes, c)["mutual_information"])
    # D = 1: the runner-up information is 0, so the gap is I / H.
    out = mig(codes[:, :1], c)
    assert out["per_factor"][0] == pytest.approx(1.0) and out["per_factor"][1] == pytest.approx(0.0)
    assert out["top_latents"].tolist() == [[0, -1], [0, -1]]


def test_discretise_equal_width():
    x = np.array([[0.0, 5.0], [0.25, 5.0], [0.5, 5.0], [0.99, 5.0], [1.0, 5.0]])
    np.testing.assert_array_equal(discretise(x, 4), [[0, 0], [1, 0], [2, 0], [3, 0], [3, 0]])
    # Same bins as numpy.histogram's (the reference estimator's) edges.
    v = np.random.default_rng(2).standard_normal(1000)
    counts = np.bincount(discretise(v[:, None], 20)[:, 0], minlength=20)
    np.testing.assert_array_equal(counts, np.histogram(v, 20)[0])


def test_inputs_checked():
    c = grid_classes((3, 4))
    with pytest.raises(ValueError, match="numbers of samples"):
        mig(np.zeros((5, 2)), c)
    with pytest.raises(ValueError, match="2-D"):
        mig(np.zeros(len(c)), c)
    with pytest.raises(ValueError, match="finite"):
        mig(np.full((len(c), 2), np.nan), c)
