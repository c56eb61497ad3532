"""TCL (Hyvärinen & Morioka 2016) as the ICE-BeeM simulations train it: the feature MLP's shapes,
maxout and initialisation, the two training stages (stage 1 leaves the MLP bit-identical), the
weight decay's known value, and a short two-phase run through the engine that learns the segments."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from ignite.engine import Events

from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.data.sources import Tensors
from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.tcl import TCL, Maxout, variance_scaling_
from genlab.objectives import OBJECTIVES, build_objective
from genlab.objectives.tcl import weight_decay_term
from genlab.training.engines import fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.phases import parse_phases
from genlab.training.progress import Progress

D, SEGMENTS = 5, 20
INPUTS = {"input_shape": [D], "n_segments": SEGMENTS, "latent_dim": D}
SGD = OptimizerFactory("sgd", lr=0.01, options={"momentum": 0.9})  # docs/icebeem.md §5a
TWO_STAGES = [{"name": "mlr", "iterations": 50, "optimizers": ["mlr"]},
              {"name": "all", "iterations": 100, "optimizers": ["all"]}]  # fmt: skip


def tcl(n_layers: int = 2, seed: int = 0) -> TCL:
    torch.manual_seed(seed)
    return build_model("tcl", {"n_layers": n_layers}, INPUTS)


def segment_data(n_per_segment: int = 400, n_segments: int = 5, dim: int = D, seed: int = 0) -> Tensors:
    """Zero-mean Gaussian points whose per-dimension standard deviations change across segments
    (distinct U(0.1, 3) draws): only second-order statistics tell the segments apart, as in TCL."""
    g = torch.Generator().manual_seed(seed)
    std = 0.1 + 2.9 * torch.rand(n_segments, dim, generator=g)
    k = torch.arange(n_segments).repeat_interleave(n_per_segment)
    x = torch.randn(len(k), dim, generator=g) * std[k]
    u = torch.nn.functional.one_hot(k, n_segments).float()
    return Tensors("segments", x=x, u=u, s=x.clone())


def batch(n: int = 64, n_segments: int = SEGMENTS, seed: int = 1) -> dict[str, torch.Tensor]:
    source = segment_data(n_per_segment=-(-n // n_segments), n_segments=n_segments, seed=seed)
    return source.batch(torch.randperm(len(source), generator=torch.Generator().manual_seed(seed))[:n])


def state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The parameters (the whitening buffers are fixed by the data)."""
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def moved(before: dict[str, torch.Tensor], module: torch.nn.Module) -> set[str]:
    return {k for k, v in module.named_parameters() if not torch.equal(before[k], v)}


# --- the model -------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_layers, widths", [(2, [(5, 20), (10, 5)]), (4, [(5, 20), (10, 20), (10, 20), (10, 5)])])
def test_node_lists_shapes_and_non_negative_features(n_layers, widths):
    model = tcl(n_layers)
    assert model.nodes == [2 * D] * (n_layers - 1) + [D]  # [10, 5] and [10, 10, 10, 5]
    assert [(m.in_features, m.out_features) for m in model.linears()] == widths + [(D, SEGMENTS)]
    assert sum(isinstance(m, Maxout) for m in model.mlp) == n_layers - 1
    x = torch.randn(32, D)
    h = model.features(x)
    assert h.shape == (32, D) and bool((h >= 0).all())
    assert model(x).shape == (32, SEGMENTS)
    assert torch.equal(model.readouts(x, torch.zeros(32, SEGMENTS))["features"], h)
    assert TCL.source_target == "s_squared"
    assert {k for k, _ in model.named_buffers()} == {"whiten_mean", "whiten_matrix"}  # no data: identity


def test_maxout_takes_the_maximum_of_consecutive_groups():
    y = torch.tensor([[1.0, 5.0, 3.0, 2.0], [-1.0, -2.0, 0.0, 7.0]])
    assert torch.equal(Maxout(2)(y), torch.tensor([[5.0, 3.0], [-1.0, 7.0]]))
    assert torch.equal(Maxout(3)(torch.tensor([[0.0, 4.0, 1.0, -3.0, -1.0, -2.0]])), torch.tensor([[4.0, -1.0]]))


def test_initialisation_is_tf_contrib_variance_scaling_and_zero_biases():
    w = variance_scaling_(torch.empty(4000, 100))
    sigma = math.sqrt(1.3 * 2.0 / 100)  # factor 2.0, FAN_IN; truncated at 2 sigma
    assert float(w.abs().max()) <= 2 * sigma
    assert float(w.std()) == pytest.approx(math.sqrt(2.0 / 100), rel=0.02)  # He: 1.3 undoes the truncation
    model = tcl(4)
    assert all(not m.bias.detach().any() for m in model.linears())
    assert all(float(m.weight.detach().abs().max()) <= 2 * math.sqrt(2.6 / m.in_features) for m in model.linears())


