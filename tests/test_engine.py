"""The shared engine's features: phases, schedules, best-checkpoint selection and early stopping
with a warm-up gate, the moving average of the weights, evaluation with gradients; each resumes
exactly."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.data.toy2d import Points
from genlab.objectives.base import Objective
from genlab.training.engines import Selection, fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.phases import Phase, parse_phases
from genlab.training.schedulers import build_schedulers


class TwoPlayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 1), nn.Linear(2, 1)


class Scripted(Objective):
    """Steps whichever optimizers the phase hands it (noisily, so exact resume needs the RNG state)
    and records what it was told at every step."""

    def __init__(self):
        self.seen: list[tuple] = []

    def make_optimizers(self, model, optimizer):
        return {"a": optimizer(model.a.parameters()), "b": optimizer(model.b.parameters())}

    def train_step(self, model, optimizers, batch, progress):
        self.seen.append((progress.iteration, progress.epoch, progress.phase, progress.phase_index,
                          progress.phase_iteration, tuple(sorted(optimizers))))  # fmt: skip
        x = batch["x"] + 0.01 * torch.randn_like(batch["x"])
        loss = (model.a(x) - 1).pow(2).mean() + (model.b(x) + 1).pow(2).mean()
        for opt in optimizers.values():
            opt.zero_grad()
        loss.backward()
        for opt in optimizers.values():
            opt.step()
        return {"loss": loss.detach(), "score": torch.tensor(float(len(self.seen)))}

    def eval_step(self, model, batch):
        with torch.no_grad():
            return {"loss": (model.a(batch["x"]) - 1).pow(2).mean() + (model.b(batch["x"]) + 1).pow(2).mean()}


def points(n=40, seed=0):
    return Points(torch.randn(n, 2, generator=torch.Generator().manual_seed(seed)))


def setup(seed=0, lr=0.05, optimizer="sgd"):
    torch.manual_seed(seed)
    model, objective = TwoPlayers(), Scripted()
    return model, objective, objective.make_optimizers(model, OptimizerFactory(optimizer, lr=lr))


PHASES = [
    {"name": "warm", "iterations": 6, "optimizers": ["a"]},
    {"name": "both", "epochs": 2, "lr": {"b": 0.01}},  # 2 epochs of 4 batches = 8 updates
    {"name": "last", "iterations": 5, "optimizers": ["b"]},
]


def state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_phases_run_in_order_with_their_optimizers_lengths_and_learning_rates(tmp_path):
    model, objective, opts = setup()
    logged = []
    result = fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=parse_phases(PHASES),
                 log=lambda n, v, s: logged.append((n, v, s)), log_every=100)
    assert result.iterations == 6 + 8 + 5
    assert [(n, a, b) for n, a, b, _ in result.phases] == [("warm", 0, 6), ("both", 6, 14), ("last", 14, 19)]
    phases_seen = [s[2] for s in objective.seen]
    assert phases_seen == ["warm"] * 6 + ["both"] * 8 + ["last"] * 5
    assert {s[5] for s in objective.seen[:6]} == {("a",)} and {s[5] for s in objective.seen[14:]} == {("b",)}
    assert objective.seen[6][4] == 0 and objective.seen[13][4] == 7  # iterations within the phase
    assert [s[1] for s in objective.seen[:9]] == [0, 0, 0, 0, 1, 1, 1, 1, 2]  # epochs of 4 batches
    assert opts["b"].param_groups[0]["lr"] == 0.01 and opts["a"].param_groups[0]["lr"] == 0.05
    assert [(v, s) for n, v, s in logged if n == "train.phase"] == [(0.0, 0), (1.0, 6), (2.0, 14)]


def test_a_phase_stops_early_on_its_rule_and_the_next_starts_at_once():
    model, objective, opts = setup()
    phases = parse_phases([{"name": "until", "epochs": 10, "stop": {"metric": "score", "above": 6.0}},
                           {"name": "after", "iterations": 3}])
    result = fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=phases)
    # epoch means of "score" (1, 2, 3 ...): epoch 1 = 2.5, epoch 2 = 6.5 > 6, so "until" ends at 8
    assert [(n, a, b, stopped) for n, a, b, stopped in result.phases] == [("until", 0, 8, True), ("after", 8, 11, False)]
    assert result.iterations == 11


def test_resume_in_the_middle_of_phase_two_reproduces_an_uninterrupted_run(tmp_path):
    model, objective, opts = setup()
    fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=parse_phases(PHASES),
        checkpoint_dir=tmp_path / "straight", checkpoint_every=100)
    straight, seen_straight = state(model), objective.seen

    model, objective, opts = setup()
    with pytest.raises(KeyboardInterrupt):  # stop at iteration 10, in the middle of "both"
        fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=parse_phases(PHASES),
            checkpoint_dir=tmp_path / "cut", checkpoint_every=5,
            hooks=lambda t: t.add_event_handler(Events.ITERATION_COMPLETED(once=10), lambda e: interrupt(e)))
    model, objective, opts = setup(seed=7)  # different initial weights: everything comes from the checkpoint
    torch.manual_seed(123)
    result = fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=parse_phases(PHASES),
                 checkpoint_dir=tmp_path / "cut", resume=tmp_path / "cut")
    assert result.resumed_from.name == "checkpoint_10.pt"
    assert objective.seen == seen_straight[10:]
    assert all(torch.equal(straight[k], v) for k, v in state(model).items())
    assert opts["b"].param_groups[0]["lr"] == 0.01  # phase 2's learning rate came back with the optimizer


from ignite.engine import Events  # noqa: E402


def interrupt(engine):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)


def test_bad_phases_are_refused():
    with pytest.raises(ValueError, match="exactly one of 'iterations' or 'epochs'"):
        parse_phases([{"name": "x"}])
    with pytest.raises(ValueError, match="no key.*iters"):
        parse_phases([{"name": "x", "iters": 3}])
    with pytest.raises(ValueError, match="exactly one of 'above' or 'below'"):
        parse_phases([{"name": "x", "epochs": 1, "stop": {"metric": "acc"}}])
    with pytest.raises(ValueError, match="unique"):
        parse_phases([{"name": "x", "epochs": 1}, {"name": "x", "epochs": 1}])
    model, objective, opts = setup()
    with pytest.raises(ValueError, match="phase 'p' names optimizer 'c'.*a, b"):
        fit(model, objective, opts, ShuffledBatches(points(), 10), phases=[Phase("p", iterations=2, optimizers=("c",))])
    with pytest.raises(KeyError, match="stops on 'accuracy'.*returns: loss, score"):
        fit(model, objective, opts, ShuffledBatches(points(), 10), phases=parse_phases([
            {"name": "p", "epochs": 2, "stop": {"metric": "accuracy", "above": 0.5}}]))


def test_schedules_step_per_iteration_and_per_epoch_and_resume_exactly(tmp_path):
    def run(n, directory, resume=None):
        model, objective, opts = setup(optimizer="adam", lr=0.1)
        schedulers = {**build_schedulers("noam", {"a": opts["a"]}, {"warmup": 3, "unit": "epoch"}),
                      **{f"{k}_step": v for k, v in build_schedulers("step", {"b": opts["b"]}, {"step_size": 5, "gamma": 0.5}).items()}}
        fit(model, objective, opts, ShuffledBatches(points(), 10, seed=2), max_iterations=n, schedulers=schedulers,
            checkpoint_dir=directory, checkpoint_every=6, resume=resume)
        return model, opts

    model, opts = run(14, tmp_path / "a")
    # noam per epoch (4 batches): after 3 completed epochs k = 4 -> lr0 sqrt(3/4); step: 14 // 5 = 2 halvings
    assert opts["a"].param_groups[0]["lr"] == pytest.approx(0.1 * math.sqrt(3 / 4))
    assert opts["b"].param_groups[0]["lr"] == pytest.approx(0.1 * 0.25)
    run(6, tmp_path / "b")
    resumed, opts_resumed = run(14, tmp_path / "b", resume=tmp_path / "b")
    assert all(torch.equal(v, state(resumed)[k]) for k, v in state(model).items())
    assert opts_resumed["a"].param_groups[0]["lr"] == opts["a"].param_groups[0]["lr"]


def test_plateau_reads_the_epoch_mean_of_a_training_quantity():
    model, objective, opts = setup()
    schedulers = build_schedulers("plateau", opts, {"metric": "score", "mode": "min", "patience": 0, "factor": 0.5})
    fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=12, schedulers=schedulers)
    # "score" rises every epoch: the first epoch sets the best, the next two each halve the rate
    assert opts["a"].param_groups[0]["lr"] == pytest.approx(0.05 * 0.25)


class Drifting(Scripted):
    """Validation loss scripted per evaluation (the k-th evaluation returns ``values[k]``)."""

    def __init__(self, values):
        super().__init__()
        self.values, self.evals = list(values), 0

    def eval_step(self, model, batch):
        return {"loss": torch.tensor(self.values[min(self.evals, len(self.values) - 1)])}


def after_every_evaluation(objective, snapshots=None, model=None):
    """A trainer hook: counts evaluations (every 2 iterations) and keeps the weights at each."""

    def hook(trainer):
        @trainer.on(Events.ITERATION_COMPLETED(every=2))
        def count(engine):
            objective.evals += 1
            if snapshots is not None:
                snapshots[engine.state.iteration] = state(model)

    return hook


def drifting(values):
    torch.manual_seed(0)
    model, objective = TwoPlayers(), Drifting(values)
    return model, objective, objective.make_optimizers(model, OptimizerFactory("sgd", lr=0.05))


def test_best_checkpoint_with_a_warmup_gate_and_evaluating_the_best(tmp_path):
    # evaluations at iterations 2, 4, 6, 8, 10, 12; the best overall is at 2, the best from 5 on at 6
    model, objective, opts = drifting([0.1, 1.0, 0.5, 3.0, 4.0, 6.0])
    snapshots = {}
    result = fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=12,
                 val_batches=SequentialBatches(points(8, 1), 8), eval_every=2, checkpoint_dir=tmp_path,
                 select=Selection("val.loss", "min", after=5), evaluate_best=True,
                 hooks=after_every_evaluation(objective, snapshots, model))
    assert result.best_checkpoint.parent == tmp_path / "best" and result.best_checkpoint.is_file()
    assert "_6_" in result.best_checkpoint.name and result.best_score == pytest.approx(0.5)
    assert all(torch.equal(snapshots[6][k], v) for k, v in state(model).items())  # the best weights, not the last
    assert result.val_metrics["loss"] == pytest.approx(0.5)

    model, objective, opts = drifting([0.1, 1.0, 0.5, 3.0, 4.0, 6.0])
    result = fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=12,
                 val_batches=SequentialBatches(points(8, 1), 8), eval_every=2, checkpoint_dir=tmp_path / "nogate",
                 select=Selection("loss", "min"), hooks=after_every_evaluation(objective))
    assert "_2_" in result.best_checkpoint.name and result.best_score == pytest.approx(0.1)
    assert result.val_metrics["loss"] == pytest.approx(6.0)  # without evaluate_best: the last evaluation


@pytest.mark.parametrize("after, stop_at", [(0, 6), (5, 10)])
def test_early_stopping_counts_only_after_the_gate(after, stop_at, tmp_path):
    # every evaluation is worse than the one before: with patience 2 the run stops at the third
    # evaluation that counts (iteration 6 without a gate; 10 when counting starts at iteration 5)
    model, objective, opts = drifting([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    result = fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=40,
                 val_batches=SequentialBatches(points(8, 1), 8), eval_every=2, early_stopping_patience=2,
                 select=Selection("loss", after=after) if after else None, checkpoint_dir=tmp_path if after else None,
                 hooks=after_every_evaluation(objective))
    assert result.stopped_early and result.iterations == stop_at


@pytest.mark.parametrize("after_epochs, stop_at", [(None, 6), (2, 10)])
def test_early_stopping_after_a_warm_up_keeps_the_best_but_resets_the_counter(after_epochs, stop_at):
    # 4 batches an epoch, evaluations every 2 iterations, patience 2; the best is the first (0.5).
    # Counting from the end of epoch 2 (iteration 8): the evaluations at 4 and 6 reset the counter,
    # 0.7 at 8 is still worse than the 0.5 seen during the warm-up (counter 1), 0.8 at 10 stops it
    model, objective, opts = drifting([0.5, 1.0, 2.0, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3])
    result = fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=40,
                 val_batches=SequentialBatches(points(8, 1), 8), eval_every=2, early_stopping_patience=2,
                 early_stopping_after_epochs=after_epochs, hooks=after_every_evaluation(objective))
    assert result.stopped_early and result.iterations == stop_at


def test_the_moving_average_is_kept_checkpointed_and_evaluated(tmp_path):
    def run(n, directory, resume=None, weights=None):
        model, objective, opts = setup()
        initial = state(model)

        def hook(trainer):
            if weights is not None:
                trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: weights.append(state(model)))

        result = fit(model, objective, opts, ShuffledBatches(points(), 10), max_iterations=n, ema_decay=0.9,
                     evaluate_ema=True, val_batches=SequentialBatches(points(8, 1), 8), eval_every=4,
                     checkpoint_dir=directory, checkpoint_every=4, resume=resume, hooks=hook)
        return model, result, initial

    weights = []
    model, result, initial = run(8, tmp_path / "a", weights=weights)
    ema = result.eval_model
    assert ema is not model
    shadow = initial  # ema <- 0.9 ema + 0.1 w after every update, from the initial weights
    for w in weights:
        shadow = {k: 0.9 * shadow[k] + 0.1 * w[k] for k in shadow}
    for k, v in state(ema).items():
        torch.testing.assert_close(v, shadow[k])
    assert not torch.equal(state(ema)["a.weight"], state(model)["a.weight"])
    run(4, tmp_path / "b")
    _, resumed, _ = run(8, tmp_path / "b", resume=tmp_path / "b")
    assert all(torch.equal(v, state(resumed.eval_model)[k]) for k, v in state(ema).items())


class ScoreMatching(Objective):
    """An evaluation that needs gradients with respect to its input (denoising score matching)."""

    def train_step(self, model, optimizers, batch, progress):
        return {"loss": torch.tensor(0.0)}

    def eval_step(self, model, batch):
        x = batch["x"].clone().requires_grad_(True)
        energy = model.a(x).sum()
        (score,) = torch.autograd.grad(energy, x)
        return {"score_norm": score.norm(dim=1).mean().detach()}


def test_the_evaluator_leaves_gradients_to_the_objective():
    from genlab.training.engines import create_evaluator
    from genlab.training.handlers import evaluate

    torch.manual_seed(0)
    model = TwoPlayers()
    metrics = evaluate(create_evaluator(model, ScoreMatching()), SequentialBatches(points(8), 4))
    assert metrics["score_norm"] == pytest.approx(model.a.weight.norm().item(), rel=1e-5)


def test_a_phase_can_finish_its_epoch_and_end_with_an_evaluation():
    model, objective, opts = setup()
    phases = parse_phases([{"name": "first", "iterations": 5, "finish_epoch": True, "evaluate": True},  # 4 batches/epoch: 8
                           {"name": "second", "iterations": 3}])
    evaluated = []
    result = fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=phases,
                 val_batches=SequentialBatches(points(8, 1), 8), eval_every="phase",
                 log=lambda n, v, s: evaluated.append(s) if n == "val.loss" else None)  # fmt: skip
    assert [(n, a, b) for n, a, b, _ in result.phases] == [("first", 0, 8), ("second", 8, 11)]
    assert evaluated == [8, 11] and [i for i, _ in result.val_history] == [8, 11]  # phase end, run end (once each)
    assert objective.seen[0][-2:] == (0, ("a", "b")) and result.val_history[-1][1] == result.val_metrics


def test_the_moving_average_can_warm_up_per_phase_as_tensorflow_s():
    model, objective, opts = setup()
    initial, weights = state(model), []
    phases = parse_phases([{"name": "one", "iterations": 3}, {"name": "two", "iterations": 3}])
    result = fit(model, objective, opts, ShuffledBatches(points(), 10), phases=phases, ema_decay=0.9999, ema_warmup=True, evaluate_ema=True,
                 hooks=lambda t: t.add_event_handler(Events.ITERATION_COMPLETED, lambda e: weights.append(state(model))))
    shadow = initial
    for t, w in zip([1, 2, 3, 1, 2, 3], weights):  # decay min(0.9999, (1 + t) / (10 + t)) at a phase's t-th update
        decay = (1 + t) / (10 + t)
        shadow = {k: decay * shadow[k] + (1 - decay) * w[k] for k in shadow}
    for k, v in state(result.eval_model).items():
        torch.testing.assert_close(v, shadow[k])


def test_max_iterations_caps_a_run_of_phases_wherever_it_falls():
    model, objective, opts = setup()
    result = fit(model, objective, opts, ShuffledBatches(points(), 10, seed=1), phases=parse_phases(PHASES), max_iterations=9)
    assert result.iterations == 9 and [s[2] for s in objective.seen] == ["warm"] * 6 + ["both"] * 3


def test_epoch_medians_are_the_medians_of_each_epochs_step_values_and_survive_a_resume_mid_epoch(tmp_path):
    def run(n, directory, resume=None):
        model, objective, opts = setup()
        logged = []
        fit(model, objective, opts, ShuffledBatches(points(), 10, seed=3), max_iterations=n, epoch_medians=["score"],
            log=lambda name, v, s: logged.append((name, v, s)), checkpoint_dir=directory, checkpoint_every=6, resume=resume)
        return [(v, s) for name, v, s in logged if name == "epoch.score_median"]

    # "score" is 1, 2, 3 ... (the count of steps this objective took); 4 batches an epoch
    assert run(12, tmp_path / "a") == [(2.5, 4), (6.5, 8), (10.5, 12)]
    run(6, tmp_path / "b")  # stopped in the middle of the second epoch
    resumed = run(12, tmp_path / "b", resume=tmp_path / "b")
    # the resumed objective counts from 1 again: steps 7, 8 score 1, 2 after the checkpointed 5, 6, so
    # the second epoch's median is that of 5, 6, 1, 2 (the checkpoint carried the first two)
    assert resumed == [(3.5, 8), (4.5, 12)]
