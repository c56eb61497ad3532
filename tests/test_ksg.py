"""KSG mutual information (genlab.metrics.ksg) and KNN accuracies (genlab.metrics.knn), MIM's §6.1 statistics.

KSG: known answers for Gaussians (I = -1/2 log(1 - rho^2) per independent correlated pair), the
definition itself against an O(N^2) brute force (self-included strict counts, Kraskov 2004 eq. 8),
the ceiling psi(N) - psi(k), the invariances that hold exactly and those that hold only within the
estimator's error, and the input checks. KNN: separable, random and shuffled-label data.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import digamma
from sklearn.neighbors import KNeighborsClassifier

from genlab.metrics.knn import knn_accuracies
from genlab.metrics.ksg import ksg_l2_error, ksg_mi


def gaussian_pairs(rho: float, n: int, d: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """d independent pairs (x_j, z_j), each standard normal with correlation rho: I = -d/2 log(1 - rho^2)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    z = rho * x + np.sqrt(1.0 - rho**2) * rng.standard_normal((n, d))
    return x, z


def gaussian_mi(rho: float, d: int = 1) -> float:
    return -0.5 * d * np.log(1.0 - rho**2)


def brute_force_ksg(x: np.ndarray, z: np.ndarray, k: int, strict: bool = True) -> float:
    """Kraskov et al. 2004 eq. 8 written out with all pairwise max-norm distances (standard form:
    counts n_x, n_z exclude the point itself, and the formula takes psi(n + 1)); ``strict=False``
    counts the points at distance eps too, the wrong convention."""
    dx = np.abs(x[:, None, :] - x[None, :, :]).max(-1)
    dz = np.abs(z[:, None, :] - z[None, :, :]).max(-1)
    joint = np.maximum(dx, dz)
    np.fill_diagonal(joint, np.inf)
    eps = np.sort(joint, axis=1)[:, k - 1]
    np.fill_diagonal(dx, np.inf)
    np.fill_diagonal(dz, np.inf)
    within = np.less if strict else np.less_equal
    n_x = within(dx, eps[:, None]).sum(1)
    n_z = within(dz, eps[:, None]).sum(1)
    n = len(x)
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x + 1) + digamma(n_z + 1)))


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_correlated_gaussians_give_the_closed_form(rho):
    x, z = gaussian_pairs(rho, 5000, 1, seed=0)
    assert ksg_mi(x, z) == pytest.approx(gaussian_mi(rho), abs=0.05)


@pytest.mark.parametrize("rho", [0.5, 0.9])
def test_two_dimensional_block_correlation_gives_twice_the_one_dimensional_value(rho):
    """x = (x1, x2), z = (z1, z2), pairs (x_j, z_j) correlated by rho and independent of each other:
    I(X; Z) = -1/2 log det(I - rho^2 I_2) = 2 * (-1/2 log(1 - rho^2))."""
    x, z = gaussian_pairs(rho, 5000, 2, seed=1)
    assert ksg_mi(x, z) == pytest.approx(gaussian_mi(rho, d=2), abs=0.05)


@pytest.mark.parametrize("d", [1, 2])
def test_independent_variables_have_about_zero_information(d):
    rng = np.random.default_rng(2)
    assert abs(ksg_mi(rng.standard_normal((5000, d)), rng.standard_normal((5000, d)))) < 0.05


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_a_brute_force_of_the_definition_for_each_k(k):
    """The self-included strict counts with psi(n) are the standard KSG-1 counts with psi(n + 1)."""
    x, z = gaussian_pairs(0.7, 300, 2, seed=3)
    z = z[:, :1]
    assert ksg_mi(x, z, k=k) == pytest.approx(brute_force_ksg(x, z, k), abs=1e-12)


def test_ties_at_eps_are_excluded_as_in_the_brute_force():
    """Integer-valued samples put many points exactly at distance eps_i: they must not be counted."""
    rng = np.random.default_rng(4)
    x = rng.integers(0, 12, size=(400, 2)).astype(float)
    z = (x[:, :1] + rng.integers(0, 6, size=(400, 1))).astype(float)
    got = ksg_mi(x, z, k=3)
    assert got == pytest.approx(brute_force_ksg(x, z, 3), abs=1e-12)
    assert abs(got - brute_force_ksg(x, z, 3, strict=False)) > 0.01


@pytest.mark.parametrize("k", [1, 5, 10])
@pytest.mark.parametrize("d", [1, 2])
def test_z_equal_to_x_reaches_the_ceiling(k, d):
    """Deterministic z = x on distinct points: n_x,i = n_z,i = k, so I = psi(N) - psi(k) exactly."""
    x = np.random.default_rng(5).standard_normal((2000, d))
    assert ksg_mi(x, x.copy(), k=k) == pytest.approx(digamma(2000) - digamma(k), abs=1e-9)


