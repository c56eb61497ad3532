"""The nonlinear ICA simulations of ICE-BeeM (Khemakhem et al., NeurIPS 2020, section 5.1 and
appendix): sources that depend on a segment label u,
mixed by an invertible multilayer map.

- ``tcl_sources``: "TCL" data (Hyvärinen & Morioka, NeurIPS 2016): standardised Gaussian sources
  whose standard deviation changes across segments, s_j = sigma_{j,k} s0_j for the points of segment
  k, with sigma_{j,k} ~ U(0.01, 3); ``vary_mean`` adds a per-segment mean mu_{j,k} ~ U(-3, 3).
- ``imca_sources``: IMCA data (independently modulated components): within segment k the latents are
  Gaussian with precision Lambda_k = Sigma0^-1 (0.5 / d) + diag(1 / v_{.,k}), where Sigma0 is a random
  correlation matrix whose eigenvalues are U(0, 1) draws rescaled to sum to d, and v_{j,k} = U(0.01, 3)^2:
  a base measure that does not factorise (the components depend on each other) times a
  conditionally independent exponential family in z_j^2.
- ``mix``: L - 1 layers h <- LeakyReLU_0.2(h) A_l with Haar-random orthogonal A_l (scipy's
  ``ortho_group``), the leaky ReLU applied first and none after the last matrix; invertible because
  each A_l is orthogonal and the slope 0.2 is positive.

Every draw comes from one ``numpy.random.Generator`` seeded with the data seed (the paper fixes it to
1 for every simulation and varies only the model's seed), in the order: sources, modulation, mixing.
The original drew from numpy's global legacy RNG in another order, so the same seed does not give
its exact arrays (a bit-exact draw would need its RNG calls replayed one by one); the distributions
are the paper's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from scipy.stats import ortho_group, random_correlation

from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts, Tensors
from genlab.errors import ConfigError

SLOPE = 0.2  # the leaky ReLU's negative slope in the mixing
DEFAULT_N_PER_SEGMENT = 2000  # the largest cell of the paper's grid (100, 200, 500, 1000, 2000)


@dataclass
class Simulation:
    """N = n_segments * n_per_segment points in contiguous segments: observations ``x`` (N, d),
    segment labels ``u`` (N,) int, true sources ``s`` (N, d), and the generating parameters."""

    x: np.ndarray
    u: np.ndarray
    s: np.ndarray
    params: dict = field(default_factory=dict)


def _check(n_per_segment: int, n_segments: int, dim: int) -> None:
    for name, value in (("n_per_segment", n_per_segment), ("n_segments", n_segments), ("dim", dim)):
        if not (isinstance(value, (int, np.integer)) and value >= 1):
            raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def segments(n_per_segment: int, n_segments: int) -> np.ndarray:
    """The segment label of every point: 0 for the first ``n_per_segment`` points, then 1, ..."""
    return np.repeat(np.arange(n_segments), n_per_segment)


def one_hot(u: np.ndarray, n_segments: int) -> np.ndarray:
    return np.eye(n_segments, dtype=np.float64)[u]


def tcl_sources(n_per_segment: int, n_segments: int, dim: int, rng: np.random.Generator, vary_mean: bool = False):
    """``(s, u, params)`` of the TCL data: params ``std`` (d, K) and ``mean`` (d, K)."""
    _check(n_per_segment, n_segments, dim)
    u = segments(n_per_segment, n_segments)
    s0 = rng.standard_normal((len(u), dim))
    s0 = (s0 - s0.mean(0)) / s0.std(0)
    std = rng.uniform(0.01, 3.0, size=(dim, n_segments))
    mean = rng.uniform(-3.0, 3.0, size=(dim, n_segments)) if vary_mean else np.zeros((dim, n_segments))
    s = s0 * std.T[u] + mean.T[u]
    return s, u, {"std": std, "mean": mean}


def imca_sources(n_per_segment: int, n_segments: int, dim: int, rng: np.random.Generator, vary_mean: bool = False):
    """``(s, u, params)`` of the IMCA data: params ``base_correlation`` (d, d), ``variances`` (d, K),
    ``precisions`` (K, d, d) and ``mean`` (d, K)."""
    _check(n_per_segment, n_segments, dim)
    u = segments(n_per_segment, n_segments)
    eigenvalues = rng.uniform(0.0, 1.0, size=dim)
    eigenvalues *= dim / eigenvalues.sum()
    base = random_correlation.rvs(eigenvalues, random_state=rng) if dim > 1 else np.ones((1, 1))
    variances = rng.uniform(0.01, 3.0, size=(dim, n_segments)) ** 2
    mean = rng.uniform(-3.0, 3.0, size=(dim, n_segments)) if vary_mean else np.zeros((dim, n_segments))
    base_precision = np.linalg.inv(base) * (0.5 / dim)
    precisions = np.stack([base_precision + np.diag(1.0 / variances[:, k]) for k in range(n_segments)])
    s = np.empty((len(u), dim))
    for k in range(n_segments):
        rows = slice(k * n_per_segment, (k + 1) * n_per_segment)
        chol = np.linalg.cholesky(np.linalg.inv(precisions[k]))
        s[rows] = rng.standard_normal((n_per_segment, dim)) @ chol.T + mean[:, k]
    return s, u, {"base_correlation": base, "variances": variances, "precisions": precisions, "mean": mean}


def leaky_relu(h: np.ndarray, slope: float = SLOPE) -> np.ndarray:
    return np.where(h > 0, h, slope * h)


def mix(s: np.ndarray, n_layers: int, rng: np.random.Generator, slope: float = SLOPE) -> tuple[np.ndarray, list[np.ndarray]]:
    """``(x, matrices)``: ``n_layers - 1`` layers h <- leaky_relu(h) @ A of Haar-orthogonal A
    (``n_layers=1``: x = s)."""
    if not (isinstance(n_layers, (int, np.integer)) and n_layers >= 1):
        raise ConfigError(f"n_layers must be a positive integer, got {n_layers!r}")
    dim = s.shape[1]
    h, matrices = s, []
    for _ in range(n_layers - 1):
        a = ortho_group.rvs(dim, random_state=rng) if dim > 1 else np.ones((1, 1))
        h = leaky_relu(h, slope) @ a
        matrices.append(a)
    return h, matrices


GENERATORS = {"tcl": tcl_sources, "imca": imca_sources}


def simulate(kind: str, n_per_segment: int, n_segments: int = 20, dim: int = 5, n_layers: int = 2,
             data_seed: int = 1, vary_mean: bool = False) -> Simulation:
    """One simulated dataset (``kind`` ``"tcl"`` or ``"imca"``), drawn from ``data_seed`` alone.
    The paper's grid: dim 5, 20 segments, n_layers in {2, 4}, n_per_segment in {100, 200, 500, 1000, 2000}."""
    if kind not in GENERATORS:
        raise ConfigError(f"unknown simulation {kind!r}; valid: {', '.join(GENERATORS)}")
    rng = np.random.default_rng(data_seed)
    s, u, params = GENERATORS[kind](n_per_segment, n_segments, dim, rng, vary_mean=vary_mean)
    x, matrices = mix(s, n_layers, rng)
    return Simulation(x=x, u=u, s=s, params={**params, "mixing": matrices})


