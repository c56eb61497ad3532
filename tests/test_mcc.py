"""MCC (genlab.metrics.mcc): known answers and the properties that make it an identifiability metric."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.errors import ConfigError
from genlab.metrics.mcc import assignment, correlations, mcc


@pytest.fixture
def sources():
    return np.random.default_rng(0).standard_normal((5000, 5))


def test_identical_codes_have_mcc_one(sources):
    assert mcc(sources, sources) == pytest.approx(1.0, abs=1e-12)


def test_permuted_rescaled_sign_flipped_components_have_mcc_one_and_are_matched_back(sources):
    order = np.array([3, 0, 4, 1, 2])
    recovered = sources[:, order] * np.array([-2.0, 0.5, 3.0, -1.0, 10.0]) + 7.0
    assert mcc(sources, recovered) == pytest.approx(1.0, abs=1e-12)
    rows, cols = assignment(sources, recovered)
    assert list(order[cols]) == list(rows)  # recovered[:, k] is sources[:, order[k]]


def test_independent_codes_have_a_small_mcc(sources):
    other = np.random.default_rng(1).standard_normal((5000, 5))
    assert mcc(sources, other) < 0.05  # |corr| of independent samples is about 1/sqrt(N), maximised over pairs


def test_a_known_correlation_is_what_pearson_gives():
    rng = np.random.default_rng(2)
    s = rng.standard_normal((200_000, 1))
    rho = 0.6
    y = rho * s + np.sqrt(1 - rho**2) * rng.standard_normal((200_000, 1))
    assert mcc(s, y) == pytest.approx(rho, abs=0.005)


def test_spearman_is_one_under_monotone_maps_where_pearson_is_not(sources):
    warped = np.concatenate([np.exp(sources[:, :2]), sources[:, 2:] ** 3], axis=1)
    assert mcc(sources, warped, method="spearman") == pytest.approx(1.0, abs=1e-12)
    assert mcc(sources, warped, method="pearson") < 0.95


def test_pairs_learned_on_one_half_score_the_other(sources):
    rng = np.random.default_rng(3)
    recovered = sources[:, ::-1] + 0.3 * rng.standard_normal(sources.shape)
    pairs = assignment(sources[:2500], recovered[:2500])
    out = mcc(sources[2500:], recovered[2500:], pairs=pairs)
    assert out == pytest.approx(mcc(sources[2500:], recovered[2500:]), abs=1e-12)  # the same matching
    wrong = (pairs[0], np.roll(pairs[1], 1))
    assert mcc(sources[2500:], recovered[2500:], pairs=wrong) < 0.1


def test_rectangular_and_constant_components(sources):
    c = correlations(sources, np.column_stack([sources[:, 1], np.ones(len(sources))]))
    assert c.shape == (5, 2) and c[1, 0] == pytest.approx(1.0) and np.all(c[:, 1] == 0)
    assert mcc(sources, sources[:, :2]) == pytest.approx(1.0)  # min(d1, d2) pairs


def test_bad_input_is_refused(sources):
    with pytest.raises(ConfigError, match="unknown correlation 'rdc'; valid: pearson, spearman"):
        mcc(sources, sources, method="rdc")
    with pytest.raises(ValueError, match="same N points"):
        mcc(sources, sources[:10])
