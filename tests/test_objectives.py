"""Each objective's train step moves what it should and nothing else; eval moves nothing."""

import copy

import pytest
import torch

from genlab.losses import bernoulli_nll, gaussian_kl, permute_dims
from genlab.models.gaussian_vae import build_gaussian_vae
from genlab.objectives import OBJECTIVES, build_objective
from genlab.registry import UnknownNameError
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress


def batch(n=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"x": (torch.rand(n, 1, 64, 64, generator=g) < 0.1).float(), "factors": torch.zeros(n, 5)}


def setup(name, latent_size=10, **params):
    torch.manual_seed(0)
    model = build_gaussian_vae("kim", latent_size=latent_size, input_shape=(1, 64, 64))
    objective = build_objective(name, **params)
    optimizers = objective.make_optimizers(model, OptimizerFactory(lr=1e-3))
    return model, objective, optimizers


def snapshot(*modules):
    return [copy.deepcopy(m.state_dict()) for m in modules]


def changed(before, module):
    after = module.state_dict()
    return {k for k, v in before.items() if not torch.equal(v, after[k])}


@pytest.mark.parametrize("name", ["vae", "beta_vae", "cci_vae", "factor_vae"])
def test_train_step_updates_the_model_and_eval_changes_nothing(name):
    model, objective, optimizers = setup(name)
    (before,) = snapshot(model)
    out = objective.train_step(model, optimizers, batch(), Progress(0))
    assert {"loss", "recon_nll", "kl"} <= set(out)
    assert all(torch.isfinite(torch.as_tensor(v)) for v in out.values())
    moved = changed(before, model)
    weights = {k for k in before if k.endswith("weight")}
    assert weights <= moved  # every layer of encoder and decoder learns

    aux = [objective.discriminator] if name == "factor_vae" else []
    before_all = snapshot(model, *aux)
    metrics = objective.eval_step(model, batch(seed=1))
    assert {"loss", "recon_nll", "kl", "kl_0"} <= set(metrics)
    for b, m in zip(before_all, [model, *aux]):
        assert not changed(b, m)


def test_factor_vae_updates_touch_only_their_own_player():
    # discriminator frozen (lr 0): the VAE step must still train the VAE, and never D
    model, objective, optimizers = setup("factor_vae", disc_lr=0.0)
    vae0, d0 = snapshot(model, objective.discriminator)
    objective.train_step(model, optimizers, batch(), Progress(0))
    assert changed(vae0, model) and not changed(d0, objective.discriminator)

    # VAE frozen (lr 0): the discriminator step must train D and never the VAE
    model, objective, optimizers = setup("factor_vae")
    for group in optimizers["model"].param_groups:
        group["lr"] = 0.0
    vae0, d0 = snapshot(model, objective.discriminator)
    objective.train_step(model, optimizers, batch(), Progress(0))
    assert not changed(vae0, model) and changed(d0, objective.discriminator)


def test_factor_vae_discriminator_is_built_from_the_latent_size():
    model, objective, _ = setup("factor_vae", latent_size=6)
    assert objective.discriminator(torch.zeros(3, 6)).shape == (3, 2)


def test_beta_weights_the_kl_term_exactly():
    x = batch()["x"]
    losses = {}
    for beta in (0.0, 2.5):
        model, objective, optimizers = setup("beta_vae", beta=beta)
        torch.manual_seed(1)
        losses[beta] = objective.train_step(model, optimizers, {"x": x}, Progress(0))
    assert losses[2.5]["recon_nll"] == pytest.approx(losses[0.0]["recon_nll"].item())
    assert (losses[2.5]["loss"] - losses[0.0]["loss"]).item() == pytest.approx(2.5 * losses[0.0]["kl"].item(), abs=2e-3)  # float32 sums of ~3e3


def test_cci_capacity_schedule_is_a_pure_function_of_the_step():
    objective = build_objective("cci_vae", c_min=1.0, c_max=21.0, c_steps=100)
    assert [objective.capacity(s) for s in (0, 50, 100, 10_000)] == [1.0, 11.0, 21.0, 21.0]


def test_loss_conventions_sum_over_dimensions_mean_over_batch():
    logits = torch.zeros(4, 1, 2, 2)  # p = 1/2 per pixel
    assert bernoulli_nll(logits, torch.ones(4, 1, 2, 2)).item() == pytest.approx(4 * torch.log(torch.tensor(2.0)).item())
    mu, logvar = torch.ones(3, 5), torch.zeros(3, 5)
    assert gaussian_kl(mu, logvar).item() == pytest.approx(5 * 0.5)  # 1/2 mu^2 per dimension
    z = torch.arange(40.0).view(8, 5)
    perm = permute_dims(z)
    for j in range(5):  # each column is a permutation of itself
        assert torch.equal(perm[:, j].sort().values, z[:, j])


def test_unknown_objective_or_hyperparameter_is_refused_with_the_valid_names():
    with pytest.raises(UnknownNameError, match="factor_vae"):
        build_objective("factorvae")
    with pytest.raises(ValueError, match="gamma"):
        build_objective("factor_vae", gama=3)
    assert {"vae", "beta_vae", "cci_vae", "factor_vae"} <= set(OBJECTIVES)
