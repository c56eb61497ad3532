"""The Gaussian-mixture toys of MIM (docs/mim.md §1.1-1.3): geometry, sampling, density, streams."""

from __future__ import annotations

import math

import pytest
import torch
from torch import distributions as D

from genlab.data import DATASETS, DataParts, load_dataset
from genlab.data.mixtures import MIXTURES, GaussianMixture, MixtureStream, mixture
from genlab.data.streams import Stream, StreamBatches, StreamPasses
from genlab.errors import ConfigError
from genlab.registry import UnknownNameError

SIZES = {"toy4": (5, 2), "toy4_20": (5, 20), "toyMIM": (60, 2), "toyVAE": (64, 2), "toyAE": (46, 2)}
TOY4_MEANS = torch.tensor(
    [(0.0, 0.0), (1.0, 0.0), (math.cos(0.4 * math.pi), math.sin(0.4 * math.pi)),
     (math.cos(0.8 * math.pi), math.sin(0.8 * math.pi)), (math.cos(1.2 * math.pi), math.sin(1.2 * math.pi))]
)  # fmt: skip


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


# --- geometry -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SIZES))
def test_component_counts_and_dims(name):
    m = mixture(name)
    assert (m.n_components, m.dim) == SIZES[name]
    assert m.means.shape == m.stds.shape == SIZES[name]
    assert m.means.dtype == m.stds.dtype == torch.float32


def test_registered_names():
    assert MIXTURES == list(SIZES)
    with pytest.raises(UnknownNameError):
        mixture("toy5")
    with pytest.raises(ConfigError, match="not a Gaussian-mixture toy"):
        mixture("8gaussians")


def test_toy4_means_and_stds_exact():
    m = mixture("toy4")
    torch.testing.assert_close(m.means, TOY4_MEANS, rtol=0, atol=1e-7)
    torch.testing.assert_close(m.means[2:], torch.tensor([(0.309017, 0.951057), (-0.809017, 0.587785), (-0.809017, -0.587785)]), rtol=0, atol=1e-6)
    assert bool((m.stds == 0.25).all())
    degrees = torch.rad2deg(torch.atan2(m.means[1:, 1], m.means[1:, 0])) % 360
    torch.testing.assert_close(degrees, torch.tensor([0.0, 72.0, 144.0, 216.0]), rtol=0, atol=1e-4)  # 288 left empty


def test_toy4_20_means():
    m = mixture("toy4_20")
    assert round(m.means[1, 2].item(), 2) == -27.78
    assert round(m.means[1, 19].item(), 2) == -10.61
    torch.testing.assert_close(m.means[:, :2], TOY4_MEANS, rtol=0, atol=1e-7)
    r, j = torch.meshgrid(torch.arange(5), torch.arange(20), indexing="ij")
    grid = -50.0 + (20 * r + j).double() * 100.0 / 99.0
    torch.testing.assert_close(m.means[:, 2:].double(), grid[:, 2:], rtol=0, atol=1e-5)
    assert bool((m.stds == 0.25).all())
    assert m.means.norm(dim=1).mean().item() == pytest.approx(109.1, abs=0.1)  # badly scaled, as the original


def test_glyph_geometry():
    m = mixture("toyAE")  # W = 12: the first lit pixel is row 3, column 0; the last row 8, column 10
    torch.testing.assert_close(m.means[0], torch.tensor([3.6 * -0.45, 3.6 * (7 / 11 - 0.45)]))
    torch.testing.assert_close(m.means[-1], torch.tensor([3.6 * (10 / 12 - 0.45), 3.6 * (2 / 11 - 0.45)]))
    torch.testing.assert_close(m.stds, torch.tensor([1 / 12, 1 / 11]).expand(46, 2))
    mim = mixture("toyMIM")
    torch.testing.assert_close(mim.stds[0], torch.tensor([1 / 18, 1 / 11]))
    assert len(torch.unique(mim.means, dim=0)) == 60


# --- sampling -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name, n", [("toy4", 200_000), ("toy4_20", 100_000), ("toyMIM", 300_000)])
def test_sample_moments_and_label_frequencies(name, n):
    m = mixture(name)
    x, y = m.sample(n, gen(5))
    assert x.shape == (n, m.dim) and x.dtype == torch.float32 and y.shape == (n,) and y.dtype == torch.int64
    k = m.n_components
    counts = torch.bincount(y, minlength=k).double()
    p = 1.0 / k
    assert ((counts / n - p).abs() <= 5 * math.sqrt(p * (1 - p) / n)).all()
    one_hot = torch.nn.functional.one_hot(y, k).double()  # (n, K)
    mean = one_hot.T @ x.double() / counts[:, None]
    var = one_hot.T @ x.double().square() / counts[:, None] - mean.square()
    se = m.stds.double() / counts[:, None].sqrt()
    assert ((mean - m.means.double()).abs() <= 5 * se).all()
    assert ((var.sqrt() / m.stds.double() - 1).abs() <= 5 / counts[:, None].sqrt()).all()


