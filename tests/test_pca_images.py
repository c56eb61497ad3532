"""pca_fashion_mnist20 (genlab.data.pca_images, MIM docs/mim.md §1.4, §9.8): tiny IDX files in the published
layout (the writer of test_images) read through genlab.data.images, the PCA fits ("train": one basis for
both splits; "per_split": each split its own) against sklearn, the affine augmentation against
torchvision, dequantisation, the pass arithmetic and determinism of draws, the embedded stand-in, refusals;
(marker ``data``) the real FashionMNIST files when bin/get-data has put them in place."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from sklearn.decomposition import PCA
from torchvision.transforms import InterpolationMode

from genlab import paths
from genlab.data import DATASETS, check_dataset, load_dataset
from genlab.data import pca_images
from genlab.data.streams import Stream, StreamBatches, StreamPasses
from genlab.data.transforms import batch_generator
from genlab.errors import ConfigError, MissingFile
from test_images import NAMES, write_idx

NAME = "pca_fashion_mnist20"
N_TRAIN, N_TEST = 96, 40


def smooth_images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """n uint8 28x28 images: a few random blobs each (low-rank enough for a meaningful PCA) plus noise; labels i % 10."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:28, :28]
    centres = rng.uniform(6, 22, (n, 3, 2))
    blobs = np.exp(-((xx - centres[..., 0, None, None]) ** 2 + (yy - centres[..., 1, None, None]) ** 2) / 18).sum(1)
    images = np.clip(blobs * 200 + rng.uniform(0, 30, (n, 28, 28)), 0, 255).astype(np.uint8)
    return images, (np.arange(n) % 10).astype(np.uint8)


@pytest.fixture
def idx_dir(tmp_path):
    for (images_name, labels_name), (n, seed) in zip((NAMES[:2], NAMES[2:]), ((N_TRAIN, 0), (N_TEST, 1))):
        images, labels = smooth_images(n, seed)
        write_idx(tmp_path / images_name, images)
        write_idx(tmp_path / labels_name, labels)
    return tmp_path


def config(path=None, **options):
    return {"name": NAME, "path": None if path is None else str(path), "options": options}


def flat(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1) / 255.0


def identity_stream(images: torch.Tensor, augment: bool, seed: int = 0) -> pca_images.AugmentedPCAStream:
    """A training stream whose "projection" is the identity on the 784 pixels, to see the images themselves."""
    projection = pca_images.Projection(torch.zeros(784), torch.eye(784), 1.0)
    return pca_images.AugmentedPCAStream(images, torch.zeros(len(images), dtype=torch.int64), projection, seed, augment)


def random_uint8(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 28, 28), generator=torch.Generator().manual_seed(seed), dtype=torch.uint8)


def test_the_dataset_is_a_registered_stream():
    spec = DATASETS.get(NAME)
    assert (spec.kind, spec.shape) == ("stream", (20,))
    assert spec.options() == {"source": "file", "path": None, "pca_fit": "train", "n_components": 20, "augment": True, "n": None}
    assert spec.model_inputs() == {"input_shape": [20], "n_classes": 10}
    assert spec.tiny == {"source": "embedded", "n": 1024}


def test_batches_have_their_shapes_dtypes_and_labels(idx_dir):
    data = load_dataset(config(idx_dir), "cpu", 5)
    assert isinstance(data.train, Stream) and isinstance(data.test, Stream) and data.val is None
    assert (len(data.train), len(data.test)) == (N_TRAIN, N_TEST)
    train = next(iter(StreamBatches(data.train, 16, seed=1)))
    test = next(iter(StreamPasses(data.test, 16)))
    for batch in (train, test):
        assert set(batch) == {"x", "y"} and batch["x"].shape == (16, 20) and batch["x"].dtype == torch.float32
        assert batch["y"].shape == (16,) and batch["y"].dtype == torch.int64
    labels = torch.arange(N_TRAIN) % 10
    assert torch.equal(train["y"], labels[data.train.rows(0, 0, 16)])
    assert test["y"].tolist() == [i % 10 for i in range(16)]  # in file order
    assert data.model_inputs == {"input_shape": [20], "n_classes": 10}
    info = data.info
    assert (info["source"], info["path"], info["pca_fit"], info["augment"], info["seed"]) == ("file", str(idx_dir), "train", True, 5)
    assert info["sizes"] == {"train": N_TRAIN, "test": N_TEST} and set(info["explained_variance_ratio"]) == {"train"}
    assert 0 < info["explained_variance_ratio"]["train"] <= 1
    assert len(load_dataset(config(idx_dir, n=32), "cpu", 0).train) == 32  # n keeps the first training images


