"""Containers shared by every image dataset with known generative factors.

Images are kept compactly (binary images as packed bits, 8 pixels a byte; other images as uint8)
and turned into float batches only when a batch is drawn, on the device that holds them. A batch
is a dict: ``x`` (B, C, H, W) float in [0, 1] and ``factors`` (B, K) float factor values.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Sequence

import numpy as np
import torch


@dataclass(frozen=True)
class FactorGrid:
    """The full Cartesian grid of a dataset's generative factors (last factor varies fastest)."""

    names: tuple[str, ...]
    values: tuple[np.ndarray, ...]  # possible values of each factor, in class order

    @property
    def sizes(self) -> tuple[int, ...]:
        return tuple(len(v) for v in self.values)

    def __len__(self) -> int:
        return int(np.prod(self.sizes))

    def classes(self) -> np.ndarray:
        """(N, K) int64 class indices of every grid point, in dataset order."""
        return np.stack(np.unravel_index(np.arange(len(self)), self.sizes), axis=1).astype(np.int64)

    def values_of(self, classes: np.ndarray) -> np.ndarray:
        """(N, K) float64 factor values of (N, K) class indices."""
        return np.stack([self.values[k][classes[:, k]] for k in range(len(self.names))], axis=1)

    def index_of(self, classes: np.ndarray) -> np.ndarray:
        """Row of each class vector in the full grid (row-major, last factor fastest)."""
        return np.ravel_multi_index(tuple(np.asarray(classes).T), self.sizes)

    def subgrid(self, strides: Sequence[int]) -> "FactorGrid":
        """Every ``stride``-th value of each factor (class indices 0, s, 2s, ...)."""
        return FactorGrid(self.names, tuple(v[::s] for v, s in zip(self.values, strides)))


@dataclass
class FactorImages:
    """N images with their factor classes and values, all on one device.

    ``images`` is the storage: (M, ceil(C*H*W/8)) uint8 packed bits when ``bits`` is true (binary
    data such as dSprites: 737,280 images take 377 MB instead of 3 GB), else (M, C, H, W) uint8.
    A subset shares the storage and keeps the ``rows`` it holds, so the train/validation/test
    splits of a dataset cost index arrays, not copies of the images.
    """

    images: torch.Tensor
    classes: torch.Tensor  # (N, K) int64
    values: torch.Tensor  # (N, K) float32
    image_shape: tuple[int, int, int]
    factor_names: tuple[str, ...]
    bits: bool
    rows: torch.Tensor | None = None  # rows of ``images`` in this set (None: all of them, in order)
    _shifts: torch.Tensor = field(init=False, repr=False)

    def __post_init__(self):
        n = len(self.images) if self.rows is None else len(self.rows)
        if not (n == len(self.classes) == len(self.values)):
            raise ValueError("images, classes and values must have the same length")
        self._shifts = torch.arange(7, -1, -1, dtype=torch.uint8, device=self.images.device)

    def __len__(self) -> int:
        return len(self.classes)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def stored(self, index: torch.Tensor | slice) -> torch.Tensor:
        """The stored (packed or uint8) images of the given rows of this set."""
        return self.images[index if self.rows is None else self.rows[index]]

    def pixels(self, index: torch.Tensor | slice) -> torch.Tensor:
        """(B, C, H, W) float32 images in [0, 1] for the given rows."""
        rows = self.stored(index)
        if self.bits:
            n = int(np.prod(self.image_shape))
            # unpack MSB first, as numpy.packbits packs
            flat = (rows.unsqueeze(-1) >> self._shifts).bitwise_and_(1).view(len(rows), -1)[:, :n]
            return flat.view(len(rows), *self.image_shape).to(torch.float32)
        return rows.to(torch.float32).div_(255.0)

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        return {"x": self.pixels(index), "factors": self.values[index]}

    def subset(self, index: torch.Tensor | np.ndarray) -> "FactorImages":
        """A view of the given rows (sharing the image storage)."""
        index = torch.as_tensor(index, device=self.images.device)
        rows = index if self.rows is None else self.rows[index]
        return replace(self, rows=rows, classes=self.classes[index], values=self.values[index])

    def to(self, device: torch.device | str) -> "FactorImages":
        return replace(
            self,
            images=self.images.to(device),
            classes=self.classes.to(device),
            values=self.values.to(device),
            rows=None if self.rows is None else self.rows.to(device),
        )


def from_numpy(
    images: np.ndarray,
    classes: np.ndarray,
    values: np.ndarray,
    image_shape: Sequence[int],
    factor_names: Sequence[str],
    bits: bool,
) -> FactorImages:
    return FactorImages(
        images=torch.from_numpy(np.ascontiguousarray(images)),
        classes=torch.from_numpy(np.asarray(classes, dtype=np.int64)),
        values=torch.from_numpy(np.asarray(values, dtype=np.float32)),
        image_shape=tuple(int(s) for s in image_shape),
        factor_names=tuple(factor_names),
        bits=bits,
    )


def sample(data: FactorImages, n: int | None, seed: int = 0) -> FactorImages:
    """A seeded random subset of ``n`` rows (all rows when ``n`` is None or at least ``len(data)``)."""
    if n is None or n >= len(data):
        return data
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(data), generator=g)[:n].sort().values
    return data.subset(index.to(data.device))
