"""The two objectives of docs/symvae.md §2 on a tiny binary HVAE: the symmetric game's decoder step
moves the decoder only and its encoder step the encoder only (the ladder's g untouched by the
encoder, though it holds a gradient then), the ELBO step moves every parameter, g included; the
logged per-unit losses (§3.3) and MI monitors (§2.3); evaluation changes nothing and repeats
itself; the monitors' state round-trips; a step draws its samples from torch's global generator."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch

from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.objectives.sym_equilibrium import MIMonitors
from genlab.losses.bernoulli import bernoulli_entropy
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress

SHAPE = [1, 28, 28]
TINY = {"nz0": 4, "nz1": 8, "hidden": 16, "trunk": 16}
B = 16
SETTINGS = [("ladder", "bernoulli"), ("reverse", "bernoulli"), ("ladder", "gaussian")]


def batch(likelihood: str = "bernoulli", seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(B, *SHAPE, generator=g)
    return {"x": (x < 0.3).float() if likelihood == "bernoulli" else x}


def setup(name: str, encoder: str = "ladder", likelihood: str = "bernoulli"):
    torch.manual_seed(0)
    model = build_model("binary_hvae", {**TINY, "encoder": encoder, "likelihood": likelihood}, {"input_shape": SHAPE})
    objective = build_objective(name)
    return model, objective, objective.make_optimizers(model, OptimizerFactory(name="adam", lr=1e-3))


def snapshot(model) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def moved(before: dict, model) -> set[str]:
    return {k for k, p in model.named_parameters() if not torch.equal(before[k], p.detach())}


def names(model, params) -> set[str]:
    ids = {id(p) for p in params}
    return {k for k, p in model.named_parameters() if id(p) in ids}


@pytest.mark.parametrize("encoder, likelihood", SETTINGS)
def test_each_sym_step_moves_its_own_player_only(encoder, likelihood):
    model, objective, optimizers = setup("sym_equilibrium", encoder, likelihood)
    decoder, encoder_names = names(model, model.decoder_parameters()), names(model, model.encoder_parameters())
    assert set(optimizers) == {"decoder", "encoder"}
    seen = {}

    def before_encoder_step(optimizer, args, kwargs):  # after the decoder step, before the encoder's
        seen["params"] = snapshot(model)
        seen["g_grad"] = [p.grad.clone() for p in model.g.parameters()]

    def after_decoder_step(optimizer, args, kwargs):
        seen["g_grad_decoder"] = [p.grad.clone() for p in model.g.parameters()]

    optimizers["encoder"].register_step_pre_hook(before_encoder_step)
    optimizers["decoder"].register_step_post_hook(after_decoder_step)
    start = snapshot(model)
    objective.train_step(model, optimizers, batch(likelihood), Progress(0))

    after_decoder_step_params = seen["params"]
    assert moved(start, model) == decoder | encoder_names  # both optimizers stepped, every parameter moved
    decoder_moved = {k for k in start if not torch.equal(start[k], after_decoder_step_params[k])}
    assert decoder_moved == decoder  # step 1 moved every decoder parameter and no encoder one
    assert moved(after_decoder_step_params, model) == encoder_names  # step 2: the encoder's only
    if encoder == "ladder":
        # g holds the decoder step's (non-zero) gradient while the encoder steps, and the encoder loss
        # added nothing to it (stop-gradient, docs/symvae.md §2.1): g is the decoder's alone
        assert all(gr.abs().sum() > 0 for gr in seen["g_grad"])
        assert all(torch.equal(a, b) for a, b in zip(seen["g_grad"], seen["g_grad_decoder"]))
        assert not moved(after_decoder_step_params, model) & names(model, model.g.parameters())


@pytest.mark.parametrize("encoder, likelihood", SETTINGS)
def test_the_two_sub_steps_each_move_their_own_player_only(encoder, likelihood):
    model, objective, optimizers = setup("sym_equilibrium", encoder, likelihood)
    decoder, encoder_names = names(model, model.decoder_parameters()), names(model, model.encoder_parameters())
    start = snapshot(model)
    loss, _, _ = objective.decoder_step(model, optimizers["decoder"], batch(likelihood)["x"])
    assert moved(start, model) == decoder and torch.isfinite(loss) and not loss.requires_grad
    middle = snapshot(model)
    loss, _, _ = objective.encoder_step(model, optimizers["encoder"], B)
    assert moved(middle, model) == encoder_names and torch.isfinite(loss)  # g (the decoder's) untouched too


def test_the_encoder_learns_from_the_just_updated_decoder():
    """The encoder step's sample is drawn after the decoder step: replaying the step by hand, with
    the same generator state, gives the same encoder update only in that order."""
    model, objective, optimizers = setup("sym_equilibrium")
    x = batch()["x"]
    reference = copy.deepcopy(model)
    torch.manual_seed(5)
    objective.train_step(model, optimizers, {"x": x}, Progress(0))

    torch.manual_seed(5)
    ref_opt = build_objective("sym_equilibrium").make_optimizers(reference, OptimizerFactory(name="adam", lr=1e-3))
    with torch.no_grad():
        z0, z1 = reference.sample_posterior(x)
    loss_p = -reference.log_joint(x, z0, z1).total.mean()
    ref_opt["decoder"].zero_grad()
    loss_p.backward()
    ref_opt["decoder"].step()
    zp0, zp1, xp = reference.sample_prior(B)
    loss_q = -reference.log_posterior(xp, zp0, zp1).total.mean()
    ref_opt["encoder"].zero_grad()
    loss_q.backward()
    ref_opt["encoder"].step()
    for (k, a), b in zip(model.named_parameters(), reference.parameters()):
        assert torch.allclose(a, b, atol=1e-6), k


@pytest.mark.parametrize("encoder, likelihood", SETTINGS)
def test_the_elbo_step_moves_every_parameter_g_included(encoder, likelihood):
    model, objective, optimizers = setup("binary_elbo", encoder, likelihood)
    assert set(optimizers) == {"model"}
    start = snapshot(model)
    out = objective.train_step(model, optimizers, batch(likelihood), Progress(0))
    assert moved(start, model) == set(start)
    assert out["loss"] > 0


def test_the_ladder_elbo_gives_g_gradients_through_both_logits():
    """ELBO: no stop-gradient, so g learns from the q side (l_q = g(z0) + a1) as well as the p side;
    zeroing the p side's KL gradient must still leave g a gradient."""
    model, _, _ = setup("binary_elbo")
    x = batch()["x"]
    torch.manual_seed(1)
    terms = model.elbo_terms(x, lambda l: torch.bernoulli(torch.sigmoid(l.detach())))  # no ZGR: only the KLs reach g
    terms["kl1"].mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.g.parameters())


