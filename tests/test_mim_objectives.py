"""MIM's toy losses (docs/mim.md §3.1, §3.2, §4.1): the model's std floor and fixed prior; the
single-sample q(x) that makes B = A on the encoding pass; each loss's train step moves what it should;
S-MIM's decoding pass starts exactly when beta reaches 1; MIM - H stops training the encoder pass
once beta = 1; evaluation changes nothing and adds the pass's KSG; and the coupled warm-up's early
stopping against the original's rule on scripted losses."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.data.sources import Tensors
from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.objectives.base import Objective
from genlab.objectives.mim import decoding_pass, encoding_pass, joints
from genlab.training.engines import Selection, fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress
from genlab.training.schedules import warmup_weight


def model_for(objective: str = "mim", **options):
    cls_options = {"delta_encoder": True} if objective == "ae" else {}
    torch.manual_seed(0)
    return build_model("gaussian_mlp", {"mid_dim": 16, **cls_options, **options}, {"input_shape": [2]})


def batch(n: int = 64, seed: int = 1) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(n, 2, generator=g), "y": torch.randint(0, 5, (n,), generator=g)}


def step(objective_name: str, epoch: int, **hyper):
    model = model_for(objective_name)
    objective = build_objective(objective_name, **hyper)
    optimizers = objective.make_optimizers(model, OptimizerFactory("adam", 1e-2, {}))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = objective.train_step(model, optimizers, batch(), Progress(iteration=0, epoch=epoch, epoch_length=10))
    moved = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    return model, out, moved, before


def test_the_std_floor_is_additive_and_the_prior_is_the_floored_standard_normal():
    model = model_for(std_floor=1e-3)
    x = batch()["x"]
    with torch.no_grad():
        model.encoder.head.weight.zero_()
        model.encoder.head.bias.fill_(-50.0)  # exp(-50) ~ 0: only the floor remains
        _, std = model.encode(x)
    assert torch.allclose(std, torch.full_like(std, 1e-3))
    z = torch.randn(10, 2)
    expected = torch.distributions.Normal(0.0, 1.0 + 1e-3).log_prob(z).sum(-1)
    assert torch.allclose(model.prior_log_prob(z), expected, atol=1e-6)
    delta = model_for("ae")
    assert torch.equal(delta.encode(x)[1], torch.full((64, 2), 1e-6))


def test_beta_anneals_per_epoch_as_the_original():
    assert [warmup_weight(e, 3) for e in range(5)] == [1 / 3, 2 / 3, 1.0, 1.0, 1.0]
    assert warmup_weight(0, 25) == pytest.approx(0.04) and warmup_weight(24, 25) == 1.0


def test_the_single_sample_marginal_makes_b_equal_a_on_the_encoding_pass():
    model = model_for()
    torch.manual_seed(3)
    a, b = joints(encoding_pass(model, batch()["x"], "marginal"))
    assert torch.allclose(a, b, atol=1e-5)
    torch.manual_seed(3)
    t = encoding_pass(model, batch()["x"], "decoder")  # NeMo's form keeps log q(z|x)
    a2, b2 = joints(t)
    assert torch.allclose(b2, t["log_qz_x"] + t["log_px_z"]) and not torch.allclose(a2, b2, atol=1e-3)
    mim = build_objective("mim", sample=False)
    torch.manual_seed(3)
    enc_loss, _, t = mim.loss_terms(model, batch(), 0.5)
    assert enc_loss.item() == pytest.approx((-0.5 * 1.5 * (t["log_px_z"] + t["log_pz"])).mean().item(), rel=1e-5)


@pytest.mark.parametrize("epoch, active", [(0, False), (1, False), (2, True), (7, True)])
def test_the_s_mim_decoding_pass_starts_exactly_when_beta_reaches_one(epoch, active):
    _, out, _, _ = step("mim", epoch, sample=True, warmup=3)
    assert out["beta"] == warmup_weight(epoch, 3)
    assert ("dec_loss" in out) is active
    if active:
        assert out["loss"].item() == pytest.approx((out["enc_loss"].item() + out["dec_loss"].item()) / 2)
    _, amim, _, _ = step("mim", epoch, sample=False, warmup=3)
    assert "dec_loss" not in amim


def test_the_decoding_pass_differentiates_through_the_sampled_x():
    model = model_for()
    t = decoding_pass(model, 32, torch.zeros(1, 2))
    assert t["x"].requires_grad and t["z"].shape == (32, 2)
    (-t["log_qz_x"].mean()).backward()  # the encoder's term reaches the decoder only through x
    assert model.decoder.head.weight.grad is not None and model.decoder.head.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name, hyper", [("mim", {"sample": True}), ("mim", {"sample": False}), ("vae_mc", {}),
                                         ("vae_mc", {"inv_H": True}), ("mim", {"inv_H": True})])  # fmt: skip
def test_each_loss_moves_the_encoder_and_the_decoder(name, hyper):
    _, out, moved, before = step(name, 5, **hyper)
    assert moved == set(before), f"{name} {hyper} left {sorted(set(before) - moved)} unchanged"
    assert math.isfinite(out["loss"].item())


def test_the_auto_encoder_never_trains_the_encoders_std_head():
    model, out, moved, before = step("ae", 5)
    assert out["beta"] == 0.0
    head = before["encoder.head.weight"]
    now = model.state_dict()["encoder.head.weight"]
    assert torch.equal(now[2:], head[2:]) and not torch.equal(now[:2], head[:2])  # rows 2: are the log-std half
    assert {"decoder.head.weight", "encoder.body.0.weight"} <= moved


def test_mim_minus_h_trains_nothing_on_the_encoding_pass_once_beta_is_one():
    _, _, moved, _ = step("mim", 5, sample=False, inv_H=True, warmup=3)
    assert moved == set()  # L_enc = 1/2 (1 - beta) A = 0 (docs/mim.md §3.2)
    _, _, moved_warm, _ = step("mim", 0, sample=False, inv_H=True, warmup=3)
    assert moved_warm  # during the warm-up it penalises the likelihood


def test_evaluation_changes_nothing_and_adds_the_pass_ksg():
    model = model_for()
    objective = build_objective("mim", sample=True)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    objective.start_evaluation()
    outs = [objective.eval_step(model, batch(128, seed)) for seed in range(3)]
    extra = objective.finish_evaluation(model)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert set(outs[0]) == {"loss", "H_q_x", "recon_nll"} and set(extra) == {"MI_ksg"}
    assert 0.0 < extra["MI_ksg"] < 8.0


class Scripted(Objective):
    """Trains one number; its evaluation loss follows a script, one value per evaluation."""

    def __init__(self, script):
        self.script, self.calls = list(script), 0

    def make_optimizers(self, model, optimizer):
        return {"model": torch.optim.SGD(model.parameters(), lr=0.0)}

    def train_step(self, model, optimizers, batch, progress):
        return {"loss": torch.tensor(0.0)}

    def start_evaluation(self):
        self.calls += 1

    def eval_step(self, model, batch):
        return {"loss": torch.tensor(float(self.script[self.calls - 1]))}


def original_rule(losses, warmup):
    """The original's loop (docs/mim.md §4.1): save when the test loss improves and epoch >= w, stop
    when epoch >= w and epoch - best_epoch > w; returns (best epoch, last epoch), 1-based."""
    best, best_epoch = math.inf, -1
    for epoch, loss in enumerate(losses, start=1):
        if loss < best and epoch >= warmup:
            best, best_epoch = loss, epoch
        if epoch - best_epoch > warmup and epoch >= warmup:
            return best_epoch, epoch
    return best_epoch, len(losses)


@pytest.mark.parametrize("losses, warmup", [
    ([5, 4, 3, 2, 1, 1.5, 1.2, 1.1, 1.3, 0.5, 0.9], 3),   # a late improvement after a 4-epoch plateau is too late
    ([5, 4, 3, 2.5, 2.6, 2.7, 2.4, 2.8, 2.9, 3.0, 3.1, 3.2], 3),
    ([1, 0.5, 0.1, 3, 3, 3, 3, 3, 3, 3], 3),                # the warm-up's low losses do not count
    ([9, 8, 7, 6, 5, 4, 3, 2, 1, 0.5, 0.4, 0.3], 2),
])  # fmt: skip
def test_early_stopping_and_selection_follow_the_original_rule(losses, warmup, tmp_path):
    epoch_length = 2
    data = Tensors(x=torch.zeros(epoch_length * 4, 1))
    model = torch.nn.Linear(1, 1)
    objective = Scripted(losses)
    result = fit(model, objective, objective.make_optimizers(model, None), ShuffledBatches(data, 4),
                 max_iterations=len(losses) * epoch_length, val_batches=SequentialBatches(data, 8), eval_every="epoch",
                 checkpoint_dir=tmp_path, select=Selection("loss", "min", after_epochs=warmup),
                 early_stopping_patience=warmup + 1, evaluate_best=True)  # fmt: skip
    best_epoch, last_epoch = original_rule(losses, warmup)
    assert result.iterations == last_epoch * epoch_length
    assert result.val_metrics["loss"] == pytest.approx(losses[best_epoch - 1])