def test_pca_train_applies_the_training_basis_to_both_splits(idx_dir):
    train_images, _ = smooth_images(N_TRAIN, 0)
    test_images, _ = smooth_images(N_TEST, 1)
    reference = PCA(n_components=20, random_state=0).fit(flat(train_images))
    data = load_dataset(config(idx_dir), "cpu", 0)
    test_x = torch.cat([b["x"] for b in StreamPasses(data.test, N_TEST)])
    assert np.abs(test_x.numpy() - reference.transform(flat(test_images))).max() < 1e-4
    projection = data.train.projection
    assert np.abs(projection.components.numpy() - reference.components_).max() < 1e-6
    assert np.abs(projection(torch.from_numpy(flat(train_images)).float()).numpy() - reference.transform(flat(train_images))).max() < 1e-4
    assert data.info["explained_variance_ratio"]["train"] == pytest.approx(reference.explained_variance_ratio_.sum(), abs=1e-6)


def test_pca_per_split_projects_each_split_with_its_own_basis(idx_dir):
    train_images, _ = smooth_images(N_TRAIN, 0)
    test_images, _ = smooth_images(N_TEST, 1)
    own = PCA(n_components=20, random_state=0).fit(flat(test_images))
    data = load_dataset(config(idx_dir, pca_fit="per_split"), "cpu", 0)
    test_x = data.test.draw(0, 0, N_TEST, batch_generator(0, 0, "cpu"))["x"].numpy()
    assert np.abs(test_x - own.transform(flat(test_images))).max() < 1e-4
    trained = PCA(n_components=20, random_state=0).fit(flat(train_images))
    assert np.abs(test_x - trained.transform(flat(test_images))).max() > 0.1  # not the training basis
    assert np.abs(data.train.projection.components.numpy() - trained.components_).max() < 1e-6
    assert set(data.info["explained_variance_ratio"]) == {"train", "test"} and data.info["pca_fit"] == "per_split"


def test_without_augmentation_a_training_batch_is_the_images_dequantised():
    images = random_uint8(256)
    stream = identity_stream(images, augment=False)
    x = stream.draw(0, 1, 64, batch_generator(0, 3, "cpu"))["x"]
    v = images[stream.rows(0, 1, 64)].flatten(1).float() / 255
    assert x.min() >= 1e-3 and x.max() <= 1 - 1e-3
    assert (x - v).abs().max() <= 1 / 256
    u = torch.rand(v.shape, generator=batch_generator(0, 3, "cpu"))  # the only draw: the dequantisation noise
    assert torch.equal(x, ((255 * v + u) / 256).clamp(1e-3, 1 - 1e-3))


def test_with_augmentation_about_half_the_images_are_moved():
    images = random_uint8(512)
    v = images.flatten(1).float() / 255
    x = identity_stream(images, augment=True).draw(0, 0, 512, batch_generator(0, 0, "cpu"))["x"]
    rows = identity_stream(images, augment=True).rows(0, 0, 512)
    moved = ((x - v[rows]).abs() > 1 / 256 + 1e-6).any(1).float().mean().item()
    assert 0.4 < moved < 0.6
    assert x.min() >= 1e-3 and x.max() <= 1 - 1e-3


def test_random_affine_with_p_0_is_the_identity_and_with_p_1_moves_every_image():
    images = random_uint8(64).float() / 255
    assert torch.equal(pca_images.random_affine(images, torch.Generator().manual_seed(0), p=0.0), images)
    moved = pca_images.random_affine(images, torch.Generator().manual_seed(0), p=1.0)
    assert (moved != images).flatten(1).any(1).all()


