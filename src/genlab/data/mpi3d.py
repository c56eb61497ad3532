"""MPI3D (toy / realistic / real): a memory-mapped reader of the published npz files and a synthetic
stand-in for smoke runs.

The files ``mpi3d_{toy,realistic,real}.npz`` (repository rr-learning/disentanglement_dataset;
docs/disent.md §1.3) hold a single array ``images`` uint8 (N, 64, 64, 3) RGB,
height-width-channel, and **no labels**: the factor classes come from the row order alone, the last
factor varying fastest, over the factor sizes of the release (config ``factor_sizes``; the current
release has 6, 6, 2, 3, 3, 40, 40 = 1,036,800 images, early releases 4, 4, 2, 3, 3, 40, 40 =
460,800). The file's length is checked against the factor sizes.

Factors: object_color (white, green, red, blue, brown, olive), object_shape (cone, cube, cylinder,
hexagonal, pyramid, sphere), object_size (small, large), camera_height (top, center, bottom),
background_color (purple, sea green, salmon), horizontal_axis (0..39), vertical_axis (0..39). The
files store no factor values, so the values are the class indices (as floats); whatever consumes
values (a ground-truth decoder) normalises them. (The original multiplied the index by the factor
size, docs/disent.md §1.3; not reproduced.)

Memory: a file is 12.7 GB of pixels and is never read into RAM as a whole. ``np.savez`` stores the
``images.npy`` member uncompressed (ZIP_STORED): it is then memory-mapped in place, at the member's
data offset (local file header + .npy header). A compressed member (``np.savez_compressed``) is
extracted once, streaming, to ``<cache_dir>/<file stem>-<member CRC32>-<size>.npy`` (default
``paths.generated_dir("mpi3d")``) and that file is memory-mapped. Images are then either copied
into a resident (N, 3, 64, 64) uint8 tensor (``resident``) or read from the memory map batch by
batch (:class:`~genlab.data.base.LazyImages`).

``source="standin"`` renders a **synthetic stand-in** instead (:func:`render_standin`): not the real
images, only their shapes, dtype and factor grid, for smoke runs without the file.
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import zipfile
from pathlib import Path
from typing import Sequence

import numpy as np
from numpy.lib import format as npformat

from genlab import paths
from genlab.data.base import FactorGrid, FactorImages, LazyImages, choose_resident, from_numpy, standin_images
from genlab.data.files import CORRUPT_ARCHIVE, DataFile, check_strides, corrupt_message, strided_classes
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.errors import ConfigError, CorruptFile

log = logging.getLogger(__name__)

FACTOR_NAMES = (
    "object_color",
    "object_shape",
    "object_size",
    "camera_height",
    "background_color",
    "horizontal_axis",
    "vertical_axis",
)
FACTOR_SIZES = (6, 6, 2, 3, 3, 40, 40)  # current release (1,036,800 images)
EARLY_FACTOR_SIZES = (4, 4, 2, 3, 3, 40, 40)  # early releases (460,800 images)
VERSIONS = ("toy", "realistic", "real")
IMAGE_SHAPE = (3, 64, 64)
FILE_IMAGE_SHAPE = (64, 64, 3)  # as stored: height, width, channel
SOURCES = ("file", "standin")
SOURCE_URL = "https://github.com/rr-learning/disentanglement_dataset"
MEMBER = "images.npy"


def make_grid(factor_sizes: Sequence[int] = FACTOR_SIZES) -> FactorGrid:
    """The factor grid of a release: values are the class indices (the files store no values)."""
    sizes = check_factor_sizes(factor_sizes)
    return FactorGrid(FACTOR_NAMES, tuple(np.arange(s, dtype=np.float64) for s in sizes))


def check_factor_sizes(factor_sizes: Sequence[int]) -> tuple[int, ...]:
    sizes = tuple(int(s) for s in factor_sizes)
    if len(sizes) != len(FACTOR_NAMES) or any(s < 1 for s in sizes):
        raise ConfigError(f"factor_sizes must be {len(FACTOR_NAMES)} positive ints ({', '.join(FACTOR_NAMES)}), "
                         f"got {sizes}")  # fmt: skip
    return sizes


GRID = make_grid(FACTOR_SIZES)


def filename(version: str = "real") -> str:
    if version not in VERSIONS:
        raise ConfigError(f"unknown mpi3d version {version!r}; valid versions: {', '.join(VERSIONS)}")
    return f"mpi3d_{version}.npz"


def data_file(version: str = "real") -> DataFile:
    """The published file of ``dataset.options.version``."""
    name = filename(version)
    return DataFile(
        "MPI3D",
        name,
        "mpi3d",
        origin=f"the MPI-IS robot-learning group (rr-learning/disentanglement_dataset, {SOURCE_URL}; "
        f"the file of dataset.options.version={version})",
        url=f"https://storage.googleapis.com/disentanglement_dataset/Final_Dataset/{name}",
        alternative="use dataset.source=standin for a synthetic stand-in (not the real images) for smoke runs",
    )


def default_path(version: str = "real") -> Path:
    return data_file(version).default_path()


def _bad(path: Path, what: str) -> CorruptFile:
    return data_file().bad(path, what, expected="an npz with the single key 'images', uint8 (N, 64, 64, 3)")


# ------------------------------------------------------------------------------------------------
# The npz file, memory-mapped
# ------------------------------------------------------------------------------------------------


def _read_npy_header(f, path: Path) -> tuple[tuple[int, ...], bool, np.dtype]:
    try:
        version = npformat.read_magic(f)
        if version == (1, 0):
            return npformat.read_array_header_1_0(f)
        if version in ((2, 0), (3, 0)):
            return npformat.read_array_header_2_0(f)
    except ValueError as e:
        raise _bad(path, f"'images' is not a .npy array ({e})") from None
    raise _bad(path, f"'images' uses .npy format version {version}, which is not supported")


def _check_header(path: Path, shape, fortran: bool, dtype) -> int:
    if len(shape) != 4 or tuple(shape[1:]) != FILE_IMAGE_SHAPE:
        raise _bad(path, f"'images' has shape {tuple(shape)}, expected (N, 64, 64, 3)")
    if dtype != np.uint8:
        raise _bad(path, f"'images' has dtype {dtype}, expected uint8")
    if fortran and shape[0] > 1:
        raise _bad(path, "'images' is stored in Fortran order; expected C order")
    return int(np.prod(shape))


def member_data_offset(path: Path, info: zipfile.ZipInfo) -> int:
    """Byte offset in the archive where the (stored) member's data starts: its local file header
    (30 bytes + file name + extra field, which holds the ZIP64 sizes) comes first."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    if len(head) != 30 or head[:4] != b"PK\x03\x04":
        raise _bad(path, f"bad local file header for {info.filename!r}")
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len