def pca_whitening(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean, matrix)`` of PCA whitening, ``(x - mean) @ matrix``: the centred points rotated onto
    their principal axes, each scaled to unit variance, all components kept. TCL's preprocessing
    (Hyvärinen & Morioka 2016; docs/icebeem.md §3e), which the TCL model applies as its first layer."""
    mean = x.mean(0)
    eigenvalues, vectors = np.linalg.eigh(np.cov(x - mean, rowvar=False))
    return mean, vectors / np.sqrt(eigenvalues)


def load_simulation(kind: str, n_per_segment: int, n_segments: int = 20, dim: int = 5, n_layers: int = 2,
                    data_seed: int = 1, vary_mean: bool = False, device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
    """The simulation as the training set of a run, resident on ``device`` in float32: batches
    ``x``, ``u`` (the segment, one-hot), ``s`` (the true sources) and ``index`` (the points' rows). The models are scored on the
    training points themselves, as in the paper (docs/icebeem.md §7), so there is no held-out part.
    Drawn in float64 with numpy (scipy's Haar and correlation samplers), then moved: 40,000 points
    of 5 dimensions take milliseconds.

    Model inputs: ``input_shape``, ``n_segments``, ``latent_dim`` (d), ``mixing_layers`` (L, which the
    models' depths follow) and ``whitening`` (the PCA whitening of x, for TCL)."""
    sim = simulate(kind, n_per_segment, n_segments, dim, n_layers, data_seed, vary_mean)
    x = sim.x
    mean, matrix = pca_whitening(x)
    device = torch.device(device)

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(a, dtype=torch.float32).to(device)

    index = torch.arange(len(x), device=device)  # each point's row: lets an objective cache per-point values
    train = Tensors(f"{kind}/train", x=tensor(x), u=tensor(one_hot(sim.u, n_segments)), s=tensor(sim.s), index=index)
    inputs = {"input_shape": [dim], "n_segments": n_segments, "latent_dim": dim, "mixing_layers": n_layers,
              "whitening": {"mean": mean.tolist(), "matrix": matrix.tolist()}}  # fmt: skip
    info = {"input_shape": [dim], "n_train": len(sim.x), "data_seed": data_seed, "n_segments": n_segments,
            "n_per_segment": n_per_segment, "n_layers": n_layers}  # fmt: skip
    return DataParts(kind, train, info=info, model_inputs=inputs)


def _register(kind: str, description: str) -> None:
    def build(n_per_segment: int | None = None, n_segments: int = 20, dim: int = 5, n_layers: int = 2,
              vary_mean: bool = False, data_seed: int = 1, *,
              device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
        """``n_segments`` segments of ``n_per_segment`` points (None: 2000, the paper's largest cell;
        ``dataset.tiny``: 32, i.e. 640 points, one batch of TCL's 512) in ``dim`` dimensions, mixed by
        ``n_layers - 1`` leaky-ReLU layers; the data seed is 1 in every run of the paper."""
        n = DEFAULT_N_PER_SEGMENT if n_per_segment is None else n_per_segment
        return load_simulation(kind, n, n_segments, dim, n_layers, data_seed, vary_mean, device)

    inputs = {"n_segments": 20, "latent_dim": 5, "mixing_layers": 2}  # of the defaults, for model.show
    DATASETS.register(kind)(DatasetSpec(kind, "simulation", build, (5,), description=description,
                                        tiny={"n_per_segment": 32}, inputs=inputs))  # fmt: skip


_register("tcl", "ICE-BeeM's 'TCL' data: Gaussian sources with per-segment variances, leaky-ReLU + orthogonal mixing")
_register("imca", "ICE-BeeM's IMCA data: dependent Gaussian sources with per-segment variances, same mixing")

__all__ = ["GENERATORS", "SLOPE", "Simulation", "imca_sources", "leaky_relu", "load_simulation", "mix", "one_hot", "pca_whitening", "segments", "simulate",
           "tcl_sources"]  # fmt: skip
