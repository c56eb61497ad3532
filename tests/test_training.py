"""The shared training loop: exact resume after an interruption, NaN stop, batches as a function of
the iteration, evaluation and logging conventions."""

import os
import signal

import numpy as np
import pytest
import torch
from torch import nn

from genlab.data.base import from_numpy
from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.objectives.base import Objective
from genlab.training.engines import fit
from genlab.training.checkpoints import latest_checkpoint
from genlab.training.handlers import NonFiniteLossError
from genlab.training.optimizers import OptimizerFactory


class NoisyRegression(Objective):
    """A tiny stochastic objective: the noise makes exact resume depend on the saved RNG state."""

    def __init__(self, nan_at: int | None = None):
        self.nan_at = nan_at
        self.aux = nn.Linear(1, 1)  # an auxiliary network, checkpointed through state_dict

    def make_optimizers(self, model, optimizer):
        return {**super().make_optimizers(model, optimizer), "aux": torch.optim.SGD(self.aux.parameters(), lr=optimizer.lr)}

    def train_step(self, model, optimizers, batch, progress):
        step = progress.iteration
        x = batch["x"].flatten(1)
        pred = model(x + 0.1 * torch.randn_like(x))
        loss = (pred - batch["factors"][:, :1]).pow(2).mean() + self.aux.weight.pow(2).sum()
        if self.nan_at is not None and step >= self.nan_at:
            loss = loss * float("nan")
        for opt in optimizers.values():
            opt.zero_grad()
        loss.backward()
        for opt in optimizers.values():
            opt.step()
        return {"loss": loss.detach()}

    def eval_step(self, model, batch):
        pred = model(batch["x"].flatten(1))
        return {"loss": (pred - batch["factors"][:, :1]).pow(2).mean()}


def toy_data(n=96, seed=0):
    rng = np.random.default_rng(seed)
    imgs = rng.integers(0, 2, size=(n, 1, 4, 4), dtype=np.uint8)
    packed = np.packbits(imgs.reshape(n, -1), axis=1)
    classes = rng.integers(0, 3, size=(n, 2))
    return from_numpy(packed, classes, classes.astype(float), (1, 4, 4), ("a", "b"), bits=True)


def make(seed=0, nan_at=None):
    torch.manual_seed(seed)
    model = nn.Linear(16, 1)
    objective = NoisyRegression(nan_at)
    optimizers = objective.make_optimizers(model, OptimizerFactory(lr=0.05))
    return model, objective, optimizers


def params(model, objective):
    return torch.cat([p.detach().flatten() for p in [*model.parameters(), *objective.aux.parameters()]])


def test_packed_bits_unpack_to_the_original_pixels():
    data = toy_data()
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 2, size=(96, 1, 4, 4), dtype=np.uint8)
    assert torch.equal(data.pixels(slice(None)), torch.from_numpy(imgs).float())


def test_batches_are_a_function_of_the_iteration():
    data = toy_data()
    batches = ShuffledBatches(data, batch_size=10, seed=3)
    position = [0]
    batches.bind(lambda: position[0])
    epoch0 = [b["x"] for b in batches]
    assert len(epoch0) == len(batches) == 9
    position[0] = 9 + 4  # epoch 1, fifth batch
    resumed = next(iter(batches))["x"]
    position[0] = 9
    epoch1 = [b["x"] for b in batches]
    assert torch.equal(resumed, epoch1[4])
    assert not torch.equal(torch.cat(epoch0), torch.cat(epoch1))  # reshuffled each epoch
    seen = torch.cat([b["x"] for b in SequentialBatches(data, 25)])
    assert torch.equal(seen, data.pixels(slice(None)))


def test_resume_after_interruption_matches_an_uninterrupted_run(tmp_path):
    data = toy_data()
    model, objective, optimizers = make()
    fit(model, objective, optimizers, ShuffledBatches(data, 8, seed=1), max_iterations=40, checkpoint_dir=tmp_path / "a", checkpoint_every=5)
    reference = params(model, objective)

    def interrupt_at_23(trainer):
        @trainer.on(__import__("ignite").engine.Events.ITERATION_COMPLETED(once=23))
        def _(_):
            os.kill(os.getpid(), signal.SIGINT)

    model, objective, optimizers = make()
    with pytest.raises(KeyboardInterrupt):
        fit(model, objective, optimizers, ShuffledBatches(data, 8, seed=1), max_iterations=40,
            checkpoint_dir=tmp_path / "b", checkpoint_every=5, hooks=interrupt_at_23)
    assert latest_checkpoint(tmp_path / "b").name == "checkpoint_23.pt"

    model, objective, optimizers = make(seed=99)  # different init: everything must come from the checkpoint
    result = fit(model, objective, optimizers, ShuffledBatches(data, 8, seed=1), max_iterations=40,
                 checkpoint_dir=tmp_path / "c", checkpoint_every=5, resume=tmp_path / "b")
    assert result.resumed_from.name == "checkpoint_23.pt" and result.iterations == 40
    assert torch.equal(params(model, objective), reference)


def test_nan_stops_the_run_with_its_step_and_keeps_the_last_good_checkpoint(tmp_path):
    data = toy_data()
    model, objective, optimizers = make(nan_at=12)
    logged = []
    with pytest.raises(NonFiniteLossError) as err:
        fit(model, objective, optimizers, ShuffledBatches(data, 8), max_iterations=40, checkpoint_dir=tmp_path,
            checkpoint_every=5, log=lambda *a: logged.append(a), log_every=1)
    assert err.value.step == 13  # step index 12 is the 13th iteration
    last = latest_checkpoint(tmp_path)
    assert last.name == "checkpoint_10.pt"
    state = torch.load(last, weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_logging_names_steps_and_evaluation(tmp_path):
    data = toy_data()
    model, objective, optimizers = make()
    logged = []
    result = fit(model, objective, optimizers, ShuffledBatches(data, 8), max_iterations=25,
                 val_batches=SequentialBatches(data, 7), eval_every=10, log=lambda *a: logged.append(a), log_every=5)
    names = {(n, s) for n, _, s in logged}
    assert {("batch.loss", s) for s in (5, 10, 15, 20, 25)} <= names
    assert {("val.loss", s) for s in (10, 20, 25)} <= names  # every 10 and at the end
    val25 = [v for n, v, s in logged if n == "val.loss" and s == 25][0]
    with torch.no_grad():
        expected = (model(data.pixels(slice(None)).flatten(1)) - data.values[:, :1]).pow(2).mean().item()
    assert val25 == pytest.approx(expected, rel=1e-5)  # batch-size-weighted mean over uneven batches
    assert result.val_metrics["loss"] == pytest.approx(expected, rel=1e-5)


def test_early_stopping_ends_training_when_validation_stops_improving():
    class Worsening(NoisyRegression):
        def eval_step(self, model, batch):  # validation loss that only grows
            self.calls = getattr(self, "calls", 0) + 1
            return {"loss": torch.tensor(float(self.calls))}

    data = toy_data()
    torch.manual_seed(0)
    model, objective = nn.Linear(16, 1), Worsening()
    result = fit(model, objective, objective.make_optimizers(model, OptimizerFactory(lr=0.01)), ShuffledBatches(data, 8), max_iterations=100,
                 val_batches=SequentialBatches(data, 96), eval_every=5, early_stopping_patience=2)
    assert result.stopped_early and result.iterations == 15  # evaluations at 5 (best), 10, 15 -> stop
