"""KSG: the Kraskov-Stoegbauer-Grassberger k-nearest-neighbour estimate of the mutual information I(X; Z).

Kraskov, A., Stoegbauer, H. & Grassberger, P. "Estimating mutual information", Phys. Rev. E 69,
066138 (2004), estimator 1, eq. 8; the "MI_ksg" statistic of MIM (Livne, Swersky & Fleet 2019,
"MIM: Mutual Information Machine"; docs/mim.md §6.1), which evaluates it with k = 5 on the first
min(N, 10000) test pairs (x, z) and reports it in nats:

    I(X; Z) = psi(k) + psi(N) - mean_i [ psi(n_x,i) + psi(n_z,i) ].

All distances are max-norm (Chebyshev). eps_i is the distance from (x_i, z_i) to its k-th nearest
neighbour in the joint space, the point itself excluded; n_x,i counts the points j whose marginal
distance max_d |x_j,d - x_i,d| is strictly less than eps_i, **point i itself included**, and
likewise n_z,i. This is the convention of MIM's estimator ("n_·,i counts points, self included,
strictly within eps_i"), and it is Kraskov's eq. 8 exactly: there n_x(i) excludes the point itself
and the formula uses psi(n_x(i) + 1), the same number.

Properties worth knowing when reading the numbers:

* the ceiling: z = x (or any copy of x whose max-norm distances are those of x) on distinct points
  gives n_x,i = n_z,i = k, hence I = psi(N) - psi(k) (about 7.7 nats at N = 9984, k = 5). That
  needs the distance ties of an exact copy. Without ties the k - 1 nearer joint neighbours and the
  point itself are within eps_i in both marginals, and the k-th neighbour is strictly within it in
  one of them, so n_x,i + n_z,i >= 2k + 1 and I <= psi(N) - psi(k) - 1/k (about 7.5 nats at
  N = 9984, k = 5); near-deterministic codes, z = x + tiny noise, approach that bound;
* exactly invariant (up to floating-point rounding of the distances) to translating x and z by
  constant vectors, to scaling x *and* z by one common constant, to permuting or sign-flipping the
  coordinates within x or within z, to reordering the pairs and to swapping x with z. Not exactly
  invariant to scaling x and z by different constants, nor to per-coordinate nonlinear monotone
  maps: both change which neighbours the joint max-norm picks. The true MI is invariant to them,
  the estimate is not: at N = 5000 it moves by a few hundredths of a nat for one correlated
  Gaussian pair at rho = 0.5, but by about 0.5 nats for two pairs at rho = 0.9 under
  x -> exp(x), z -> 3z^3 + z, and by about 0.2 nats under x -> 3x, z -> z/2;
* the estimator's error scale is what MIM stores as ``MI_ksg_l2_err``: :func:`ksg_l2_error`.

The computation is vectorised with ``scipy.spatial.cKDTree``: one joint query of k + 1 neighbours
(the first is the point itself) gives every eps_i, and one ``query_ball_point(..., return_length=True)``
per marginal, at the radius one ulp below eps_i (the ball is closed), gives every strict count.
Duplicated points are handled: where more than k joint duplicates make eps_i = 0 no other point is
strictly within, the count is 1 (the point itself) and the estimate stays finite.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma

__all__ = ["ksg_l2_error", "ksg_mi"]


def _as_samples(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2:
        raise ValueError(f"{name} must be an (N,) or (N, d) array of N samples, got shape {a.shape}")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has no dimensions (shape {a.shape})")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} has non-finite values (nan or inf); the KSG estimate needs finite samples")
    return a


def ksg_mi(x, z, k: int = 5, max_points: int | None = None) -> float:
    """The KSG-1 estimate of I(X; Z) in nats from paired samples (Kraskov et al. 2004, eq. 8).

    Args:
        x: (N, dx) samples, a numpy array or torch tensor; a 1-D (N,) input is one dimension.
        z: (N, dz) samples paired row by row with ``x``.
        k: the number of joint nearest neighbours that sets each eps_i (MIM uses 5).
        max_points: use only the first ``max_points`` pairs (MIM uses the first min(N, 10000));
            ``None`` uses all of them.

    Raises:
        ValueError: on mismatched lengths, a shape that is not (N,) or (N, d), non-finite values,
            k < 1, max_points < 1, or N <= k pairs (after ``max_points``).
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    if max_points is not None and (
        isinstance(max_points, bool) or not isinstance(max_points, (int, np.integer)) or max_points < 1
    ):
        raise ValueError(f"max_points must be a positive integer or None, got {max_points!r}")
    x = _as_samples(x, "x")
    z = _as_samples(z, "z")
    if len(x) != len(z):
        raise ValueError(f"x and z must hold the same number of paired samples, got {len(x)} and {len(z)}")
    if max_points is not None:
        x, z = x[:max_points], z[:max_points]
    n = len(x)
    if n <= k:
        raise ValueError(f"the KSG estimate with k={k} needs more than k pairs, got N={n}")
    k = int(k)

    joint = np.concatenate((x, z), axis=1)
    dist, _ = cKDTree(joint).query(joint, k=k + 1, p=np.inf, workers=-1)
    eps = dist[:, k]
    radius = np.nextafter(eps, 0.0)
    n_x = cKDTree(x).query_ball_point(x, r=radius, p=np.inf, return_length=True, workers=-1)
    n_z = cKDTree(z).query_ball_point(z, r=radius, p=np.inf, return_length=True, workers=-1)
    if not (eps > 0).all():
        n_x = np.where(eps > 0, n_x, 1)
        n_z = np.where(eps > 0, n_z, 1)
    return float(digamma(k) + digamma(n) - np.mean(digamma(n_x) + digamma(n_z)))


def ksg_l2_error(n: int, dx: int, dz: int) -> float:
    """The error scale MIM stores beside the KSG estimate as ``MI_ksg_l2_err``: N^-1/2 + N^(-1/(dx+dz))."""
    if n < 1 or dx < 1 or dz < 1:
        raise ValueError(f"n, dx and dz must be positive, got n={n}, dx={dx}, dz={dz}")
    return float(n**-0.5 + n ** (-1.0 / (dx + dz)))
