"""MPI3D: the npz format memory-mapped (stored and compressed members), length checks, errors, stand-in."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import paths
from genlab.data import mpi3d as m3
from genlab.data.registry import DATASETS

SIZES = (2, 3, 1, 2, 1, 4, 4)  # a shrunken release: 192 images


def write_npz(path: Path, n: int | None = None, compressed: bool = False, **arrays) -> np.ndarray:
    """A small file exactly in the real format (np.savez / np.savez_compressed), random pixels."""
    n = int(np.prod(SIZES)) if n is None else n
    images = np.random.default_rng(0).integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    arrays = arrays or {"images": images}
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return arrays.get("images", images)


def chw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))


class ReadCounter:
    """Counts the bytes read through zipfile members (the image payload must not be read)."""

    def __init__(self, monkeypatch):
        self.bytes = 0
        original = zipfile.ZipExtFile.read

        def read(zef, n=-1):
            out = original(zef, n)
            self.bytes += len(out)
            return out

        monkeypatch.setattr(zipfile.ZipExtFile, "read", read)


def test_grid_and_spec():
    assert m3.GRID.names == ("object_color", "object_shape", "object_size", "camera_height", "background_color",
                             "horizontal_axis", "vertical_axis")  # fmt: skip
    assert m3.GRID.sizes == (6, 6, 2, 3, 3, 40, 40) and len(m3.GRID) == 1_036_800
    classes = m3.GRID.classes()
    rows = np.random.default_rng(0).integers(0, len(classes), 3000)
    c, s, z, h, b, x, y = classes[rows].T
    np.testing.assert_array_equal(c * 172800 + s * 28800 + z * 14400 + h * 4800 + b * 1600 + x * 40 + y, rows)
    np.testing.assert_array_equal(m3.GRID.values_of(classes[rows]), classes[rows])  # values = class indices
    assert m3.default_path() == paths.raw_dir("mpi3d") / "mpi3d_real.npz"
    assert m3.default_path("toy") == paths.raw_dir("mpi3d") / "mpi3d_toy.npz"
    spec = DATASETS.get("mpi3d")
    assert spec.grid.sizes == m3.GRID.sizes and spec.image_shape == (3, 64, 64) and "stand-in" in spec.description
    with pytest.raises(ValueError, match="valid versions: toy, realistic, real"):
        m3.load(version="complex")


def test_stored_npz_is_memory_mapped_in_place(tmp_path, monkeypatch):
    path = tmp_path / "mpi3d_real.npz"
    images = write_npz(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("images.npy").compress_type == zipfile.ZIP_STORED  # what np.savez writes
    counter = ReadCounter(monkeypatch)
    lazy = m3.load(path=path, factor_sizes=SIZES, resident=False)
    assert counter.bytes < 1024  # the .npy header only
    mm = lazy.images.source
    assert lazy.lazy and isinstance(mm, np.memmap) and Path(mm.filename) == path and mm.shape == images.shape
    assert mm.offset > 0 and not mm.flags.writeable
    np.testing.assert_array_equal(mm, images)
    np.testing.assert_array_equal(lazy.classes.numpy(), m3.make_grid(SIZES).classes())
    np.testing.assert_array_equal(lazy.values.numpy(), lazy.classes.numpy())
    res = m3.load(path=path, factor_sizes=SIZES, resident=True)
    assert not res.lazy and torch.equal(res.images, chw(images))
    index = torch.tensor([191, 4, 4, 0, 100, 5, 3])  # unsorted, repeated, a contiguous run
    assert torch.equal(lazy.stored(index), chw(images)[index])
    assert torch.equal(lazy.pixels(index), res.pixels(index))
    assert torch.equal(lazy.pixels(slice(10, 30)), res.pixels(slice(10, 30)))


def test_compressed_npz_is_extracted_once_and_memory_mapped(tmp_path, monkeypatch):
    path = tmp_path / "mpi3d_toy.npz"
    images = write_npz(path, compressed=True)
    cache = tmp_path / "cache"
    data = m3.load(path=path, factor_sizes=SIZES, resident=False, cache_dir=cache)
    (extracted,) = cache.glob("*.npy")
    assert extracted.name.startswith("mpi3d_toy-") and not list(cache.glob(".*tmp"))
    mm = data.images.source
    assert isinstance(mm, np.memmap) and Path(mm.filename) == extracted
    assert torch.equal(data.stored(torch.tensor([7, 1, 7])), chw(images)[[7, 1, 7]])

    def no_extract(*args):
        raise AssertionError("extracted twice")

    monkeypatch.setattr(m3, "_extract", no_extract)
    again = m3.load(path=path, factor_sizes=SIZES, resident=True, cache_dir=cache)
    assert torch.equal(again.images, chw(images))
    # the default cache lives under paths.generated_dir("mpi3d")
    monkeypatch.undo()  # restore _extract
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    m3.load(path=path, factor_sizes=SIZES, resident=False)
    assert len(list((tmp_path / "data" / "generated" / "mpi3d").glob("mpi3d_toy-*.npy"))) == 1


def test_strides_on_file(tmp_path):
    path = tmp_path / "mpi3d_real.npz"
    images = write_npz(path)
    strides = (1, 2, 1, 1, 1, 2, 3)
    data = m3.load(path=path, factor_sizes=SIZES, strides=strides, resident=False)
    grid = m3.make_grid(SIZES)
    classes = grid.subgrid(strides).classes() * np.asarray(strides)
    np.testing.assert_array_equal(data.classes.numpy(), classes)
    rows = grid.index_of(classes)
    assert torch.equal(data.pixels(slice(None)), chw(images[rows]).float() / 255)
    res = m3.load(path=path, factor_sizes=SIZES, strides=strides, resident=True)
    assert torch.equal(res.images, chw(images[rows]))


def test_length_is_checked_against_factor_sizes(tmp_path):
    path = tmp_path / "mpi3d_real.npz"
    write_npz(path, n=150)
    with pytest.raises(ValueError) as err:
        m3.load(path=path, factor_sizes=SIZES)
    msg = str(err.value)
    assert str(path) in msg and "150 images" in msg and "[2, 3, 1, 2, 1, 4, 4]" in msg and "give 192" in msg
    with pytest.raises(ValueError, match="holds 150 images but factor_sizes .* give 1,036,800"):
        m3.load(path=path)
    with pytest.raises(ValueError, match="7 positive ints"):
        m3.load(path=path, factor_sizes=(6, 6, 2))


def test_missing_file_message(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    with pytest.raises(FileNotFoundError) as err:
        m3.load(version="realistic")
    msg = str(err.value)
    default = tmp_path / "data" / "raw" / "mpi3d" / "mpi3d_realistic.npz"
    assert str(default) in msg and "rr-learning/disentanglement_dataset" in msg
    assert "curl -L -o " + str(default) in msg and "Final_Dataset/mpi3d_realistic.npz" in msg  # the command that fetches it
    assert "dataset.path=" in msg and "dataset.source=standin" in msg
    with pytest.raises(FileNotFoundError, match="other.npz"):
        m3.load(path=tmp_path / "other.npz")


def test_malformed_files(tmp_path):
    def check(name, match, **arrays):
        path = tmp_path / f"{name}.npz"
        np.savez(path, **arrays)
        with pytest.raises(ValueError, match=match) as err:
            m3.load(path=path, factor_sizes=SIZES)
        assert str(path) in str(err.value)

    n = int(np.prod(SIZES))
    check("nokey", "missing key 'images'; found imgs", imgs=np.zeros((n, 64, 64, 3), np.uint8))
    check("gray", r"'images' has shape \(192, 64, 64\)", images=np.zeros((n, 64, 64), np.uint8))
    check("float", "'images' has dtype float32", images=np.zeros((n, 64, 64, 3), np.float32))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a zip/npz archive") as err:
        m3.load(path=bad, factor_sizes=SIZES)
    assert str(bad) in str(err.value)
    # a truncated stored member
    good = tmp_path / "good.npz"
    write_npz(good)
    data = bytearray(good.read_bytes())
    with zipfile.ZipFile(good) as zf:
        info = zf.getinfo("images.npy")
    cut = tmp_path / "cut.npz"
    with zipfile.ZipFile(cut, "w") as zf:  # a member shorter than its header says
        with zf.open("images.npy", "w") as f:
            f.write(bytes(data[m3.member_data_offset(good, info) :][: 128 + 64 * 64 * 3 * 10]))
    with pytest.raises(ValueError, match="truncated: 10 of 192 images"):
        m3.load(path=cut, factor_sizes=SIZES)


def test_unknown_source():
    with pytest.raises(ValueError, match="valid sources: file, standin.*cannot be re-rendered"):
        m3.load(source="generated")


# --- stand-in -------------------------------------------------------------------------------------


def test_standin_renders_deterministic_distinct_images():
    classes = m3.GRID.classes()
    sel = classes[np.random.default_rng(0).choice(len(classes), 1500, replace=False)]
    imgs = m3.render_standin(sel)
    assert imgs.dtype == np.uint8 and imgs.shape == (1500, 3, 64, 64)
    np.testing.assert_array_equal(imgs, m3.render_standin(sel))
    np.testing.assert_array_equal(imgs[::-1], m3.render_standin(sel[::-1]))
    assert len(np.unique(imgs.reshape(len(imgs), -1), axis=0)) == len(imgs)
    base_cls = np.array([2, 3, 1, 1, 2, 17, 23])
    for k, size in enumerate(m3.GRID.sizes):
        variants = np.repeat(base_cls[None], size, axis=0)
        variants[:, k] = np.arange(size)
        flat = m3.render_standin(variants).reshape(size, -1)
        assert len(np.unique(flat, axis=0)) == size, m3.GRID.names[k]
    with pytest.raises(ValueError, match="at most"):
        m3.render_standin(classes[:2], (7, 6, 2, 3, 3, 40, 40))


def test_standin_load_full_grid_is_lazy_and_strided_matches():
    data = m3.load(source="standin", resident=False)
    assert data.lazy and len(data) == 1_036_800 and "stand-in" in data.images.description
    index = torch.tensor([1_036_799, 12, 12, 500_000])
    expected = torch.from_numpy(m3.render_standin(m3.GRID.classes()[index.numpy()]))
    assert torch.equal(data.stored(index), expected)
    strides = (2, 2, 1, 1, 1, 8, 8)
    lazy = m3.load(source="standin", strides=strides, resident=False)
    res = m3.load(source="standin", strides=strides, resident=True)
    assert len(lazy) == 3 * 3 * 2 * 3 * 3 * 5 * 5 and not res.lazy
    assert torch.equal(lazy.pixels(torch.tensor([4049, 0, 0, 77])), res.pixels(torch.tensor([4049, 0, 0, 77])))
    small = m3.load(source="standin", factor_sizes=SIZES, resident=True)
    assert len(small) == 192 and small.images.shape == (192, 3, 64, 64)
