"""3DShapes (DeepMind): a reader of the real ``3dshapes.h5`` and a synthetic stand-in for smoke runs.

The real file (``3dshapes.h5``, repository google-deepmind/3d-shapes, GCS bucket ``3d-shapes``;
docs/disent.md §1.2) is an HDF5 file with two root datasets: ``images`` uint8
(480000, 64, 64, 3) RGB, height-width-channel, and ``labels`` float64 (480000, 6), the factor values
of each image in the columns floor_hue, wall_hue, object_hue, scale, shape, orientation. The scenes
were rendered with MuJoCo and cannot be re-rendered here.

Factors (column order of the file): floor_hue, wall_hue, object_hue (10 hues each, 0.0..0.9),
scale (``linspace(0.75, 1.25, 8)``), shape (0 cube, 1 cylinder, 2 sphere, 3 capsule/"pill"),
orientation (``linspace(-30, 30, 15)``, degrees). In the file, orientation varies fastest:
row ``((((floor*10 + wall)*10 + object)*8 + scale)*4 + shape)*15 + orientation``. The reader does
not rely on that order: the class of every row is rebuilt from its labels (and checked to lie on
the grid), and the factor values are those of the grid (equal to the file's labels up to float
rounding).

Images are (3, 64, 64) uint8 (channels first), either resident (5.9 GB for the whole file) or read
from the HDF5 file batch by batch (:class:`~genlab.data.base.LazyImages`); ``resident="auto"``
chooses by :func:`~genlab.data.base.resident_budget`. Lazy reading merges neighbouring rows into one
slice read; in a chunked, compressed file every row read decompresses its whole chunk, so random
batches are slow there: prefer resident loading for such a file.

``source="standin"`` renders a **synthetic stand-in** instead (:func:`render_standin`): not the real
images, only their shapes, dtype and factor grid, for smoke runs without the file.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np

from genlab.data.base import FactorGrid, FactorImages, LazyImages, choose_resident, from_numpy, standin_images
from genlab.data.files import DataFile, check_strides, strided_classes
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.errors import CorruptFile

log = logging.getLogger(__name__)

FILENAME = "3dshapes.h5"
FACTOR_NAMES = ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
GRID = FactorGrid(
    FACTOR_NAMES,
    (
        np.arange(10) / 10,
        np.arange(10) / 10,
        np.arange(10) / 10,
        np.linspace(0.75, 1.25, 8),
        np.arange(4, dtype=np.float64),
        np.linspace(-30.0, 30.0, 15),
    ),
)
IMAGE_SHAPE = (3, 64, 64)
FILE_IMAGE_SHAPE = (64, 64, 3)  # as stored: height, width, channel
SOURCES = ("file", "standin")
SOURCE_URL = "https://github.com/google-deepmind/3d-shapes"
FILE = DataFile(
    "3DShapes",
    FILENAME,
    "shapes3d",
    origin=f"DeepMind (google-deepmind/3d-shapes, {SOURCE_URL}) in the GCS bucket 3d-shapes (gs://3d-shapes/{FILENAME})",
    url=f"https://storage.googleapis.com/3d-shapes/{FILENAME}",
    alternative="use dataset.source=standin for a synthetic stand-in (not the real images) for smoke runs",
)
LABEL_TOLERANCE = 1e-3  # a label must lie this close to a grid value (grid spacings are >= 0.07)


def default_path() -> Path:
    return FILE.default_path()


def _bad(path: Path, what: str) -> CorruptFile:
    return FILE.bad(path, what, expected=f"{FILENAME} format: 'images' uint8 (N, 64, 64, 3), 'labels' float (N, 6)")


def classes_from_labels(labels: np.ndarray, path: Path | str = "labels") -> np.ndarray:
    """(N, 6) int64 class indices of (N, 6) factor values; every value must lie on :data:`GRID`."""
    labels = np.asarray(labels, dtype=np.float64)
    classes = np.empty(labels.shape, dtype=np.int64)
    for k, grid_values in enumerate(GRID.values):
        col = labels[:, k]
        # nearest grid value: the grids are sorted, so searchsorted and a look at both neighbours
        hi = np.clip(np.searchsorted(grid_values, col), 1, len(grid_values) - 1)
        lo = hi - 1
        idx = np.where(np.abs(col - grid_values[lo]) <= np.abs(col - grid_values[hi]), lo, hi)
        off = np.abs(col - grid_values[idx])
        bad = ~(off <= LABEL_TOLERANCE)  # also catches NaN
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise _bad(
                Path(path),
                f"'labels' column {k} ({GRID.names[k]}) has value {float(col[row])!r} in row {row}, "
                f"not on the factor grid {np.round(grid_values, 4).tolist()} (docs/disent.md §1.2); "
                f"{int(bad.sum())} row(s) off the grid",
            )
        classes[:, k] = idx
    return classes


# ------------------------------------------------------------------------------------------------
# The real HDF5 file
# ------------------------------------------------------------------------------------------------


def open_h5(path: Path):
    """Open and check the file: ``(h5py.File, images dataset, labels (N, 6) float64)``."""
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise _bad(path, f"not an HDF5 file ({e})") from None
    try:
        present = sorted(f.keys())
        missing = [k for k in ("images", "labels") if k not in f]
        if missing:
            raise _bad(path, f"missing dataset(s) {', '.join(missing)}; found {', '.join(present) or 'none'}")
        images, labels = f["images"], f["labels"]
        if not isinstance(images, h5py.Dataset) or not isinstance(labels, h5py.Dataset):
            raise _bad(path, "'images' and 'labels' must be HDF5 datasets, not groups")
        if images.ndim != 4 or tuple(images.shape[1:]) != FILE_IMAGE_SHAPE:
            raise _bad(path, f"'images' has shape {images.shape}, expected (N, 64, 64, 3)")
        if images.dtype != np.uint8:
            raise _bad(path, f"'images' has dtype {images.dtype}, expected uint8")
        n = images.shape[0]
        if labels.shape != (n, 6):
            columns = ", ".join(FACTOR_NAMES)
            raise _bad(path, f"'labels' has shape {labels.shape}, expected ({n}, 6) (columns {columns})")
        if labels.dtype.kind not in "fiu":
            raise _bad(path, f"'labels' has dtype {labels.dtype}, expected float64")
        return f, images, labels[()].astype(np.float64)
    except BaseException:
        f.close()
        raise


class H5Rows:
    """``fetch`` of a :class:`LazyImages` over an HDF5 ``images`` dataset (N, H, W, C).

    Called with increasing rows of its own index space (``file_rows`` maps them to rows of the file,
    increasing too), it reads runs of neighbouring rows with one slice each (rows at most ``gap``
    apart: within a chunk of a chunked dataset, or 8 rows of contiguous storage) and returns
    (B, C, H, W) uint8.
    """

    def __init__(self, h5file, images, file_rows: np.ndarray | None = None):
        self.h5file, self.images = h5file, images
        self.file_rows = file_rows
        chunks = images.chunks
        self.gap = max(int(chunks[0]) if chunks else 1, 8)

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = rows if self.file_rows is None else self.file_rows[rows]
        out = np.empty((len(rows), IMAGE_SHAPE[0], *FILE_IMAGE_SHAPE[:2]), dtype=np.uint8)
        starts = np.r_[0, np.flatnonzero(np.diff(rows) > self.gap) + 1]
        ends = np.r_[starts[1:], len(rows)]
        for s, e in zip(starts, ends):
            a, b = int(rows[s]), int(rows[e - 1]) + 1
            block = self.images[a:b]
            if b - a != e - s:  # a run with gaps: keep the requested rows
                block = block[rows[s:e] - a]
            out[s:e] = block.transpose(0, 3, 1, 2)
        return out

    def close(self):
        self.h5file.close()


# ------------------------------------------------------------------------------------------------
# Stand-in renderer (synthetic, NOT the real images)
# ------------------------------------------------------------------------------------------------


def hsv_to_rgb(h: np.ndarray, s: float, v: float) -> np.ndarray:
    """(..., 3) float32 RGB in [0, 1] of hues ``h`` in [0, 1) at saturation ``s`` and value ``v``."""
    h = np.asarray(h, dtype=np.float32)[..., None]
    k = np.mod(np.array([5.0, 3.0, 1.0], np.float32) + h * 6, 6)
    return v - v * s * np.clip(np.minimum(k, 4 - k), 0, 1)


_PIX = np.arange(64, dtype=np.float32) + 0.5  # pixel centres
HORIZON = 38  # rows >= HORIZON show the floor (stand-in geometry)


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def render_standin(classes: np.ndarray, chunk: int = 1024) -> np.ndarray:
    """**Stand-in** 3DShapes images (N, 3, 64, 64) uint8 of (N, 6) class indices: synthetic, not the
    real dataset. Deterministic and vectorised: the wall (top, hue of ``wall_hue``, darker left of a
    corner that moves with ``orientation``), the floor (bottom, ``floor_hue``) and an object of
    ``object_hue`` (darker on its right half) standing on the floor, whose size follows ``scale``,
    whose outline follows ``shape`` (square, capped column, disc, capsule) and whose horizontal
    position follows ``orientation``. Every factor combination gives a different image."""
    classes = np.asarray(classes, dtype=np.int64)
    if classes.ndim != 2 or classes.shape[1] != 6:
        raise ValueError(f"classes must be (N, 6), got {classes.shape}")
    if len(classes) and ((classes < 0).any() or (classes >= np.array(GRID.sizes)).any()):
        raise ValueError(f"class indices out of range; sizes are {dict(zip(GRID.names, GRID.sizes))}")
    out = np.empty((len(classes), *IMAGE_SHAPE), dtype=np.uint8)
    for start in range(0, len(classes), chunk):
        _render_chunk(GRID.values_of(classes[start : start + chunk]), out[start : start + chunk])
    return out


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Inside of a unit-size outline; ``dx`` (n, 1, W) and ``dy`` (n, H, 1) pixel offsets / size."""
    adx, ady = np.abs(dx), np.abs(dy)
    if shape == 0:  # cube: square
        return (adx <= 1) & (ady <= 1)
    if shape == 1:  # cylinder: a column with an elliptic top
        cap = (dx / 0.75) ** 2 + ((dy + 0.8) / 0.2) ** 2 <= 1
        return ((adx <= 0.75) & (dy <= 1) & (dy >= -0.8)) | cap
    if shape == 2:  # sphere: disc
        return dx * dx + dy * dy <= 1
    # capsule ("pill"): a vertical column with round ends
    return ((adx <= 0.55) & (ady <= 0.45)) | (dx * dx + (np.maximum(ady - 0.45, 0)) ** 2 <= 0.55**2)


