"""The fce and flow_mle objectives (docs/fce.md §3): which player each step moves, the alternation rule,
evaluation that moves nothing, and exact resume through the shared training loop."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from genlab.data.batches import ShuffledBatches
from genlab.data.toy2d import load_toy2d
from genlab.models.energy_flow import build_energy_flow
from genlab.objectives import build_objective
from genlab.training.engines import fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress


def setup(flow="maf", objective="fce", seed=0, **loss):
    torch.manual_seed(seed)
    obj = build_objective(objective, **loss)
    model = build_energy_flow(flow, with_ebm=obj.model_options["with_ebm"])
    return model, obj, obj.make_optimizers(model, OptimizerFactory(lr=1e-3))


@pytest.fixture(scope="module")
def data():
    return load_toy2d("8gaussians", 4000, 2000, seed=0)


def batch(data, seed=0, n=500):
    g = torch.Generator().manual_seed(seed)
    return data.train.batch(torch.randint(0, len(data.train), (n,), generator=g))


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module):
    return {k for k, v in module.state_dict().items() if not torch.equal(before[k], v)}


@pytest.mark.parametrize("flow", ["glow", "maf"])
def test_each_fce_step_moves_only_the_player_the_rule_picks(flow, data):
    model, obj, opts = setup(flow)
    first = obj.train_step(model, opts, batch(data, 0), Progress(0))  # initialises Glow's ActNorms from data
    assert first["ebm_update"] == 1.0 and float(first["accuracy"]) == 0.5  # docs/fce.md §3.3: EBM first; p >> q at init

    obj.train_ebm = True
    ebm, flw = snapshot(model.ebm), snapshot(model.flow)
    obj.train_step(model, opts, batch(data, 1), Progress(1))
    assert changed(flw, model.flow) == set()
    assert changed(ebm, model.ebm) == set(ebm)  # every EBM parameter, log Z included

    obj.train_ebm = False
    ebm, flw = snapshot(model.ebm), snapshot(model.flow)
    out = obj.train_step(model, opts, batch(data, 2), Progress(2))
    assert out["ebm_update"] == 0.0
    assert changed(ebm, model.ebm) == set()
    assert changed(flw, model.flow)  # the flow moved ...
    assert all(p.requires_grad for p in model.ebm.parameters())  # ... and the EBM is trainable again


def test_the_flow_trains_next_iff_the_accuracy_exceeds_the_threshold(data):
    model, obj, opts = setup("maf", threshold=-1.0)  # every accuracy exceeds it
    obj.train_step(model, opts, batch(data, 0), Progress(0))
    assert obj.train_ebm is False
    model, obj, opts = setup("maf", threshold=1.0)  # no accuracy exceeds it
    for step in range(3):
        assert obj.train_step(model, opts, batch(data, step), Progress(step))["ebm_update"] == 1.0
    model, obj, opts = setup("maf")
    out = obj.train_step(model, opts, batch(data, 0), Progress(0))
    assert obj.train_ebm == (float(out["accuracy"]) <= 0.6)


def test_the_value_is_minus_log4_when_the_models_agree(data):
    """With p_theta = q_alpha every term of V is log 1/2 (docs/fce.md §3.1): -V = log 4 (the accuracy is then
    decided by float rounding; its tie rule is tested in test_nce.py)."""
    model, obj, _ = setup("maf")
    x = batch(data, 0)["x"]
    model.flow.log_prob(x)
    model.ebm.log_prob = model.flow.log_prob  # an EBM equal to the flow
    out = obj.eval_step(model, {"x": x})
    assert float(out["neg_value"]) == pytest.approx(math.log(4), abs=1e-5)


@pytest.mark.parametrize("objective", ["fce", "flow_mle"])
def test_evaluation_moves_nothing_and_scores_against_the_true_density(objective, data):
    model, obj, opts = setup("glow", objective)
    obj.train_step(model, opts, batch(data, 0), Progress(0))
    before, rng, flag = snapshot(model), torch.get_rng_state(), getattr(obj, "train_ebm", None)
    with_truth = obj.eval_step(model, data.eval.batch(slice(0, 1000)))
    without = obj.eval_step(model, {"x": data.eval.x[:1000]})
    assert changed(before, model) == set() and torch.equal(rng, torch.get_rng_state())
    assert getattr(obj, "train_ebm", None) == flag
    expected = {"flow_nll", "mse_flow"} | ({"mse_ebm", "mse_ebm_grid", "neg_value", "accuracy", "log_z"} if objective == "fce" else set())
    assert set(with_truth) == expected
    assert "mse_flow" not in without and "mse_ebm" not in without
    truth = data.eval.log_density[:1000]
    assert float(with_truth["mse_flow"]) == pytest.approx(float((model.flow.log_prob(data.eval.x[:1000]).detach() - truth).pow(2).mean()))


def test_the_flow_mle_baseline_trains_the_flow_alone_and_learns(data):
    model, obj, opts = setup("maf", "flow_mle")
    assert model.ebm is None and set(opts) == {"flow"}
    first = float(obj.train_step(model, opts, batch(data, 0), Progress(0))["nll"])
    for step in range(1, 150):
        last = float(obj.train_step(model, opts, batch(data, step), Progress(step))["nll"])
    assert last < first - 0.5


def test_fce_resume_reproduces_an_uninterrupted_run(tmp_path, data):
    """The alternation flag and both optimizers come back from the checkpoint (docs/fce.md §3.3)."""

    def run(max_iterations, checkpoint_dir, resume=None, seed=0):
        model, obj, opts = setup("glow", seed=seed)
        fit(model, obj, opts, ShuffledBatches(data.train, 500, seed=3), max_iterations=max_iterations,
            checkpoint_dir=checkpoint_dir, checkpoint_every=10, resume=resume)
        return model, obj

    straight, obj = run(30, tmp_path / "a")
    assert obj.train_ebm is not None
    run(20, tmp_path / "b")
    resumed, obj_resumed = run(30, tmp_path / "c", resume=tmp_path / "b", seed=7)
    assert changed(snapshot(straight), resumed) == set()
    assert obj_resumed.train_ebm == obj.train_ebm
    state = torch.load(tmp_path / "b" / "checkpoint_20.pt", weights_only=False)
    assert {"optimizer_ebm", "optimizer_flow", "objective"} <= set(state) and "train_ebm" in state["objective"]


def test_glow_actnorm_is_initialised_from_data_before_anything_is_sampled(data):
    model, obj, opts = setup("glow")
    x = batch(data, 0)["x"]
    fresh = copy.deepcopy(model.flow)
    obj.train_step(model, opts, {"x": x}, Progress(0))  # an EBM step: the flow is only evaluated
    fresh.log_prob(x)  # data-initialise a copy the same way
    assert changed(snapshot(fresh), model.flow) == set()


def test_overflowing_flow_samples_are_redrawn_unless_asked_not_to(data):
    """A flow mapping the tail of its base to inf (MAF's unclamped alpha can, docs/fce.md §6 item 6) must not turn V
    into NaN: those base vectors are redrawn and counted; ``redraw_nonfinite=False`` is the original."""
    for redraw in (True, False):
        model, obj, opts = setup("maf", redraw_nonfinite=redraw)
        sample_from = model.flow.sample_from

        def overflowing(z):
            x, log_q = sample_from(z)
            tail = (z[:, 0] > 2.0)[:, None]
            return torch.where(tail, torch.full_like(x, math.inf), x), log_q

        model.flow.sample_from = overflowing
        torch.manual_seed(0)
        out = obj.train_step(model, opts, batch(data, 0), Progress(0))
        if redraw:
            assert out["redrawn"] > 0 and math.isfinite(float(out["neg_value"]))
            assert all(torch.isfinite(p).all() for p in model.parameters())
        else:
            assert out["redrawn"] == 0 and not math.isfinite(float(out["neg_value"]))
