"""CIFAR-10 / CIFAR-100 (genlab.data.cifar): tiny archives in the published python-pickle layouts
(``cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta``; ``cifar-100-python/train, test,
meta``) read through the real code as the .tar.gz, the extracted folder and the bare batch files;
the pixel layout (1024 R, 1024 G, 1024 B, each 32 x 32 row-major), labels, splits, n; refusals
(missing files before any compute, damaged pickles, a pickle naming a disallowed global); the
synthetic stand-in."""

from __future__ import annotations

import io
import os
import pickle
import struct
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from genlab.data import DATASETS, BatchSource, check_dataset, load_dataset
from genlab.data import cifar
from genlab.errors import ConfigError, CorruptFile, MissingFile

C10_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]


def fixture_rows(n: int, offset: int) -> np.ndarray:
    """n distinct (n, 3072) uint8 rows: every value of row i is (offset + i) * 7 % 256, except one
    marker pixel per channel: channel c, row r = 5, column w = 9 holds (200 + 10 c + offset + i) % 256."""
    rows = np.broadcast_to(((offset + np.arange(n)) * 7 % 256).astype(np.uint8)[:, None], (n, 3072)).copy()
    for c in range(3):
        rows[:, c * 1024 + 5 * 32 + 9] = ((200 + 10 * c + offset + np.arange(n)) % 256).astype(np.uint8)
    return rows