def open_images(path: str | Path, cache_dir: str | Path | None = None) -> np.memmap:
    """The ``images`` array of an MPI3D npz as a read-only ``np.memmap`` (N, 64, 64, 3) uint8.

    Stored (uncompressed) member: mapped in place. Compressed member: extracted once, streaming, to
    ``cache_dir`` (default ``paths.generated_dir("mpi3d")``) under a name holding the member's CRC32
    and size, then mapped. Malformed files raise ``ValueError`` naming the file and the problem.
    """
    path = Path(path)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise _bad(path, f"not a zip/npz archive ({e})") from None
    with zf:
        names = zf.namelist()
        if MEMBER not in names:
            found = ", ".join(n[:-4] if n.endswith(".npy") else n for n in names) or "none"
            raise _bad(path, f"missing key 'images'; found {found}")
        info = zf.getinfo(MEMBER)
        with zf.open(MEMBER) as f:
            shape, fortran, dtype = _read_npy_header(f, path)
            header_len = f.tell()
        nbytes = _check_header(path, shape, fortran, dtype)
        if info.file_size < header_len + nbytes:
            have = max(info.file_size - header_len, 0) // int(np.prod(FILE_IMAGE_SHAPE))
            raise _bad(path, f"'images' is truncated: {have} of {shape[0]} images present")
        if info.compress_type == zipfile.ZIP_STORED:
            offset = member_data_offset(path, info) + header_len
            return np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=tuple(shape))
        cache = Path(cache_dir if cache_dir is not None else paths.generated_dir("mpi3d"))
        cache = cache / f"{path.stem}-{info.CRC:08x}-{info.file_size}.npy"
        if not cache.is_file():
            _extract(zf, path, cache)
    arr = np.load(cache, mmap_mode="r")
    if not isinstance(arr, np.memmap) or tuple(arr.shape) != tuple(shape) or arr.dtype != np.uint8:
        raise CorruptFile(f"{cache}: extracted cache of {path} does not match it; delete it to extract again")
    return arr


