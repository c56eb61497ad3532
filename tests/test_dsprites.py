"""dSprites: renderer geometry and ordering, the real npz format (read and write), the GIF frames."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import paths
from genlab.data import dsprites as ds
from genlab.data.files import strided_classes
from genlab.data.registry import DATASETS
from genlab.registry import UnknownNameError

GIF = paths.project_root() / "data" / "reference" / "dsprites" / "dsprites.gif"
TINY = (1, 5, 13, 31, 31)  # 3 shapes x scales {0.5, 1} x orientations {0, 13, 26, 39} x 2 x 2 positions


def anchor(p: float) -> float:
    return 16 + 32 * p


def centroid(img: np.ndarray) -> tuple[float, float]:
    """(column, row) centroid in continuous pixel coordinates (pixel i covers [i, i+1))."""
    rows, cols = np.nonzero(img)
    return cols.mean() + 0.5, rows.mean() + 0.5


def real_metadata() -> dict:
    return {
        "date": "April 2017",
        "version": 1,
        "title": "dSprites dataset",
        "author": "test",
        "description": "fixture",
        "latents_names": ("color", "shape", "scale", "orientation", "posX", "posY"),
        "latents_sizes": np.array([1, 3, 6, 40, 32, 32]),
        "latents_possible_values": {"color": np.array([1.0]), **dict(zip(ds.GRID.names, ds.GRID.values))},
    }


def write_fixture(path: Path, classes5: np.ndarray, imgs: np.ndarray | None = None, **override) -> dict:
    """A small npz exactly in the real file's format, written with np.savez_compressed (not our writer)."""
    n = len(classes5)
    if imgs is None:
        imgs = ds.unpack(ds.render(classes5))
    arrays = {
        "imgs": imgs,
        "latents_values": np.concatenate([np.ones((n, 1)), ds.GRID.values_of(classes5)], axis=1),
        "latents_classes": np.concatenate([np.zeros((n, 1), np.int64), classes5], axis=1),
        "metadata": np.array(real_metadata(), dtype=object),
    }
    arrays.update(override)
    np.savez_compressed(path, **{k: v for k, v in arrays.items() if v is not None})
    return arrays


def tiny_classes(strides=TINY) -> np.ndarray:
    return strided_classes(ds.GRID, strides)


# --- grid and ordering -----------------------------------------------------------------------------