@pytest.mark.parametrize("k", [2, 5])
def test_near_deterministic_codes_stop_one_over_k_below_the_ceiling(k):
    """z = x + tiny noise: the k-th joint neighbour sits strictly inside eps_i in one marginal and on it
    in the other, so one count is k + 1, and I -> psi(N) - psi(k) - 1/k (psi(k + 1) = psi(k) + 1/k)."""
    x = np.random.default_rng(6).standard_normal((2000, 2))
    z = x + 1e-6 * np.random.default_rng(7).standard_normal((2000, 2))
    limit = digamma(2000) - digamma(k) - 1.0 / k
    assert ksg_mi(x, z, k=k) == pytest.approx(limit, abs=0.01)


def test_exact_invariances():
    """Exact (up to rounding of the distances, 1e-9 here; bitwise for a power-of-two scale):
    translating x and z by any constant vectors, scaling x and z by one *common* constant, permuting
    or sign-flipping coordinates within x or z, reordering the pairs, and swapping x with z. Scaling
    x and z by *different* constants is not among them (see the next test)."""
    x, z = gaussian_pairs(0.8, 3000, 2, seed=8)
    base = ksg_mi(x, z)
    assert ksg_mi(x + np.array([3.0, -7.5]), z + np.array([0.1, 100.0])) == pytest.approx(base, abs=1e-9)
    assert ksg_mi(2.7 * x, 2.7 * z) == pytest.approx(base, abs=1e-9)
    assert ksg_mi(4.0 * x, 4.0 * z) == base
    assert ksg_mi(x[:, ::-1] * np.array([-1.0, 1.0]), -z) == pytest.approx(base, abs=1e-9)
    order = np.random.default_rng(9).permutation(3000)
    assert ksg_mi(x[order], z[order]) == pytest.approx(base, abs=1e-9)
    assert ksg_mi(z, x) == pytest.approx(base, abs=1e-9)


def test_separate_scalings_and_monotone_maps_agree_only_within_the_error():
    """The true MI is invariant to strictly monotone per-coordinate maps and to separate scalings of
    x and z, but the joint max-norm neighbours change, so the estimate moves (within ~0.05 nats
    here, at low MI in 1-D; at rho = 0.9 in 2-D the same maps move it by ~0.5 nats)."""
    rho = 0.5
    x, z = gaussian_pairs(rho, 5000, 1, seed=10)
    truth = gaussian_mi(rho)
    base = ksg_mi(x, z)
    scaled = ksg_mi(3.0 * x, 0.5 * z)
    warped = ksg_mi(np.exp(x), 3.0 * z**3 + z)
    for value in (scaled, warped):
        assert value == pytest.approx(truth, abs=0.05)
        assert value != pytest.approx(base, abs=1e-9)


def test_a_constant_x_carries_no_information():
    z = np.random.default_rng(11).standard_normal((500, 2))
    assert ksg_mi(np.full(500, 3.0), z) == pytest.approx(0.0, abs=1e-9)


def test_duplicated_points_give_a_finite_value():
    """More than k joint duplicates make eps_i = 0: nothing else is strictly within, the counts are 1
    (the point itself), and the estimate stays finite."""
    same = np.ones((50, 2))
    assert ksg_mi(same, same) == pytest.approx(digamma(5) + digamma(50) - 2 * digamma(1), abs=1e-12)
    rng = np.random.default_rng(12)
    x = np.repeat(rng.standard_normal((40, 1)), 10, axis=0)
    z = np.repeat(rng.standard_normal((40, 1)), 10, axis=0)
    assert np.isfinite(ksg_mi(x, z)) and np.isfinite(ksg_mi(x, rng.standard_normal((400, 1))))


def test_max_points_uses_the_first_pairs():
    x, z = gaussian_pairs(0.8, 1000, 1, seed=13)
    assert ksg_mi(x, z, max_points=300) == ksg_mi(x[:300], z[:300])
    assert ksg_mi(x, z, max_points=300) != ksg_mi(x, z)
    assert ksg_mi(x, z, max_points=10_000) == ksg_mi(x, z)


def test_k_changes_the_estimate():
    x, z = gaussian_pairs(0.8, 1000, 1, seed=14)
    assert ksg_mi(x, z, k=2) != ksg_mi(x, z, k=5)
    assert ksg_mi(x, z) == ksg_mi(x, z, k=5)


def test_torch_and_one_dimensional_inputs():
    x, z = gaussian_pairs(0.6, 800, 1, seed=15)
    base = ksg_mi(x, z)
    assert ksg_mi(x[:, 0], z[:, 0]) == base
    assert ksg_mi(torch.from_numpy(x), torch.from_numpy(z[:, 0])) == base
    xt = torch.from_numpy(x).float().requires_grad_()
    assert np.isfinite(ksg_mi(xt, torch.from_numpy(z).float()))