@pytest.mark.parametrize("name, encoder, keys", [
    ("sym_equilibrium", "ladder", {"ploss1", "plossx", "qloss0", "qloss1", "pmi1", "qmi0", "qmi1", "loss", "loss_q"}),
    ("sym_equilibrium", "reverse", {"ploss", "qloss", "loss", "loss_q"}),
    ("binary_elbo", "ladder", {"loss", "dloss", "kl0loss", "kl1loss", "pmi1", "qmi0", "qmi1"}),
    ("binary_elbo", "reverse", {"loss", "dloss", "klloss"}),
])  # fmt: skip
def test_the_logged_quantities_are_those_of_the_original(name, encoder, keys):
    model, objective, optimizers = setup(name, encoder)
    out = objective.train_step(model, optimizers, batch(), Progress(0))
    assert set(out) == keys
    for value in out.values():
        assert isinstance(value, torch.Tensor) and value.dim() == 0 and not value.requires_grad
        assert torch.isfinite(value)
    if name == "sym_equilibrium" and encoder == "ladder":  # per unit (docs/symvae.md §3.3): ~log 2 at the start
        assert torch.allclose(out["ploss1"] * 8 + out["plossx"] * 784, out["loss"], rtol=1e-5)
        assert torch.allclose(out["qloss0"] * 4 + out["qloss1"] * 8, out["loss_q"], rtol=1e-5)
    if name == "sym_equilibrium" and encoder == "reverse":
        assert torch.allclose(out["ploss"] * (784 + 8), out["loss"]) and torch.allclose(out["qloss"] * 12, out["loss_q"])
    if name == "binary_elbo" and encoder == "ladder":
        assert torch.allclose(out["dloss"] * 784 + out["kl0loss"] * 4 + out["kl1loss"] * 8, out["loss"], rtol=1e-5)
    if name == "binary_elbo" and encoder == "reverse":
        assert torch.allclose(out["dloss"] * 784 + out["klloss"] * 12, out["loss"], rtol=1e-5)


