"""The Gaussian-mixture toys of MIM (Livne, Swersky & Fleet 2019, docs/mim.md §1.1-1.3), drawn
afresh for every batch.

A :class:`GaussianMixture` has K equally weighted components with diagonal covariances: ``means``
and ``stds`` are (K, D) tensors. It samples on its generator's device (the component uniformly,
then ``mean + std * eps``) and has a closed-form ``log_prob``, so the data entropy H(P_x) and the
Bayes-optimal component posterior are known up to Monte Carlo error.

Five toys are registered in ``genlab.data.DATASETS`` as datasets of kind ``stream`` (see
``genlab.data.streams``), under the original's names:

- ``toy4``: 5 components in 2-D, std 0.25, one mean at the origin and four on the unit circle at 0,
  72, 144 and 216 degrees (H(P_x) ~ 1.56 nats, Bayes component accuracy ~ 0.957);
- ``toy4_20``: the same 5 components lifted to 20-D, badly scaled on purpose (H(P_x) ~ 2.26 nats);
- ``toyMIM``, ``toyVAE``, ``toyAE``: one small component per lit pixel of a bitmap of the word
  (60, 64 and 46 components in 2-D).

Each builder returns ``DataParts`` whose ``train`` and ``test`` are independent
:class:`MixtureStream` objects of the same distribution, of nominal length ``n`` = 10,000 (the
original's dataset length: 78 batches of 128 per pass with ``drop_last``); the randomness of every
batch comes from the generator the caller passes to ``draw``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.errors import ConfigError
from genlab.registry import positive_int

Device = torch.device | str

N_PER_PASS = 10_000  # the original's nominal dataset length

_LOG_2PI = math.log(2.0 * math.pi)


class GaussianMixture:
    """An equal-weight mixture of K diagonal Gaussians N(means[k], diag(stds[k]^2)) in D dimensions
    (docs/mim.md §1.1-1.3)."""

    def __init__(self, means: Tensor, stds: Tensor, name: str = "mixture"):
        means, stds = torch.as_tensor(means, dtype=torch.float32), torch.as_tensor(stds, dtype=torch.float32)
        if means.ndim != 2 or means.shape != stds.shape:
            raise ValueError(f"means and stds must be (K, D) tensors of one shape, got {tuple(means.shape)} and {tuple(stds.shape)}")
        if not bool((stds > 0).all()):
            raise ValueError("every standard deviation must be positive")
        if stds.device != means.device:
            stds = stds.to(means.device)
        self.means, self.stds, self.name = means, stds, name

    @property
    def n_components(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    @property
    def device(self) -> torch.device:
        return self.means.device

    def to(self, device: Device) -> "GaussianMixture":
        return GaussianMixture(self.means.to(device), self.stds.to(device), self.name)

    def _on(self, device: torch.device, dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        return self.means.to(device=device, dtype=dtype), self.stds.to(device=device, dtype=dtype)

    def sample(self, n: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``n`` points on ``generator``'s device: (x (n, D) float32, y (n,) int64 component ids).
        The components are drawn first (``randint``), then the standard normal noise (``randn``)."""
        device = generator.device
        means, stds = self._on(device)
        y = torch.randint(0, self.n_components, (n,), generator=generator, device=device)
        eps = torch.randn(n, self.dim, generator=generator, device=device)
        return means[y] + stds[y] * eps, y

    def component_log_prob(self, x: Tensor) -> Tensor:
        """(n, K) log N(x; means[k], diag(stds[k]^2)), in ``x``'s dtype and on its device."""
        means, stds = self._on(x.device, x.dtype)
        z = (x.unsqueeze(-2) - means) / stds
        return -0.5 * z.square().sum(-1) - stds.log().sum(-1) - 0.5 * self.dim * _LOG_2PI

    def log_prob(self, x: Tensor) -> Tensor:
        """(n,) log p(x) = logsumexp_k log N(x; means[k], diag(stds[k]^2)) - log K."""
        return torch.logsumexp(self.component_log_prob(x), dim=-1) - math.log(self.n_components)

    def posterior(self, x: Tensor) -> Tensor:
        """(n, K) p(k | x): the Bayes-optimal component posterior."""
        return torch.softmax(self.component_log_prob(x), dim=-1)

    def entropy_mc(self, n: int, generator: torch.Generator, chunk: int = 65_536) -> float:
        """The Monte Carlo estimate -mean log p(x) of H(P_x) in nats, from ``n`` samples drawn in
        chunks of ``chunk`` (the density scored in float64)."""
        total, left = 0.0, n
        while left > 0:
            m = min(chunk, left)
            x, _ = self.sample(m, generator)
            total -= float(self.log_prob(x.double()).sum())
            left -= m
        return total / n

    def __repr__(self) -> str:
        return f"GaussianMixture({self.name!r}, K={self.n_components}, D={self.dim}, device={self.device})"


