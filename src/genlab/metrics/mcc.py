"""MCC: the mean correlation coefficient between recovered and true components, up to permutation.

The identifiability metric of nonlinear ICA (Hyvärinen & Morioka, NeurIPS 2016, section 5;
Khemakhem et al., "ICE-BeeM", NeurIPS 2020, section 5 and appendix): with C the d1 x d2 matrix of
absolute correlations |corr(x_i, y_j)| between the components of two codes of the same N points,
the components are matched one to one by the assignment that maximises the summed |corr| (the
Hungarian algorithm, ``scipy.optimize.linear_sum_assignment``), and

    MCC = mean of C over the matched pairs   (min(d1, d2) pairs),

so that MCC = 1 exactly when each component of one code is an affine function of a distinct
component of the other, whatever their order, signs and scales.

``method="pearson"`` (the default) is the correlation the ICE-BeeM paper's figures used;
``"spearman"`` correlates ranks, so any strictly monotone per-component map also gives 1. (The
original repository's default later became a randomised dependence coefficient; it is not the one
the published numbers used, and is not implemented here.)

``assignment`` returns the matched pairs, so that one matching can be scored on other points: the
"out-of-sample" MCC of ICE-BeeM's representation experiments learns the pairs on one half of the
data and averages the |corr| of those pairs on the other half (``mcc(x_out, y_out, pairs=...)``).
"""

from __future__ import annotations

import warnings
from typing import Any, Mapping

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.stats import rankdata

from sklearn.exceptions import ConvergenceWarning

from genlab.errors import ConfigError

METHODS = ("pearson", "spearman")


def _as_codes(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y):
        raise ValueError(f"codes must be (N, d) arrays of the same N points, got shapes {x.shape} and {y.shape}")
    if len(x) < 2:
        raise ValueError("correlations need at least 2 points")
    return x, y


def correlations(x, y, method: str = "pearson") -> np.ndarray:
    """|corr(x_i, y_j)|, a (d1, d2) array; a constant component correlates 0 with everything."""
    if method not in METHODS:
        raise ConfigError(f"unknown correlation {method!r}; valid: {', '.join(METHODS)}")
    x, y = _as_codes(x, y)
    if method == "spearman":
        x, y = rankdata(x, axis=0), rankdata(y, axis=0)
    x = x - x.mean(0)
    y = y - y.mean(0)
    sx, sy = np.linalg.norm(x, axis=0), np.linalg.norm(y, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        c = (x.T @ y) / np.outer(sx, sy)
    return np.nan_to_num(np.abs(c), nan=0.0).clip(0.0, 1.0)


def assignment(x, y, method: str = "pearson") -> tuple[np.ndarray, np.ndarray]:
    """The matched pairs ``(rows, cols)``: components x[:, rows[k]] and y[:, cols[k]], maximising the summed |corr|."""
    return linear_sum_assignment(correlations(x, y, method), maximize=True)


def mcc(x, y, method: str = "pearson", pairs: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """The mean |corr| over the best one-to-one matching of the components of ``x`` and ``y``
    (or over the given ``pairs``, e.g. learned on other points)."""
    c = correlations(x, y, method)
    rows, cols = linear_sum_assignment(c, maximize=True) if pairs is None else pairs
    return float(c[rows, cols].mean())


TARGETS = ("s", "s_squared")  # what a model's readouts estimate: the sources, or their squares (TCL)


def source_target(s, target: str = "s") -> np.ndarray:
    """The true sources ``s`` (N, d), or their squares for a model whose features estimate the
    sufficient statistics s^2 of Gaussian sources (TCL, docs/icebeem.md §7, §10.3)."""
    if target not in TARGETS:
        raise ConfigError(f"unknown source target {target!r}; valid: {', '.join(TARGETS)}")
    s = np.asarray(s, dtype=np.float64)
    return s if target == "s" else np.square(s)


def fast_ica(z, seed: int = 0) -> np.ndarray:
    """scikit-learn's FastICA of the code ``z`` (N, d), all components, unit-variance whitening, a
    fixed ``seed`` so that a score can be recomputed (the original left FastICA unseeded, except for TCL)."""
    from sklearn.decomposition import FastICA

    with warnings.catch_warnings():  # a run that has not converged still gets a score, as in the original
        warnings.simplefilter("ignore", ConvergenceWarning)
        return FastICA(whiten="unit-variance", random_state=seed).fit_transform(np.asarray(z, dtype=np.float64))


def recovery_scores(readouts: Mapping[str, Any], target, method: str = "pearson", ica_seed: int = 0) -> dict[str, float]:
    """``{name: MCC, name + "_ica": MCC after FastICA}`` of each readout (N, d) against ``target``."""
    scores = {}
    for name, z in readouts.items():
        z = np.asarray(z, dtype=np.float64)
        scores[name] = mcc(z, target, method)
        scores[f"{name}_ica"] = mcc(fast_ica(z, ica_seed), target, method)
    return scores


__all__ = ["METHODS", "TARGETS", "assignment", "correlations", "fast_ica", "mcc", "recovery_scores", "source_target"]
