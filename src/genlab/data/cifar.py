"""CIFAR-10 and CIFAR-100 offline: a reader of the published python-pickle archives, as
``labelled_images`` datasets (``cifar10``, ``cifar100``), for the ICE-BeeM image experiments
(Khemakhem et al. 2020; docs/icebeem.md §1, §5c).

Sources (``dataset.source``):

- ``file`` (default): the python versions published by Alex Krizhevsky
  (https://www.cs.toronto.edu/~kriz/cifar.html): CIFAR-10 ``cifar-10-python.tar.gz`` holding
  ``cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}``, CIFAR-100
  ``cifar-100-python.tar.gz`` holding ``cifar-100-python/{train, test, meta}``. Looked for in
  ``data/raw/cifar10/`` (``data/raw/cifar100/``) or in the directory ``dataset.path``, in this order:
  the archive (read with ``tarfile``, nothing extracted to disk), the extracted folder
  (``cifar-10-batches-py/`` in the directory), the batch files directly in the directory
  (``dataset.path`` may also name the archive itself). No package registry reachable offline ships
  them and genlab never downloads. torchvision's reader is not used: its MD5 check refuses anything
  but the published bytes, and our own reader reports a damaged file as what it is.
- ``synthetic``: a seeded stand-in, no file: uniform random uint8 images of the right shape, labels
  cycling over the classes, 512 training and 256 test images; a warning is logged and
  ``info["subset"]`` says so. Smoke runs only: its numbers are not CIFAR's.

Each batch file is a pickle (protocol 2, written by Python 2) of a dict with ``b"data"`` (N x 3072
uint8 numpy array: 1024 red values, then 1024 green, then 1024 blue, each 32 x 32 row-major) and
``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100: the 100 fine classes are used). The
pickles are read with an Unpickler that resolves only the three globals a numpy array needs
(``numpy.core.multiarray._reconstruct``, ``numpy.ndarray``, ``numpy.dtype``; ``numpy._core`` for
pickles written by numpy 2) and refuses any other with ``CorruptFile`` naming the file.

Options: ``split`` ``train`` (train = the 50,000 training images, test = the 10,000 test images) or
``test`` (train = the 10,000 test images, no test part); ``n``: keep the first ``n`` training-part
images. Batches are ``{"x": (B, 3, 32, 32) float32 in [0, 1], "y": (B,) int64, "index": (B,) int64
row}`` (``genlab.data.images.LabelledImages``, uint8 on the device). ``dataset.tiny``:
``source=synthetic``, ``n=512``.
"""

from __future__ import annotations

import io
import logging
import numbers
import pickle
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genlab import paths
from genlab.data.images import LabelledImages
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.errors import ConfigError, CorruptFile, MissingFile

IMAGE_SHAPE = (3, 32, 32)
ROW_LENGTH = 3 * 32 * 32
SPLITS = ("train", "test")
SOURCES = ("file", "synthetic")
SYNTHETIC_SIZES = {"train": 512, "test": 256}
PUBLISHED_SIZES = {"train": 50_000, "test": 10_000}
TINY = {"source": "synthetic", "n": 512}  # dataset.tiny: nothing read, one batch of 512
URL = "https://www.cs.toronto.edu/~kriz/cifar.html"
log = logging.getLogger(__name__)
_ARCHIVE_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)  # gzip.BadGzipFile is an OSError


@dataclass(frozen=True)
class CifarDataset:
    """One of the two published CIFAR python versions, and where its files sit."""

    name: str  # config name and data/raw/<name>/ folder
    title: str
    n_classes: int
    archive: str  # the published .tar.gz
    folder: str  # the folder inside the archive
    train_files: tuple[str, ...]
    test_file: str
    label_key: bytes

    @property
    def stand_in(self) -> str:
        return f"synthetic stand-in: seeded random images with cycling labels, not {self.title}"

    def directory(self, path: str | Path | None) -> Path:
        return Path(path) if path is not None else paths.raw_dir(self.name)

    def files(self, split: str) -> dict[str, tuple[str, ...]]:
        """The batch files of each part of ``split``, in order."""
        if split == "test":
            return {"train": (self.test_file,)}
        return {"train": self.train_files, "test": (self.test_file,)}

    def missing_message(self, directory: Path) -> str:
        names = ", ".join((*self.train_files, self.test_file))
        return "; ".join([
            f"{self.title} files not found in {directory}: expected {self.archive}, or its folder {self.folder}/ "
            f"({names}), or those batch files directly in the directory",
            f"{self.archive} is the {self.title} python version published by Alex Krizhevsky at {URL}",
            "no package registry reachable from this machine ships it",
            f"put it in {paths.raw_dir(self.name)} (the default directory) or point dataset.path=/your/dir at a "
            f"directory holding it (or its extracted {self.folder}/)",
            "genlab never downloads at run time",
            f"for a smoke run use dataset.tiny or dataset.source=synthetic (a {self.stand_in})",
        ])  # fmt: skip