class Py2Pickler(pickle._Pickler):
    """Pickles as Python 2's cPickle wrote the published files: protocol 2, byte strings as (SHORT_)BINSTRING
    (which ``encoding="bytes"`` reads back as bytes), not Python 3's ``_codecs.encode`` calls."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def py2_dumps(obj) -> bytes:
    """``obj`` in the published files' layout, numpy arrays naming ``numpy.core.multiarray._reconstruct``
    as numpy 1 does (numpy 2 writes ``numpy._core``)."""
    out = io.BytesIO()
    Py2Pickler(out, protocol=2).dump(obj)
    return out.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def batch_pickle(data, labels, label_key=b"labels", protocol=None) -> bytes:
    """A batch dict as the published files hold it: bytes keys, a numpy uint8 data array, a list of labels
    (``protocol``: written by Python 3's pickle instead, as a re-saved copy would be)."""
    batch = {b"batch_label": b"fixture", label_key: labels, b"data": data,
             b"filenames": [b"img%d.png" % i for i in range(len(labels))]}  # fmt: skip
    return py2_dumps(batch) if protocol is None else pickle.dumps(batch, protocol=protocol)


def cifar10_files(n_per_batch=3, n_test=4) -> dict[str, bytes]:
    files = {}
    for b, name in enumerate(C10_TRAIN):
        offset = b * n_per_batch
        files[name] = batch_pickle(fixture_rows(n_per_batch, offset), [(offset + i) % 10 for i in range(n_per_batch)])
    files["test_batch"] = batch_pickle(fixture_rows(n_test, 100), [(100 + i) % 10 for i in range(n_test)])
    files["batches.meta"] = py2_dumps({b"label_names": [b"c%d" % i for i in range(10)], b"num_vis": 3072})
    return files


def cifar100_files(n_train=7, n_test=3) -> dict[str, bytes]:
    def part(n, offset):
        return batch_pickle(fixture_rows(n, offset), [(offset * 13 + 13 * i) % 100 for i in range(n)], b"fine_labels")

    files = {"train": part(n_train, 0), "test": part(n_test, 50)}
    files["meta"] = py2_dumps({b"fine_label_names": [b"f%d" % i for i in range(100)]})
    return files


def write_archive(path: Path, folder: str, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return path


def write_folder(path: Path, files: dict[str, bytes]) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (path / name).write_bytes(raw)
    return path


@pytest.fixture
def c10_archive(tmp_path) -> Path:
    write_archive(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", cifar10_files())
    return tmp_path


def config(name="cifar10", path=None, source=None, **extra):
    cfg = {"name": name, "path": None if path is None else str(path), "options": {}, **extra}
    if source is not None:
        cfg["source"] = source
    return cfg


def test_registered_as_labelled_images_with_their_classes():
    for name, n_classes in (("cifar10", 10), ("cifar100", 100)):
        spec = DATASETS.get(name)
        assert (spec.kind, spec.shape) == ("labelled_images", (3, 32, 32))
        assert spec.model_inputs() == {"input_shape": [3, 32, 32], "n_classes": n_classes}
        assert spec.options() == {"split": "train", "n": None}
        assert spec.tiny == {"source": "synthetic", "n": 512}


def test_the_archive_loads_images_labels_and_rows_in_file_order(c10_archive):
    assert check_dataset(config(path=c10_archive)) is None
    data = load_dataset(config(path=c10_archive), "cpu", 0)
    assert isinstance(data.train, BatchSource) and data.val is None
    assert (len(data.train), len(data.test)) == (15, 4)
    batch = data.train.batch(slice(None))
    assert batch["x"].dtype == torch.float32 and batch["x"].shape == (15, 3, 32, 32)
    assert batch["y"].dtype == torch.int64 and batch["y"].tolist() == [i % 10 for i in range(15)]
    assert batch["index"].tolist() == list(range(15))
    expected = torch.from_numpy(fixture_rows(15, 0).reshape(15, 3, 32, 32)).float() / 255
    assert torch.equal(batch["x"], expected)
    # the layout: value at channel c, row r, column w of the published row lands at x[i, c, r, w]
    for c in range(3):
        assert torch.equal(batch["x"][:, c, 5, 9], (200 + 10 * c + torch.arange(15)).float() / 255)
        assert batch["x"][0, c, 5, 8] == 0 and batch["x"][0, c, 4, 9] == 0
    assert data.test.batch(slice(None))["y"].tolist() == [0, 1, 2, 3]
    assert data.info["sizes"] == {"train": 15, "test": 4} and data.info["input_shape"] == [3, 32, 32]
    assert data.info["path"].endswith("cifar-10-python.tar.gz") and data.info["source"] == "file"


def test_the_extracted_folder_and_bare_files_load_the_same(tmp_path, c10_archive):
    reference = load_dataset(config(path=c10_archive)).train.batch(slice(None))
    write_folder(tmp_path / "ext" / "cifar-10-batches-py", cifar10_files())
    write_folder(tmp_path / "bare", cifar10_files())
    for path in (tmp_path / "ext", tmp_path / "bare", c10_archive / "cifar-10-python.tar.gz"):
        assert check_dataset(config(path=path)) is None
        batch = load_dataset(config(path=path)).train.batch(slice(None))
        assert all(torch.equal(batch[k], reference[k]) for k in reference)


def test_the_fixtures_have_the_published_pickle_layout_and_python3_copies_read_too(tmp_path, c10_archive):
    raw = cifar10_files()["data_batch_1"]
    assert raw.startswith(b"\x80\x02") and b"cnumpy.core.multiarray\n_reconstruct\n" in raw and b"_codecs" not in raw
    files = cifar10_files()
    files["data_batch_1"] = batch_pickle(fixture_rows(3, 0), [0, 1, 2], protocol=4)  # numpy 2's names, BINBYTES
    write_folder(tmp_path / "py3", files)
    reference = load_dataset(config(path=c10_archive)).train.batch(slice(None))
    assert torch.equal(load_dataset(config(path=tmp_path / "py3")).train.batch(slice(None))["x"], reference["x"])


def test_split_test_and_n(c10_archive):
    data = load_dataset(config(path=c10_archive, split="test"))
    assert len(data.train) == 4 and data.test is None
    assert torch.equal(data.train.batch(slice(None))["x"],
                       torch.from_numpy(fixture_rows(4, 100).reshape(4, 3, 32, 32)).float() / 255)  # fmt: skip
    data = load_dataset(config(path=c10_archive, n=5))
    assert (len(data.train), len(data.test)) == (5, 4)


def test_cifar100_reads_fine_labels_from_archive_and_folder(tmp_path):
    (tmp_path / "a").mkdir()
    write_archive(tmp_path / "a" / "cifar-100-python.tar.gz", "cifar-100-python", cifar100_files())
    write_folder(tmp_path / "f" / "cifar-100-python", cifar100_files())
    for path in (tmp_path / "a", tmp_path / "f"):
        assert check_dataset(config("cifar100", path)) is None
        data = load_dataset(config("cifar100", path))
        assert (len(data.train), len(data.test)) == (7, 3)
        assert data.train.batch(slice(None))["y"].tolist() == [13 * i % 100 for i in range(7)]
        assert data.test.batch(slice(None))["y"].tolist() == [(650 + 13 * i) % 100 for i in range(3)]
        assert data.model_inputs["n_classes"] == 100


def test_missing_files_fail_the_start_up_check_with_where_they_come_from(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nodata"))
    for name, archive in (("cifar10", "cifar-10-python.tar.gz"), ("cifar100", "cifar-100-python.tar.gz")):
        for check in (check_dataset, load_dataset):
            with pytest.raises(MissingFile) as err:
                check(config(name))
            message = str(err.value)
            for part in (archive, "Alex Krizhevsky", "https://www.cs.toronto.edu/~kriz/cifar.html",
                         str(tmp_path / "nodata" / "raw" / name), "dataset.path", "no package registry",
                         "never downloads", "dataset.tiny", "dataset.source=synthetic"):  # fmt: skip
                assert part in message, (part, message)
    with pytest.raises(MissingFile, match="cifar-10-python.tar.gz"):
        check_dataset(config(path=tmp_path / "elsewhere"))
    write_folder(tmp_path / "partial", {k: v for k, v in cifar10_files().items() if k != "data_batch_3"})
    with pytest.raises(MissingFile):
        check_dataset(config(path=tmp_path / "partial"))


def _damaged(tmp_path, name: str, raw: bytes) -> Path:
    files = cifar10_files()
    files[name] = raw
    return write_folder(tmp_path / "damaged", files)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


@pytest.mark.parametrize("raw, match", [
    (b"this is not a pickle", r"data_batch_2: not a valid CIFAR batch file: not a pickle"),
    (batch_pickle(np.zeros((3, 3000), np.uint8), [0, 1, 2]), r"data_batch_2: data of shape \(3, 3000\)"),
    (batch_pickle(fixture_rows(3, 0), [0, 1, 10]), r"data_batch_2: label 10 out of range: labels are 0..9"),
    (batch_pickle(fixture_rows(3, 0), [0, 1]), r"data_batch_2: count mismatch: 2 labels for 3 images"),
    (py2_dumps({b"data": fixture_rows(3, 0)}), r"data_batch_2: .*no key b'labels'"),
    (py2_dumps({b"data": _Evil(), b"labels": [0]}), r"data_batch_2: refused: .*global (posix|os|nt)\.system"),
], ids=["not-a-pickle", "row-length", "label-range", "count-mismatch", "missing-key", "os.system"])  # fmt: skip
def test_damaged_batch_files_are_corrupt_files_naming_them(tmp_path, raw, match, monkeypatch):
    calls = []
    for module in {os, sys.modules[os.system.__module__]}:  # os and posix: were it resolved, nothing would run
        monkeypatch.setattr(module, "system", lambda *a: calls.append(a))
    path = _damaged(tmp_path, "data_batch_2", raw)
    with pytest.raises(CorruptFile, match=match):
        load_dataset(config(path=path))
    assert calls == []


def test_a_disallowed_global_inside_the_archive_is_refused(tmp_path):
    files = cifar10_files()
    files["test_batch"] = pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=4)
    write_archive(tmp_path / "cifar-10-python.tar.gz", "cifar-10-batches-py", files)
    with pytest.raises(CorruptFile, match=r"cifar-10-python.tar.gz:cifar-10-batches-py/test_batch: refused"):
        load_dataset(config(path=tmp_path))


def test_damaged_archives_fail_the_start_up_check(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "cifar-10-python.tar.gz").write_bytes(b"not a tar at all")
    with pytest.raises(CorruptFile, match="not a valid tar archive"):
        check_dataset(config(path=tmp_path / "a"))
    (tmp_path / "b").mkdir()
    write_archive(tmp_path / "b" / "cifar-10-python.tar.gz", "cifar-10-batches-py",
                  {k: v for k, v in cifar10_files().items() if k != "test_batch"})  # fmt: skip
    with pytest.raises(CorruptFile, match="no member cifar-10-batches-py/test_batch"):
        check_dataset(config(path=tmp_path / "b"))


def test_the_synthetic_stand_in_and_tiny_read_no_file(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nodata"))
    with caplog.at_level("WARNING", logger="genlab.data.cifar"):
        data = load_dataset(config(source="synthetic"))
    assert "synthetic stand-in" in caplog.text and "not CIFAR-10" in caplog.text
    assert (len(data.train), len(data.test)) == (512, 256)
    assert "not CIFAR-10" in data.info["subset"]
    batch = data.train.batch(slice(None))
    assert batch["x"].shape == (512, 3, 32, 32) and 0 <= batch["x"].min() and batch["x"].max() <= 1
    assert batch["y"].tolist() == [i % 10 for i in range(512)]
    again = load_dataset(config(source="synthetic")).train.batch(slice(None))
    assert torch.equal(again["x"], batch["x"])  # seeded
    assert check_dataset(config(tiny=True)) is None
    tiny = load_dataset(config("cifar100", tiny=True))
    assert (len(tiny.train), len(tiny.test)) == (512, 256) and tiny.info["source"] == "synthetic"
    assert len(load_dataset(config(source="synthetic", split="test", n=100)).train) == 100


def test_bad_options_are_refused_before_any_data_is_read():
    with pytest.raises(ConfigError, match="valid sources: file, synthetic"):
        check_dataset(config(source="torchvision"))
    with pytest.raises(ConfigError, match="valid splits: train, test"):
        check_dataset(config(split="all"))
    with pytest.raises(ConfigError, match="n=0"):
        check_dataset(config(n=0))
    with pytest.raises(ConfigError, match="only read with dataset.source=file"):
        check_dataset(config(source="synthetic", path="/somewhere"))
