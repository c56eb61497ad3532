"""The composer: mixers' shapes, the forward contract, and its objective (train moves, eval does not, beta)."""

import copy

import pytest
import torch

from genlab.losses import bernoulli_nll, gaussian_kl
from genlab.models.composer import MIXERS, build_composer
from genlab.objectives import build_objective
from genlab.registry import UnknownNameError
from genlab.training.progress import Progress
from genlab.training.optimizers import OptimizerFactory

L, A = 6, 5


def triplets(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = lambda: (torch.rand(n, 1, 64, 64, generator=g) < 0.1).float()  # noqa: E731
    d = torch.randint(A, (n,), generator=g)
    return {"x": image(), "transform": image(), "target": image(), "action": torch.nn.functional.one_hot(d, A).float(),
            "factors": torch.zeros(n, A)}


def setup(mixer="linear", **params):
    torch.manual_seed(0)
    model = build_composer("kim", latent_size=L, input_shape=(1, 64, 64), n_factors=A, mixer=mixer)
    objective = build_objective("composer", **params)
    return model, objective, objective.make_optimizers(model, OptimizerFactory(lr=1e-3))


@pytest.mark.parametrize("name", ["linear", "interpolation", "mlp"])
def test_mixers_map_two_codes_and_an_action_to_one_code(name):
    mixer = MIXERS.get(name)(L, A)
    z = mixer(torch.randn(4, L), torch.randn(4, L), torch.eye(A)[:4])
    assert z.shape == (4, L)


def test_linear_mixer_is_two_affine_maps_of_code_and_action():
    mixer = MIXERS.get("linear")(L, A)
    assert [tuple(m.weight.shape) for m in (mixer.ref, mixer.trans)] == [(L, L + A)] * 2
    assert mixer.ref.bias is not None and mixer.trans.bias is not None


def test_interpolation_mixer_stays_between_the_two_codes():
    mixer = MIXERS.get("interpolation")(L, A)
    a, b = torch.zeros(16, L), torch.ones(16, L)
    z = mixer(a, b, torch.eye(A)[torch.arange(16) % A])
    assert ((z > 0) & (z < 1)).all()


def test_composer_forward_encodes_both_images_with_one_encoder():
    model, _, _ = setup()
    batch = triplets()
    out = model(batch)  # training mode: sampled codes
    assert out["logits"].shape == (8, 1, 64, 64)
    assert out["mu"].shape == out["logvar"].shape == (16, L) and out["z"].shape == (8, 2, L)
    model.eval()
    out = model(batch)
    mu_ref, _ = model.encode(batch["x"])
    mu_trans, _ = model.encode(batch["transform"])
    assert torch.allclose(out["z"][:, 0], mu_ref, atol=1e-5) and torch.allclose(out["z"][:, 1], mu_trans, atol=1e-5)
    assert torch.allclose(out["logits"], model.vae.decode(model.mixer(mu_ref, mu_trans, batch["action"])), atol=1e-5)
    with pytest.raises(UnknownNameError, match="valid mixers: interpolation, linear, mlp"):
        build_composer(mixer="nope")


@pytest.mark.parametrize("mixer", ["linear", "interpolation", "mlp"])
def test_train_step_moves_encoder_decoder_and_mixer_and_eval_moves_nothing(mixer):
    model, objective, optimizers = setup(mixer)
    before = copy.deepcopy(model.state_dict())
    out = objective.train_step(model, optimizers, triplets(), Progress(0))
    assert {"loss", "recon_nll", "kl"} <= set(out) and all(torch.isfinite(v) for v in out.values())
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert {k for k in before if k.endswith("weight")} <= moved
    assert any(k.startswith("mixer.") for k in moved) and any(k.startswith("vae.encoder") for k in moved)

    before = copy.deepcopy(model.state_dict())  # BatchNorm statistics included (mlp mixer)
    metrics = objective.eval_step(model, triplets(seed=1))
    assert set(metrics) == {"recon_nll", "kl", "loss"}
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_loss_is_target_nll_plus_beta_times_both_kls_per_triplet():
    batch = triplets()
    losses = {}
    for beta in (0.0, 2.5):
        model, objective, _ = setup(beta=beta)
        losses[beta] = objective.eval_step(model, batch)
    model.eval()
    with torch.no_grad():
        out = model(batch)
        nll = bernoulli_nll(out["logits"], batch["target"])
        kl = gaussian_kl(out["mu"][:8], out["logvar"][:8]) + gaussian_kl(out["mu"][8:], out["logvar"][8:])
    assert losses[0.0]["recon_nll"].item() == pytest.approx(nll.item(), rel=1e-5)
    assert losses[0.0]["kl"].item() == pytest.approx(kl.item(), rel=1e-5)
    assert losses[0.0]["loss"].item() == pytest.approx(nll.item(), rel=1e-5)
    assert losses[2.5]["loss"].item() == pytest.approx(nll.item() + 2.5 * kl.item(), rel=1e-5)