class MixtureStream:
    """A :class:`~genlab.data.streams.Stream` of a mixture: ``len`` is the nominal pass length
    ``n``; ``draw`` returns ``batch_size`` fresh samples ``{"x", "y"}`` (``y`` the component) on the
    stream's device, all randomness from ``generator`` (the pass and position are not used)."""

    def __init__(self, mixture: GaussianMixture, n: int = N_PER_PASS, device: Device = "cpu"):
        self.mixture = mixture.to(device)
        self.n = positive_int(n, "n")

    @property
    def device(self) -> torch.device:
        return self.mixture.device

    def __len__(self) -> int:
        return self.n

    def draw(self, epoch: int, b: int, batch_size: int, generator: torch.Generator) -> dict[str, Tensor]:
        x, y = self.mixture.sample(batch_size, generator)
        return {"x": x.to(self.device), "y": y.to(self.device)}

    def log_prob(self, x: Tensor) -> Tensor:
        return self.mixture.log_prob(x)

    def __repr__(self) -> str:
        return f"MixtureStream({self.mixture.name!r}, n={self.n}, device={self.device})"


def _toy4_means() -> Tensor:
    """(5, 2): the origin, then (cos, sin)(2 pi i / 5) for i = 0..3. The original counts the angle
    with the centre as one of the five, so the four outer modes sit at 0, 72, 144 and 216 degrees
    and the slot at 288 degrees stays empty: not a regular pentagon, and kept as the benchmark."""
    angle = 2.0 * math.pi * torch.arange(4, dtype=torch.float64) / 5.0
    outer = torch.stack((angle.cos(), angle.sin()), dim=1)
    return torch.cat((torch.zeros(1, 2, dtype=torch.float64), outer))


def toy4() -> GaussianMixture:
    """5 components in 2-D with std 0.25: toy4's means (``_toy4_means``, docs/mim.md §1.1)."""
    means = _toy4_means()
    return GaussianMixture(means, torch.full_like(means, 0.25), "toy4")


def toy4_20() -> GaussianMixture:
    """5 components in 20-D with std 0.25: the 5 x 20 means filled row-major with linspace(-50, 50,
    100), then their first two columns replaced by toy4's means (docs/mim.md §1.2). The data are
    badly scaled (mean norms ~109 against std 0.25), as in the original; kept as the benchmark."""
    means = torch.linspace(-50.0, 50.0, 100, dtype=torch.float64).reshape(5, 20)
    means[:, :2] = _toy4_means()
    return GaussianMixture(means, torch.full_like(means, 0.25), "toy4_20")


