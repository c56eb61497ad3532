"""Containers shared by every image dataset with known generative factors.

Images are kept compactly (binary images as packed bits, 8 pixels a byte; other images as uint8)
and turned into float batches only when a batch is drawn, on the device that holds them. A batch
is a dict: ``x`` (B, C, H, W) float in [0, 1] and ``factors`` (B, K) float factor values.

Images too large to hold (MPI3D: 12.7 GB) stay on disk in a :class:`LazyImages` store, which reads
the rows of each batch when it is drawn and hands them to its device; :func:`resident_budget` is
the rule by which loaders with ``resident="auto"`` choose between the two.
"""

from __future__ import annotations

import logging

import os
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

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


class LazyImages:
    """Images read on demand: a stand-in for a resident (N, C, H, W) uint8 tensor.

    ``fetch(rows)`` returns the uint8 images (len(rows), C, H, W) of the given rows as a numpy array
    (or CPU tensor); it is always called with strictly increasing, unique, in-range int64 rows (what
    h5py fancy indexing needs, and what lets readers merge neighbouring rows into one read).
    Indexing sorts and de-duplicates the requested rows, fetches them once and puts them back in the
    requested order, repeats included, then moves the batch to :attr:`device`. Indexing takes a
    tensor (on any device), a numpy array, a list, a slice or an int, like a tensor's first axis.

    ``to(device)`` returns a store reading the same source that delivers its batches on ``device``;
    :meth:`materialize` reads everything (or some rows) into a resident tensor, chunk by chunk.
    ``source`` is the object read from (an ``np.memmap``, an ``h5py.Dataset``, ...), for inspection.
    """

    def __init__(
        self,
        n: int,
        item_shape: Sequence[int],
        fetch: Callable[[np.ndarray], "np.ndarray | torch.Tensor"],
        device: torch.device | str = "cpu",
        source: object = None,
        description: str = "",
    ):
        self._n = int(n)
        self.item_shape = tuple(int(s) for s in item_shape)
        self.fetch = fetch
        self._device = torch.device(device)
        self.source = source
        self.description = description

    def __len__(self) -> int:
        return self._n

    @property
    def shape(self) -> torch.Size:
        return torch.Size((self._n, *self.item_shape))

    @property
    def dtype(self) -> torch.dtype:
        return torch.uint8

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def nbytes(self) -> int:
        """Bytes the images would take resident."""
        return self._n * int(np.prod(self.item_shape))

    def __repr__(self) -> str:
        what = f", {self.description}" if self.description else ""
        return f"LazyImages(shape={tuple(self.shape)}, device={self.device}{what})"

    def to(self, device: torch.device | str) -> "LazyImages":
        device = torch.device(device)
        if device == self._device:
            return self
        return LazyImages(self._n, self.item_shape, self.fetch, device, self.source, self.description)

    def _rows(self, index) -> np.ndarray:
        if isinstance(index, slice):
            return np.arange(*index.indices(self._n), dtype=np.int64)
        if isinstance(index, torch.Tensor):
            index = index.detach().cpu().numpy()
        rows = np.asarray(index)
        if rows.dtype == bool:
            if rows.shape != (self._n,):
                raise IndexError(f"boolean index of shape {rows.shape} for {self._n} images")
            return np.flatnonzero(rows)
        if rows.dtype.kind not in "iu":
            raise IndexError(f"images can only be indexed by integers, slices or booleans, got {rows.dtype}")
        rows = rows.astype(np.int64, copy=False).reshape(-1)
        if rows.size and (rows.min() < -self._n or rows.max() >= self._n):
            bad = rows[(rows < -self._n) | (rows >= self._n)][0]
            raise IndexError(f"index {bad} is out of bounds for {self._n} images")
        return np.where(rows < 0, rows + self._n, rows)

    def read(self, rows: np.ndarray) -> torch.Tensor:
        """(len(rows), C, H, W) uint8 CPU tensor of any in-range rows, in the given order."""
        rows = np.asarray(rows, dtype=np.int64)
        if not rows.size:
            return torch.empty((0, *self.item_shape), dtype=torch.uint8)
        if (np.diff(rows) > 0).all():
            out = self.fetch(rows)
        else:
            unique, inverse = np.unique(rows, return_inverse=True)
            got = self.fetch(unique)
            out = got[torch.from_numpy(inverse)] if isinstance(got, torch.Tensor) else got[inverse]
        out = torch.as_tensor(np.ascontiguousarray(out) if isinstance(out, np.ndarray) else out)
        if out.dtype != torch.uint8 or tuple(out.shape) != (len(rows), *self.item_shape):
            raise RuntimeError(
                f"LazyImages fetch returned {tuple(out.shape)} {out.dtype}, expected "
                f"{(len(rows), *self.item_shape)} torch.uint8"
            )
        return out

    def __getitem__(self, index) -> torch.Tensor:
        if isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        out = self.read(self._rows(index))
        return out if self._device.type == "cpu" else out.to(self._device)

    def materialize(self, rows: np.ndarray | None = None, chunk: int = 4096) -> torch.Tensor:
        """A resident (len(rows), C, H, W) uint8 tensor on :attr:`device` of ``rows`` (default: all),
        read ``chunk`` rows at a time (peak extra memory: one chunk)."""
        rows = np.arange(self._n, dtype=np.int64) if rows is None else self._rows(rows)
        out = torch.empty((len(rows), *self.item_shape), dtype=torch.uint8, device=self._device)
        for start in range(0, len(rows), chunk):
            out[start : start + chunk] = self.read(rows[start : start + chunk]).to(self._device)
        return out


