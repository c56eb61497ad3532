"""Denoising score matching as ICE-BeeM trains its image EBMs (docs/icebeem.md §4b): the original's
normalisation by hand, the known answer for Gaussian data and a Gaussian energy, double
back-propagation, and what each objective's step moves."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.losses.dsm import dsm_loss, gaussian_dsm_value
from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress


def test_the_normalisation_is_the_originals_norm_over_the_last_axis_and_mean_over_rows():
    g = torch.Generator().manual_seed(0)
    x, eps = torch.rand(2, 2, 3, 4, generator=g), torch.randn(2, 2, 3, 4, generator=g)
    w = torch.randn(2, 3, 4, generator=g)
    energy = lambda z: (w * z.pow(2)).flatten(1).sum(1) / 2  # noqa: E731  score s = -w * z
    sigma = 0.3
    total = 0.0
    for b in range(2):
        for c in range(2):
            for h in range(3):
                z = x[b, c, h] + sigma * eps[b, c, h]
                total += torch.linalg.vector_norm(sigma**2 * (-w[c, h] * z) + sigma * eps[b, c, h]) ** 2
    expected = total / (2 * 2 * 2 * 3)  # 1 / (2R), R = B * C * H
    assert dsm_loss(energy, x, sigma, noise=eps).item() == pytest.approx(expected.item(), rel=1e-5)


@pytest.mark.parametrize("sigma", [0.01, 0.5])
def test_known_answer_gaussian_data_and_energy(sigma):
    """x ~ N(mu, s^2 I) and E(x) = ||x - m||^2 / (2v): the expected loss is the closed form, and it is
    smallest at m = mu, v = s^2 + sigma^2, where it is W sigma^2 s^2 / (2 (s^2 + sigma^2))."""
    torch.manual_seed(0)
    n, width, mu, s2 = 40_000, 5, 0.3, 0.04
    x = mu + s2**0.5 * torch.randn(n, 1, 2, width, dtype=torch.float64)

    def loss(m, v):
        return dsm_loss(lambda z: (z - m).pow(2).flatten(1).sum(1) / (2 * v), x, sigma).item()

    v_star = s2 + sigma**2
    at_min = loss(mu, v_star)
    closed = width * sigma**2 * s2 / (2 * v_star)
    assert gaussian_dsm_value(width, s2, sigma, v_star) == pytest.approx(closed)
    assert at_min == pytest.approx(closed, rel=0.02)
    for m, v in ((mu + 0.1, v_star), (mu, 2 * v_star), (mu, 0.5 * v_star)):
        assert loss(m, v) == pytest.approx(gaussian_dsm_value(width, s2, sigma, v, offset=mu - m), rel=0.02)
        assert gaussian_dsm_value(width, s2, sigma, v, offset=mu - m) > closed


def test_double_backprop_gives_the_finite_difference_gradient():
    torch.manual_seed(0)
    x, eps = torch.rand(3, 1, 2, 3, dtype=torch.float64), torch.randn(3, 1, 2, 3, dtype=torch.float64)
    a = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    energy = lambda z: (a * z.pow(3) + z.pow(2)).flatten(1).sum(1)  # noqa: E731
    loss = dsm_loss(energy, x, 0.2, noise=eps)
    (grad,) = torch.autograd.grad(loss, a)
    h = 1e-6
    with torch.no_grad():
        a += h
    up = dsm_loss(energy, x, 0.2, noise=eps).item()
    with torch.no_grad():
        a -= 2 * h
    down = dsm_loss(energy, x, 0.2, noise=eps).item()
    assert grad.item() != 0 and grad.item() == pytest.approx((up - down) / (2 * h), rel=1e-5)


def setting(objective, frozen_mode="eval", update="all", seed=0):
    torch.manual_seed(seed)
    obj = build_objective(objective, update=update, frozen_mode=frozen_mode)
    model = build_model("image_ebm", {"ngf": 8, "feature_size": 4, **type(obj).model_options},
                        {"input_shape": [1, 8, 8], "n_classes": 3})  # fmt: skip
    g = torch.Generator().manual_seed(1)
    batch = {"x": torch.rand(6, 1, 8, 8, generator=g), "y": torch.randint(3, (6,), generator=g), "index": torch.arange(6)}
    return model, obj, obj.make_optimizers(model, OptimizerFactory("adam", 1e-2)), batch


def state(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def changed(before, after):
    return {k for k in before if not torch.equal(before[k], after[k])}


def test_transfer_step_moves_only_g_and_train_mode_moves_the_batch_statistics_too():
    model, obj, opts, batch = setting("cdsm", update="g")
    before = state(model)
    obj.train_step(model, opts, batch, Progress(0))
    assert changed(before, state(model)) == {"g.weight"}
    model, obj, opts, batch = setting("cdsm", update="g", frozen_mode="train")
    before = state(model)
    obj.train_step(model, opts, batch, Progress(0))
    moved = changed(before, state(model))
    assert "g.weight" in moved and any("running_mean" in k for k in moved)
    assert not any(k.endswith("weight") and k.startswith("f.") for k in moved)  # f's parameters stay


def test_measuring_only_moves_nothing_and_eval_is_deterministic():
    model, obj, opts, batch = setting("dsm", update="none")
    assert opts == {}
    before = state(model)
    out = obj.train_step(model, opts, batch, Progress(0))
    assert changed(before, state(model)) == set() and out["loss"] > 0
    model, obj, opts, batch = setting("cdsm")
    before = state(model)
    first, second = obj.eval_step(model, batch), obj.eval_step(model, batch)
    assert first == second and changed(before, state(model)) == set()


def test_a_model_of_the_other_kind_is_refused():
    model, _, _, _ = setting("cdsm")
    with pytest.raises(ConfigError, match="unconditional"):
        build_objective("dsm").make_optimizers(model, OptimizerFactory("adam", 1e-3))
    with pytest.raises(ConfigError, match="needs the conditional EBM"):
        build_objective("dsm", update="g")