# The text glyphs (docs/mim.md §1.3): bitmaps of H = 11 rows, of which only rows 3..8 (below) have
# lit pixels; '#' is lit. One component per lit pixel.
_GLYPH_HEIGHT = 11
_GLYPH_FIRST_ROW = 3
_GLYPHS: dict[str, tuple[str, ...]] = {
    "toyMIM": (
        "#...#.####.##...#.",
        "##.##..##...##.##.",
        "##.##..##...##.##.",
        "#####..##...#####.",
        "#.#.#..##...#.#.#.",
        "#.#.#.####.##.#.#.",
    ),
    "toyVAE": (
        "##.##.####.######.",
        "##.##..###..##....",
        ".#.#...#.#..####..",
        ".###..#####.##....",
        ".###..##.##.##.##.",
        "..#..###.########.",
    ),
    "toyAE": (
        "####.######.",
        ".###..##....",
        ".#.#..####..",
        "#####.##....",
        "##.##.##.##.",
        "##.########.",
    ),
}


def glyph(name: str) -> GaussianMixture:
    """One component per lit pixel (row r, column c) of the bitmap of width W and height H = 11:
    mean (3.6 (c / W - 0.45), 3.6 ((H - 1 - r) / H - 0.45)), std (1 / W, 1 / H) (docs/mim.md §1.3)."""
    rows = _GLYPHS[name]
    width, height = len(rows[0]), _GLYPH_HEIGHT
    lit = torch.tensor([[ch == "#" for ch in row] for row in rows])
    r, c = lit.nonzero(as_tuple=True)
    r = (r + _GLYPH_FIRST_ROW).to(torch.float64)
    c = c.to(torch.float64)
    means = 3.6 * torch.stack((c / width - 0.45, (height - 1 - r) / height - 0.45), dim=1)
    stds = torch.tensor([1.0 / width, 1.0 / height], dtype=torch.float64).expand_as(means)
    return GaussianMixture(means, stds, name)


_FACTORIES = {
    "toy4": toy4,
    "toy4_20": toy4_20,
    **{name: (lambda name=name: glyph(name)) for name in _GLYPHS},
}
MIXTURES: list[str] = list(_FACTORIES)

_DESCRIPTIONS = {
    "toy4": "MIM toy4: 5 2-D Gaussians (std 0.25), the origin and 4 unit-circle modes at 0/72/144/216 degrees",
    "toy4_20": "MIM toy4_20: toy4's 5 Gaussians in 20-D (std 0.25), other dims on a linspace(-50, 50) grid, badly scaled",
    "toyMIM": "MIM toyMIM: 60 small 2-D Gaussians, one per lit pixel of the word 'MIM'",
    "toyVAE": "MIM toyVAE: 64 small 2-D Gaussians, one per lit pixel of the word 'VAE'",
    "toyAE": "MIM toyAE: 46 small 2-D Gaussians, one per lit pixel of the word 'AE'",
}


def mixture(name: str) -> GaussianMixture:
    """The mixture of toy ``name`` on the CPU; unknown names list the registered datasets."""
    if name not in _FACTORIES:
        DATASETS.get(name)  # unknown: fails listing the valid names
        raise ConfigError(f"dataset {name!r} is not a Gaussian-mixture toy; mixtures: {', '.join(MIXTURES)}")
    return _FACTORIES[name]()


def _register(name: str) -> None:
    k, d = mixture(name).means.shape

    def build(n: int = N_PER_PASS, *, device: Device = "cpu") -> DataParts:
        """Independent training and test streams of ``n`` examples a nominal pass."""
        mix = mixture(name)
        return DataParts(
            name,
            train=MixtureStream(mix, n, device),
            test=MixtureStream(mix, n, device),
            info={"input_shape": [d], "n_per_pass": positive_int(n, "n"), "components": k},
            model_inputs={"input_shape": [d], "n_classes": k},
        )

    DATASETS.register(name)(
        DatasetSpec(name, "stream", build, (d,), description=_DESCRIPTIONS[name], tiny={"n": 1280}, inputs={"n_classes": k})
    )


for _name in MIXTURES:
    _register(_name)


__all__ = ["MIXTURES", "N_PER_PASS", "GaussianMixture", "MixtureStream", "glyph", "mixture", "toy4", "toy4_20"]
