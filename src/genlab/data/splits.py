"""Generalisation splits: factor combinations held out of training (Montero et al., ICLR 2021).

See docs/disent.md §1.4. A split is selected by ``(dataset, condition, variant)``:
conditions ``extrp`` (a range of one factor is never seen), ``recomb2range`` (a value of one factor
is never seen together with a range of another) and ``recomb2element`` (one combination across all
factors is never seen). A split function takes ``(values, classes)``, both (N, K) with columns in
the dataset's factor order (colour dropped), and returns boolean ``(train_mask, test_mask)``. Most
splits have ``train = ~test``, but both are explicit: MPI3D's ``horz_gt20_original`` puts hx == 20 in neither.

Thresholds are compared with a small tolerance (:data:`EPS`) where a grid value lies exactly on
them, so the masks do not depend on float32 vs float64 storage of the values; on the float64 grid
they equal the original code's masks.

Where the original's masks differ from the paper's (or the name's) description, the default variant
follows the description and the original's masks stay available as ``<variant>_original``
(3DShapes ``ohue+whue2fhue``, MPI3D ``horz_gt20``).

New datasets register their splits here with :func:`register_split` (or from their own module).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from genlab.errors import SplitError
from genlab.registry import UnknownNameError

SplitFn = Callable[[np.ndarray, np.ndarray], "tuple[np.ndarray, np.ndarray]"]
EPS = 1e-6

# dataset -> condition -> variant -> split function
_SPLITS: dict[str, dict[str, dict[str, SplitFn]]] = {}
_DEFAULTS: dict[tuple[str, str], str] = {}
_N_FACTORS: dict[str, int] = {}


def register_split(dataset: str, condition: str, variant: str, *, default: bool = False, n_factors: int | None = None):
    """Decorator registering a split function under ``(dataset, condition, variant)``.

    ``default`` marks the variant used when ``get_split`` is given ``variant=None``; ``n_factors``
    (once per dataset) lets ``split_masks`` check the width of the factor arrays.
    """

    def decorator(fn: SplitFn) -> SplitFn:
        variants = _SPLITS.setdefault(dataset, {}).setdefault(condition, {})
        if variant in variants and variants[variant] is not fn:
            raise ValueError(f"split {dataset}/{condition}/{variant} is registered twice")
        variants[variant] = fn
        if default:
            _DEFAULTS[(dataset, condition)] = variant
        if n_factors is not None:
            _N_FACTORS[dataset] = n_factors
        return fn

    return decorator


def datasets() -> list[str]:
    return sorted(_SPLITS)


def conditions(dataset: str) -> list[str]:
    if dataset not in _SPLITS:
        raise UnknownNameError("split dataset", dataset, datasets())
    return sorted(_SPLITS[dataset])


def variants(dataset: str, condition: str) -> list[str]:
    if condition not in conditions(dataset):
        raise UnknownNameError(f"{dataset} split condition", condition, conditions(dataset))
    return sorted(_SPLITS[dataset][condition])


def default_variant(dataset: str, condition: str) -> str:
    names = variants(dataset, condition)
    return _DEFAULTS.get((dataset, condition), names[0])


def get_split(dataset: str, condition: str, variant: str | None = None) -> SplitFn:
    """The split function; unknown names raise :class:`UnknownNameError` listing the valid ones.

    ``variant=None`` picks the condition's default variant.
    """
    names = variants(dataset, condition)  # checks dataset and condition
    if variant is None:
        variant = default_variant(dataset, condition)
    if variant not in names:
        raise UnknownNameError(f"{dataset} {condition} variant", variant, names)
    return _SPLITS[dataset][condition][variant]


def split_masks(
    values: np.ndarray, classes: np.ndarray, dataset: str, condition: str, variant: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """``(train_mask, test_mask)`` of a registered split, with shape checks."""
    fn = get_split(dataset, condition, variant)
    values, classes = np.asarray(values), np.asarray(classes)
    k = _N_FACTORS.get(dataset, values.shape[-1] if values.ndim == 2 else -1)
    if values.ndim != 2 or values.shape != classes.shape or values.shape[1] != k:
        raise ValueError(
            f"{dataset} splits need (N, {k}) values and classes (colour dropped), "
            f"got {values.shape} and {classes.shape}"
        )
    train, test = fn(values, classes)
    train, test = np.asarray(train, dtype=bool), np.asarray(test, dtype=bool)
    if (train & test).any():  # a bug in a split definition, not a user error
        raise AssertionError(f"split {dataset}/{condition}/{variant}: train and test overlap")
    return train, test


# ------------------------------------------------------------------------------------------------
# dSprites: columns shape (value 1 square, 2 ellipse, 3 heart; class 0/1/2), scale, orientation,
# posX, posY. Counts on the full 737,280-image grid, as in docs/disent.md §1.4.
# ------------------------------------------------------------------------------------------------

DSPRITES_SHAPE, DSPRITES_SCALE, DSPRITES_ORIENT, DSPRITES_POSX, DSPRITES_POSY = range(5)


@register_split("dsprites", "extrp", "blank_side", default=True, n_factors=5)
def dsprites_blank_side(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolation: the right half of the canvas is never seen (docs/disent.md §1.4, ``blank_side``).

    Test: posX > 0.5 (the 16 x positions 0.516..1). Train: posX < 0.5. No posX value equals 0.5, so
    train = ~test. Full grid: 368,640 train / 368,640 test.
    """
    posx = values[:, DSPRITES_POSX]
    return posx < 0.5, posx > 0.5


