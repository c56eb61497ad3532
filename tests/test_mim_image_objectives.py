"""MIM's image losses on the two-level HVAEs (docs/mim.md §3.3): the A-MIM encoding loss is -1/2 (1 + beta) A,
the VAE's is -ELBO with beta on the whole KL, S-MIM's decoding pass starts at beta = 1 and draws from the
first pseudo-inputs, its score-function surrogate keeps the value, the PixelHVAE's S-MIM is defined (and
'mean' refused), evaluation is seeded and changes nothing."""

from __future__ import annotations

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.objectives.mim_images import decoding_pass, encoding_mim_loss, top_weighted_joint, vae_loss
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress

TINY = {"hidden": 16, "z1_size": 4, "z2_size": 3, "components": 8}
INPUTS = {"input_shape": (1, 28, 28)}


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def model_of(**options):
    torch.manual_seed(0)
    return build_model("hvae_vamp", {**TINY, **options}, INPUTS)


def digits(n=6, seed=0):
    return {"x": (torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) < 0.3).float()}


def step(model, objective, batch, epoch):
    """One update in the 0-based ``epoch``."""
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam_norm_grad", 5e-4, {}))
    return objective.train_step(model, optimizers, batch, Progress(epoch, epoch=epoch))


def test_the_encoding_losses_by_hand():
    model = model_of()
    torch.manual_seed(1)
    t = model.terms(digits()["x"])
    a = t["log_px"] + t["log_pz1"] + 0.3 * t["log_pz2"]  # beta weighs only the top prior
    assert torch.allclose(top_weighted_joint(t, 0.3), a)
    assert torch.allclose(encoding_mim_loss(t, 0.3), -0.5 * 1.3 * a, rtol=1e-5)  # the encoder entropy cancels
    kl = t["log_qz1"] + t["log_qz2"] - t["log_pz1"] - t["log_pz2"]
    assert torch.allclose(vae_loss(t, 0.3), -t["log_px"] + 0.3 * kl)


def test_beta_warms_up_over_epochs_and_the_decoding_pass_waits_for_beta_one():
    objective = build_objective("hvae_mim", sample=True, warmup=4)
    assert [objective.beta(e) for e in (0, 1, 3, 8)] == [0.25, 0.5, 1.0, 1.0]  # the 1-based epochs 1, 2, 4, 9
    model = model_of()
    during = step(model, objective, digits(), epoch=1)
    after = step(model, objective, digits(), epoch=3)
    assert "dec_loss" not in during and during["beta"] == 0.5
    assert after["beta"] == 1.0 and torch.isclose(after["loss"], after["enc_loss"] + after["dec_loss"])


def test_a_mim_never_decodes():
    out = step(model_of(), build_objective("hvae_mim", sample=False, warmup=1), digits(), epoch=2)
    assert "dec_loss" not in out


def test_the_score_function_surrogate_keeps_the_value_and_adds_its_gradient():
    model = model_of()
    out = model.p_x_out.weight
    torch.manual_seed(2)
    surrogate, value = decoding_pass(model, 5, 1.0, "sample")
    assert torch.allclose(surrogate, value)
    # with a binary sample x, the surrogate adds L_p grad log p(x|z): the decoder's gradients differ
    g_sur = torch.autograd.grad(surrogate.mean(), out, retain_graph=True)[0]
    g_val = torch.autograd.grad(value.mean(), out)[0]
    assert not torch.allclose(g_sur, g_val)
    # with the decoder's means (the original's x), grad_logits log p(x|z) = x - sigmoid(logits) = 0: the
    # decoding pass gives the decoder's output no gradient at all, surrogate or not
    torch.manual_seed(2)
    surrogate, _ = decoding_pass(model, 5, 1.0, "mean")
    assert torch.count_nonzero(torch.autograd.grad(surrogate.mean(), out)[0]) == 0


def test_the_decoding_pass_draws_from_the_first_pseudo_inputs_in_order():
    model = model_of()
    with torch.no_grad():
        model.pseudo_weight[3:] = 0.9  # components 3.. are far from 0..2
    seen = []
    original = model.q_z2

    def spy(x):
        seen.append(x.detach().clone())
        return original(x)

    model.q_z2 = spy
    decoding_pass(model, 3, 1.0, "mean")
    pseudo = model.pseudo_inputs()[:3].detach()
    assert torch.equal(seen[0], pseudo)  # z2 ~ q(z2|u_k), k = 0, 1, 2


def test_pixel_s_mim_is_defined_with_a_binary_sample_and_mean_is_refused():
    model = model_of(decoder="pixel", pixel_channels=4, pixel_layers=2)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = step(model, build_objective("hvae_mim", sample=True, warmup=1), digits(4), epoch=0)
    assert torch.isfinite(out["dec_loss"]) and out["beta"] == 1.0
    moved = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert "p_x_out.weight" in moved and "pseudo_weight" in moved
    with pytest.raises(ConfigError, match="not defined for the PixelHVAE"):
        step(model, build_objective("hvae_mim", sample=True, warmup=1, decoded_x="mean"), digits(4), epoch=0)


@pytest.mark.parametrize("name, params", [("hvae_vae", {}), ("hvae_mim", {"sample": True, "warmup": 1})])
def test_evaluation_is_seeded_and_changes_nothing(name, params):
    model, objective = model_of(), build_objective(name, **params)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = digits()
    torch.manual_seed(5)
    first = objective.eval_step(model, batch)
    torch.manual_seed(6)
    second = objective.eval_step(model, batch)
    assert first.keys() == {"loss", "elbo_loss", "recon_nll", "kl"}
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    if name == "hvae_vae":
        assert torch.isclose(first["loss"], first["elbo_loss"])


@pytest.mark.parametrize("bad", [{"warmup": -1}, {"warmup": 1.5}, {"decoded_x": "soft"}])
def test_bad_hyperparameters_are_refused(bad):
    with pytest.raises(ConfigError):
        build_objective("hvae_mim", **bad)
