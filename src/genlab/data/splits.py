"""Generalisation splits: factor combinations held out of training (Montero et al., ICLR 2021).

Fact sheet ``reference/disent.md`` 1.4. A split is selected by ``(dataset, condition, variant)``:
conditions ``extrp`` (a range of one factor is never seen), ``recomb2range`` (a value of one factor
is never seen together with a range of another) and ``recomb2element`` (one combination across all
factors is never seen). A split function takes ``(values, classes)``, both (N, K) with columns in
the dataset's factor order (colour dropped), and returns boolean ``(train_mask, test_mask)``. Most
splits have ``train = ~test``, but both are explicit: MPI3D's ``horz_gt20`` puts hx == 20 in neither.

Thresholds are compared with a small tolerance (:data:`EPS`) where a grid value lies exactly on
them, so the masks do not depend on float32 vs float64 storage of the values; on the float64 grid
they equal the original code's masks.

New datasets register their splits here with :func:`register_split` (or from their own module).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

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
# posX, posY. Counts on the full 737,280-image grid, as in disent.md 1.4.
# ------------------------------------------------------------------------------------------------

DSPRITES_SHAPE, DSPRITES_SCALE, DSPRITES_ORIENT, DSPRITES_POSX, DSPRITES_POSY = range(5)


@register_split("dsprites", "extrp", "blank_side", default=True, n_factors=5)
def dsprites_blank_side(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Extrapolation: the right half of the canvas is never seen (disent.md 1.4, ``blank_side``).

    Test: posX > 0.5 (the 16 x positions 0.516..1). Train: posX < 0.5. No posX value equals 0.5, so
    train = ~test. Full grid: 368,640 train / 368,640 test.
    """
    posx = values[:, DSPRITES_POSX]
    return posx < 0.5, posx > 0.5


@register_split("dsprites", "recomb2range", "shape2tx", default=True)
def dsprites_shape2tx(values: np.ndarray, classes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Recombination to range: squares are never seen on the right half (disent.md 1.4, ``shape2tx``).

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
    """Recombination to element: one corner of the factor space is never seen (disent.md 1.4, ``leave1out``).

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
        raise ValueError(f"validation fraction must be in [0, 1), got {fraction}")
    n_val = int(round(fraction * len(train_index)))
    if n_val == 0:
        return np.sort(train_index), np.empty(0, dtype=np.int64)
    if n_val >= len(train_index):
        raise ValueError(f"a validation fraction of {fraction} leaves no training rows out of {len(train_index)}")
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
        raise ValueError(f"split {name} leaves no training images (of {n})")
    if condition is not None and not test_mask.any():
        raise ValueError(f"split {name} leaves no test images (of {n}); the data may not cover the held-out factors")
    train, val = validation_holdout(np.flatnonzero(train_mask), val_fraction, seed)
    return train, val, np.flatnonzero(test_mask)