CIFAR10 = CifarDataset(
    "cifar10", "CIFAR-10", 10, "cifar-10-python.tar.gz", "cifar-10-batches-py",
    tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", b"labels",
)  # fmt: skip
CIFAR100 = CifarDataset("cifar100", "CIFAR-100", 100, "cifar-100-python.tar.gz", "cifar-100-python", ("train",), "test",
                        b"fine_labels")  # fmt: skip


# --- the pickles --------------------------------------------------------------------------------


def _numpy_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct  # numpy 2
    except ImportError:  # numpy 1
        from numpy.core.multiarray import _reconstruct
    allowed = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = _reconstruct
    return allowed


class _Refused(Exception):
    pass


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that builds dicts, lists, bytes, str and numbers, and numpy arrays through the
    three globals they need; any other global is refused (``_Refused``)."""

    ALLOWED = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise _Refused(f"{module}.{name}") from None


def load_pickle(raw: bytes, file: str) -> object:
    """The object of a CIFAR pickle (``encoding="bytes"``: its keys are bytes); ``CorruptFile`` naming
    ``file`` for a stream that is not a pickle or that names a global other than a numpy array's."""
    try:
        return RestrictedUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except _Refused as e:
        raise CorruptFile(f"{file}: refused: the pickle names the global {e}, which a CIFAR batch does not hold "
                          "(only numpy arrays, dicts, lists, bytes and numbers are read)") from None  # fmt: skip
    except Exception as e:  # a damaged stream raises about anything (UnpicklingError, EOFError, ValueError ...)
        raise CorruptFile(f"{file}: not a valid CIFAR batch file: not a pickle ({type(e).__name__}: {e})") from None


def parse_batch(raw: bytes, file: str, label_key: bytes, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 3, 32, 32) uint8, labels (N,) int64)`` of one pickled batch, checked."""
    batch = load_pickle(raw, file)
    if not isinstance(batch, dict):
        raise CorruptFile(f"{file}: not a valid CIFAR batch file: the pickle holds a {type(batch).__name__}, not a dict")
    for key in (b"data", label_key):
        if key not in batch:
            found = ", ".join(repr(k) for k in batch) or "none"
            raise CorruptFile(f"{file}: not a valid CIFAR batch file: no key {key!r} (keys: {found})")
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[label_key])
    except (TypeError, ValueError) as e:
        raise CorruptFile(f"{file}: not a valid CIFAR batch file: {e}") from None
    if data.ndim != 2 or data.shape[1] != ROW_LENGTH:
        raise CorruptFile(f"{file}: data of shape {data.shape}: rows must be {ROW_LENGTH} values (32 x 32 pixels, "
                          "red then green then blue)")  # fmt: skip
    if data.dtype != np.uint8:
        if data.dtype.kind not in "iu" or (data.size and (data.min() < 0 or data.max() > 255)):
            raise CorruptFile(f"{file}: data of dtype {data.dtype}: pixels must be uint8 values 0..255")
    if labels.ndim != 1 or labels.dtype.kind not in "iu":
        raise CorruptFile(f"{file}: {label_key.decode()} must be a list of integers, got shape {labels.shape} "
                          f"dtype {labels.dtype}")  # fmt: skip
    if len(labels) != len(data):
        raise CorruptFile(f"{file}: count mismatch: {len(labels)} {label_key.decode()} for {len(data)} images")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        bad = int(labels.max()) if labels.max() >= n_classes else int(labels.min())
        raise CorruptFile(f"{file}: label {bad} out of range: labels are 0..{n_classes - 1}")
    images = np.ascontiguousarray(data, dtype=np.uint8).reshape(-1, *IMAGE_SHAPE)  # (N, C, H, W): planes row-major
    return images, labels.astype(np.int64)


# --- finding and reading the files --------------------------------------------------------------


def _member_name(name: str) -> str:
    return name[2:] if name.startswith("./") else name


@dataclass(frozen=True)
class Location:
    """Where the batch files are: inside the archive ``path`` (``kind="archive"``) or as files in the
    directory ``path`` (``kind="folder"``)."""

    kind: str
    path: Path


def locate(ds: CifarDataset, path: str | Path | None, split: str) -> Location:
    """The archive or the folder holding the batch files ``split`` needs; else ``MissingFile``,
    before anything is read."""
    directory = ds.directory(path)
    if directory.is_file():  # dataset.path names the archive itself
        return Location("archive", directory)
    archive = directory / ds.archive
    if archive.is_file():
        return Location("archive", archive)
    needed = [f for files in ds.files(split).values() for f in files]
    for folder in (directory / ds.folder, directory):
        if all((folder / f).is_file() for f in needed):
            return Location("folder", folder)
    raise MissingFile(ds.missing_message(directory))


def _archive_members(ds: CifarDataset, tar: tarfile.TarFile, archive: Path, needed) -> dict[str, tarfile.TarInfo]:
    """The archive's members ``<folder>/<name>`` for each needed name; ``CorruptFile`` naming the absent ones."""
    try:
        members = {_member_name(m.name): m for m in tar.getmembers() if m.isfile()}
    except _ARCHIVE_ERRORS as e:
        raise CorruptFile(f"{archive}: the archive is damaged ({type(e).__name__}: {e})") from None
    found = {name: members.get(f"{ds.folder}/{name}") for name in needed}
    absent = [f"{ds.folder}/{name}" for name, m in found.items() if m is None]
    if absent:
        raise CorruptFile(f"{archive}: not the published {ds.archive}: no member {', '.join(absent)}")
    return found