def _render_chunk(values: np.ndarray, out: np.ndarray):
    n = len(values)
    fh, wh, oh, scale, shape, orient = (values[:, k].astype(np.float32) for k in range(6))
    floor = _to_uint8(hsv_to_rgb(fh, 0.85, 0.8))  # (n, 3)
    wall = _to_uint8(hsv_to_rgb(wh, 0.6, 0.95))
    wall_dark = _to_uint8(hsv_to_rgb(wh, 0.6, 0.95 * 0.8))
    obj = _to_uint8(hsv_to_rgb(oh, 1.0, 0.9))
    obj_dark = _to_uint8(hsv_to_rgb(oh, 1.0, 0.9 * 0.75))
    x = _PIX[None, None, :]  # (1, 1, 64) columns
    y = _PIX[None, :, None]  # (1, 64, 1) rows
    is_floor = y >= HORIZON
    left_of_corner = x < (32.0 - 0.6 * orient)[:, None, None]  # (n, 1, 64)
    # object: standing on the floor at row 54, half-size 10 * scale, centre moving with orientation
    r = (10.0 * scale)[:, None, None]
    cx = (32.0 + 0.4 * orient)[:, None, None]
    dx = (x - cx) / r  # (n, 1, 64)
    dy = (y - (54.0 - r)) / r  # (n, 64, 1)
    inside = np.empty((n, 64, 64), dtype=bool)
    shape = shape.astype(np.int64)
    for s in np.unique(shape):
        sel = np.flatnonzero(shape == s)
        inside[sel] = _shape_mask(int(s), dx[sel], dy[sel])
    right_half = dx > 0  # (n, 1, 64)
    for ch in range(3):
        wall_row = np.where(left_of_corner, wall_dark[:, ch, None, None], wall[:, ch, None, None])  # (n, 1, 64)
        np.copyto(out[:, ch], np.where(is_floor, floor[:, ch, None, None], wall_row))
        obj_row = np.where(right_half, obj_dark[:, ch, None, None], obj[:, ch, None, None])  # (n, 1, 64)
        np.copyto(out[:, ch], np.broadcast_to(obj_row, (n, 64, 64)), where=inside)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load(
    path: str | Path | None = None,
    source: str = "file",
    strides: Sequence[int] | None = None,
    resident: bool | str = "auto",
) -> FactorImages:
    """3DShapes as :class:`FactorImages` (CPU; classes and values in the file's factor order).

    ``source="file"`` reads the real ``3dshapes.h5`` at ``path`` (default :func:`default_path`);
    ``source="standin"`` renders a synthetic **stand-in** (:func:`render_standin`) of the same grid,
    on demand per batch when lazy. ``strides`` (6 ints) keeps the sub-grid ``GRID.subgrid(strides)``
    with full-grid class indices. ``resident``: ``True`` loads the images into a (N, 3, 64, 64)
    uint8 tensor, ``False`` reads (or renders) each batch when it is drawn, ``"auto"`` is resident
    iff the images fit :func:`~genlab.data.base.resident_budget` (half the available RAM; on CUDA
    machines also half the free GPU memory): 5.9 GB for the full grid.
    """
    strides = _checked(path, source, strides)
    if source == "standin":
        classes = strided_classes(GRID, strides)
        images = standin_images("shapes3d", classes, render_standin, IMAGE_SHAPE, resident)
        return from_numpy(images, classes, GRID.values_of(classes), IMAGE_SHAPE, GRID.names, bits=False)

    file = FILE.require(path)
    h5file, images_ds, labels = open_h5(file)
    try:
        classes = classes_from_labels(labels, file)
        file_rows = None
        if strides is not None:
            keep_rows = (classes % np.asarray(strides) == 0).all(axis=1)
            file_rows = np.flatnonzero(keep_rows)
            classes = classes[file_rows]
        fetch = H5Rows(h5file, images_ds, file_rows)
        lazy = LazyImages(len(classes), IMAGE_SHAPE, fetch, source=images_ds, description=f"{file}, read on demand")
        if choose_resident(resident, lazy.nbytes):
            images = lazy.materialize()
            fetch.close()
        else:
            images = lazy
    except BaseException:
        h5file.close()
        raise
    return from_numpy(images, classes, GRID.values_of(classes), IMAGE_SHAPE, GRID.names, bits=False)


