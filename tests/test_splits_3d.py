"""3DShapes and MPI3D generalisation splits (docs/disent.md §1.4) on the full grids, and
``load_split_data`` end to end on the stand-ins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from genlab.data import load_split_data, splits
from genlab.data import mpi3d as m3
from genlab.data import shapes3d as s3
from genlab.registry import UnknownNameError


@pytest.fixture(scope="module")
def shapes3d_grid():
    classes = s3.GRID.classes()
    return s3.GRID.values_of(classes), classes


@pytest.fixture(scope="module")
def mpi3d_grid():
    classes = m3.GRID.classes()
    return m3.GRID.values_of(classes), classes


SHAPES3D_COUNTS = [
    ("extrp", "fhue_gt50", 240_000, 240_000),
    ("recomb2range", "shape2ohue", 420_000, 60_000),
    ("recomb2range", "shape2fhue", 420_000, 60_000),
    ("recomb2range", "ohue+whue2fhue", 465_600, 14_400),  # default: floor hue involved, as named
    ("recomb2range", "ohue+whue2fhue_original", 451_200, 28_800),  # docs/disent.md §1.4
    ("recomb2element", "leave1out", 479_928, 72),
]
MPI3D_COUNTS = [
    ("extrp", "horz_gt20", 544_320, 492_480),  # default: train = hx <= 20
    ("extrp", "horz_gt20_original", 518_400, 492_480),  # docs/disent.md §1.4: hx == 20 in neither
    ("extrp", "objc_gt3", 691_200, 345_600),
    ("recomb2range", "cyl2horz", 950_400, 86_400),
    ("recomb2range", "objc2horz", 950_400, 86_400),
    ("recomb2element", "leave1out", 1_036_784, 16),
]


def test_every_variant_is_counted():
    for dataset, counts in (("shapes3d", SHAPES3D_COUNTS), ("mpi3d", MPI3D_COUNTS)):
        listed = {(c, v) for c in splits.conditions(dataset) for v in splits.variants(dataset, c)}
        assert listed == {(c, v) for c, v, _, _ in counts}


@pytest.mark.parametrize("condition, variant, n_train, n_test", SHAPES3D_COUNTS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_shapes3d_counts_on_full_grid(shapes3d_grid, condition, variant, n_train, n_test, dtype):
    values, classes = shapes3d_grid
    train, test = splits.split_masks(values.astype(dtype), classes, "shapes3d", condition, variant)
    assert train.sum() == n_train and test.sum() == n_test
    assert not (train & test).any() and (train | test).all()


@pytest.mark.parametrize("condition, variant, n_train, n_test", MPI3D_COUNTS)
def test_mpi3d_counts_on_full_grid(mpi3d_grid, condition, variant, n_train, n_test):
    values, classes = mpi3d_grid
    train, test = splits.split_masks(values.astype(np.float32), classes, "mpi3d", condition, variant)
    assert train.sum() == n_train and test.sum() == n_test
    assert not (train & test).any()
    neither = ~(train | test)
    if variant == "horz_gt20_original":
        assert set(classes[neither, 5]) == {20} and neither.sum() == 25_920
    else:
        assert not neither.any()


def test_shapes3d_held_out_sets(shapes3d_grid):
    values, classes = shapes3d_grid

    def held(variant, condition="recomb2range"):
        return classes[splits.split_masks(values, classes, "shapes3d", condition, variant)[1]]

    assert set(held("fhue_gt50", "extrp")[:, 0]) == {5, 6, 7, 8, 9}
    h = held("shape2ohue")
    assert set(h[:, 4]) == {3} and set(h[:, 2]) == {5, 6, 7, 8, 9} and len(set(h[:, 0])) == 10
    h = held("shape2fhue")
    assert set(h[:, 4]) == {3} and set(h[:, 0]) == {5, 6, 7, 8, 9}
    h = held("ohue+whue2fhue")
    assert set(h[:, 2]) == {8, 9} and set(h[:, 1]) == {0, 1, 2} and set(h[:, 0]) == {5, 6, 7, 8, 9}
    h = held("ohue+whue2fhue_original")
    assert set(h[:, 2]) == {8, 9} and set(h[:, 1]) == {0, 1, 2} and set(h[:, 0]) == set(range(10))
    h = held("leave1out", "recomb2element")
    assert all(set(h[:, k]) == {8, 9} for k in range(3))
    assert set(h[:, 3]) == {5, 6, 7} and set(h[:, 4]) == {1} and set(h[:, 5]) == {12, 13, 14}


def test_mpi3d_held_out_sets(mpi3d_grid):
    values, classes = mpi3d_grid

    def sides(condition, variant):
        train, test = splits.split_masks(values, classes, "mpi3d", condition, variant)
        return classes[train], classes[test]

    train, test = sides("extrp", "horz_gt20")
    assert set(train[:, 5]) == set(range(21)) and set(test[:, 5]) == set(range(21, 40))
    train, test = sides("extrp", "horz_gt20_original")
    assert set(train[:, 5]) == set(range(20)) and set(test[:, 5]) == set(range(21, 40))
    _, test = sides("extrp", "objc_gt3")
    assert set(test[:, 0]) == {4, 5}
    _, test = sides("recomb2range", "cyl2horz")
    assert set(test[:, 1]) == {2} and set(test[:, 5]) == set(range(20))
    _, test = sides("recomb2range", "objc2horz")
    assert set(test[:, 0]) == {2} and set(test[:, 5]) == set(range(20))
    _, test = sides("recomb2element", "leave1out")
    assert (test[:, :5] == [5, 2, 1, 1, 1]).all() and set(test[:, 5]) == set(test[:, 6]) == {36, 37, 38, 39}


def test_defaults_and_unknown_variants():
    assert splits.default_variant("shapes3d", "extrp") == "fhue_gt50"
    assert splits.default_variant("shapes3d", "recomb2range") == "shape2ohue"
    assert splits.default_variant("shapes3d", "recomb2element") == "leave1out"
    assert splits.default_variant("mpi3d", "extrp") == "horz_gt20"
    assert splits.default_variant("mpi3d", "recomb2range") == "cyl2horz"
    assert splits.default_variant("mpi3d", "recomb2element") == "leave1out"
    with pytest.raises(UnknownNameError) as err:
        splits.get_split("mpi3d", "extrp", "horz_gt21")
    assert "valid mpi3d extrp variants: horz_gt20, horz_gt20_original, objc_gt3" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        splits.get_split("shapes3d", "recomb2range", "shape2whue")
    assert "ohue+whue2fhue, ohue+whue2fhue_original, shape2fhue, shape2ohue" in str(err.value)
    with pytest.raises(UnknownNameError, match="valid split datasets: dsprites, mpi3d, shapes3d"):
        splits.get_split("cars3d", "extrp")
    with pytest.raises(ValueError, match=r"\(N, 7\)"):
        splits.split_masks(np.zeros((4, 6)), np.zeros((4, 6), int), "mpi3d", "extrp")


# --- end to end on the stand-ins --------------------------------------------------------------------


def test_load_split_data_shapes3d_standin():
    strides = [3, 3, 2, 2, 1, 4]  # 4 x 4 x 5 x 4 x 4 x 4 = 5,120 images
    data = load_split_data("shapes3d", "recomb2range", None, 0.1, 0, source="standin", strides=strides)
    assert data.variant == "shape2ohue" and data.image_shape == (3, 64, 64)
    assert len(data.test) == 4 * 4 * 2 * 4 * 1 * 4  # pills with object hue 0.6 or 0.8
    assert len(data.train) + len(data.val) == 5_120 - 512 and len(data.val) == round(0.1 * 4_608)
    test_classes = data.test.classes.numpy()
    assert (test_classes[:, 4] == 3).all() and (test_classes[:, 2] >= 5).all()
    assert not ((data.train.classes[:, 4] == 3) & (data.train.classes[:, 2] >= 5)).any()
    batch = data.train.batch(torch.tensor([5, 0, 5]))
    assert batch["x"].shape == (3, 3, 64, 64) and batch["x"].dtype == torch.float32
    assert 0 <= float(batch["x"].min()) and float(batch["x"].max()) <= 1 and batch["factors"].shape == (3, 6)
    lazy = load_split_data("shapes3d", "recomb2range", None, 0.1, 0, source="standin", strides=strides, resident=False)
    assert lazy.train.lazy
    assert torch.equal(lazy.test.pixels(slice(0, 40, 3)), data.test.pixels(slice(0, 40, 3)))


def test_load_split_data_mpi3d_standin():
    strides = [2, 2, 1, 1, 1, 8, 8]  # 3 x 3 x 2 x 3 x 3 x 5 x 5 = 4,050 images
    data = load_split_data("mpi3d", "recomb2range", None, 0.05, 1, source="standin", strides=strides)
    assert data.variant == "cyl2horz" and len(data.test) == 3 * 2 * 3 * 3 * 3 * 5
    assert len(data.train) + len(data.val) + len(data.test) == 4_050
    test_classes = data.test.classes.numpy()
    assert (test_classes[:, 1] == 2).all() and (test_classes[:, 5] < 20).all()
    batch = data.test.batch(torch.arange(4))
    assert batch["x"].shape == (4, 3, 64, 64) and batch["factors"].shape == (4, 7)
    strides = [2, 2, 1, 1, 1, 4, 8]  # horizontal axis 0, 4, ..., 36: 8,100 images, 810 at hx == 20
    data = load_split_data("mpi3d", "extrp", "horz_gt20_original", 0.0, 0, source="standin", strides=strides,
                           resident=False)  # fmt: skip
    assert data.train.lazy and len(data.train) == 5 * 810 and len(data.test) == 4 * 810
    data = load_split_data("mpi3d", "extrp", None, 0.0, 0, source="standin", strides=strides, resident=False)
    assert data.variant == "horz_gt20" and len(data.train) == 6 * 810 and len(data.test) == 4 * 810