def _open_archive(archive: Path) -> tarfile.TarFile:
    try:
        return tarfile.open(archive, "r:*")
    except _ARCHIVE_ERRORS as e:
        raise CorruptFile(f"{archive}: not a valid tar archive ({type(e).__name__}: {e})") from None


def read_batches(ds: CifarDataset, location: Location, names) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{name: (images, labels)}`` of the named batch files, read from the archive without extracting it."""
    out = {}
    if location.kind == "folder":
        for name in names:
            file = location.path / name
            out[name] = parse_batch(file.read_bytes(), str(file), ds.label_key, ds.n_classes)
        return out
    with _open_archive(location.path) as tar:
        members = _archive_members(ds, tar, location.path, names)
        for name, member in members.items():
            label = f"{location.path}:{member.name}"
            try:
                raw = tar.extractfile(member).read()
            except _ARCHIVE_ERRORS as e:
                raise CorruptFile(f"{label}: the archive is damaged ({type(e).__name__}: {e})") from None
            out[name] = parse_batch(raw, label, ds.label_key, ds.n_classes)
    return out


# --- loading ------------------------------------------------------------------------------------


def _check(ds: CifarDataset, source, path, split, n) -> None:
    """Every check of the options that reads no data."""
    if source not in SOURCES:
        raise ConfigError(f"unknown {ds.name} source {source!r}; valid sources: {', '.join(SOURCES)} "
                          f"(synthetic: a {ds.stand_in})")  # fmt: skip
    if source != "file" and path is not None:
        raise ConfigError(f"dataset.path is only read with dataset.source=file (not source={source})")
    if split not in SPLITS:
        raise ConfigError(f"unknown {ds.name} split {split!r}; valid splits: {', '.join(SPLITS)}")
    if n is not None and (not isinstance(n, numbers.Integral) or isinstance(n, bool) or n < 1):
        raise ConfigError(f"{ds.name} n={n!r} must be None (all images) or a positive integer")


def synthetic(ds: CifarDataset, part: str) -> tuple[np.ndarray, np.ndarray]:
    """The seeded stand-in of a published part: uniform uint8 images, labels 0, 1, ..., C-1, 0, ..."""
    n = SYNTHETIC_SIZES[part]
    rng = np.random.default_rng([ds.n_classes, SPLITS.index(part)])
    return rng.integers(0, 256, (n, *IMAGE_SHAPE), dtype=np.uint8), np.arange(n, dtype=np.int64) % ds.n_classes


def load(ds: CifarDataset, source: str = "file", path=None, split: str = "train", n: int | None = None,
         device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
    """The parts of ``ds`` for these options on ``device`` (see the module docstring)."""
    _check(ds, source, path, split, n)
    info = {"source": source, "path": None, "split": split, "n": n, "subset": None,
            "labels_key": ds.label_key.decode()}  # fmt: skip
    published = {"train": ("train", "test"), "test": ("test",)}[split]  # the published parts read
    if source == "file":
        location = locate(ds, path, split)
        names = [f for files in ds.files(split).values() for f in files]
        batches = read_batches(ds, location, names)
        parts = {}
        for part, files in ds.files(split).items():
            parts[part] = tuple(np.concatenate(arrays) for arrays in zip(*(batches[f] for f in files)))
        info["path"] = str(location.path)
    else:
        parts = {part: synthetic(ds, name) for part, name in zip(("train", "test"), published)}
        info["subset"] = ds.stand_in
        log.warning("%s source=synthetic is a %s: smoke runs only, its numbers are not %s's (the real files: %s "
                    "from %s)", ds.name, ds.stand_in, ds.title, ds.archive, URL)  # fmt: skip
    if n is not None:
        parts["train"] = tuple(a[:n] for a in parts["train"])
    device = torch.device(device)
    sources = {
        part: LabelledImages(torch.from_numpy(np.require(images, requirements=["C", "W"])).to(device),
                             torch.from_numpy(np.require(labels, requirements=["W"])).to(device),
                             torch.arange(len(labels), device=device), 255, f"{ds.name}/{part}")
        for part, (images, labels) in parts.items()
    }  # fmt: skip
    info.update(sizes={k: len(v) for k, v in sources.items()}, input_shape=list(IMAGE_SHAPE))
    return DataParts(ds.name, sources["train"], None, sources.get("test"), info=info,
                     model_inputs=DATASETS.get(ds.name).model_inputs())  # fmt: skip


def rows(ds: CifarDataset, source: str = "file", path=None, split: str = "train",
         n: int | None = None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The start-up check (``check_dataset``): the options, and that the files are there
    (``MissingFile``), an archive being a tar holding the expected members (``CorruptFile``), reading
    no image. Returns empty (N, 0) classes and values for the N training-part images: the synthetic
    sizes, or the published ones (50,000 / 10,000; counting a copy's images would mean reading them),
    at most ``n``."""
    _check(ds, source, path, split, n)
    part = "test" if split == "test" else "train"
    count = SYNTHETIC_SIZES[part] if source != "file" else PUBLISHED_SIZES[part]
    count = count if n is None else min(count, n)
    empty = np.zeros((count, 0), np.int64), np.zeros((count, 0))
    if source != "file":
        return empty
    location = locate(ds, path, split)
    if location.kind == "archive":
        with _open_archive(location.path) as tar:
            _archive_members(ds, tar, location.path, [f for files in ds.files(split).values() for f in files])
    return empty