def _checked(path, source: str, strides: Sequence[int] | None) -> tuple[int, ...] | None:
    """The options' checks that read no data (the file exists for ``source="file"``); the strides as ints."""
    hint = " (3DShapes cannot be re-rendered; source=standin is a synthetic stand-in)" if source == "generated" else ""
    FILE.check_source("shapes3d", source, SOURCES, path, hint)
    return None if strides is None else check_strides(strides, GRID)


def rows(path=None, source: str = "file", strides: Sequence[int] | None = None, **_) -> tuple[np.ndarray, np.ndarray]:
    """``(classes, values)`` of the grid rows :func:`load` returns for these options, without reading
    the file (a full file holds every combination; :func:`load` checks that it does)."""
    classes = strided_classes(GRID, _checked(path, source, strides))
    return classes, GRID.values_of(classes)


SHAPES3D = DATASETS.register("shapes3d")(
    DatasetSpec(
        "shapes3d",
        "factor_images",
        load,
        IMAGE_SHAPE,
        description="3DShapes (DeepMind, 480,000 RGB images): source=file reads 3dshapes.h5; "
        "source=standin renders a synthetic stand-in (not the real images) for smoke runs",
        grid=GRID,
        rows=rows,
        tiny={"strides": (4, 4, 4, 5, 1, 6)},  # 648 images; hues 0/0.4/0.8, scales 0.75/1.11, orientations -30/-4/21
    )
)
