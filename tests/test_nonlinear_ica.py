"""The ICE-BeeM simulations (genlab.data.nonlinear_ica): the sources have the paper's distributions,
the mixing is the paper's invertible map, and the data depends on the data seed alone."""

from __future__ import annotations

import numpy as np
import pytest

from genlab.data.nonlinear_ica import SLOPE, mix, one_hot, segments, simulate
from genlab.errors import ConfigError
from genlab.metrics.mcc import mcc


def unmix(x: np.ndarray, matrices: list[np.ndarray]) -> np.ndarray:
    h = x
    for a in reversed(matrices):
        h = h @ a.T  # A is orthogonal
        h = np.where(h > 0, h, h / SLOPE)
    return h


@pytest.mark.parametrize("kind", ["tcl", "imca"])
@pytest.mark.parametrize("n_layers", [1, 2, 4])
def test_the_mixing_is_orthogonal_layers_of_leaky_relus_and_inverts_exactly(kind, n_layers):
    sim = simulate(kind, n_per_segment=100, n_layers=n_layers)
    matrices = sim.params["mixing"]
    assert sim.x.shape == sim.s.shape == (2000, 5) and len(matrices) == n_layers - 1
    for a in matrices:
        np.testing.assert_allclose(a @ a.T, np.eye(5), atol=1e-12)
    np.testing.assert_allclose(unmix(sim.x, matrices), sim.s, atol=1e-10)
    if n_layers == 2:  # x = lrelu(s) A: the nonlinearity first, none after the last matrix
        np.testing.assert_allclose(sim.x, np.where(sim.s > 0, sim.s, SLOPE * sim.s) @ matrices[0], atol=1e-12)
    if n_layers == 1:
        assert np.array_equal(sim.x, sim.s)


def test_tcl_sources_are_standardised_gaussians_scaled_per_segment():
    sim = simulate("tcl", n_per_segment=20_000, n_segments=4)
    std, u = sim.params["std"], sim.u
    assert list(np.unique(u)) == [0, 1, 2, 3] and np.all(np.diff(u) >= 0)  # contiguous segments
    assert np.all((std >= 0.01) & (std <= 3.0)) and std.shape == (5, 4)
    for k in range(4):
        part = sim.s[u == k]
        np.testing.assert_allclose(part.std(0), std[:, k], rtol=0.03)
        np.testing.assert_allclose(part.mean(0), 0.0, atol=0.05)
    assert mcc(sim.s[u == 0], sim.s[u == 0]) == pytest.approx(1.0)
    varying = simulate("tcl", n_per_segment=20_000, n_segments=4, vary_mean=True)
    np.testing.assert_allclose(varying.s[varying.u == 2].mean(0), varying.params["mean"][:, 2], atol=0.1)


def test_imca_sources_have_each_segments_precision_and_dependent_components():
    sim = simulate("imca", n_per_segment=50_000, n_segments=3)
    base, precisions = sim.params["base_correlation"], sim.params["precisions"]
    np.testing.assert_allclose(np.diag(base), 1.0, atol=1e-10)
    assert np.linalg.eigvalsh(base).sum() == pytest.approx(5.0)
    for k in range(3):
        expected = np.linalg.inv(base) * (0.5 / 5) + np.diag(1.0 / sim.params["variances"][:, k])
        np.testing.assert_allclose(precisions[k], expected)
        empirical = np.cov(sim.s[sim.u == k], rowvar=False)
        np.testing.assert_allclose(empirical, np.linalg.inv(precisions[k]), atol=0.05 * np.abs(np.linalg.inv(precisions[k])).max())
    off = precisions[0] - np.diag(np.diag(precisions[0]))
    assert np.abs(off).max() > 1e-3  # the base measure couples the components


def test_the_data_seed_alone_decides_the_data():
    a, b = simulate("tcl", 100, data_seed=1), simulate("tcl", 100, data_seed=1)
    assert np.array_equal(a.x, b.x) and np.array_equal(a.s, b.s)
    assert not np.array_equal(a.x, simulate("tcl", 100, data_seed=2).x)


def test_labels_one_hot_and_bad_settings():
    u = segments(3, 4)
    assert list(u) == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert one_hot(u, 4).sum(0).tolist() == [3, 3, 3, 3] and one_hot(u, 4)[4].tolist() == [0, 1, 0, 0]
    with pytest.raises(ConfigError, match="unknown simulation 'ica'; valid: tcl, imca"):
        simulate("ica", 10)
    with pytest.raises(ConfigError, match="n_per_segment must be a positive integer"):
        simulate("tcl", 0)
    with pytest.raises(ConfigError, match="n_layers must be a positive integer"):
        mix(np.zeros((3, 2)), 0, np.random.default_rng(0))


@pytest.mark.parametrize("name", ["tcl", "imca"])
def test_the_registered_dataset_batches_x_one_hot_u_and_s_and_gives_the_models_what_they_follow(name):
    import torch

    from genlab.data import DATASETS, load_dataset

    data = load_dataset({"name": name, "data_seed": 1, "options": {"n_per_segment": 50, "n_layers": 4}}, "cpu", seed=7)
    sim = simulate(name, n_per_segment=50, n_layers=4, data_seed=1)  # the run's seed (7) does not enter
    batch = data.train.batch(slice(None))
    assert set(batch) == {"x", "u", "s", "index"} and len(data.train) == 1000 and torch.equal(batch["index"], torch.arange(1000)) and data.val is None and data.test is None
    np.testing.assert_allclose(batch["x"].numpy(), sim.x, rtol=1e-6, atol=1e-6)
    assert batch["x"].dtype == torch.float32 and torch.equal(batch["u"].argmax(1), torch.as_tensor(sim.u))
    assert torch.equal(batch["u"].sum(1), torch.ones(1000))
    inputs = data.model_inputs
    assert (inputs["n_segments"], inputs["latent_dim"], inputs["mixing_layers"]) == (20, 5, 4)
    white = (sim.x - np.array(inputs["whitening"]["mean"])) @ np.array(inputs["whitening"]["matrix"])
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(5), atol=1e-10)  # PCA whitening for TCL
    assert DATASETS.get(name).model_inputs()["n_segments"] == 20  # model.show builds without loading
