"""ICE-BeeM on the simulations (genlab.models.icebeem, genlab.objectives.icebeem_fce): the energy has
the paper's form, each phase's step moves only what that phase trains, evaluation moves nothing, the
4-phase schedule runs its phases in order with an evaluation after each EBM phase, and a resumed run
is the uninterrupted one."""

from __future__ import annotations

import copy

import pytest
import torch
from configs.icebeem_sim import fce_schedule

from genlab.data import DATASETS
from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.objectives import build_objective
from genlab.objectives.icebeem_fce import action_of
from genlab.training.engines import fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.phases import parse_phases
from genlab.training.progress import Progress


@pytest.fixture(scope="module")
def data():
    return DATASETS.get("tcl").build(n_per_segment=16)  # 320 points, 5 batches of 64 per epoch


def make(data, seed=0):
    torch.manual_seed(seed)
    model = build_model("icebeem", {"flow_options": {"n_layers": 1}}, data.model_inputs)
    objective = build_objective("icebeem_fce")
    return model, objective, objective.make_optimizers(model, OptimizerFactory("adam", 1e-3, {}))


def params(module):
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def moved(before, module):
    return {k for k, v in module.named_parameters() if not torch.equal(v, before[k])}


def test_the_energy_is_the_augmented_inner_product_with_one_shared_normaliser(data):
    model, _, _ = make(data)
    ebm = model.ebm.eval()
    assert torch.equal(ebm.W, torch.ones(5, 20)) and ebm.log_z.item() == -5.0
    assert len(ebm.f.blocks) == 2 and isinstance(ebm.f.blocks[0][0], torch.nn.BatchNorm1d)  # L = 2 blocks
    x, u = data.train.batch(slice(0, 40))["x"], data.train.batch(slice(0, 40))["u"]
    with torch.no_grad():
        ebm.W.normal_()
        f = ebm.f(x)
        k = u.argmax(1)
        w = ebm.W[:, k].T  # W u, row by row
        expected = (f * w).sum(1) + (f**2 * w**2).sum(1) - 5.0
        torch.testing.assert_close(ebm.log_prob(x, u), expected)
        torch.testing.assert_close(ebm.log_prob(x, u, augment=False), (f * w).sum(1) - 5.0)


def test_phase_names_say_what_a_step_does():
    assert [action_of(p) for p in ("flow_mle", "ebm_g", "ebm", "flow_1", "ebm_12")] == ["flow_mle", "ebm_g", "ebm", "flow", "ebm"]
    with pytest.raises(ConfigError, match="phase 'warmup' is none of flow_mle, ebm_g, ebm, flow"):
        action_of("warmup")


@pytest.mark.parametrize("phase, optimizer, trained", [
    ("flow_mle", "flow", "flow"),
    ("ebm_g", "ebm_g", "g"),
    ("ebm", "ebm", "ebm"),
    ("flow_1", "flow", "flow"),
])  # fmt: skip
def test_each_phase_moves_only_what_it_trains(data, phase, optimizer, trained):
    model, objective, optimizers = make(data)
    batch = data.train.batch(torch.arange(64))
    objective.train_step(model, {"flow": optimizers["flow"]}, batch, Progress(0, 0, "flow_mle", 0, 0, 5))  # ActNorm init
    flow, ebm = params(model.flow), params(model.ebm)
    out = objective.train_step(model, {optimizer: optimizers[optimizer]}, batch, Progress(1, 0, phase, 1, 1, 5))
    assert torch.isfinite(out["loss"])
    if trained == "flow":
        assert moved(flow, model.flow) == set(flow) and not moved(ebm, model.ebm)
    elif trained == "g":
        assert moved(ebm, model.ebm) == {"W", "log_z"} and not moved(flow, model.flow)
    else:
        assert moved(ebm, model.ebm) == set(ebm) and not moved(flow, model.flow)
    if phase != "flow_mle":
        assert 0.0 <= float(out["accuracy"]) <= 1.0


def test_evaluation_moves_nothing_and_scores_the_readouts(data):
    model, objective, optimizers = make(data)
    objective.train_step(model, {"flow": optimizers["flow"]}, data.train.batch(torch.arange(64)), Progress(0, 0, "flow_mle", 0, 0, 5))
    state = copy.deepcopy(model.state_dict())
    out = objective.eval_step(model, data.train.batch(slice(None)))
    assert set(out) == {"mcc_ebm", "mcc_ebm_ica", "mcc_flow", "mcc_flow_ica"} and all(0 <= v <= 1 for v in out.values())
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())


