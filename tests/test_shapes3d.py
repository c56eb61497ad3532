"""3DShapes: the real HDF5 format (resident and lazy reading), LazyImages, errors, the stand-in."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from genlab import paths
from genlab.data import base, sources
from genlab.data import shapes3d as s3
from genlab.data.base import FactorImages, LazyImages
from genlab.data.batches import SequentialBatches
from genlab.data.registry import DATASETS

FIXTURE_STRIDES = (5, 5, 5, 4, 2, 7)  # 2 x 2 x 2 x 2 x 2 x 3 = 96 images of the real grid


def fixture_classes(strides=FIXTURE_STRIDES) -> np.ndarray:
    return s3.GRID.subgrid(strides).classes() * np.asarray(strides)


def write_h5(path: Path, classes: np.ndarray | None = None, images=None, labels=None, chunked=False, **extra) -> dict:
    """A small file exactly in the real format (h5py create_dataset), real factor values, random pixels."""
    classes = fixture_classes() if classes is None else classes
    if images is None:
        images = np.random.default_rng(0).integers(0, 256, (len(classes), 64, 64, 3), dtype=np.uint8)
    if labels is None:  # the real labels are float64 values of the grid; float32-rounded here
        labels = s3.GRID.values_of(classes).astype(np.float32).astype(np.float64)
    with h5py.File(path, "w") as f:
        if images is not False:
            kw = {"chunks": (8, 64, 64, 3), "compression": "gzip"} if chunked else {}
            f.create_dataset("images", data=images, **kw)
        if labels is not False:
            f.create_dataset("labels", data=labels)
        for key, value in extra.items():
            f.create_dataset(key, data=value)
    return {"classes": classes, "images": images, "labels": labels}


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


# --- grid ---------------------------------------------------------------------------------------


def test_grid_matches_spec():
    assert s3.GRID.names == ("floor_hue", "wall_hue", "object_hue", "scale", "shape", "orientation")
    assert s3.GRID.sizes == (10, 10, 10, 8, 4, 15) and len(s3.GRID) == 480_000
    for k in range(3):
        np.testing.assert_allclose(s3.GRID.values[k], np.arange(10) * 0.1)
    np.testing.assert_allclose(s3.GRID.values[3], np.linspace(0.75, 1.25, 8))
    np.testing.assert_array_equal(s3.GRID.values[4], [0, 1, 2, 3])
    np.testing.assert_allclose(s3.GRID.values[5], np.linspace(-30, 30, 15))
    assert s3.IMAGE_SHAPE == (3, 64, 64)
    assert s3.default_path() == paths.raw_dir("shapes3d") / "3dshapes.h5"
    spec = DATASETS.get("shapes3d")
    assert spec.grid is s3.GRID and spec.image_shape == (3, 64, 64) and "stand-in" in spec.description


def test_classes_from_labels_and_index_order():
    classes = s3.GRID.classes()
    rows = np.random.default_rng(0).integers(0, len(classes), 3000)
    fh, wh, oh, sc, sh, o = classes[rows].T
    np.testing.assert_array_equal(((((fh * 10 + wh) * 10 + oh) * 8 + sc) * 4 + sh) * 15 + o, rows)
    labels = s3.GRID.values_of(classes[rows]).astype(np.float32)
    np.testing.assert_array_equal(s3.classes_from_labels(labels), classes[rows])


# --- LazyImages -----------------------------------------------------------------------------------


def test_lazy_images_sorted_fetch_and_requested_order():
    store = np.random.default_rng(1).integers(0, 256, (20, 3, 4, 4), dtype=np.uint8)
    calls = []

    def fetch(rows):
        calls.append(rows.copy())
        return store[rows]

    lazy = LazyImages(20, (3, 4, 4), fetch)
    assert len(lazy) == 20 and lazy.shape == torch.Size((20, 3, 4, 4)) and lazy.device == torch.device("cpu")
    assert lazy.nbytes == store.nbytes
    index = torch.tensor([7, 2, 19, 2, 0, 7, -1])
    out = lazy[index]
    assert out.dtype == torch.uint8 and tuple(out.shape) == (7, 3, 4, 4)
    np.testing.assert_array_equal(out.numpy(), store[index.numpy()])
    np.testing.assert_array_equal(calls[-1], [0, 2, 7, 19])  # sorted, unique
    np.testing.assert_array_equal(lazy[slice(3, None, 4)].numpy(), store[3::4])
    np.testing.assert_array_equal(lazy[np.array([5])].numpy(), store[[5]])
    np.testing.assert_array_equal(lazy[5].numpy(), store[5])
    mask = np.zeros(20, bool)
    mask[[1, 4]] = True
    np.testing.assert_array_equal(lazy[mask].numpy(), store[[1, 4]])
    assert lazy[torch.tensor([], dtype=torch.long)].shape == (0, 3, 4, 4)
    with pytest.raises(IndexError, match="out of bounds"):
        lazy[torch.tensor([3, 20])]
    assert torch.equal(lazy.materialize(chunk=6), torch.from_numpy(store))
    assert torch.equal(lazy.materialize(np.array([4, 1, 4]), chunk=2), torch.from_numpy(store[[4, 1, 4]]))
    assert lazy.to("cpu") is lazy


def test_factor_images_over_lazy_store():
    store = np.random.default_rng(2).integers(0, 256, (12, 3, 4, 4), dtype=np.uint8)
    classes = np.arange(12)[:, None]
    lazy = base.from_numpy(LazyImages(12, (3, 4, 4), lambda r: store[r]), classes, classes, (3, 4, 4), ("a",), False)
    resident = base.from_numpy(store, classes, classes, (3, 4, 4), ("a",), False)
    assert lazy.lazy and not resident.lazy and isinstance(lazy, FactorImages)
    index = torch.tensor([3, 3, 0, 11])
    assert torch.equal(lazy.pixels(index), resident.pixels(index))
    sub_l, sub_r = lazy.subset(np.array([9, 1, 5])), resident.subset(np.array([9, 1, 5]))
    assert torch.equal(sub_l.pixels(torch.tensor([2, 0])), sub_r.pixels(torch.tensor([2, 0])))
    assert torch.equal(sub_l.batch(slice(None))["factors"], sub_r.batch(slice(None))["factors"])
    moved = sub_l.to("cpu")
    assert moved.lazy and moved.device == torch.device("cpu")
    for a, b in zip(SequentialBatches(lazy, 5), SequentialBatches(resident, 5)):
        assert torch.equal(a["x"], b["x"])
    a, b = sources.sample(lazy, 4, seed=1), sources.sample(resident, 4, seed=1)
    assert torch.equal(a.pixels(slice(None)), b.pixels(slice(None)))


def test_resident_rule(monkeypatch):
    assert base.available_memory() > 0
    assert base.choose_resident(True, 10**15) and not base.choose_resident(False, 1)
    monkeypatch.setattr(base, "resident_budget", lambda: 1000)
    assert base.choose_resident("auto", 1000) and not base.choose_resident("auto", 1001)
    with pytest.raises(ValueError, match="resident must be"):
        base.choose_resident("yes", 1)


# --- the real format ------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True])
def test_file_resident_and_lazy_give_identical_batches(tmp_path, chunked):
    path = tmp_path / "3dshapes.h5"
    arrays = write_h5(path, chunked=chunked)
    res = s3.load(path=path, source="file", resident=True)
    lazy = s3.load(path=path, source="file", resident=False)
    assert not res.lazy and lazy.lazy and isinstance(lazy.images.source, h5py.Dataset)
    assert len(res) == len(lazy) == 96 and res.image_shape == (3, 64, 64) and res.factor_names == s3.GRID.names
    np.testing.assert_array_equal(res.classes.numpy(), arrays["classes"])
    np.testing.assert_allclose(res.values.numpy(), s3.GRID.values_of(arrays["classes"]), rtol=1e-6)
    assert torch.equal(res.images, chw(arrays["images"]))
    index = torch.tensor([50, 3, 3, 95, 0, 17, 16, 18, 50])  # unsorted, repeated, neighbours
    assert torch.equal(lazy.stored(index), chw(arrays["images"])[index])
    assert torch.equal(lazy.pixels(index), res.pixels(index))
    assert torch.equal(lazy.pixels(slice(None)), res.pixels(slice(None)))


def test_file_rows_in_any_order_and_strides(tmp_path):
    classes = fixture_classes()
    perm = np.random.default_rng(3).permutation(len(classes))  # the reader rebuilds classes from labels
    path = tmp_path / "shuffled.h5"
    arrays = write_h5(path, classes=classes[perm])
    data = s3.load(path=path, resident=False)
    np.testing.assert_array_equal(data.classes.numpy(), classes[perm])
    strides = (5, 5, 5, 4, 2, 14)  # orientation {0, 14} of the fixture's {0, 7, 14}
    sub = s3.load(path=path, strides=strides, resident=False)
    keep = np.flatnonzero((classes[perm] % np.asarray(strides) == 0).all(axis=1))
    assert len(sub) == 64 and (sub.classes.numpy() % np.asarray(strides) == 0).all()
    np.testing.assert_array_equal(sub.classes.numpy(), classes[perm][keep])
    index = torch.tensor([63, 0, 31, 31])
    assert torch.equal(sub.stored(index), chw(arrays["images"][keep])[index])
    resident = s3.load(path=path, strides=strides, resident=True)
    assert torch.equal(resident.images, chw(arrays["images"][keep]))


def test_auto_follows_the_budget(tmp_path, monkeypatch):
    path = tmp_path / "3dshapes.h5"
    write_h5(path)
    monkeypatch.setattr(base, "resident_budget", lambda: 96 * 3 * 64 * 64)
    assert not s3.load(path=path).lazy
    monkeypatch.setattr(base, "resident_budget", lambda: 96 * 3 * 64 * 64 - 1)
    assert s3.load(path=path).lazy


def test_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        s3.load()
    msg = str(err.value)
    default = tmp_path / "data" / "raw" / "shapes3d" / "3dshapes.h5"
    assert str(default) in msg and "google-deepmind/3d-shapes" in msg and "GCS bucket 3d-shapes" in msg
    assert "curl -L -o " + str(default) in msg and "storage.googleapis.com/3d-shapes/3dshapes.h5" in msg
    assert "3dshapes.h5" in msg and "dataset.path=" in msg and "dataset.source=standin" in msg
    with pytest.raises(FileNotFoundError, match="elsewhere.h5"):
        s3.load(path=tmp_path / "elsewhere.h5")


def test_malformed_files(tmp_path):
    def check(name, match, **kw):
        path = tmp_path / f"{name}.h5"
        write_h5(path, **kw)
        with pytest.raises(ValueError, match=match) as err:
            s3.load(path=path)
        assert str(path) in str(err.value)

    n = len(fixture_classes())
    check("nolabels", "missing dataset.*labels", labels=False)
    check("noimages", "missing dataset.*images.*found labels", images=False, other=np.zeros(3))
    check("gray", r"'images' has shape \(96, 64, 64\)", images=np.zeros((n, 64, 64), np.uint8))
    check("float", "'images' has dtype float32", images=np.zeros((n, 64, 64, 3), np.float32))
    check("short", r"'labels' has shape \(95, 6\)", labels=np.zeros((n - 1, 6)))
    off = s3.GRID.values_of(fixture_classes())
    off[7, 5] = 31.0
    check("offgrid", r"column 5 \(orientation\) has value 31.0 in row 7", labels=off)
    bad = tmp_path / "not.h5"
    bad.write_bytes(b"not an hdf5 file")
    with pytest.raises(ValueError, match="not an HDF5 file") as err:
        s3.load(path=bad)
    assert str(bad) in str(err.value)


def test_unknown_source_and_strides():
    with pytest.raises(ValueError, match="valid sources: file, standin.*cannot be re-rendered"):
        s3.load(source="generated")
    with pytest.raises(ValueError, match="6 positive ints"):
        s3.load(source="standin", strides=(1, 2))


# --- stand-in -------------------------------------------------------------------------------------


def test_standin_renders_deterministic_distinct_images():
    classes = s3.GRID.classes()
    rng = np.random.default_rng(0)
    sel = classes[rng.choice(len(classes), 1500, replace=False)]
    imgs = s3.render_standin(sel)
    assert imgs.dtype == np.uint8 and imgs.shape == (1500, 3, 64, 64)
    np.testing.assert_array_equal(imgs, s3.render_standin(sel))
    np.testing.assert_array_equal(imgs[::-1], s3.render_standin(sel[::-1]))  # order independent
    assert len(np.unique(imgs.reshape(len(imgs), -1), axis=0)) == len(imgs)
    # every single-factor change changes the image
    base_cls = np.array([3, 6, 1, 4, 2, 7])
    for k, size in enumerate(s3.GRID.sizes):
        variants = np.repeat(base_cls[None], size, axis=0)
        variants[:, k] = np.arange(size)
        flat = s3.render_standin(variants).reshape(size, -1)
        assert len(np.unique(flat, axis=0)) == size, s3.GRID.names[k]
    with pytest.raises(ValueError, match="out of range"):
        s3.render_standin(np.array([[0, 0, 0, 8, 0, 0]]))


def test_standin_load_full_grid_lazy_and_strided():
    data = s3.load(source="standin", resident=False)
    assert data.lazy and len(data) == 480_000 and "stand-in" in data.images.description
    index = torch.tensor([479_999, 5, 5, 123_456])
    expected = torch.from_numpy(s3.render_standin(s3.GRID.classes()[index.numpy()]))
    assert torch.equal(data.stored(index), expected)
    strides = (3, 3, 3, 2, 1, 7)
    lazy = s3.load(source="standin", strides=strides, resident=False)
    res = s3.load(source="standin", strides=strides, resident=True)
    assert len(lazy) == 4 * 4 * 4 * 4 * 4 * 3 and not res.lazy
    np.testing.assert_array_equal(lazy.classes.numpy(), s3.GRID.subgrid(strides).classes() * np.asarray(strides))
    np.testing.assert_allclose(lazy.values.numpy(), s3.GRID.values_of(lazy.classes.numpy()), rtol=1e-6)
    index = torch.tensor([700, 1, 1, 0])
    assert torch.equal(lazy.pixels(index), res.pixels(index))
    with pytest.raises(ValueError, match="only read with dataset.source=file"):
        s3.load(path="x.h5", source="standin")