def test_built_through_the_registry_with_its_options_and_data_inputs():
    model = build_model("tcl", {"n_layers": 2}, {"input_shape": [5], "n_segments": 20, "latent_dim": 5})
    assert isinstance(model, TCL) and model.nodes == [10, 5] and model.n_segments == 20
    assert build_model("tcl", {}, {"input_shape": [3], "n_segments": 4}).latent_dim == 3  # d = the input's
    with pytest.raises(ConfigError, match="n_segments"):
        build_model("tcl", {}, {"input_shape": [5]})
    with pytest.raises(ConfigError, match="maxout_k"):
        build_model("tcl", {"width": 3}, INPUTS)


def test_parameter_groups_split_the_model_and_weights_exclude_biases():
    model = tcl(4)
    ids = lambda ps: {id(p) for p in ps}  # noqa: E731
    assert ids(model.mlp_parameters()) | ids(model.mlr_parameters()) == ids(model.parameters())
    assert not ids(model.mlp_parameters()) & ids(model.mlr_parameters())
    assert ids(model.weight_parameters()) == {id(m.weight) for m in model.linears()}
    assert ids(model.weight_parameters(mlp=False)) == {id(model.mlr.weight)}


def test_deepcopy_and_averaged_copies_compute_the_same_features():
    model, x = tcl(4), torch.randn(16, D)
    assert torch.equal(copy.deepcopy(model).features(x), model.features(x))
    averaged = torch.optim.swa_utils.AveragedModel(model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(0.9999))
    averaged.update_parameters(model)
    assert torch.allclose(averaged.module.features(x), model.features(x))


# --- the objective ---------------------------------------------------------------------------------


def test_registered_with_the_paper_weight_decay():
    assert OBJECTIVES.get("tcl").hyperparameters() == {"weight_decay": 1e-4}


def test_stage_one_moves_the_mlr_and_leaves_every_mlp_parameter_bit_identical():
    model, objective = tcl(4), build_objective("tcl")
    optimizers = objective.make_optimizers(model, SGD)
    mlp, mlr = state(model.mlp), state(model.mlr)
    flags = [p.requires_grad for p in model.parameters()]
    for i in range(3):  # momentum: later steps too
        out = objective.train_step(model, {"mlr": optimizers["mlr"]}, batch(seed=i), Progress(i, phase="mlr"))
    assert same(mlp, state(model.mlp))
    assert all(p.grad is None for p in model.mlp_parameters())
    assert moved(mlr, model.mlr) == {"weight", "bias"}
    assert [p.requires_grad for p in model.parameters()] == flags
    assert set(out) == {"loss", "cross_entropy", "accuracy"} and not out["loss"].requires_grad


def test_stage_two_moves_every_parameter():
    model, objective = tcl(4), build_objective("tcl")
    optimizers = objective.make_optimizers(model, SGD)
    before = state(model)
    objective.train_step(model, {"all": optimizers["all"]}, batch(), Progress(0, phase="all"))
    assert moved(before, model) == set(before)


def test_a_phase_handed_every_optimizer_trains_everything_once():
    """``all`` takes precedence: the MLR is not stepped twice by the two optimizers."""
    model, objective = tcl(2), build_objective("tcl")
    twin = copy.deepcopy(model)
    optimizers, twin_optimizers = objective.make_optimizers(model, SGD), objective.make_optimizers(twin, SGD)
    objective.train_step(model, optimizers, batch(), Progress(0))
    objective.train_step(twin, {"all": twin_optimizers["all"]}, batch(), Progress(0))
    assert same(state(model), state(twin))
    with pytest.raises(KeyError, match="'mlr'"):
        objective.train_step(model, {}, batch(), Progress(0))


def test_eval_step_changes_nothing():
    model, objective = tcl(4), build_objective("tcl")
    optimizers = objective.make_optimizers(model, SGD)
    objective.train_step(model, optimizers, batch(), Progress(0))
    before, momentum = state(model), copy.deepcopy(optimizers["all"].state_dict())
    out = objective.eval_step(model, batch(seed=5))
    assert same(before, state(model))
    assert set(out) == {"loss", "cross_entropy", "accuracy"} and 0.0 <= float(out["accuracy"]) <= 1.0
    assert all(torch.equal(a["momentum_buffer"], b["momentum_buffer"])
               for a, b in zip(momentum["state"].values(), optimizers["all"].state_dict()["state"].values()))  # fmt: skip


