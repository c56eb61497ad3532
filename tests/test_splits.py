"""Generalisation splits (docs/disent.md §1.4) and the validation holdout."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.data import dsprites as ds
from genlab.data.files import strided_classes
from genlab.data import splits
from genlab.registry import UnknownNameError


@pytest.fixture(scope="module")
def grid():
    classes = ds.GRID.classes()
    return ds.GRID.values_of(classes), classes


COUNTS = [
    ("extrp", "blank_side", 368_640, 368_640),
    ("recomb2range", "shape2tx", 614_400, 122_880),
    ("recomb2element", "leave1out", 731_472, 5_808),
]


@pytest.mark.parametrize("condition, variant, n_train, n_test", COUNTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dsprites_counts_on_full_grid(grid, condition, variant, n_train, n_test, dtype):
    values, classes = grid
    train, test = splits.split_masks(values.astype(dtype), classes, "dsprites", condition, variant)
    assert train.sum() == n_train and test.sum() == n_test
    assert not (train & test).any() and (train | test).all()


def test_dsprites_held_out_sets(grid):
    values, classes = grid
    _, test = splits.split_masks(values, classes, "dsprites", "extrp", "blank_side")
    assert set(classes[test, 3]) == set(range(16, 32))
    _, test = splits.split_masks(values, classes, "dsprites", "recomb2range", "shape2tx")
    assert set(classes[test, 0]) == {0} and set(classes[test, 3]) == set(range(16, 32))  # squares
    _, test = splits.split_masks(values, classes, "dsprites", "recomb2element", "leave1out")
    held = classes[test]
    assert set(held[:, 0]) == {1}  # ellipse (by class)
    assert set(held[:, 1]) == {2, 3, 4, 5}
    assert set(held[:, 2]) == set(range(14, 26))  # 120-240 degrees, index 13 (= 120 deg) excluded
    assert set(held[:, 3]) == set(held[:, 4]) == set(range(21, 32))


def test_default_variant_and_listing():
    assert splits.conditions("dsprites") == ["extrp", "recomb2element", "recomb2range"]
    assert splits.get_split("dsprites", "recomb2element") is splits.get_split("dsprites", "recomb2element", "leave1out")
    assert splits.variants("dsprites", "extrp") == ["blank_side"]


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        splits.get_split("dsprites", "interp", "x")
    assert "interp" in str(err.value) and "extrp, recomb2element, recomb2range" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        splits.get_split("dsprites", "recomb2range", "shape2ty")
    assert "shape2ty" in str(err.value) and "valid dsprites recomb2range variants: shape2tx" in str(err.value)
    with pytest.raises(UnknownNameError, match="valid split datasets: dsprites"):
        splits.get_split("nope", "extrp", "blank_side")
    assert isinstance(err.value, KeyError)


def test_wrong_factor_arrays_are_rejected(grid):
    values, classes = grid
    with pytest.raises(ValueError, match=r"\(N, 5\)"):
        splits.split_masks(np.c_[np.ones(len(values)), values], np.c_[np.zeros(len(values)), classes], "dsprites",
                           "extrp", "blank_side")  # fmt: skip


def test_split_indices_with_validation(grid):
    values, classes = grid
    train, val, test = splits.split_indices(values, classes, "dsprites", "recomb2range", "shape2tx", 0.1, seed=3)
    train_mask, test_mask = splits.split_masks(values, classes, "dsprites", "recomb2range", "shape2tx")
    assert len(val) == round(0.1 * 614_400) and len(train) + len(val) == 614_400 and len(test) == 122_880
    assert not np.intersect1d(train, val).size and not np.intersect1d(val, test).size
    assert not np.intersect1d(train, test).size
    assert train_mask[val].all() and train_mask[train].all() and test_mask[test].all()
    again = splits.split_indices(values, classes, "dsprites", "recomb2range", "shape2tx", 0.1, seed=3)
    np.testing.assert_array_equal(again[1], val)
    other = splits.split_indices(values, classes, "dsprites", "recomb2range", "shape2tx", 0.1, seed=4)
    assert not np.array_equal(other[1], val)


def test_no_split_means_everything_is_train(grid):
    values, classes = grid
    train, val, test = splits.split_indices(values[:100], classes[:100], "dsprites", None)
    np.testing.assert_array_equal(train, np.arange(100))
    assert val.size == 0 and test.size == 0


def test_validation_holdout():
    idx = np.arange(10, 110)
    train, val = splits.validation_holdout(idx, 0.0, seed=0)
    np.testing.assert_array_equal(train, idx) and val.size == 0
    train, val = splits.validation_holdout(idx, 0.25, seed=0)
    assert len(val) == 25 and len(train) == 75
    np.testing.assert_array_equal(np.sort(np.r_[train, val]), idx)
    with pytest.raises(ValueError, match="fraction"):
        splits.validation_holdout(idx, 1.0, seed=0)


def test_empty_sides_are_errors(grid):
    values, classes = grid
    right = values[:, 3] > 0.5
    with pytest.raises(ValueError, match="no training images"):
        splits.split_indices(values[right], classes[right], "dsprites", "extrp", "blank_side")
    with pytest.raises(ValueError, match="no test images"):
        splits.split_indices(values[~right], classes[~right], "dsprites", "extrp", "blank_side")


def test_subgrid_keeps_full_grid_classes():
    # splits that test classes (leave1out: shape class 1) work on loaded subgrids too
    strides = (1, 1, 1, 3, 3)
    classes = strided_classes(ds.GRID, strides)
    values = ds.GRID.values_of(classes)
    _, test = splits.split_masks(values, classes, "dsprites", "recomb2element", "leave1out")
    assert test.sum() == 4 * 12 * 4 * 4  # scales x orientations x posX {21,24,27,30} x posY


def test_explicit_masks_allow_rows_in_neither_side(monkeypatch):
    monkeypatch.setattr(splits, "_SPLITS", {})
    monkeypatch.setattr(splits, "_DEFAULTS", {})
    monkeypatch.setattr(splits, "_N_FACTORS", {})

    @splits.register_split("toy", "extrp", "gt2", default=True, n_factors=1)
    def gt2(values, classes):
        return classes[:, 0] < 2, classes[:, 0] > 2

    classes = np.arange(5)[:, None]
    train, val, test = splits.split_indices(classes.astype(float), classes, "toy", "extrp")
    np.testing.assert_array_equal(train, [0, 1])
    np.testing.assert_array_equal(test, [3, 4])
