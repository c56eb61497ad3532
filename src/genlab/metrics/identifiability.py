"""Identifiability of learned representations: how alike the features of two independently trained
models are, up to the transformations the theory allows (Khemakhem et al., "ICE-BeeM", NeurIPS 2020,
section 5.2 and figure panels (a), (b); docs/icebeem.md §7).

Given the features ``rep1``, ``rep2`` (N, m) of the same N test images under two models (two seeds),
the first half of the points is "in sample" and the second half "out of sample" (the original split
the 10,000 test images at 5,000):

- strong identifiability (up to a permutation and per-component scaling, ICE-BeeM's Theorem 1):
  ``in`` = MCC of the in-sample halves (``genlab.metrics.mcc``: Pearson |corr|, Hungarian matching);
  ``out`` = the mean out-of-sample |corr| of the component pairs matched on the in-sample halves;
- weak identifiability (up to a linear map, Theorem 2): canonical correlation analysis with 20
  components (scikit-learn's ``CCA``) fitted on the in-sample halves; ``in`` / ``out`` = the MCC of
  the two sets of canonical variates of each half (matched afresh on each half, as the original did).

The paper's figure shows the out-of-sample values.
"""

from __future__ import annotations

import warnings

import numpy as np

from genlab.metrics.mcc import assignment, mcc

WEAK_COMPONENTS = 20  # docs/icebeem.md §7


def halves(n: int, split: int | None = None) -> tuple[slice, slice]:
    """The in-sample and out-of-sample rows of N points: the first ``split`` (N // 2 by default) and the rest."""
    split = n // 2 if split is None else int(split)
    if not 2 <= split <= n - 2:
        raise ValueError(f"an in-sample half of {split} of {n} points leaves fewer than 2 points on one side")
    return slice(0, split), slice(split, n)


def _codes(rep1, rep2) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(rep1, dtype=np.float64), np.asarray(rep2, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or len(a) != len(b):
        raise ValueError(f"features must be (N, m) arrays of the same N points, got {a.shape} and {b.shape}")
    return a, b


def strong_mcc(rep1, rep2, split: int | None = None) -> dict[str, float]:
    """``{"in", "out"}``: MCC of the in-sample halves, and the out-of-sample |corr| at the pairs
    matched in sample."""
    a, b = _codes(rep1, rep2)
    inside, outside = halves(len(a), split)
    pairs = assignment(a[inside], b[inside])
    return {"in": mcc(a[inside], b[inside], pairs=pairs), "out": mcc(a[outside], b[outside], pairs=pairs)}


def weak_mcc(rep1, rep2, n_components: int = WEAK_COMPONENTS, split: int | None = None) -> dict[str, float]:
    """``{"in", "out"}``: MCC of the canonical variates of each half, after a CCA with ``n_components``
    fitted on the in-sample halves."""
    from sklearn.cross_decomposition import CCA
    from sklearn.exceptions import ConvergenceWarning
    from threadpoolctl import threadpool_limits

    a, b = _codes(rep1, rep2)
    inside, outside = halves(len(a), split)
    k = min(int(n_components), a.shape[1], b.shape[1])
    cca = CCA(n_components=k, max_iter=1000)
    # one BLAS thread: CCA's many small products run ~100x slower on 2 threads when the cores are busy
    with warnings.catch_warnings(), threadpool_limits(1):  # unconverged: scored all the same, as in the original
        warnings.simplefilter("ignore", ConvergenceWarning)
        cca.fit(a[inside], b[inside])
    scores = {}
    for name, rows in (("in", inside), ("out", outside)):
        u, v = cca.transform(a[rows], b[rows])
        scores[name] = mcc(u, v)
    return scores


def pair_scores(rep1, rep2, n_components: int = WEAK_COMPONENTS, split: int | None = None) -> dict[str, float]:
    """``{"strong_in", "strong_out", "weak_in", "weak_out"}`` of two models' features."""
    strong, weak = strong_mcc(rep1, rep2, split), weak_mcc(rep1, rep2, n_components, split)
    return {**{f"strong_{k}": v for k, v in strong.items()}, **{f"weak_{k}": v for k, v in weak.items()}}


__all__ = ["WEAK_COMPONENTS", "halves", "pair_scores", "strong_mcc", "weak_mcc"]