@pytest.mark.parametrize(
    "x, z, kwargs, match",
    [
        (np.zeros((10, 1)), np.zeros((11, 1)), {}, "same number"),
        (np.arange(5.0), np.arange(5.0), {}, "more than k"),
        (np.arange(20.0), np.arange(20.0), {"max_points": 5}, "more than k"),
        (np.array([0.0, np.nan, 2, 3, 4, 5, 6]), np.arange(7.0), {}, "non-finite"),
        (np.arange(7.0), np.array([0.0, 1, 2, np.inf, 4, 5, 6]), {}, "non-finite"),
        (np.zeros((7, 1, 1)), np.zeros((7, 1)), {}, "shape"),
        (np.arange(20.0), np.arange(20.0), {"k": 0}, "k must be"),
        (np.arange(20.0), np.arange(20.0), {"k": 2.5}, "k must be"),
        (np.arange(20.0), np.arange(20.0), {"max_points": 0}, "max_points"),
    ],
)
def test_bad_inputs_are_refused(x, z, kwargs, match):
    with pytest.raises(ValueError, match=match):
        ksg_mi(x, z, **kwargs)


def test_l2_error_is_the_stored_formula():
    assert ksg_l2_error(9984, 2, 2) == pytest.approx(9984**-0.5 + 9984**-0.25, rel=1e-15)
    assert ksg_l2_error(100, 1, 1) == pytest.approx(0.1 + 0.1, rel=1e-15)
    with pytest.raises(ValueError):
        ksg_l2_error(0, 1, 1)


def test_knn_perfectly_separable_toy_scores_one():
    rng = np.random.default_rng(20)
    centres = np.array([[0.0, 0.0], [100.0, 0.0], [0.0, 100.0]])
    train_y, test_y = rng.integers(0, 3, 300), rng.integers(0, 3, 120)
    train_z = centres[train_y] + rng.standard_normal((300, 2))
    test_z = centres[test_y] + rng.standard_normal((120, 2))
    got = knn_accuracies(train_z, train_y, test_z, test_y)
    assert got == {"clf_acc_KNN1": 1.0, "clf_acc_KNN3": 1.0, "clf_acc_KNN5": 1.0, "clf_acc_KNN10": 1.0}


def test_knn_agrees_with_sklearn_on_random_data_with_ties():
    rng = np.random.default_rng(21)
    train_z = rng.integers(0, 4, size=(400, 3)).astype(np.float32)
    test_z = rng.integers(0, 4, size=(150, 3)).astype(np.float32)
    train_y = (train_z.sum(1) + rng.integers(0, 3, 400)) % 4
    test_y = (test_z.sum(1) + rng.integers(0, 3, 150)) % 4
    got = knn_accuracies(torch.from_numpy(train_z), torch.from_numpy(train_y), test_z, test_y, ks=(1, 2, 7))
    assert list(got) == ["clf_acc_KNN1", "clf_acc_KNN2", "clf_acc_KNN7"]
    for k in (1, 2, 7):
        want = KNeighborsClassifier(n_neighbors=k).fit(train_z, train_y).score(test_z, test_y)
        assert got[f"clf_acc_KNN{k}"] == want
    assert len(set(got.values())) > 1


def test_knn_with_shuffled_labels_is_about_chance():
    rng = np.random.default_rng(22)
    centres = 10.0 * rng.standard_normal((5, 2))
    train_y, test_y = rng.integers(0, 5, 2000), rng.integers(0, 5, 2000)
    train_z = centres[train_y] + rng.standard_normal((2000, 2))
    test_z = centres[test_y] + rng.standard_normal((2000, 2))
    assert knn_accuracies(train_z, train_y, test_z, test_y)["clf_acc_KNN5"] > 0.9
    shuffled = knn_accuracies(train_z, rng.permutation(train_y), test_z, test_y)
    for acc in shuffled.values():
        assert acc == pytest.approx(0.2, abs=0.04)


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((np.zeros((5, 2)), np.zeros(4), np.zeros((3, 2)), np.zeros(3)), {}),
        ((np.zeros((5, 2)), np.zeros(5), np.zeros((3, 3)), np.zeros(3)), {}),
        ((np.zeros((5, 2)), np.zeros(5), np.zeros((3, 2)), np.zeros(3)), {"ks": (6,)}),
        ((np.zeros((5, 2)), np.zeros(5), np.zeros((3, 2)), np.zeros(3)), {"ks": (0,)}),
    ],
)
def test_knn_bad_inputs_are_refused(args, kwargs):
    with pytest.raises(ValueError):
        knn_accuracies(*args, **kwargs)