def test_sampling_is_a_pure_function_of_the_generator():
    m = mixture("toyVAE")
    x1, y1 = m.sample(256, gen(7))
    x2, y2 = m.sample(256, gen(7))
    x3, y3 = m.sample(256, gen(8))
    torch.manual_seed(123)  # the global RNG plays no part
    x4, _ = m.sample(256, gen(7))
    assert torch.equal(x1, x2) and torch.equal(y1, y2) and torch.equal(x1, x4)
    assert not torch.equal(x1, x3) and not torch.equal(y1, y3)


# --- density ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["toy4", "toyMIM"])
def test_log_prob_integrates_to_one(name):
    m = mixture(name)
    xs = torch.linspace(-4, 4, 401, dtype=torch.float64)  # spacing 0.02, under 0.4 of the smallest std (1/18)
    gx, gy = torch.meshgrid(xs, xs, indexing="ij")
    logp = m.log_prob(torch.stack((gx.flatten(), gy.flatten()), 1))
    assert logp.dtype == torch.float64
    h = (xs[1] - xs[0]).item()
    assert logp.exp().sum().item() * h * h == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", list(SIZES))
def test_log_prob_matches_torch_distributions(name):
    m = mixture(name)
    reference = D.MixtureSameFamily(
        D.Categorical(logits=torch.zeros(m.n_components, dtype=torch.float64)),
        D.Independent(D.Normal(m.means.double(), m.stds.double()), 1),
    )
    x, _ = m.sample(500, gen(2))
    x = torch.cat((x.double(), x.double() + 0.3 * torch.randn(500, m.dim, generator=gen(3), dtype=torch.float64)))
    torch.testing.assert_close(m.log_prob(x), reference.log_prob(x), rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(m.log_prob(x.float()), reference.log_prob(x).float(), rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("name, entropy", [("toy4", 1.56), ("toy4_20", 2.26)])
def test_entropy_monte_carlo(name, entropy):
    assert mixture(name).entropy_mc(200_000, gen(11)) == pytest.approx(entropy, abs=0.01)


def test_toy4_bayes_accuracy():
    m = mixture("toy4")
    x, y = m.sample(200_000, gen(13))
    accuracy = (m.posterior(x).argmax(1) == y).double().mean().item()
    assert accuracy == pytest.approx(0.957, abs=0.003)


# --- streams and the registry -------------------------------------------------------------------


def test_stream_draws_fresh_batches_from_the_generator():
    stream = MixtureStream(mixture("toyMIM"), n=10_000)
    assert isinstance(stream, Stream) and len(stream) == 10_000 and stream.device == torch.device("cpu")
    a, b, c = stream.draw(0, 0, 128, gen(1)), stream.draw(5, 3, 128, gen(1)), stream.draw(0, 0, 128, gen(2))
    assert set(a) == {"x", "y"} and a["x"].shape == (128, 2) and a["x"].dtype == torch.float32 and a["y"].dtype == torch.int64
    assert torch.equal(a["x"], b["x"]) and torch.equal(a["y"], b["y"])  # pass and position do not enter
    assert not torch.equal(a["x"], c["x"])
    torch.testing.assert_close(stream.log_prob(a["x"]), stream.mixture.log_prob(a["x"]))
    batches = list(StreamBatches(stream, 128, seed=4))
    assert len(batches) == 78  # 9,984 points a pass, drop_last
    assert not torch.equal(batches[0]["x"], batches[1]["x"])
    assert torch.equal(batches[7]["x"], list(StreamBatches(stream, 128, seed=4))[7]["x"])
    assert len(list(StreamPasses(stream, 128))) == 78
    with pytest.raises(ConfigError):
        MixtureStream(mixture("toy4"), n=0)


@pytest.mark.parametrize("name", list(SIZES))
def test_registered_as_stream_datasets(name):
    k, d = SIZES[name]
    spec = DATASETS.get(name)
    assert spec.kind == "stream" and spec.shape == (d,) and spec.tiny == {"n": 1280}
    assert spec.options() == {"n": 10_000}
    assert spec.model_inputs() == {"input_shape": [d], "n_classes": k}
    parts = spec.build(device="cpu")
    assert isinstance(parts, DataParts) and parts.val is None
    assert parts.info["n_per_pass"] == 10_000 and parts.info["components"] == k
    assert parts.model_inputs == {"input_shape": [d], "n_classes": k}
    assert len(parts.train) == len(parts.test) == 10_000 and parts.train is not parts.test
    assert isinstance(parts.train.mixture, GaussianMixture)


def test_load_dataset_reads_the_config():
    parts = load_dataset({"name": "toy4", "options": {}}, device="cpu", seed=3)
    assert len(parts.train) == 10_000 and parts.train.device == torch.device("cpu")
    assert set(parts.parts()) == {"train", "test"}
    assert len(load_dataset({"name": "toy4_20", "options": {"n": 2560}}).train) == 2560
    tiny = load_dataset({"name": "toyAE", "options": {}, "tiny": True})
    assert len(tiny.train) == 1280 and len(StreamBatches(tiny.train, 128)) == 10
    with pytest.raises(ConfigError):
        load_dataset({"name": "toy4", "options": {"n": -1}})