def test_the_identity_affine_gives_back_the_image_exactly():
    images = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    zero = torch.zeros(5)
    out = pca_images.affine(images, zero, torch.zeros(5, 2), torch.ones(5), torch.zeros(5, 2))
    assert torch.equal(out, images)


def test_the_affine_matches_torchvision_and_its_grid_matches_affine_grid():
    images = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    angle, scale = torch.tensor([7.3, -9.0, 2.0]), torch.tensor([0.85, 1.17, 1.0])
    translate, shear = torch.tensor([[2.0, -1.0], [-3.0, 3.0], [0.0, 1.0]]), torch.tensor([[4.0, 0.0], [-3.5, 0.0], [0.0, 2.0]])
    nearest = pca_images.affine(images, angle, translate, scale, shear)
    bilinear = pca_images.affine(images, angle, translate, scale, shear, mode="bilinear")
    for i in range(3):
        args = (images[i], angle[i].item(), translate[i].int().tolist(), scale[i].item(), shear[i].tolist())
        assert (bilinear[i] - TF.affine(*args, interpolation=InterpolationMode.BILINEAR)).abs().max() < 1e-5
        assert (nearest[i] != TF.affine(*args)).float().mean() < 0.01  # torchvision's default NEAREST; ties aside
    theta = pca_images.affine_theta(angle, translate, scale, shear, (28, 28))
    assert (pca_images.affine_grid(theta, (28, 28)) - F.affine_grid(theta, [3, 1, 28, 28], align_corners=False)).abs().max() < 1e-5
    wide = pca_images.affine_theta(angle, translate, scale, shear, (20, 32))
    assert (pca_images.affine_grid(wide, (20, 32)) - F.affine_grid(wide, [3, 1, 20, 32], align_corners=False)).abs().max() < 1e-5


def test_random_affine_parameters_are_randomaffines():
    p = pca_images.random_affine_parameters(4096, (28, 28), torch.Generator().manual_seed(0), "cpu")
    assert -10 <= p["angle"].min() < -9.9 and 9.9 < p["angle"].max() <= 10
    assert set(p["translate"].unique().tolist()) == {-3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0}  # round(U[-2.8, 2.8])
    assert 0.8 <= p["scale"].min() < 0.81 and 1.19 < p["scale"].max() <= 1.2
    assert -5 <= p["shear"][:, 0].min() < -4.9 and 4.9 < p["shear"][:, 0].max() <= 5 and (p["shear"][:, 1] == 0).all()


def test_a_draw_is_a_pure_function_of_the_generator_and_a_pass_is_a_seeded_permutation():
    images = random_uint8(200)
    stream = identity_stream(images, augment=True, seed=3)
    first = stream.draw(2, 1, 50, torch.Generator().manual_seed(9))["x"]
    assert torch.equal(first, identity_stream(images, augment=True, seed=3).draw(2, 1, 50, torch.Generator().manual_seed(9))["x"])
    assert not torch.equal(first, stream.draw(2, 1, 50, torch.Generator().manual_seed(10))["x"])
    rows = torch.cat([stream.rows(2, b, 50) for b in range(4)])
    assert sorted(rows.tolist()) == list(range(200))  # a pass covers every image once
    assert torch.equal(rows, pca_images.pass_permutation(3, 2, 200))
    assert not torch.equal(rows, torch.cat([stream.rows(1, b, 50) for b in range(4)]))
    assert not torch.equal(rows, pca_images.pass_permutation(4, 2, 200))
    with pytest.raises(ValueError, match="past the pass's 200"):
        stream.draw(0, 4, 50, torch.Generator())


def test_the_test_stream_draws_nothing():
    test = pca_images.FixedPCAStream(torch.randn(30, 20), torch.arange(30) % 10)
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    batch = test.draw(7, 2, 10, generator)
    assert torch.equal(batch["x"], test.x[20:30]) and torch.equal(generator.get_state(), state)


