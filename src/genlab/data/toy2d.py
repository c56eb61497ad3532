"""The six 2D toy datasets of FCE (docs/fce.md §1), generated on the training device from a seed.

Each generator follows the recipe of ``util.sample_2d_data`` in lifeitech/fce-2d (the FFJORD toy
recipes with the repo's own changes, docs/fce.md §1), vectorised in torch. Every random number is drawn
from an explicit ``torch.Generator`` living on the output device, so a dataset is a pure function
of (name, n, seed, device type). The original drew from the global torch RNG (numpy for pinwheel,
unseeded), so its exact points cannot be reproduced anyway; the same seed gives different points
on CPU and on CUDA, because the two generators are different algorithms.

Each is registered in ``genlab.data.DATASETS`` under the original's ``--dataset`` name, as a dataset
of kind ``points``. ``load_toy2d`` is what its builder calls: a training set (N = 500,000 in the
original, drawn once, docs/fce.md §7) and a fixed held-out evaluation sample drawn with a derived seed,
both resident on the device as ``Points``.

Only 8gaussians has a closed-form density (``LOG_DENSITIES``); the original scored every dataset
against it (docs/fce.md §6 item 10), which is meaningless for the others.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.errors import ConfigError
from genlab.registry import positive_int

Device = torch.device | str
Generator2D = Callable[[int, torch.Generator, Device], Tensor]

_GENERATORS: dict[str, Generator2D] = {}  # the recipes; DATASETS holds the datasets built from them


def _toy(name: str) -> Callable[[Generator2D], Generator2D]:
    """Register a 2D recipe ``(n, generator, device) -> (n, 2)`` as the ``points`` dataset ``name``."""

    def decorator(generate: Generator2D) -> Generator2D:
        _GENERATORS[name] = generate

        def build(n_train: int = 500_000, n_eval: int = 50_000, data_seed: int | None = None, *,
                  seed: int = 0, device: Device = "cpu") -> "Toy2D":  # fmt: skip
            """``n_train`` training points and ``n_eval`` held-out ones, drawn from ``data_seed``
            (None: the run's ``seed``, the original's choice)."""
            return load_toy2d(name, n_train, n_eval, seed if data_seed is None else data_seed, device)

        first_line = (generate.__doc__ or "").strip().split("\n")[0]
        DATASETS.register(name)(DatasetSpec(name, "points", build, (2,), description=f"2D toy {name!r}: {first_line}"))
        return generate

    return decorator


def recipe(name: str) -> Generator2D:
    """The generator function of 2D toy ``name``; unknown names list the registered datasets."""
    if name not in _GENERATORS:
        DATASETS.get(name)  # unknown: fails listing the valid names
        raise ConfigError(f"dataset {name!r} is not a 2D toy; toys: {', '.join(sorted(_GENERATORS))}")
    return _GENERATORS[name]


def toy_names() -> list[str]:
    return sorted(_GENERATORS)

_S = 1.0 / math.sqrt(2.0)
# The original's order of the 8 unit directions; the index drawn per point picks one.
_DIRECTIONS = ((1.0, 0.0), (-1.0, 0.0), (0.0, 1.0), (0.0, -1.0), (_S, _S), (_S, -_S), (-_S, _S), (-_S, -_S))
# Offset between a training seed and its evaluation seed: the 64-bit golden-ratio constant, so
# small consecutive training seeds never map onto one another's evaluation seeds.
_EVAL_SEED_OFFSET = 0x9E3779B97F4A7C15


def make_generator(seed: int, device: Device = "cpu") -> torch.Generator:
    """A generator seeded with ``seed`` on ``device``'s type: CUDA sampling needs a CUDA generator,
    and drawing on the device avoids generating on the CPU and copying 500k points over."""
    return torch.Generator(device=torch.device(device)).manual_seed(seed)


def _uniform_23bit(shape: tuple[int, ...], generator: torch.Generator, device: Device) -> Tensor:
    """U[0, 1) on the grid k * 2^-23. ``torch.rand`` has a 2^-24 grid, and then ``-2 + U`` or
    ``1 + U`` can round up to the next integer in float32 (U = 1 - 2^-24 is a tie that rounds to
    even), which would put a checkerboard point on a cell of the wrong parity. With 23 bits,
    integer + U is exact for |integer| <= 2."""
    k = torch.randint(0, 1 << 23, shape, generator=generator, device=device)
    return k.to(torch.float32) * 2.0**-23


@_toy("8gaussians")
def eight_gaussians(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """x = s (0.5 eps + 4 c_k), s = 1/sqrt(2) exactly (FFJORD divides by 1.414), k uniform on the 8
    directions: means 2 sqrt(2) c_k on a circle of radius 2 sqrt(2), covariance I/8."""
    centres = 4.0 * torch.tensor(_DIRECTIONS, dtype=torch.float32, device=device)
    k = torch.randint(0, 8, (n,), generator=generator, device=device)
    eps = torch.randn(n, 2, generator=generator, device=device)
    return _S * (0.5 * eps + centres[k])


def _spiral_arm(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """One jittered spiral arm before scaling and noise: t = sqrt(U) 3 pi (up to 540 degrees),
    (-t cos t + 0.5 U1, t sin t + 0.5 U2)."""
    u = torch.rand(n, 3, generator=generator, device=device)
    t = u[:, 0].sqrt() * (3.0 * math.pi)
    return torch.stack((-t * t.cos(), t * t.sin()), dim=1) + 0.5 * u[:, 1:]


@_toy("spiral")
def spiral(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """A single arm: arm / 3 + 0.1 eps (the repo's extra dataset; its debug prints are dropped)."""
    arm = _spiral_arm(n, generator, device)
    return arm / 3.0 + 0.1 * torch.randn(n, 2, generator=generator, device=device)


@_toy("2spirals")
def two_spirals(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """[arm; -arm] / 3 + 0.1 eps: the second arm is the point reflection of the *same* jittered
    points, and the noise is drawn afterwards, independently per point.

    Rows are in the original's order (first arm, then its reflection), not shuffled; training
    shuffles anyway. For odd n the original would return n - 1 points; here the arm has
    ceil(n / 2) points and the reflection of its last point is dropped, so exactly n come back.
    """
    arm = _spiral_arm((n + 1) // 2, generator, device)
    x = torch.cat((arm, -arm))[:n] / 3.0
    return x + 0.1 * torch.randn(n, 2, generator=generator, device=device)


@_toy("checkerboard")
def checkerboard(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """x1 ~ U[-2, 2); x2 = U - 2B + (floor(x1) mod 2), B ~ Bernoulli(1/2); output 2 (x1, x2).

    U - 2B lies in [-2, -1) or [0, 1), whose floors are even, so adding the parity of floor(x1)
    gives floor(x1) and floor(x2) the same parity: uniform (density 1/32) on the 8 of the 16 2x2
    cells of [-4, 4)^2 where floor(x/2) has equal parity in both coordinates. The uniforms are
    on a 2^-23 grid (see ``_uniform_23bit``) so that no point rounds onto a neighbouring cell.
    """
    x1 = 4.0 * _uniform_23bit((n,), generator, device) - 2.0
    b = torch.randint(0, 2, (n,), generator=generator, device=device)
    x2 = _uniform_23bit((n,), generator, device) - 2.0 * b + torch.remainder(x1.floor(), 2.0)
    return 2.0 * torch.stack((x1, x2), dim=1)


@_toy("rings")
def rings(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """4 circles of radius (1, 0.75, 0.5, 0.25) * 3 on deterministic angle grids, resampled with
    replacement, plus N(0, 0.08^2) noise per coordinate.

    The outer three circles hold floor(n/4) grid points each and the innermost the rest; circle c
    with m_c points has angles 2 pi j / m_c, j = 0..m_c-1 (endpoint excluded). Resampling n rows
    of that grid uniformly with replacement is the same as drawing n grid indices, so only the
    drawn points are built.
    """
    q = n // 4
    row = torch.randint(0, n, (n,), generator=generator, device=device)
    # Row r of the grid lies on circle min(r // q, 3) (circle 3 is the innermost).
    circle = (row // q).clamp_(max=3) if q > 0 else torch.full_like(row, 3)
    j = row - circle * q
    m = torch.where(circle == 3, n - 3 * q, q)
    angle = (2.0 * math.pi) * j.to(torch.float32) / m.to(torch.float32)
    radius = 3.0 * (1.0 - 0.25 * circle.to(torch.float32))
    x = radius.unsqueeze(1) * torch.stack((angle.cos(), angle.sin()), dim=1)
    return x + 0.08 * torch.randn(n, 2, generator=generator, device=device)


@_toy("pinwheel")
def pinwheel(n: int, generator: torch.Generator, device: Device) -> Tensor:
    """5 arms: f_r ~ N(1, 0.3^2), f_t ~ N(0, 0.1^2), phi = 2 pi k / 5 + 0.25 exp(f_r), and the point
    2 (f_r cos phi + f_t sin phi, -f_r sin phi + f_t cos phi), i.e. (f_r, f_t) rotated by -phi;
    rows randomly permuted.

    The original drew pinwheel from an *unseeded* ``np.random.RandomState()``, so it was not
    reproducible even with ``--seed``; here it uses the given generator like the other datasets.
    The original returns 5 floor(n/5) points; here class k takes the rows with index = k mod 5, so
    exactly n points come back (the same class sizes when 5 divides n).
    """
    k = torch.arange(n, device=device) % 5
    f = torch.randn(n, 2, generator=generator, device=device) * torch.tensor([0.3, 0.1], device=device)
    f_r = f[:, 0] + 1.0
    f_t = f[:, 1]
    phi = (2.0 * math.pi / 5.0) * k.to(torch.float32) + 0.25 * f_r.exp()
    cos, sin = phi.cos(), phi.sin()
    x = 2.0 * torch.stack((f_r * cos + f_t * sin, -f_r * sin + f_t * cos), dim=1)
    return x[torch.randperm(n, generator=generator, device=device)]


def sample_toy2d(name: str, n: int, seed: int, device: Device = "cpu") -> Tensor:
    """(n, 2) float32 points of dataset ``name`` on ``device``, drawn from a generator seeded with
    ``seed`` (the same seed on the same device type gives the same points)."""
    generate = recipe(name)
    n = positive_int(n, "n")
    return generate(n, make_generator(seed, device), device)


@functools.lru_cache(maxsize=None)
def _eight_means(device: torch.device, dtype: torch.dtype) -> Tensor:
    # 2 sqrt(2) c_k = 4 s c_k: (+-2 sqrt(2), 0), (0, +-2 sqrt(2)), (+-2, +-2). Cached per device and
    # dtype because the density is evaluated every iteration when it is a training metric.
    return torch.tensor(_DIRECTIONS, dtype=torch.float64).mul(4.0 * _S).to(device=device, dtype=dtype)


_LOG_NORMAL_CONST = math.log(4.0 / math.pi)  # log N(mu; mu, I/8) in 2D = -log(2 pi / 8)


def eight_gaussians_log_density(x: Tensor) -> Tensor:
    """(B,) log p_true(x) = -log 8 + logsumexp_k [log(4/pi) - 4 ||x - mu_k||^2] (docs/fce.md §1,
    ``util.MixedGaussian``): the equal-weight mixture of N(mu_k, I/8), mu_k = 2 sqrt(2) c_k."""
    d2 = (x.unsqueeze(-2) - _eight_means(x.device, x.dtype)).square().sum(-1)
    return torch.logsumexp(-4.0 * d2, dim=-1) + (_LOG_NORMAL_CONST - math.log(8.0))


LOG_DENSITIES: dict[str, Callable[[Tensor], Tensor]] = {"8gaussians": eight_gaussians_log_density}


class Points:
    """2D points resident on a device, batched by ``genlab.data.batches.ShuffledBatches`` and
    ``SequentialBatches`` like an image dataset: ``batch(index)`` returns ``{"x": x[index]}``, plus
    ``"log_density"``, the true log density at those points, when it was given (the evaluation
    sample of a dataset with a closed form, scored once instead of at every evaluation)."""

    def __init__(self, x: Tensor, name: str = "points", log_density: Tensor | None = None):
        if x.ndim != 2:
            raise ValueError(f"points must be an (N, D) tensor, got shape {tuple(x.shape)}")
        if log_density is not None and log_density.shape != x.shape[:1]:
            raise ValueError(f"log_density must have shape ({len(x)},), got {tuple(log_density.shape)}")
        self.x, self.name, self.log_density = x, name, log_density

    @property
    def device(self) -> torch.device:
        return self.x.device

    def __len__(self) -> int:
        return self.x.shape[0]

    def batch(self, index: Tensor | slice) -> dict[str, Tensor]:
        if self.log_density is None:
            return {"x": self.x[index]}
        return {"x": self.x[index], "log_density": self.log_density[index]}

    def to(self, device: Device) -> "Points":
        moved = None if self.log_density is None else self.log_density.to(device)
        return Points(self.x.to(device), self.name, moved)

    def subset(self, index: Tensor) -> "Points":
        index = torch.as_tensor(index, device=self.device)
        return Points(self.x[index], self.name, None if self.log_density is None else self.log_density[index])

    def __repr__(self) -> str:
        return f"Points({self.name!r}, n={len(self)}, device={self.device})"


@dataclass
class Toy2D(DataParts):
    """A toy dataset's training set, its held-out evaluation sample (``val``, also ``eval``) and, where
    it has one, its true log density (``None`` otherwise: ask ``log_density is not None`` before
    scoring against it)."""

    log_density: Callable[[Tensor], Tensor] | None = None
    seed: int = 0  # of the training set; the evaluation sample's is eval_seed(seed)

    @property
    def eval(self) -> Points:
        return self.val


def eval_seed(seed: int) -> int:
    """The seed of the evaluation sample: a fixed function of the training seed, never equal to it."""
    return (seed + _EVAL_SEED_OFFSET) % (1 << 64)


def load_toy2d(name: str, n_train: int, n_eval: int, seed: int, device: Device = "cpu") -> Toy2D:
    """Draw the training set (seed ``seed``) and the evaluation sample (seed ``eval_seed(seed)``,
    so a metric on it is measured on points that are not the training set) on ``device``.

    The data generator is separate from the global RNG, so seeding the models with
    ``torch.manual_seed`` does not change the data (unlike the original, docs/fce.md §3.4).
    """
    generate = recipe(name)
    n_train = positive_int(n_train, "n_train")
    n_eval = positive_int(n_eval, "n_eval")
    device = torch.device(device)
    train = generate(n_train, make_generator(seed, device), device)
    held_out = generate(n_eval, make_generator(eval_seed(seed), device), device)
    log_density = LOG_DENSITIES.get(name)
    return Toy2D(
        name=name,
        train=Points(train, f"{name}/train"),
        val=Points(held_out, f"{name}/eval", None if log_density is None else log_density(held_out)),
        info={"input_shape": [2], "n_train": n_train, "n_eval": n_eval, "data_seed": seed},
        model_inputs={"input_shape": [2]},
        log_density=log_density,
        seed=seed,
    )


__all__ = [
    "LOG_DENSITIES",
    "Points",
    "Toy2D",
    "eight_gaussians_log_density",
    "eval_seed",
    "load_toy2d",
    "make_generator",
    "recipe",
    "sample_toy2d",
    "toy_names",
]
