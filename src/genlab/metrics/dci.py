"""DCI: disentanglement, completeness and informativeness of a code (Eastwood & Williams, ICLR 2018).

Eastwood, C. & Williams, C. K. I. "A Framework for the Quantitative Evaluation of Disentangled
Representations", ICLR 2018. One regressor per generative factor predicts that factor from the code;
the magnitudes of its weights form the importance matrix ``R`` (D latents x K factors), and the three
scores are entropies of R's rows and columns and the regressors' prediction quality.

This follows the DCI used by Montero et al. (ICLR 2021, "The Role of Disentanglement in
Generalisation"; docs/disent.md §5.2), which itself follows Eastwood & Williams' reference code:

* codes are centred (not scaled); factor values are standardised per factor;
* each factor gets a Lasso regression with alpha = 0.02, ``R[:, k] = |coef|``. The reference code
  calls ``LassoCV(alphas=[0.02], cv=5, selection="random")``: with a single alpha the
  cross-validation has nothing to choose and LassoCV refits on all the data, so it is exactly
  ``Lasso(alpha=0.02)`` (the Lasso problem is convex; the coordinate order only changes how the
  solver reaches its optimum, so the deterministic cyclic order is used here);
* a constant factor cannot be regressed: its column of R is zero, so it has zero weight;
* entropies use the log in base K (rows) and base D (columns), with eps = 1e-12 guards.

scikit-learn provides the regression; the entropies are a few lines, written here because no
maintained package exposes this exact variant (Lasso importances, centred codes, these guards).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import Lasso
from sklearn.metrics import r2_score

__all__ = ["dci"]

EPS = 1e-12


def _normalised_entropy(p: np.ndarray, base: int) -> np.ndarray:
    """Entropy of each row of ``p`` (rows sum to 1, or are all zero) with the log in base ``base``.

    The eps inside the log makes 0 log 0 = 0. With base 1 there is a single outcome: entropy 0.
    """
    if base <= 1:
        return np.zeros(p.shape[0])
    return -(p * np.log(p + EPS)).sum(axis=1) / np.log(base)


def _lasso(x: np.ndarray, y: np.ndarray, alpha: float) -> Lasso:
    # x is a centred, Fortran-ordered float64 array owned by dci(): no copy needed (sklearn would
    # otherwise copy it for every factor; at 600k training images that is ~50 MB a fit). Centring
    # it again in place subtracts a mean that is already ~1e-17.
    return Lasso(alpha=alpha, copy_X=False).fit(x, y)


def dci(
    codes: np.ndarray,
    factors: np.ndarray,
    alpha: float = 0.02,
    seed: int = 0,
    *,
    test_fraction: float = 0.2,
) -> dict:
    """DCI scores of ``codes`` [N, D] against the generative ``factors`` [N, K].

    Let R be the D x K importance matrix, ``R[i, k] = |w_ik|`` where w_.k are the Lasso weights that
    predict factor k from the code (Eastwood & Williams' R_ij; here i indexes latents, k factors).

    Disentanglement (E&W, "Disentanglement"): latent i's probability of being important for factor
    k is ``P_ik = R_ik / sum_k' R_ik'``, and

        D_i = 1 - H_K(P_i.),   H_K(P_i.) = -sum_k P_ik log_K P_ik,

    so D_i = 1 when latent i matters for a single factor and 0 when it matters equally for all.
    The overall score weights latents by their relative importance
    ``rho_i = sum_k R_ik / sum_ik R_ik``:  D = sum_i rho_i D_i.

    Completeness (E&W, "Completeness"): with ``P~_ik = R_ik / sum_i' R_i'k``,

        C_k = 1 - H_D(P~_.k),   H_D(P~_.k) = -sum_i P~_ik log_D P~_ik,

    so C_k = 1 when a single latent captures factor k. E&W define C_k per factor; the overall
    ``completeness`` here weights factors by their relative importance
    ``sum_i R_ik / sum_ik R_ik`` (the counterpart of rho for factors). Eastwood & Williams'
    reference notebook averages C_k without weights instead: that is ``completeness_unweighted``.

    Informativeness (E&W, "Informativeness"): how well the code predicts each factor. Reported as
    the held-out **R^2** (coefficient of determination, 1 = perfect, 0 = no better than the mean)
    of the same Lasso refitted on a random ``1 - test_fraction`` of the samples (split drawn with
    ``seed``) and scored on the rest. R itself is fitted on all N samples, as in the reference.

    Caveat: D and C are ratios within R, blind to R's scale. Independent codes give Lasso weights of
    about max(|c| - alpha, 0) for sample correlations c ~ N(0, 1/N): with N >> 1/alpha^2 almost all
    are exactly zero and the few survivors make D look high (about 0.9 for N = 10^4, D = K = 10).
    Read D and C together with R's scale and the informativeness.

    Conventions for degenerate cases:

    * a constant factor (zero variance) gets a zero column in R, weight 0 in both overall scores,
      and NaN completeness and informativeness (there is nothing to capture). It still counts in
      K, the log base of the row entropies, as in the reference code; drop its column beforehand if
      it should not;
    * a latent with a zero row of R (it predicts no factor) has D_i = 0 and rho_i = 0;
    * a non-constant factor that no latent predicts has C_k = 0 and weight 0;
    * with K = 1 every informative latent has D_i = 1; with D = 1 every captured factor has C_k = 1.

    Args:
        codes: [N, D] codes (e.g. posterior means of the training images); centred here.
        factors: [N, K] factor values; standardised here (categorical factors are used as values).
        alpha: Lasso penalty (0.02 in Montero et al.).
        seed: seed of the train/held-out split for informativeness.
        test_fraction: held-out fraction for informativeness.

    Returns:
        dict with ``R`` [D, K], ``disentanglement`` (float), ``per_latent_disentanglement`` [D],
        ``completeness`` (float, importance-weighted), ``completeness_unweighted`` (float),
        ``per_factor_completeness`` [K], ``informativeness`` [K] (held-out R^2) and
        ``constant_factors`` [K] (bool mask).
    """
    codes = np.asarray(codes)
    factors = np.asarray(factors, dtype=np.float64)
    if codes.ndim != 2 or factors.ndim != 2:
        raise ValueError(f"codes and factors must be 2-D [N, D] and [N, K], got {codes.shape} and {factors.shape}")
    if codes.shape[0] != factors.shape[0]:
        raise ValueError(f"codes and factors have different numbers of samples: {codes.shape[0]} != {factors.shape[0]}")
    if not (np.isfinite(codes).all() and np.isfinite(factors).all()):
        raise ValueError("codes and factors must be finite")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n, n_latents = codes.shape
    n_factors = factors.shape[1]
    if n < 2:
        raise ValueError(f"need at least 2 samples, got {n}")

    x = codes.astype(np.float64, order="F")  # a copy the Lasso fits may use in place
    x -= x.mean(axis=0)
    mean, std = factors.mean(axis=0), factors.std(axis=0)
    constant = std <= EPS * np.maximum(1.0, np.abs(mean))
    y = np.zeros_like(factors)
    y[:, ~constant] = (factors[:, ~constant] - mean[~constant]) / std[~constant]

    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    n_test = min(n - 1, max(1, int(round(test_fraction * n))))
    test, train = order[:n_test], order[n_test:]

    importance = np.zeros((n_latents, n_factors))
    informativeness = np.full(n_factors, np.nan)
    for k in np.flatnonzero(~constant):
        importance[:, k] = np.abs(_lasso(x, y[:, k], alpha).coef_)
        if n_test >= 2 and y[test, k].std() > 0:
            x_train = np.asfortranarray(x[train])
            informativeness[k] = r2_score(y[test, k], _lasso(x_train, y[train, k], alpha).predict(x[test]))
            del x_train

    total = importance.sum()

    # Disentanglement: rows of R normalised over factors, entropy in base K.
    row_sum = importance.sum(axis=1)
    p_rows = importance / (row_sum[:, None] + EPS)
    per_latent = np.where(row_sum > 0, 1.0 - _normalised_entropy(p_rows, n_factors), 0.0)
    rho = row_sum / (total + EPS)
    disentanglement = float(np.sum(rho * per_latent))

    # Completeness: columns of R normalised over latents, entropy in base D.
    col_sum = importance.sum(axis=0)
    p_cols = importance / (col_sum[None, :] + EPS)
    per_factor = np.where(col_sum > 0, 1.0 - _normalised_entropy(p_cols.T, n_latents), 0.0)
    per_factor[constant] = np.nan
    factor_weight = col_sum / (total + EPS)
    completeness = float(np.sum(factor_weight[~constant] * per_factor[~constant]))
    completeness_unweighted = float(per_factor[~constant].mean()) if (~constant).any() else 0.0

    return {
        "R": importance,
        "disentanglement": disentanglement,
        "per_latent_disentanglement": per_latent,
        "completeness": completeness,
        "completeness_unweighted": completeness_unweighted,
        "per_factor_completeness": per_factor,
        "informativeness": informativeness,
        "constant_factors": constant,
    }