def test_grid_matches_spec():
    assert ds.GRID.names == ("shape", "scale", "orientation", "posX", "posY")
    assert ds.GRID.sizes == (3, 6, 40, 32, 32) and len(ds.GRID) == 737_280
    np.testing.assert_array_equal(ds.GRID.values[0], [1, 2, 3])
    np.testing.assert_allclose(ds.GRID.values[1], [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    assert ds.GRID.values[2][0] == 0 and ds.GRID.values[2][-1] == 2 * np.pi
    np.testing.assert_allclose(np.diff(ds.GRID.values[2]), 2 * np.pi / 39)
    np.testing.assert_allclose(ds.GRID.values[3], np.arange(32) / 31)
    assert ds.IMAGE_SHAPE == (1, 64, 64)
    assert ds.default_path() == paths.raw_dir("dsprites") / ds.FILENAME


def test_index_formula():
    classes = ds.GRID.classes()
    rng = np.random.default_rng(0)
    rows = rng.integers(0, len(classes), 2000)
    sh, sc, o, x, y = classes[rows].T
    np.testing.assert_array_equal(sh * 245760 + sc * 40960 + o * 1024 + x * 32 + y, rows)
    np.testing.assert_array_equal(ds.GRID.index_of(classes[rows]), rows)
    np.testing.assert_array_equal(classes[:3], [[0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 2]])
    np.testing.assert_array_equal(classes[32], [0, 0, 0, 1, 0])


def test_render_follows_row_order_and_posx_moves_columns():
    # the last factor (posY) moves the sprite down the rows, posX along the columns
    classes = np.array([[1, 5, 0, x, y] for x in (0, 10) for y in (0, 10)])
    imgs = ds.unpack(ds.render(classes))
    (c00, r00), (c01, r01), (c10, r10), _ = (centroid(i) for i in imgs)
    assert c01 == pytest.approx(c00) and r01 == pytest.approx(r00 + 320 / 31, abs=0.3)
    assert r10 == pytest.approx(r00) and c10 == pytest.approx(c00 + 320 / 31, abs=0.3)
    swapped = ds.unpack(ds.render(classes, posx_to_columns=False))
    (sc01, sr01) = centroid(swapped[1])
    assert sr01 == pytest.approx(r00) and sc01 == pytest.approx(c00 + 320 / 31, abs=0.3)
    # render of any subset equals the rows of a larger render
    tiny = tiny_classes()
    full = ds.render(tiny)
    perm = np.random.default_rng(1).permutation(len(tiny))
    np.testing.assert_array_equal(ds.render(tiny[perm]), full[perm])


def test_packed_bits_are_numpy_packbits_of_binary_images():
    classes = tiny_classes()
    packed = ds.render(classes)
    assert packed.dtype == np.uint8 and packed.shape == (len(classes), 512)
    imgs = ds.unpack(packed)
    assert set(np.unique(imgs)) == {0, 1}
    assert (imgs.reshape(len(imgs), -1).sum(axis=1) > 0).all()
    np.testing.assert_array_equal(np.packbits(imgs.reshape(len(imgs), -1), axis=1), packed)


def test_orientation_0_and_39_render_identically():
    classes = tiny_classes((1, 1, 39, 7, 11))
    assert set(classes[:, 2]) == {0, 39}
    packed = ds.render(classes)
    zero, last = packed[classes[:, 2] == 0], packed[classes[:, 2] == 39]
    np.testing.assert_array_equal(zero, last)


def test_mean_pixel_matches_dataset():
    rng = np.random.default_rng(0)
    classes = np.stack([rng.integers(0, s, 30_000) for s in ds.GRID.sizes], axis=1)
    mean = np.unpackbits(ds.render(classes)).mean()
    assert mean == pytest.approx(0.042494, abs=5e-4)


@pytest.mark.parametrize("px", [0, 7, 19, 31])
def test_shapes_centred_on_anchor(px):
    p = ds.GRID.values[3][px]
    square, ellipse, heart = ds.unpack(ds.render(np.array([[s, 5, 0, px, px] for s in range(3)])))
    # square, orientation 0: pixel centres within +-9.6 px of the anchor, both axes
    rows, cols = np.nonzero(square)
    centres = np.arange(64) + 0.5
    inside = centres[np.abs(centres - anchor(p)) <= 9.6]
    np.testing.assert_array_equal(np.unique(cols) + 0.5, inside)
    np.testing.assert_array_equal(np.unique(rows) + 0.5, inside)
    # ellipse centred on the anchor, long axis horizontal at orientation 0
    cx, cy = centroid(ellipse)
    assert cx == pytest.approx(anchor(p), abs=0.3) and cy == pytest.approx(anchor(p), abs=0.3)
    er, ec = np.nonzero(ellipse)
    assert np.ptp(ec) > np.ptp(er) + 8
    # heart upright: lobes up, centroid ~1.9 px above the anchor at scale 1
    hx, hy = centroid(heart)
    assert hx == pytest.approx(anchor(p), abs=0.3)
    assert anchor(p) - hy == pytest.approx(1.9, abs=0.4)


def test_heart_rows_match_measured_widths():
    heart = ds.unpack(ds.render(np.array([[2, 5, 0, 0, 0]])))[0]
    widths = heart.sum(axis=1)
    measured = [10, 14, 16, 18, 20, 20, 18, 18, 16, 16, 14, 12, 10, 8, 6, 4, 2]  # rows 7..23 (docs/disent.md §1.1)
    assert widths[:7].sum() == 0 and widths[24:].sum() == 0
    assert np.abs(widths[7:24] - measured).sum() <= 4
    assert heart[7:9, 15:17].sum() == 0  # the notch between the lobes (rows 7-9 in the real heart)


def test_rotation_is_counter_clockwise_as_displayed():
    # ellipse at orientation class 10 (~92 deg) is vertical; at ~45 deg (class 5 ~ 46 deg) the right
    # end is raised: counter-clockwise on screen, rows growing downward
    ellipse = ds.unpack(ds.render(np.array([[1, 5, 10, 15, 15], [1, 5, 5, 15, 15]])))
    rows, cols = np.nonzero(ellipse[0])
    assert np.ptp(rows) > np.ptp(cols) + 8
    rows, cols = np.nonzero(ellipse[1])
    right, left = rows[cols > cols.mean() + 4].mean(), rows[cols < cols.mean() - 4].mean()
    assert right < left


# --- reading and writing the real format ------------------------------------------------------------


def test_reads_real_format_fixture(tmp_path):
    classes = tiny_classes()
    path = tmp_path / ds.FILENAME
    arrays = write_fixture(path, classes)
    data = ds.load(source="file", path=path)
    assert len(data) == len(classes) and data.bits and data.image_shape == (1, 64, 64)
    assert data.factor_names == ds.GRID.names
    np.testing.assert_array_equal(data.classes.numpy(), classes)
    np.testing.assert_allclose(data.values.numpy(), ds.GRID.values_of(classes), rtol=1e-6)
    np.testing.assert_array_equal(data.images.numpy(), np.packbits(arrays["imgs"].reshape(len(classes), -1), axis=1))
    np.testing.assert_array_equal(data.pixels(slice(None)).numpy()[:, 0], arrays["imgs"])
    # strides select rows while streaming; classes stay those of the full grid
    sub = ds.load(source="file", path=path, strides=(1, 5, 26, 31, 31))
    keep = classes[:, 2] % 26 == 0
    np.testing.assert_array_equal(sub.classes.numpy(), classes[keep])
    np.testing.assert_array_equal(sub.images.numpy(), data.images.numpy()[keep])


def test_writer_output_loads_with_np_load_and_reader(tmp_path):
    classes = tiny_classes()
    values = ds.GRID.values_of(classes)
    packed = ds.render(classes)
    path = ds.write_npz(tmp_path / "w.npz", packed, classes, values, chunk=7)
    with np.load(path, allow_pickle=True, encoding="latin1") as f:
        assert set(f.files) == {"imgs", "latents_values", "latents_classes", "metadata"}
        assert f["imgs"].dtype == np.uint8 and f["imgs"].shape == (len(classes), 64, 64)
        np.testing.assert_array_equal(f["imgs"], ds.unpack(packed))
        assert f["latents_values"].dtype == np.float64 and f["latents_classes"].dtype == np.int64
        np.testing.assert_array_equal(f["latents_classes"], np.c_[np.zeros(len(classes), int), classes])
        np.testing.assert_array_equal(f["latents_values"], np.c_[np.ones(len(classes)), values])
        meta = f["metadata"][()]
        assert meta["latents_names"][0] == "color" and list(meta["latents_sizes"]) == [1, 3, 6, 40, 32, 32]
        np.testing.assert_array_equal(meta["latents_possible_values"]["orientation"], ds.GRID.values[2])
    with zipfile.ZipFile(path) as zf:
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in zf.infolist())
    p2, c2, v2 = ds.read_npz(path, chunk=5)
    np.testing.assert_array_equal(p2, packed)
    np.testing.assert_array_equal(c2, classes)
    np.testing.assert_array_equal(v2, values)


@pytest.mark.parametrize(
    "override, message",
    [
        ({"metadata": None}, "missing key(s) metadata"),
        ({"latents_classes": None}, "missing key(s) latents_classes"),
        ({"imgs": np.zeros((8, 64, 64), np.float32)}, "'imgs' has dtype float32, expected uint8"),
        ({"imgs": np.zeros((8, 32, 32), np.uint8)}, "'imgs' has shape (8, 32, 32)"),
        ({"imgs": np.full((8, 64, 64), 255, np.uint8)}, "not binary"),
        ({"latents_classes": np.zeros((8, 6), np.float64)}, "'latents_classes' has dtype float64"),
        ({"latents_values": np.zeros((8, 5))}, "'latents_values' has shape (8, 5)"),
        ({"latents_values": np.zeros((8, 6))}, "do not match"),
    ],
)
def test_malformed_file_is_a_clear_error(tmp_path, override, message):
    path = tmp_path / "bad.npz"
    write_fixture(path, tiny_classes()[:8], **override)
    with pytest.raises(ValueError) as err:
        ds.load(source="file", path=path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_not_a_zip_is_a_clear_error(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        ds.load(source="file", path=path)


def test_missing_file_says_where_to_get_and_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        ds.load(source="file")
    msg = str(err.value)
    default = tmp_path / "data" / "raw" / "dsprites" / ds.FILENAME
    assert str(default) in msg and ds.FILENAME in msg
    assert "google-deepmind/dsprites-dataset" in msg and "no internet" in msg
    assert "curl -L -o " + str(default) in msg and "raw/master/dsprites_ndarray" in msg  # the command that fetches it
    assert "dataset.path=" in msg and "dataset.source=generated" in msg
    with pytest.raises(FileNotFoundError, match="elsewhere.npz"):
        ds.load(source="file", path=tmp_path / "elsewhere.npz")


def test_bad_arguments():
    with pytest.raises(ValueError, match="valid sources: file, generated"):
        ds.load(source="web")
    with pytest.raises(ValueError, match="strides"):
        ds.load(source="generated", strides=(1, 2))
    with pytest.raises(ValueError, match="out of range"):
        ds.render(np.array([[3, 0, 0, 0, 0]]))


def test_generated_subgrid():
    data = ds.load(source="generated", strides=TINY)
    classes = tiny_classes()
    np.testing.assert_array_equal(data.classes.numpy(), classes)
    assert data.values.dtype == torch.float32
    np.testing.assert_allclose(data.values[:, 0].numpy(), classes[:, 0] + 1)  # shape values 1, 2, 3
    np.testing.assert_array_equal(data.images.numpy(), ds.render(classes))


def test_registered():
    spec = DATASETS.get("dsprites")
    assert spec.grid is ds.GRID and spec.image_shape == (1, 64, 64) and spec.build is ds.load and spec.kind == "factor_images"
    with pytest.raises(UnknownNameError, match="valid datasets: .*dsprites"):
        DATASETS.get("dsprite")


# --- the official frames --------------------------------------------------------------------------


def test_generator_reproduces_gif_frames():
    assert GIF.is_file(), f"reference frames missing: {GIF}"
    result = ds.compare_with_reference(GIF)
    assert result["frames"] == 320 and result["pixels"] == 320 * 4096
    # docs/disent.md §1.1: a faithful generator reproduces the frames to well under 1 % wrong pixels
    assert result["agreement"] > 0.999
    assert result["worst_frame_agreement"] > 0.99
    shapes = result["classes"][:, 0]
    assert set(shapes) == {0, 1, 2}


@pytest.mark.slow
def test_full_generated_dataset_is_cached(tmp_path):
    first = ds.load(source="generated", cache_dir=tmp_path)
    cache = tmp_path / ds.FILENAME
    assert cache.is_file() and not list(tmp_path.glob(".*.tmp"))
    assert len(first) == 737_280
    np.testing.assert_array_equal(first.classes.numpy(), ds.GRID.classes())
    again = ds.load(source="generated", cache_dir=tmp_path)
    assert torch.equal(first.images, again.images) and torch.equal(first.classes, again.classes)
    assert torch.equal(first.values, again.values)
    mean = float(first.pixels(slice(0, None, 7)).mean())
    assert mean == pytest.approx(0.042494, abs=5e-4)
    orient = first.classes[:, 2]
    assert torch.equal(first.images[orient == 0], first.images[orient == 39])


@pytest.mark.parametrize("where", [0.3, 0.6])
def test_flipped_bytes_inside_the_compressed_file_name_it_as_corrupt(tmp_path, where):
    """Issue 10: damaged deflate data gave a bare ``zlib.error`` (or a CRC ``BadZipFile``)."""
    path = tmp_path / ds.FILENAME
    write_fixture(path, tiny_classes())
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("imgs.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    at = start + int(info.compress_size * where)
    raw[at : at + 64] = bytes(b ^ 0x5A for b in raw[at : at + 64])
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=rf"{ds.FILENAME}.*is corrupt"):
        ds.load(source="file", path=path)