def _register(ds: CifarDataset, description: str) -> DatasetSpec:
    def build(source: str = "file", path=None, split: str = "train", n: int | None = None, *,
              device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
        return load(ds, source, path, split, n, device)

    def check(source: str = "file", path=None, split: str = "train", n: int | None = None, **_):
        return rows(ds, source, path, split, n)

    build.__doc__ = f"{ds.title}: {description}"
    spec = DatasetSpec(ds.name, "labelled_images", build, IMAGE_SHAPE, description=description, tiny=TINY, rows=check,
                       inputs={"n_classes": ds.n_classes})  # fmt: skip
    return DATASETS.register(ds.name)(spec)


_register(CIFAR10, "CIFAR-10 (Krizhevsky; 50,000 + 10,000 colour images, 10 classes): source=file reads "
          f"cifar-10-python.tar.gz ({URL}); source=synthetic is a {CIFAR10.stand_in}, smoke runs only")  # fmt: skip
_register(CIFAR100, "CIFAR-100 (Krizhevsky; 50,000 + 10,000 colour images, 100 fine classes): source=file reads "
          f"cifar-100-python.tar.gz ({URL}); source=synthetic is a {CIFAR100.stand_in}, smoke runs only")  # fmt: skip

__all__ = [
    "CIFAR10", "CIFAR100", "IMAGE_SHAPE", "PUBLISHED_SIZES", "SOURCES", "SPLITS", "SYNTHETIC_SIZES", "TINY", "URL", "CifarDataset",
    "RestrictedUnpickler", "load", "load_pickle", "locate", "parse_batch", "read_batches", "rows", "synthetic",
]  # fmt: skip