def available_memory() -> int:
    """Bytes of RAM available to new allocations (``MemAvailable`` of /proc/meminfo; elsewhere the
    free pages reported by ``os.sysconf``)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def resident_budget() -> int:
    """Bytes of images that ``resident="auto"`` keeps in memory: half the available RAM, and, when
    CUDA is available (``device=auto`` then trains there), at most half the free GPU memory too."""
    budget = available_memory() // 2
    if torch.cuda.is_available():
        free, _ = torch.cuda.mem_get_info()
        budget = min(budget, free // 2)
    return int(budget)


def choose_resident(resident: bool | str, nbytes: int) -> bool:
    """The loaders' ``resident`` option: ``True`` (load the images into memory), ``False`` (read
    them on demand, :class:`LazyImages`) or ``"auto"`` (resident iff ``nbytes`` is at most
    :func:`resident_budget`)."""
    if isinstance(resident, (bool, np.bool_)):
        return bool(resident)
    if resident == "auto":
        return nbytes <= resident_budget()
    raise ValueError(f"resident must be true, false or 'auto', got {resident!r}")


def standin_images(name: str, classes: np.ndarray, render, image_shape, resident: bool | str = "auto"):
    """Synthetic stand-in images of ``classes`` (``render(classes) -> uint8 (B, C, H, W)``), rendered
    now if they fit (``choose_resident``) or per batch; logs loudly that they are not the real data."""
    lazy = LazyImages(len(classes), tuple(image_shape), lambda rows: render(classes[rows]),
                      description=f"{name} synthetic stand-in, rendered on demand")  # fmt: skip
    keep = choose_resident(resident, lazy.nbytes)
    logging.getLogger(f"genlab.data.{name}").warning(
        "%s: using a synthetic STAND-IN (source=standin), not the real images: %d images, %s",
        name, len(classes), "rendered now" if keep else "rendered per batch",
    )  # fmt: skip
    return lazy.materialize() if keep else lazy


@dataclass
class FactorImages:
    """N images with their factor classes and values, all on one device.

    ``images`` is the storage: (M, ceil(C*H*W/8)) uint8 packed bits when ``bits`` is true (binary
    data such as dSprites: 737,280 images take 377 MB instead of 3 GB), else (M, C, H, W) uint8,
    either a resident tensor or a :class:`LazyImages` store read batch by batch. A subset shares the
    storage and keeps the ``rows`` it holds, so the train/validation/test splits of a dataset cost
    index arrays, not copies of the images.
    """

    images: torch.Tensor | LazyImages
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

    @property
    def lazy(self) -> bool:
        """Whether the images are read on demand (:class:`LazyImages`) rather than resident."""
        return isinstance(self.images, LazyImages)

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
    images: np.ndarray | torch.Tensor | LazyImages,
    classes: np.ndarray,
    values: np.ndarray,
    image_shape: Sequence[int],
    factor_names: Sequence[str],
    bits: bool,
) -> FactorImages:
    """FactorImages from numpy arrays (images already a tensor or a :class:`LazyImages` store are kept)."""
    if not isinstance(images, (LazyImages, torch.Tensor)):
        images = torch.from_numpy(np.ascontiguousarray(images))
    return FactorImages(
        images=images,
        classes=torch.from_numpy(np.asarray(classes, dtype=np.int64)),
        values=torch.from_numpy(np.asarray(values, dtype=np.float32)),
        image_shape=tuple(int(s) for s in image_shape),
        factor_names=tuple(factor_names),
        bits=bits,
    )