def test_the_noise_set_is_fixed_within_a_phase_and_redrawn_for_the_next(data):
    model, objective, optimizers = make(data)
    batch = data.train.batch(torch.arange(64))
    objective.train_step(model, {"flow": optimizers["flow"]}, batch, Progress(0, 0, "flow_mle", 0, 0, 5))
    objective.train_step(model, {"ebm": optimizers["ebm"]}, batch, Progress(1, 0, "ebm", 1, 0, 5))
    first = objective.noise.clone()
    assert first.shape == (5 * 64, 5)
    objective.train_step(model, {"ebm": optimizers["ebm"]}, batch, Progress(2, 0, "ebm", 1, 1, 5))
    assert torch.equal(objective.noise, first)  # the same points within the epoch ...
    objective.train_step(model, {"ebm": optimizers["ebm"]}, batch, Progress(6, 1, "ebm", 1, 5, 5))
    assert not torch.equal(objective.noise, first) and torch.equal(objective.noise.sort(0).values, first.sort(0).values)  # ... reshuffled
    objective.train_step(model, {"flow": optimizers["flow"]}, batch, Progress(7, 1, "flow_1", 2, 0, 5))
    assert not torch.equal(objective.noise.sort(0).values, first.sort(0).values)  # a new phase: new points


def short_schedule():
    """The original's schedule with every phase cut to 1 epoch (2 for the last EBM phase)."""
    phases = fce_schedule()
    for phase in phases:
        phase["epochs"] = 1
    phases[-1]["epochs"] = 2
    return parse_phases(phases)


def run(data, tmp_path=None, resume=None, seed=0):
    model, objective, optimizers = make(data, seed)
    logged = []
    result = fit(model, objective, optimizers, ShuffledBatches(data.train, 64, seed=seed), phases=short_schedule(),
                 val_batches=SequentialBatches(data.train, len(data.train)), eval_every="phase",
                 log=lambda name, value, step: logged.append((name, value, step)), checkpoint_dir=tmp_path,
                 checkpoint_every=3, n_saved=20, resume=resume)  # fmt: skip
    return model, result, logged


def test_the_schedule_visits_its_phases_in_order_and_evaluates_after_each_ebm_phase(data):
    _, result, logged = run(data)
    names = [span[0] for span in result.phases]
    assert names == ["flow_mle", "ebm_g", "ebm", "flow_1", "ebm_1", "flow_2", "ebm_2", "flow_3", "ebm_3"]
    assert [v for n, v, _ in logged if n == "train.phase"] == list(range(9))
    ends = {name: end for name, _, end, _ in result.phases}
    assert [i for i, _ in result.val_history] == [ends[p] for p in ("ebm", "ebm_1", "ebm_2", "ebm_3")]
    assert result.iterations == 10 * 5


def test_a_resumed_run_is_the_uninterrupted_one(data, tmp_path):
    full, _, _ = run(data, tmp_path / "a")
    resumed, result, _ = run(data, tmp_path / "b", resume=tmp_path / "a" / "checkpoint_21.pt")  # in phase ebm_1
    assert result.resumed_at == 21
    assert all(torch.equal(v, resumed.state_dict()[k]) for k, v in full.state_dict().items())
    assert len(result.val_history) == 4  # the evaluation before the checkpoint came with it


def test_an_ebm_phase_scores_each_data_point_s_log_q_once_and_the_noise_s_when_drawn(data):
    model, objective, optimizers = make(data)
    source = data.train
    objective.train_step(model, {"flow": optimizers["flow"]}, source.batch(torch.arange(64)), Progress(0, 0, "flow_mle", 0, 0, 5))
    calls = []
    original = model.flow.log_prob
    model.flow.log_prob = lambda x: (calls.append(len(x)), original(x))[1]
    for b in range(5):  # one epoch of the EBM phase: every point scored once ...
        objective.train_step(model, {"ebm": optimizers["ebm"]}, source.batch(torch.arange(64 * b, 64 * b + 64)),
                             Progress(1 + b, 0, "ebm", 1, b, 5))  # fmt: skip
    objective.train_step(model, {"ebm": optimizers["ebm"]}, source.batch(torch.arange(64)), Progress(6, 1, "ebm", 1, 5, 5))
    assert calls == [64] * 5  # ... and not again in the next epoch
    model.flow.log_prob = original
    with torch.no_grad():
        torch.testing.assert_close(objective.data_log_q[:320], model.flow.log_prob(source.batch(slice(0, 320))["x"]))
        torch.testing.assert_close(objective.noise_log_q, model.flow.log_prob(objective.noise), atol=1e-4, rtol=1e-4)