@register_split("dsprites", "recomb2range", "shape2tx", default=True)
def dsprites_shape2tx(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: squares are never seen on the right half (docs/disent.md §1.4, ``shape2tx``).

    Test: shape **value** 1 (square) and posX > 0.5. Train: every other image (train = ~test).
    Full grid: 614,400 train / 122,880 test. (The original tests the shape by value here but by class
    in ``leave1out``, so the two splits hold out different shapes, square here; both agree with the
    paper's description: squares on the right for recombination to range.)
    """
    square = np.abs(values[:, DSPRITES_SHAPE] - 1.0) < EPS
    test = square & (values[:, DSPRITES_POSX] > 0.5)
    return ~test, test


@register_split("dsprites", "recomb2element", "leave1out", default=True)
def dsprites_leave1out(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to element: one corner of the factor space is never seen (docs/disent.md §1.4, ``leave1out``).

    Test: shape **class** 1 (ellipse) and scale > 0.6 (0.7..1.0, 4 values) and 2*pi/3 < orientation
    < 4*pi/3 (classes 14..25, 12 values: 120-240 degrees, both ends excluded) and posX > 0.66 and
    posY > 0.66 (classes 21..31, 11 values each). Train: every other image (train = ~test).
    Full grid: 731,472 train / 5,808 test.

    The original names its angle constants the wrong way round (``a120`` = 4*pi/3, ``a240`` =
    2*pi/3); its "< a120 and > a240" is therefore exactly the 120-240 degree window used here, with
    orientation class 13 (= 2*pi/3 exactly) excluded and class 26 (= 4*pi/3) excluded. The shape is
    tested by class (1 = ellipse), unlike ``shape2tx``. Neither quirk changes the held-out images
    relative to the paper's description (an ellipse, 120-240 degrees, bottom-right corner).
    """
    orient = values[:, DSPRITES_ORIENT]
    test = (
        (classes[:, DSPRITES_SHAPE] == 1)
        & (values[:, DSPRITES_SCALE] > 0.6 + EPS)
        & (orient > 2 * np.pi / 3 + EPS)
        & (orient < 4 * np.pi / 3 - EPS)
        & (values[:, DSPRITES_POSX] > 0.66)
        & (values[:, DSPRITES_POSY] > 0.66)
    )
    return ~test, test


# ------------------------------------------------------------------------------------------------
# 3DShapes: columns floor_hue, wall_hue, object_hue (0.0..0.9), scale (0.75..1.25, 8 values), shape
# (0 cube, 1 cylinder, 2 sphere, 3 pill), orientation (-30..30, 15 values): the file's values.
# Counts on the full 480,000-image grid, as in docs/disent.md §1.4.
# ------------------------------------------------------------------------------------------------

SHAPES3D_FHUE, SHAPES3D_WHUE, SHAPES3D_OHUE, SHAPES3D_SCALE, SHAPES3D_SHAPE, SHAPES3D_ORIENT = range(6)


def _is(column: np.ndarray, value: float) -> np.ndarray:
    return np.abs(column - value) < EPS


@register_split("shapes3d", "extrp", "fhue_gt50", default=True, n_factors=6)
def shapes3d_fhue_gt50(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolation: the upper floor hues are never seen (docs/disent.md §1.4, ``fhue_gt50``).

    Test: floor_hue >= 0.5 (0.5..0.9, 5 hues). Train: floor_hue < 0.5 (train = ~test).
    Full grid: 240,000 train / 240,000 test.
    """
    test = values[:, SHAPES3D_FHUE] > 0.5 - EPS
    return ~test, test


@register_split("shapes3d", "recomb2range", "shape2ohue", default=True)
def shapes3d_shape2ohue(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: pills are never seen in the upper object hues (docs/disent.md §1.4,
    ``shape2ohue``, the variant of the paper's analysis).

    Test: shape 3 (pill) and object_hue >= 0.5. Train: every other image (train = ~test).
    Full grid: 420,000 train / 60,000 test.
    """
    test = _is(values[:, SHAPES3D_SHAPE], 3.0) & (values[:, SHAPES3D_OHUE] > 0.5 - EPS)
    return ~test, test


@register_split("shapes3d", "recomb2range", "shape2fhue")
def shapes3d_shape2fhue(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: pills are never seen on the upper floor hues (docs/disent.md §1.4, ``shape2fhue``).

    Test: shape 3 (pill) and floor_hue >= 0.5. Train: every other image (train = ~test).
    Full grid: 420,000 train / 60,000 test.
    """
    test = _is(values[:, SHAPES3D_SHAPE], 3.0) & (values[:, SHAPES3D_FHUE] > 0.5 - EPS)
    return ~test, test


def _ohue_whue(values: np.ndarray) -> np.ndarray:
    return (values[:, SHAPES3D_OHUE] > 0.8 - EPS) & (values[:, SHAPES3D_WHUE] < 0.2 + EPS)


@register_split("shapes3d", "recomb2range", "ohue+whue2fhue")
def shapes3d_ohue_whue2fhue(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: the combination of upper object hues and lower wall hues is never
    seen with the upper floor hues (``ohue+whue2fhue``, as the name describes).

    Test: object_hue >= 0.8 (0.8, 0.9) and wall_hue <= 0.2 (0.0..0.2) and floor_hue >= 0.5
    (0.5..0.9). Train: every other image (train = ~test). Full grid: 465,600 train / 14,400 test.

    Differs from the original (variant ``ohue+whue2fhue_original``), whose mask ignores the floor
    hue despite the name and holds out that object/wall-hue combination on every floor
    (451,200 / 28,800); here it is held out only on the upper floor hues, and seen on the others.
    """
    test = _ohue_whue(values) & (values[:, SHAPES3D_FHUE] > 0.5 - EPS)
    return ~test, test


@register_split("shapes3d", "recomb2range", "ohue+whue2fhue_original")
def shapes3d_ohue_whue2fhue_original(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original's ``ohue+whue2fhue`` mask (docs/disent.md §1.4): floor hue is **not** involved.

    Test: object_hue >= 0.8 and wall_hue <= 0.2, on every floor hue. Train: every other image
    (train = ~test). Full grid: 451,200 train / 28,800 test. (The default ``ohue+whue2fhue`` adds
    floor_hue >= 0.5 to the test side: 465,600 / 14,400.)
    """
    test = _ohue_whue(values)
    return ~test, test


@register_split("shapes3d", "recomb2element", "leave1out", default=True)
def shapes3d_leave1out(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to element: one corner of the factor space is never seen (docs/disent.md §1.4, ``leave1out``).

    Test: object, wall and floor hue all >= 0.8 (0.8, 0.9) and scale >= 1.1 (the 3 largest:
    1.107, 1.179, 1.25) and shape 1 (cylinder) and orientation > 20 degrees (21.4, 25.7, 30).
    Train: every other image (train = ~test). Full grid: 479,928 train / 72 test.
    """
    test = (
        (values[:, SHAPES3D_OHUE] > 0.8 - EPS)
        & (values[:, SHAPES3D_WHUE] > 0.8 - EPS)
        & (values[:, SHAPES3D_FHUE] > 0.8 - EPS)
        & (values[:, SHAPES3D_SCALE] > 1.1 - EPS)
        & _is(values[:, SHAPES3D_SHAPE], 1.0)
        & (values[:, SHAPES3D_ORIENT] > 20 + EPS)
    )
    return ~test, test


# ------------------------------------------------------------------------------------------------
# MPI3D: columns object_color, object_shape, object_size, camera_height, background_color,
# horizontal_axis, vertical_axis; the files store no values, so the splits test class indices.
# Counts on the full 1,036,800-image grid (6, 6, 2, 3, 3, 40, 40), as in docs/disent.md §1.4.
# ------------------------------------------------------------------------------------------------

MPI3D_COLOR, MPI3D_SHAPE, MPI3D_SIZE, MPI3D_CAMH, MPI3D_BKG, MPI3D_HX, MPI3D_VX = range(7)


@register_split("mpi3d", "extrp", "horz_gt20", default=True, n_factors=7)
def mpi3d_horz_gt20(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolation: the far horizontal-axis positions are never seen (``horz_gt20``).

    Test: horizontal_axis > 20 (21..39, 19 positions). Train: horizontal_axis <= 20 (0..20, the
    complement). Full grid: 544,320 train / 492,480 test.

    Differs from the original (variant ``horz_gt20_original``), whose training side is hx < 20, so
    that position 20 is in neither side (518,400 / 492,480, 25,920 images unused).
    """
    hx = classes[:, MPI3D_HX]
    return hx <= 20, hx > 20


@register_split("mpi3d", "extrp", "horz_gt20_original")
def mpi3d_horz_gt20_original(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The original's ``horz_gt20`` masks (docs/disent.md §1.4): test hx > 20, train hx < 20.

    Position hx == 20 (25,920 images) is in **neither** side. Full grid: 518,400 train / 492,480
    test. (The default ``horz_gt20`` trains on hx <= 20: 544,320 / 492,480.)
    """
    hx = classes[:, MPI3D_HX]
    return hx < 20, hx > 20


@register_split("mpi3d", "extrp", "objc_gt3")
def mpi3d_objc_gt3(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolation: the last two object colours (brown, olive) are never seen (docs/disent.md §1.4, ``objc_gt3``).

    Test: object_color > 3. Train: object_color <= 3 (train = ~test). Full grid: 691,200 train /
    345,600 test.
    """
    test = classes[:, MPI3D_COLOR] > 3
    return ~test, test


@register_split("mpi3d", "recomb2range", "cyl2horz", default=True)
def mpi3d_cyl2horz(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: cylinders are never seen on the first half of the horizontal axis
    (docs/disent.md §1.4, ``cyl2horz``).

    Test: horizontal_axis < 20 and object_shape 2 (cylinder). Train: every other image
    (train = ~test). Full grid: 950,400 train / 86,400 test.
    """
    test = (classes[:, MPI3D_HX] < 20) & (classes[:, MPI3D_SHAPE] == 2)
    return ~test, test


@register_split("mpi3d", "recomb2range", "objc2horz")
def mpi3d_objc2horz(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: red objects are never seen on the first half of the horizontal axis
    (docs/disent.md §1.4, ``objc2horz``).

    Test: horizontal_axis < 20 and object_color 2 (red). Train: every other image (train = ~test).
    Full grid: 950,400 train / 86,400 test.
    """
    test = (classes[:, MPI3D_HX] < 20) & (classes[:, MPI3D_COLOR] == 2)
    return ~test, test


@register_split("mpi3d", "recomb2element", "leave1out", default=True)
def mpi3d_leave1out(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to element: one combination of every factor is never seen (docs/disent.md §1.4, ``leave1out``).

    Test: object_color 5 (olive) and object_shape 2 (cylinder) and object_size 1 (large) and
    camera_height 1 (center) and background_color 1 (sea green) and horizontal_axis > 35 and
    vertical_axis > 35 (36..39 each). Train: every other image (train = ~test). Full grid:
    1,036,784 train / 16 test.
    """
    c = classes
    test = (
        (c[:, MPI3D_COLOR] == 5)
        & (c[:, MPI3D_SHAPE] == 2)
        & (c[:, MPI3D_SIZE] == 1)
        & (c[:, MPI3D_CAMH] == 1)
        & (c[:, MPI3D_BKG] == 1)
        & (c[:, MPI3D_HX] > 35)
        & (c[:, MPI3D_VX] > 35)
    )
    return ~test, test


# ------------------------------------------------------------------------------------------------
# Index sets
# ------------------------------------------------------------------------------------------------


def validation_holdout(train_index: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out a seeded random ``fraction`` of the training rows as a validation set.

    Returns sorted ``(train_index, val_index)``, disjoint, together equal to the input. The original
    code "validated" on a slice of its training data; here validation images are never trained on.
    ``fraction`` 0 gives an empty validation set.
    """
    train_index = np.asarray(train_index, dtype=np.int64)
    if not 0.0 <= fraction < 1.0:
        raise SplitError(f"validation fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * len(train_index)))
    if n_val == 0:
        return np.sort(train_index), np.empty(0, dtype=np.int64)
    if n_val >= len(train_index):
        raise SplitError(f"a validation fraction of {fraction} leaves no training rows out of {len(train_index)}")
    perm = np.random.default_rng(seed).permutation(len(train_index))
    return np.sort(train_index[perm[n_val:]]), np.sort(train_index[perm[:n_val]])


def split_indices(
    values: np.ndarray,
    classes: np.ndarray,
    dataset: str,
    condition: str | None,
    variant: str | None = None,
    val_fraction: float = 0.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices ``(train, val, test)`` of a generalisation split plus a validation holdout.

    ``condition=None``: no split, every row is a training (or validation) row and test is empty.
    Validation rows are drawn from the training combinations only. An empty training side, or an
    empty test side of a real split, is a ``ValueError`` (raised before any training compute).
    """
    values = np.asarray(values)
    n = len(values)
    if condition is None:
        train_mask, test_mask = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    else:
        train_mask, test_mask = split_masks(values, classes, dataset, condition, variant)
    if condition is not None and variant is None:
        variant = default_variant(dataset, condition)
    name = f"{dataset}/{condition}/{variant}"
    if not train_mask.any():
        raise SplitError(f"split {name} leaves no training images (of {n})")
    if condition is not None and not test_mask.any():
        raise SplitError(f"split {name} leaves no test images (of {n}); the data may not cover the held-out factors")
    train, val = validation_holdout(np.flatnonzero(train_mask), val_fraction, seed)
    return train, val, np.flatnonzero(test_mask)
