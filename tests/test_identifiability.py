"""The representation-identifiability scores (strong and weak MCC, in and out of sample) and the
semi-supervised linear probe: known answers on constructed features."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.errors import ConfigError
from genlab.metrics.identifiability import halves, pair_scores, strong_mcc, weak_mcc
from genlab.metrics.linear_probe import svm_accuracy


def features(n=400, m=6, seed=0):
    return np.random.default_rng(seed).standard_normal((n, m))


def test_identical_features_score_one_strong_and_weak_in_and_out_of_sample():
    a = features()
    assert pair_scores(a, a, n_components=4) == pytest.approx({"strong_in": 1, "strong_out": 1, "weak_in": 1, "weak_out": 1})


def test_a_permutation_with_scales_and_signs_is_strongly_identified():
    a = features()
    b = a[:, [3, 0, 5, 1, 4, 2]] * np.array([2.0, -0.5, 3.0, -1.0, 0.1, 7.0]) + 4.0
    assert strong_mcc(a, b) == pytest.approx({"in": 1.0, "out": 1.0})


def test_a_linear_mix_is_weakly_but_not_strongly_identified():
    a = features(n=2000)
    mix = np.random.default_rng(1).standard_normal((6, 6))
    b = a @ mix
    assert weak_mcc(a, b, n_components=6) == pytest.approx({"in": 1.0, "out": 1.0}, abs=1e-6)
    assert strong_mcc(a, b)["out"] < 0.9


def test_out_of_sample_uses_the_in_sample_matching():
    # the first half of b copies a's components in order, the second half in another order: the
    # in-sample matching is the identity, which scores the out-of-sample half poorly
    a = features(n=1000, m=3)
    b = a.copy()
    b[500:] = a[500:, [1, 2, 0]]
    scores = strong_mcc(a, b)
    assert scores["in"] == pytest.approx(1.0) and scores["out"] < 0.2


def test_independent_features_score_low_and_bad_halves_are_refused():
    assert strong_mcc(features(seed=0), features(seed=1))["out"] < 0.2
    assert halves(10) == (slice(0, 5), slice(5, 10))
    with pytest.raises(ValueError, match="fewer than 2 points"):
        strong_mcc(features(n=3), features(n=3))
    with pytest.raises(ValueError, match="same N points"):
        strong_mcc(features(n=10), features(n=12))


def test_the_linear_probe_separates_separable_classes_and_is_chance_on_noise():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 200)
    x = rng.standard_normal((400, 5)) + 3.0 * y[:, None]
    assert svm_accuracy(x, y, test_size=0.25) == pytest.approx(100.0)
    assert svm_accuracy(x, y, test_size=0.25, standardise="all") == pytest.approx(100.0)
    noise = svm_accuracy(rng.standard_normal((400, 5)), y, test_size=0.5)
    assert 35.0 < noise < 65.0
    assert svm_accuracy(x, y, 0.25, seed=1) == svm_accuracy(x, y, 0.25, seed=1)  # seeded split and SVM
    with pytest.raises(ConfigError, match="unknown standardise"):
        svm_accuracy(x, y, 0.25, standardise="both")
    with pytest.raises(ConfigError, match="test_size"):
        svm_accuracy(x, y, 1.5)