def test_weight_decay_is_half_the_squared_weights_times_1e4_without_biases():
    model, objective = tcl(2), build_objective("tcl")
    with torch.no_grad():
        for m in model.linears():
            m.weight.fill_(0.5)
            m.bias.fill_(100.0)  # excluded: would dominate if counted
    n_weights = 5 * 20 + 10 * 5 + 5 * 20  # 350 entries of 0.25
    expected = 0.5 * 1e-4 * 0.25 * n_weights
    assert float(weight_decay_term(model.weight_parameters(), 1e-4).detach()) == pytest.approx(expected, rel=1e-6)
    out = objective.eval_step(model, batch())
    assert float(out["loss"] - out["cross_entropy"]) == pytest.approx(expected, rel=1e-4)
    # stage 1 counts only what it trains: the MLR's weight, 100 entries of 0.25
    optimizers = objective.make_optimizers(model, SGD)
    step = objective.train_step(model, {"mlr": optimizers["mlr"]}, batch(), Progress(0, phase="mlr"))
    assert float(step["loss"] - step["cross_entropy"]) == pytest.approx(0.5 * 1e-4 * 0.25 * 100, rel=1e-4)


# --- through the engine ----------------------------------------------------------------------------


def test_two_phase_run_through_the_engine_freezes_the_mlp_first_then_learns_the_segments():
    torch.manual_seed(0)
    data = segment_data(n_per_segment=400, n_segments=5)
    model = build_model("tcl", {"n_layers": 2}, {"input_shape": [D], "n_segments": 5, "latent_dim": D})
    objective = build_objective("tcl")
    optimizers = objective.make_optimizers(model, SGD)
    initial_mlp, after_stage_one = state(model.mlp), {}

    def hooks(trainer):
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=50), lambda _: after_stage_one.update(state(model)))

    phases = [{"name": "mlr", "iterations": 100, "optimizers": ["mlr"]},
              {"name": "all", "iterations": 300, "optimizers": ["all"]}]  # fmt: skip
    result = fit(model, objective, optimizers, ShuffledBatches(data, 128, seed=0), phases=parse_phases(phases),
                 val_batches=SequentialBatches(data, 500), eval_every=400, hooks=hooks)  # fmt: skip
    assert [(n, a, b) for n, a, b, _ in result.phases] == [("mlr", 0, 100), ("all", 100, 400)]
    assert same(initial_mlp, {k.removeprefix("mlp."): v for k, v in after_stage_one.items() if k.startswith("mlp.")})
    assert not same(initial_mlp, state(model.mlp))
    assert result.val_metrics["accuracy"] > 0.45  # chance: 0.2; seeds 0-3 reach 0.55-0.59


def test_the_paper_phases_run_with_an_evaluated_moving_average_of_the_weights():
    torch.manual_seed(0)
    data = segment_data(n_per_segment=100, n_segments=SEGMENTS)
    model, objective = tcl(2), build_objective("tcl")
    optimizers = objective.make_optimizers(model, SGD)
    result = fit(model, objective, optimizers, ShuffledBatches(data, 64, seed=0), phases=parse_phases(TWO_STAGES),
                 val_batches=SequentialBatches(data, 512), eval_every=150, ema_decay=0.99, evaluate_ema=True)  # fmt: skip
    assert result.iterations == 150 and result.eval_model is not model
    assert set(result.val_metrics) == {"loss", "cross_entropy", "accuracy"}
    assert all(math.isfinite(float(v)) for v in result.val_metrics.values())
    assert not same(state(model), state(result.eval_model))


def test_the_input_is_pca_whitened_with_the_data_s_map_and_the_depth_follows_the_data():
    from genlab.data import DATASETS

    data = DATASETS.get("tcl").build(n_per_segment=50, n_layers=4)
    model = build_model("tcl", {}, data.model_inputs)
    assert model.nodes == [10, 10, 10, 5]  # L = 4 from the data
    x = data.train.batch(slice(None))["x"]
    white = (x - model.whiten_mean) @ model.whiten_matrix
    torch.testing.assert_close(torch.cov(white.T), torch.eye(5), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.features(x), model.mlp(white).abs())
    plain = build_model("tcl", {"whiten": False}, data.model_inputs)
    assert torch.equal(plain.whiten_matrix, torch.eye(5))