def test_a_full_size_pass_has_468_and_78_batches_of_128():
    projection = pca_images.Projection(torch.zeros(784), torch.zeros(20, 784), 0.0)
    train = pca_images.AugmentedPCAStream(torch.zeros(60_000, 1, 28, 28, dtype=torch.uint8),
                                          torch.zeros(60_000, dtype=torch.int64), projection)  # fmt: skip
    test = pca_images.FixedPCAStream(torch.zeros(10_000, 20), torch.zeros(10_000, dtype=torch.int64))
    assert (len(StreamBatches(train, 128)), len(StreamPasses(test, 128))) == (468, 78)
    assert train.draw(0, 467, 128, torch.Generator())["x"].shape == (128, 20)
    assert sum(len(b["y"]) for b in StreamPasses(test, 128)) == 9_984


def test_a_missing_file_names_it(idx_dir, tmp_path, monkeypatch):
    (idx_dir / "t10k-images-idx3-ubyte").unlink()
    for check in (check_dataset, load_dataset):
        with pytest.raises(MissingFile) as err:
            check(config(idx_dir))
        assert str(idx_dir / "t10k-images-idx3-ubyte") in str(err.value) and "bin/get-data fashion_mnist" in str(err.value)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))
    with pytest.raises(MissingFile, match="dataset-fashion-mnist") as err:
        load_dataset(config(), "cpu", 0)
    assert str(paths.raw_dir("fashion_mnist") / "train-images-idx3-ubyte") in str(err.value)


def test_the_tiny_version_needs_no_file_and_holds_out_a_balanced_test_part(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))  # nothing fetched
    cfg = {**config(), "tiny": True}
    assert check_dataset(cfg) is None
    data = load_dataset(cfg, "cpu", 0)
    assert (data.info["source"], data.info["n"], len(data.train), len(data.test)) == ("embedded", 1024, 1024, 1000)
    assert "not FashionMNIST" in data.info["subset"] and "last 1000 test" in data.info["test_part"]
    test_y = torch.cat([b["y"] for b in StreamPasses(data.test, 100)])
    assert torch.equal(test_y.bincount(), torch.full((10,), 100))
    assert data.train.labels.bincount().tolist() == [103] * 4 + [102] * 6  # class-interleaved: a prefix is balanced
    batch = next(iter(StreamBatches(data.train, 128)))
    assert batch["x"].shape == (128, 20) and torch.isfinite(batch["x"]).all()


@pytest.mark.parametrize(
    "options, match",
    [
        ({"pca_fit": "test"}, "use 'train'.*or 'per_split'"),
        ({"n_components": 0}, "n_components=0 must be an integer in 1..784"),
        ({"n_components": 785}, "1..784"),
        ({"n_components": True}, "1..784"),
        ({"augment": "yes"}, "augment='yes' must be true or false"),
        ({"n": 0}, "positive integer"),
        ({"source": "standin"}, "valid sources: file, embedded"),
        ({"colour": 1}, "has no option"),
    ],
)
def test_bad_options_are_refused_before_any_data_is_read(options, match):
    with pytest.raises(ConfigError, match=match):
        check_dataset(config(**options))


def test_more_components_than_images_is_refused(idx_dir):
    with pytest.raises(ConfigError, match=f"more than the {N_TEST} test images"):
        load_dataset(config(idx_dir, pca_fit="per_split", n_components=50), "cpu", 0)
    assert load_dataset(config(idx_dir, n_components=50), "cpu", 0).model_inputs["input_shape"] == [50]


@pytest.mark.data
def test_the_real_files_give_the_published_sizes():
    directory = paths.raw_dir("fashion_mnist")
    if not all((directory / n).is_file() or (directory / (n + ".gz")).is_file() for n in NAMES):
        pytest.skip(f"the real fashion_mnist files are not in {directory} (bin/get-data fashion_mnist)")
    data = load_dataset(config(), "cpu", 0)
    assert data.info["sizes"] == {"train": 60_000, "test": 10_000}
    assert (len(StreamBatches(data.train, 128)), len(StreamPasses(data.test, 128))) == (468, 78)
    assert 0.5 < data.info["explained_variance_ratio"]["train"] < 0.9
