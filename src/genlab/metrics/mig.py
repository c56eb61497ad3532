"""MIG: the Mutual Information Gap of a code (Chen et al., NeurIPS 2018).

Chen, R. T. Q., Li, X., Grosse, R. & Duvenaud, D. "Isolating Sources of Disentanglement in
Variational Autoencoders", NeurIPS 2018, section 4, eq. 6:

    MIG = 1/K sum_k 1/H(v_k) ( I(z_j(k); v_k) - max_{j != j(k)} I(z_j; v_k) ),  j(k) = argmax_j I(z_j; v_k),

the gap between the two latents that carry the most information about factor k, normalised by the
factor's entropy so that it lies in [0, 1]. A high MIG needs one latent per factor (axis alignment)
that is not shared with a second latent (compactness).

Chen et al. estimate I(z_j; v_k) from the posterior q(z|x) over the whole dataset. This module uses
the discretised, plug-in estimator of Locatello et al. (ICML 2019, "Challenging Common Assumptions
in the Unsupervised Learning of Disentangled Representations"; disentanglement_lib's ``mig`` with
its ``histogram_discretizer``), the one most published MIG numbers use:

* the code is the posterior mean (the caller passes it);
* each latent is discretised into ``bins`` (20 by default) **equal-width** bins spanning its range
  over the N samples (edges ``linspace(min, max, bins + 1)``, the last bin closed, as
  ``numpy.histogram``); a constant latent falls into a single bin and carries no information;
* I(z_j; v_k) is the plug-in mutual information of the (bin, class) contingency table, computed by
  ``sklearn.metrics.mutual_info_score`` (natural log, nats);
* H(v_k) is the plug-in entropy of the factor's class counts (nats);
* every distinct value of a factor is a class.

Estimator properties worth knowing when reading the numbers:

* the plug-in MI is biased upwards: for a latent independent of a factor with V classes it is about
  (B - 1)(V - 1) / (2N) nats (B occupied bins; 2N I is the G-statistic, ~ chi^2 with (B-1)(V-1)
  degrees of freedom), so random codes give MIG slightly above 0;
* a factor with more classes than bins cannot be captured fully: a perfect code of a 40-valued
  factor in 20 bins reaches I = log 20, i.e. a per-factor gap of log 20 / log 40 = 0.81.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import entropy
from sklearn.metrics import mutual_info_score

__all__ = ["discretise", "mig"]


def discretise(codes: np.ndarray, bins: int = 20) -> np.ndarray:
    """(N, D) int64 bin index in ``[0, bins)`` of each code entry: equal-width bins per latent.

    Latent j's edges are ``linspace(min_j, max_j, bins + 1)``; a value equal to an inner edge goes
    to the bin above it and the maximum to the last bin (``numpy.histogram``'s convention). A
    constant latent is all in bin 0.
    """
    codes = np.asarray(codes, dtype=np.float64)
    out = np.zeros(codes.shape, dtype=np.int64)
    lo, hi = codes.min(axis=0), codes.max(axis=0)
    for j in np.flatnonzero(hi > lo):
        inner = np.linspace(lo[j], hi[j], bins + 1)[1:-1]
        out[:, j] = np.searchsorted(inner, codes[:, j], side="right")
    return out


def mig(codes: np.ndarray, factor_classes: np.ndarray, bins: int = 20) -> dict:
    """Mutual Information Gap of ``codes`` [N, D] with respect to the factors ``factor_classes`` [N, K].

    For each factor k, with the mutual informations I(z_j; v_k) sorted in decreasing order over the
    latents j, the per-factor gap is ``(I_(1) - I_(2)) / H(v_k)``; MIG is its mean over factors
    (Chen et al. 2018, eq. 6; estimator in the module docstring).

    Conventions:

    * a constant factor (a single class, H(v_k) = 0) has no information to capture: its gap is NaN
      and it is left out of the mean (MIG averages the K' non-constant factors). If every factor is
      constant, MIG is NaN;
    * with a single latent (D = 1) the runner-up information is taken as 0;
    * ties between the top two latents (a factor copied onto two latents) give a gap of 0.

    Cost: one discretisation of the code, then per factor one ``bincount`` of N x D joint indices
    and D small (bins x classes) contingency tables handed to scikit-learn; N = 500k, D = 10,
    K = 5 takes well under a second.

    Args:
        codes: [N, D] codes (e.g. posterior means); must be finite.
        factor_classes: [N, K] factor classes (any labels; each distinct value is a class), e.g.
            ``FactorImages.classes``.
        bins: number of equal-width bins per latent (20 in Locatello et al.).

    Returns:
        dict with ``mig`` (float), ``per_factor`` [K] (NaN for constant factors),
        ``mutual_information`` [D, K] (nats), ``entropy`` [K] (nats), ``top_latents`` [K, 2]
        (indices of the best and runner-up latents per factor, -1 where undefined) and
        ``constant_factors`` [K] (bool mask).
    """
    codes = np.asarray(codes)
    factor_classes = np.asarray(factor_classes)
    if codes.ndim != 2 or factor_classes.ndim != 2:
        raise ValueError(
            f"codes and factor_classes must be 2-D [N, D] and [N, K], got {codes.shape} and {factor_classes.shape}"
        )
    if codes.shape[0] != factor_classes.shape[0]:
        raise ValueError(
            f"codes and factor_classes have different numbers of samples: {codes.shape[0]} != {factor_classes.shape[0]}"
        )
    if codes.shape[0] < 1 or codes.shape[1] < 1:
        raise ValueError(f"need at least one sample and one latent, got codes of shape {codes.shape}")
    if not np.isfinite(codes).all():
        raise ValueError("codes must be finite")
    if int(bins) < 1:
        raise ValueError(f"bins must be a positive integer, got {bins}")
    bins = int(bins)
    n_latents, n_factors = codes.shape[1], factor_classes.shape[1]

    binned = discretise(codes, bins)  # [N, D] in [0, bins)
    # Joint index of latent j's bin in table j: j * bins * V + bin * V + class (V = factor's classes).
    cells = np.empty_like(binned)  # reused for every factor
    mi = np.zeros((n_latents, n_factors))
    h = np.zeros(n_factors)
    for k in range(n_factors):
        _, classes, counts = np.unique(factor_classes[:, k], return_inverse=True, return_counts=True)
        classes = classes.reshape(-1)
        n_classes = len(counts)
        h[k] = entropy(counts)
        if n_classes == 1:
            continue
        np.multiply(binned, n_classes, out=cells)
        cells += classes[:, None]
        cells += np.arange(n_latents) * (bins * n_classes)
        tables = np.bincount(cells.ravel(), minlength=n_latents * bins * n_classes)
        tables = tables.reshape(n_latents, bins, n_classes)
        for j in range(n_latents):
            mi[j, k] = mutual_info_score(None, None, contingency=tables[j])

    constant = h <= 0.0
    per_factor = np.full(n_factors, np.nan)
    top = np.full((n_factors, 2), -1, dtype=np.int64)
    for k in np.flatnonzero(~constant):
        order = np.argsort(-mi[:, k], kind="stable")
        top[k, : min(2, n_latents)] = order[:2]
        runner_up = mi[order[1], k] if n_latents > 1 else 0.0
        per_factor[k] = (mi[order[0], k] - runner_up) / h[k]
    score = float(per_factor[~constant].mean()) if (~constant).any() else float("nan")

    return {
        "mig": score,
        "per_factor": per_factor,
        "mutual_information": mi,
        "entropy": h,
        "top_latents": top,
        "constant_factors": constant,
    }