def _extract(zf: zipfile.ZipFile, path: Path, cache: Path):
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
    log.info("mpi3d: extracting the compressed images of %s to %s (once)", path, cache)
    try:
        with zf.open(MEMBER) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst, 16 << 20)
        os.replace(tmp, cache)
    except CORRUPT_ARCHIVE as e:  # a CRC mismatch, a damaged deflate stream
        raise _bad(path, f"'images' {corrupt_message(e)}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


class MemmapRows:
    """``fetch`` of a :class:`LazyImages` over an (N, H, W, C) memmap: increasing rows (mapped to
    file rows by ``file_rows``) -> (B, C, H, W) uint8."""

    def __init__(self, images: np.ndarray, file_rows: np.ndarray | None = None):
        self.images, self.file_rows = images, file_rows

    def __call__(self, rows: np.ndarray) -> np.ndarray:
        rows = rows if self.file_rows is None else self.file_rows[rows]
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):
            block = self.images[int(rows[0]) : int(rows[-1]) + 1]
        else:
            block = self.images[rows]
        return np.ascontiguousarray(block.transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------------------------
# Stand-in renderer (synthetic, NOT the real images)
# ------------------------------------------------------------------------------------------------

OBJECT_COLORS = np.array([[0.95, 0.95, 0.95], [0.2, 0.7, 0.25], [0.85, 0.15, 0.1], [0.15, 0.3, 0.85],
                          [0.55, 0.33, 0.15], [0.5, 0.5, 0.1]], dtype=np.float32)  # fmt: skip
BACKGROUND_COLORS = np.array([[0.45, 0.3, 0.6], [0.18, 0.55, 0.45], [0.95, 0.55, 0.45]], dtype=np.float32)
ARM_GREY = 150
STANDIN_LIMITS = (6, 6, 2, 3, 3)  # the stand-in draws at most these many colours, shapes, sizes, ...
_PIX = np.arange(64, dtype=np.float32) + 0.5  # pixel centres


def render_standin(classes: np.ndarray, factor_sizes: Sequence[int] = FACTOR_SIZES, chunk: int = 1024) -> np.ndarray:
    """**Stand-in** MPI3D images (N, 3, 64, 64) uint8 of (N, 7) class indices: synthetic, not the
    real dataset. Deterministic and vectorised: a background of ``background_color`` with a darker
    table band whose top edge follows ``camera_height``, a grey robot arm hanging from the top edge,
    holding the object (colour ``object_color``; outline by ``object_shape``: triangle, square,
    column, hexagon, diamond, disc; half-size 5 or 8 px by ``object_size``) whose position follows
    ``horizontal_axis`` (columns) and ``vertical_axis`` (rows, shifted by ``camera_height``).
    Every factor combination gives a different image."""
    sizes = check_factor_sizes(factor_sizes)
    if any(s > m for s, m in zip(sizes, STANDIN_LIMITS)):
        raise ConfigError(f"the MPI3D stand-in draws at most {STANDIN_LIMITS} classes of "
                         f"{', '.join(FACTOR_NAMES[:5])}; factor_sizes are {sizes}")  # fmt: skip
    classes = np.asarray(classes, dtype=np.int64)
    if classes.ndim != 2 or classes.shape[1] != 7:
        raise ValueError(f"classes must be (N, 7), got {classes.shape}")
    if len(classes) and ((classes < 0).any() or (classes >= np.array(sizes)).any()):
        raise ValueError(f"class indices out of range; sizes are {dict(zip(FACTOR_NAMES, sizes))}")
    out = np.empty((len(classes), *IMAGE_SHAPE), dtype=np.uint8)
    for start in range(0, len(classes), chunk):
        _render_chunk(classes[start : start + chunk], sizes, out[start : start + chunk])
    return out


def _shape_mask(shape: int, dx: np.ndarray, dy: np.ndarray) -> np.ndarray:
    """Inside of a unit-size outline; ``dx`` (n, 1, W) and ``dy`` (n, H, 1) pixel offsets / size."""
    adx, ady = np.abs(dx), np.abs(dy)
    if shape == 0:  # cone: triangle, apex up
        return (dy <= 1) & (adx <= 0.45 * (dy + 1))
    if shape == 1:  # cube: square
        return (adx <= 0.85) & (ady <= 0.85)
    if shape == 2:  # cylinder: a column
        return (adx <= 0.6) & (ady <= 1)
    if shape == 3:  # hexagonal prism: hexagon, flat top
        return (ady <= 0.866) & (0.866 * adx + 0.5 * ady <= 0.866)
    if shape == 4:  # pyramid: diamond
        return adx + ady <= 1
    return dx * dx + dy * dy <= 0.9  # sphere: disc


def _render_chunk(classes: np.ndarray, sizes: tuple[int, ...], out: np.ndarray):
    n = len(classes)
    color, shape, size, camh, bkg, hx, vx = classes.T
    x = _PIX[None, None, :]  # (1, 1, 64) columns
    y = _PIX[None, :, None]  # (1, 64, 1) rows
    # steps of at least 1 px (40 positions: 1.03 and 1 px), so that every move changes the image
    cx = (12.0 + hx * np.float32(40.0 / max(sizes[5] - 1, 1))).astype(np.float32)[:, None, None]
    cy = (10.0 + vx * np.float32(39.0 / max(sizes[6] - 1, 1)) + 2.0 * camh).astype(np.float32)[:, None, None]
    r = np.where(size == 1, np.float32(8.0), np.float32(5.0))[:, None, None]
    back = (BACKGROUND_COLORS[bkg] * 255 + 0.5).astype(np.uint8)  # (n, 3)
    table = (back * 0.55 + 0.5).astype(np.uint8)
    obj = (OBJECT_COLORS[color] * 255 + 0.5).astype(np.uint8)
    below = y >= (44.0 + 7.0 * camh.astype(np.float32))[:, None, None]  # (n, 64, 1): the table band
    arm = (np.abs(x - cx) <= 1.5) & (y <= cy)  # (n, 64, 64): the arm, from the top to the object
    dx, dy = (x - cx) / r, (y - cy) / r
    inside = np.empty((n, 64, 64), dtype=bool)
    for s in np.unique(shape):
        sel = np.flatnonzero(shape == s)
        inside[sel] = _shape_mask(int(s), dx[sel], dy[sel])
    for ch in range(3):
        column = np.where(below, table[:, ch, None, None], back[:, ch, None, None])  # (n, 64, 1)
        np.copyto(out[:, ch], np.broadcast_to(column, (n, 64, 64)))
        out[:, ch][arm] = ARM_GREY
        np.copyto(out[:, ch], obj[:, ch, None, None], where=inside)


# ------------------------------------------------------------------------------------------------
# Loading
# ------------------------------------------------------------------------------------------------


def load(
    path: str | Path | None = None,
    source: str = "file",
    strides: Sequence[int] | None = None,
    resident: bool | str = "auto",
    version: str = "real",
    factor_sizes: Sequence[int] = FACTOR_SIZES,
    cache_dir: str | Path | None = None,
) -> FactorImages:
    """MPI3D as :class:`FactorImages` (CPU; values = class indices as floats).

    ``source="file"`` memory-maps ``mpi3d_<version>.npz`` at ``path`` (default
    :func:`default_path`; ``version`` toy / realistic / real, the paper's), whose length must be
    ``prod(factor_sizes)``; a compressed npz is extracted once to ``cache_dir`` (default
    ``paths.generated_dir("mpi3d")``). ``source="standin"`` renders a synthetic **stand-in**
    (:func:`render_standin`) of the grid, on demand per batch when lazy. ``strides`` (7 ints) keeps
    the sub-grid with full-grid class indices. ``resident``: ``True`` copies the images into a
    (N, 3, 64, 64) uint8 tensor, ``False`` reads (or renders) each batch when it is drawn, ``"auto"``
    is resident iff they fit :func:`~genlab.data.base.resident_budget` (half the available RAM; on
    CUDA machines also half the free GPU memory): 12.7 GB for the full grid.
    """
    grid, classes, values = _rows(path, source, strides, version, factor_sizes)
    if source == "standin":
        sizes = grid.sizes
        render_standin(classes[:0], sizes)  # checks the sizes before anything is built
        images = standin_images("mpi3d", classes, lambda c: render_standin(c, sizes), IMAGE_SHAPE, resident)
        return from_numpy(images, classes, values, IMAGE_SHAPE, grid.names, bits=False)

    file = data_file(version).require(path)
    mm = open_images(file, cache_dir)
    if len(mm) != len(grid):
        hint = ""
        if len(mm) == int(np.prod(EARLY_FACTOR_SIZES)):
            hint = f"; an early release: set dataset.factor_sizes={list(EARLY_FACTOR_SIZES)}"
        elif len(mm) == int(np.prod(FACTOR_SIZES)):
            hint = f"; the current release: set dataset.factor_sizes={list(FACTOR_SIZES)}"
        raise CorruptFile(
            f"{file}: holds {len(mm):,} images but factor_sizes {list(grid.sizes)} ({', '.join(FACTOR_NAMES)}) "
            f"give {len(grid):,}{hint}"
        )
    file_rows = None if strides is None else grid.index_of(classes)
    lazy = LazyImages(len(classes), IMAGE_SHAPE, MemmapRows(mm, file_rows), source=mm,
                      description=f"{filename(version)} memory-mapped from {mm.filename}")  # fmt: skip
    images = lazy.materialize() if choose_resident(resident, lazy.nbytes) else lazy
    return from_numpy(images, classes, values, IMAGE_SHAPE, grid.names, bits=False)


def _rows(path, source: str, strides, version: str, factor_sizes) -> tuple[FactorGrid, np.ndarray, np.ndarray]:
    """The options' checks that read no data (the file exists for ``source="file"``); the grid and
    the ``(classes, values)`` of the rows :func:`load` returns."""
    hint = " (MPI3D cannot be re-rendered; source=standin is a synthetic stand-in)" if source == "generated" else ""
    data_file(version).check_source("mpi3d", source, SOURCES, path, hint)  # data_file checks the version
    grid = make_grid(factor_sizes)
    classes = strided_classes(grid, None if strides is None else check_strides(strides, grid))
    return grid, classes, grid.values_of(classes)


def rows(path=None, source: str = "file", strides=None, version: str = "real", factor_sizes=FACTOR_SIZES, **_):
    """``(classes, values)`` of the images :func:`load` returns for these options, without reading them."""
    return _rows(path, source, strides, version, factor_sizes)[1:]


MPI3D = DATASETS.register("mpi3d")(
    DatasetSpec(
        "mpi3d",
        "factor_images",
        load,
        IMAGE_SHAPE,
        description="MPI3D (toy/realistic/real, 1,036,800 RGB images, dataset.options.version): source=file memory-maps "
        "mpi3d_<version>.npz; source=standin renders a synthetic stand-in (not the real images) for smoke runs",
        grid=GRID,
        rows=rows,
        tiny={"strides": (1, 2, 1, 1, 1, 6, 6)},  # 15,876 images; every colour, shape 2, hx/vx up to 36
    )
)
