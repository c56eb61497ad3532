"""Known answers for DCI (genlab.metrics.dci), Eastwood & Williams (2018) as in Montero et al. (2021)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from genlab.metrics.dci import dci

ALPHA = 0.02


def grid_factors(n: int, seed: int = 0) -> np.ndarray:
    """dSprites-like factors: shape 1..3, scale (6 values), orientation (40), x and y (32 each)."""
    rng = np.random.default_rng(seed)
    return np.stack(
        [
            rng.integers(1, 4, n).astype(float),
            rng.choice(np.linspace(0.5, 1.0, 6), n),
            rng.choice(np.linspace(0, 2 * np.pi, 40), n),
            rng.integers(0, 32, n) / 31,
            rng.integers(0, 32, n) / 31,
        ],
        axis=1,
    )


def standardise(f: np.ndarray) -> np.ndarray:
    return (f - f.mean(0)) / f.std(0)


def test_identity_codes_are_disentangled_and_complete():
    f = grid_factors(3000)
    out = dci(standardise(f), f)
    # y_k = x_k exactly: the Lasso weight is the soft-thresholded correlation 1 - alpha, and the
    # residual (alpha * x_k) correlates with the other latents far below alpha, so they stay at 0.
    np.testing.assert_allclose(out["R"], (1 - ALPHA) * np.eye(5), atol=1e-6)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness_unweighted"] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(out["per_latent_disentanglement"], 1.0, atol=1e-6)
    np.testing.assert_allclose(out["per_factor_completeness"], 1.0, atol=1e-6)
    # Predicting y_k by (1 - alpha) y_k leaves R^2 = 1 - alpha^2 on held-out data.
    np.testing.assert_allclose(out["informativeness"], 1 - ALPHA**2, atol=1e-3)
    assert out["R"].shape == (5, 5) and out["per_latent_disentanglement"].shape == (5,)


def test_permuted_scaled_shifted_codes_are_still_perfect():
    f = grid_factors(3000, seed=1)
    perm = np.array([3, 0, 4, 1, 2])
    scale = np.array([0.5, -2.0, 5.0, 1.0, -0.7])  # signs flip: R uses |w|
    codes = np.empty_like(f)
    codes[:, perm] = standardise(f) * scale + np.array([3.0, -1.0, 0.0, 10.0, 2.0])
    out = dci(codes, f)
    # For x = s y (var y = 1) the Lasso weight is (|s| - alpha) / s^2, on the permuted diagonal.
    expected = np.zeros((5, 5))
    expected[perm, np.arange(5)] = (np.abs(scale) - ALPHA) / scale**2
    np.testing.assert_allclose(out["R"], expected, atol=1e-6)
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)


def test_codes_independent_of_factors():
    n, k = 2000, 10
    rng = np.random.default_rng(0)
    codes = rng.standard_normal((n, k))
    f = rng.uniform(size=(n, k))
    # For independent codes each Lasso weight is about the soft-thresholded sample correlation,
    # |w| ~ max(|c| - alpha, 0) with c ~ N(0, 1/N).
    #
    # (a) At the paper's alpha, R is tiny: |c| < 5/sqrt(N) except with probability ~6e-7 per entry,
    #     so every weight is below 5/sqrt(N) - alpha (0.092 here), against 1 - alpha for identity
    #     codes. D itself is not near 0 here: the few surviving weights are sparse, so the ratios in
    #     D are noise (see the caveat in dci's docstring); nothing is asserted about it.
    out = dci(codes, f)
    assert out["R"].max() < 5 / math.sqrt(n) - ALPHA
    assert np.all(out["informativeness"] < 0.02)  # held-out R^2 of noise: ~0 (or negative)
    #
    # (b) With alpha << 1/sqrt(N) the Lasso is nearly least squares and the rows of R are iid
    #     half-normal. Then E[D_i] = E[KL(P_i || uniform)] / ln K, which to second order is
    #     Var(K P_ik) / (2 ln K) = (pi/2 - 1) / (2 ln K) = 0.124 for K = 10 (Monte Carlo: 0.114);
    #     the same holds for the columns and C. The weighted mean over 10 latents varies by about
    #     0.02 between seeds, so 0.25 is a bound noise stays under, and far from the 1 of structure.
    out = dci(codes, f, alpha=1e-3)
    # Dense: a weight is zero only when |c| < alpha, i.e. with probability 2 Phi(alpha sqrt(N)) - 1
    # = 3.6%, so about 96 of the 100 entries carry some (spurious) weight.
    assert (out["R"] > 0).mean() > 0.85  # > 6 binomial std below the expected 96
    assert out["disentanglement"] < 0.25
    assert out["completeness"] < 0.25
    assert np.all(out["per_latent_disentanglement"] < 0.5)


def orthogonal_columns(n: int, m: int, seed: int = 0) -> np.ndarray:
    """m centred columns with sum of squares exactly n and pairwise orthogonal (in-sample)."""
    a = np.random.default_rng(seed).standard_normal((n, m))
    q, _ = np.linalg.qr(a - a.mean(0))
    return q * math.sqrt(n)


def test_each_factor_on_two_latents():
    n, k = 1000, 5
    q = orthogonal_columns(n, 2 * k)
    f, e = q[:, :k], q[:, k:]  # standardised factors and in-sample orthogonal noise, var 1 each
    codes = np.concatenate([f + e, f - e], axis=1)  # latent k and k + K both carry factor k
    out = dci(codes, f)
    # The design is orthogonal (X^T X / N = 2 I) and X^T y_k / N = 1 for the two copies of factor k,
    # so the Lasso has the closed form w = soft(1, alpha) / 2 = (1 - alpha) / 2 on both copies, 0
    # elsewhere: R = [I; I] * 0.49 (unique, hence symmetric between the copies).
    np.testing.assert_allclose(out["R"], np.vstack([np.eye(k), np.eye(k)]) * (1 - ALPHA) / 2, atol=1e-9)
    # Each latent serves one factor: D_i = 1 - H_K((1, 0, ...)) = 1.
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-9)
    # Each factor is split (1/2, 1/2) over D = 2K = 10 latents:
    # C_k = 1 - (-2 * 1/2 * log_10(1/2)) = 1 - log_10(2) = 1 - 1/log2(10) = 0.6989700043...
    expected = 1 - 1 / math.log2(2 * k)
    assert expected == pytest.approx(0.6989700043360187, abs=1e-12)
    np.testing.assert_allclose(out["per_factor_completeness"], expected, atol=1e-9)
    assert out["completeness"] == pytest.approx(expected, abs=1e-9)
    assert out["completeness_unweighted"] == pytest.approx(expected, abs=1e-9)


def test_constant_factor_and_dead_latent_get_zero_weight():
    f = grid_factors(2000, seed=2)[:, :3]
    codes = np.concatenate([standardise(f), np.zeros((2000, 1))], axis=1)  # latent 3 is dead
    with_const = np.concatenate([f, np.full((2000, 1), 7.0)], axis=1)  # factor 3 is constant
    out = dci(codes, with_const)
    assert out["constant_factors"].tolist() == [False, False, False, True]
    np.testing.assert_array_equal(out["R"][:, 3], 0.0)
    np.testing.assert_array_equal(out["R"][3, :], 0.0)
    assert np.isnan(out["per_factor_completeness"][3]) and np.isnan(out["informativeness"][3])
    assert out["per_latent_disentanglement"][3] == 0.0  # predicts nothing: not "disentangled"
    # Zero weight: the overall scores are those of the informative part alone (= 1 here).
    assert out["disentanglement"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness"] == pytest.approx(1.0, abs=1e-6)
    assert out["completeness_unweighted"] == pytest.approx(1.0, abs=1e-6)
    assert np.isfinite(out["R"]).all()


def test_all_factors_constant_does_not_crash():
    out = dci(np.random.default_rng(0).standard_normal((50, 3)), np.ones((50, 2)))
    assert out["disentanglement"] == 0.0 and out["completeness"] == 0.0
    assert np.isnan(out["per_factor_completeness"]).all()


def test_scores_are_bounded_and_inputs_checked():
    rng = np.random.default_rng(3)
    f = rng.uniform(size=(500, 4))
    codes = f @ rng.standard_normal((4, 6)) + 0.3 * rng.standard_normal((500, 6))  # entangled
    out = dci(codes, f)
    for key in ("disentanglement", "completeness", "completeness_unweighted"):
        assert 0.0 <= out[key] <= 1.0
    assert np.all((out["per_latent_disentanglement"] >= 0) & (out["per_latent_disentanglement"] <= 1))
    assert np.all((out["per_factor_completeness"] >= 0) & (out["per_factor_completeness"] <= 1))
    with pytest.raises(ValueError, match="numbers of samples"):
        dci(codes[:10], f[:9])
    with pytest.raises(ValueError, match="2-D"):
        dci(codes[:, 0], f)