def test_the_mi_monitor_is_the_ema_of_the_per_bit_mi_summed_over_bits():
    monitors = MIMonitors()
    probs = torch.tensor([[0.9, 0.5, 0.01], [0.1, 0.5, 0.01]])
    value = monitors.update("qmi0", probs)
    mean = 0.5 * 0.99 + probs.mean(0) * 0.01
    mi = bernoulli_entropy(mean) - bernoulli_entropy(probs).mean(0)
    assert torch.allclose(monitors.state["qmi0"]["mean"], mean)
    assert torch.allclose(monitors.state["qmi0"]["mi"], 0.01 * mi)
    assert torch.allclose(value, (0.01 * mi).sum())  # logged: the sum over bits, in nats
    # a deterministic bit (p the same for every example) carries no information
    assert abs(mi[1].item()) < 1e-6 and mi[0] > 0


@pytest.mark.parametrize("name", ["sym_equilibrium", "binary_elbo"])
@pytest.mark.parametrize("encoder, likelihood", SETTINGS)
def test_eval_changes_nothing_repeats_itself_and_leaves_the_global_generator_alone(name, encoder, likelihood):
    model, objective, optimizers = setup(name, encoder, likelihood)
    objective.train_step(model, optimizers, batch(likelihood), Progress(0))
    params, state, rng = snapshot(model), copy.deepcopy(objective.state_dict()), torch.get_rng_state()
    first = objective.eval_step(model, batch(likelihood, seed=1))
    second = objective.eval_step(model, batch(likelihood, seed=1))
    assert not moved(params, model) and torch.equal(rng, torch.get_rng_state())
    assert set(first) >= {"loss", "neg_elbo", "recon", "kl", "loss_p", "loss_q"}
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert all(not v.requires_grad and v.dim() == 0 and torch.isfinite(v) for v in first.values())
    assert torch.allclose(first["neg_elbo"], first["recon"] + first["kl"])
    for k, v in objective.state_dict().get("monitors", {}).items():
        assert all(torch.equal(v[q], state["monitors"][k][q]) for q in v)


def test_the_neg_elbo_of_zero_logits_is_n_log_2():
    """All logits 0 (encoder and decoder last layers zeroed): every KL is 0 and -log p(x|z1) = 784 log 2."""
    model, objective, _ = setup("sym_equilibrium")
    with torch.no_grad():
        for p in [*model.g.mlp[-1].parameters(), *model.g.skip.parameters(), *model.h[-1].parameters(),
                  *model.r.a0.parameters(), *model.r.a1.parameters(), *model.r.skip.parameters()]:  # fmt: skip
            p.zero_()
    metrics = objective.eval_step(model, batch())
    assert torch.allclose(metrics["recon"], torch.tensor(784 * math.log(2)))
    assert abs(metrics["kl"].item()) < 1e-4
    assert torch.allclose(metrics["loss_p"], torch.tensor((784 + 8) * math.log(2)))
    assert torch.allclose(metrics["loss_q"], torch.tensor((4 + 8) * math.log(2)))


@pytest.mark.parametrize("name", ["sym_equilibrium", "binary_elbo"])
def test_the_monitors_state_round_trips_and_resumes_exactly(name):
    model, objective, optimizers = setup(name)
    assert objective.state_dict() == {}  # created lazily, at the first step
    objective.train_step(model, optimizers, batch(), Progress(0))
    state = objective.state_dict()
    assert {k: tuple(v["mi"].shape) for k, v in state["monitors"].items()} == {"pmi1": (8,), "qmi0": (4,), "qmi1": (8,)}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restored = build_objective(name)
    restored.load_state_dict(torch.load(buffer, weights_only=True))

    # the same model, optimizers and generator state: the next step is the same, monitors included
    twin = copy.deepcopy(model)
    twin_opt = restored.make_optimizers(twin, OptimizerFactory(name="adam", lr=1e-3))
    for k, o in optimizers.items():
        twin_opt[k].load_state_dict(copy.deepcopy(o.state_dict()))  # Adam's moments, as a checkpoint restores them
    rng = torch.get_rng_state()
    a = objective.train_step(model, optimizers, batch(seed=2), Progress(1))
    torch.set_rng_state(rng)
    b = restored.train_step(twin, twin_opt, batch(seed=2), Progress(1))
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))


def test_a_step_draws_from_the_global_generator():
    model, objective, optimizers = setup("sym_equilibrium")
    twin = copy.deepcopy(model)
    twin_opt = build_objective("sym_equilibrium").make_optimizers(twin, OptimizerFactory(name="adam", lr=1e-3))
    torch.manual_seed(3)
    objective.train_step(model, optimizers, batch(), Progress(0))
    torch.manual_seed(3)
    build_objective("sym_equilibrium").train_step(twin, twin_opt, batch(), Progress(0))
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), twin.parameters()))
