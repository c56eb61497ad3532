"""Checkpoints a run can always resume from (issue 10's faults, each reproduced): the new file is
written before the old ones go, orphaned partial writes are cleaned, a corrupt newest file falls
back to the older one, non-finite weights are never checkpointed and the NaN error names the real
last good checkpoint, and a resume logs exactly what an uninterrupted run logs (batch means and the
last evaluation are checkpointed)."""

from __future__ import annotations

import logging

import pytest
import torch
from ignite.engine import Events
from torch import nn

from genlab.data.batches import SequentialBatches, ShuffledBatches
from genlab.training.checkpoints import (
    CheckpointError,
    SafeDiskSaver,
    checkpoint_files,
    clean_orphans,
    iteration_of,
    read_checkpoint,
)
from genlab.training.engines import fit
from genlab.training.handlers import NonFiniteLossError
from test_training import NoisyRegression, make, params, toy_data


def test_the_old_checkpoint_is_removed_only_after_the_new_one_is_written(tmp_path, monkeypatch):
    saver = SafeDiskSaver(tmp_path)
    saver({"a": 1}, "checkpoint_1.pt")
    seen = []
    real_save = torch.save

    def save_and_look(obj, f, **kwargs):  # what is on disk while the new file is being written
        seen.append(sorted(p.name for p in tmp_path.glob("checkpoint_*.pt")))
        real_save(obj, f, **kwargs)

    saver.remove("checkpoint_1.pt")  # Ignite asks for the removal before the write
    assert (tmp_path / "checkpoint_1.pt").is_file()
    monkeypatch.setattr(torch, "save", save_and_look)  # DiskSaver writes with torch.save
    saver({"a": 2}, "checkpoint_2.pt")
    assert seen == [["checkpoint_1.pt"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint_2.pt"]


def test_a_kill_during_a_write_leaves_the_previous_checkpoints_and_the_orphan_is_cleaned_at_start(tmp_path):
    model, objective, optimizers = make()
    data = toy_data()
    fit(model, objective, optimizers, ShuffledBatches(data, 8), max_iterations=15, checkpoint_dir=tmp_path, checkpoint_every=5)
    assert [p.name for p in checkpoint_files(tmp_path)] == ["checkpoint_15.pt", "checkpoint_10.pt"]  # n_saved=2 on disk
    (tmp_path / "tmpab12cd34").write_bytes(b"")  # what a kill during DiskSaver's write leaves
    assert clean_orphans(tmp_path) == [tmp_path / "tmpab12cd34"]
    (tmp_path / "tmpzz99yy88").write_bytes(b"half")
    model, objective, optimizers = make()
    fit(model, objective, optimizers, ShuffledBatches(data, 8), max_iterations=20, checkpoint_dir=tmp_path,
        checkpoint_every=5, resume=tmp_path)  # fmt: skip
    assert not (tmp_path / "tmpzz99yy88").exists()


def test_a_corrupt_newest_checkpoint_falls_back_to_the_older_one_naming_both(tmp_path, caplog):
    data = toy_data()
    model, objective, optimizers = make()
    fit(model, objective, optimizers, ShuffledBatches(data, 8), max_iterations=10, checkpoint_dir=tmp_path / "a", checkpoint_every=5)
    newest, older = checkpoint_files(tmp_path / "a")
    newest.write_bytes(newest.read_bytes()[:100])  # truncated by a full disk or a kill
    with caplog.at_level(logging.WARNING, logger="genlab.training"):
        used, state = read_checkpoint(tmp_path / "a")
    assert used == older and state["trainer"]["iteration"] == 5
    assert str(newest) in caplog.text and str(older) in caplog.text
    with pytest.raises(CheckpointError, match="checkpoint_10.pt"):
        read_checkpoint(newest)  # a file named explicitly is not replaced by another
    older.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="no readable checkpoint.*checkpoint_10.pt.*checkpoint_5.pt"):
        read_checkpoint(tmp_path / "a")


class ExplodingRegression(NoisyRegression):
    """Its update at step ``blow_at`` (0-based) makes the weights infinite while that step's loss is
    still finite: the next loss is NaN."""

    def __init__(self, blow_at: int):
        super().__init__()
        self.blow_at = blow_at

    def train_step(self, model, optimizers, batch, progress):
        out = super().train_step(model, optimizers, batch, progress)
        if progress.iteration == self.blow_at:
            with torch.no_grad():
                model.weight.fill_(float("inf"))
        return out


def test_weights_that_went_non_finite_are_never_checkpointed_and_the_error_names_the_real_last_one(tmp_path):
    torch.manual_seed(0)
    model, objective = nn.Linear(16, 1), ExplodingRegression(blow_at=9)  # the 10th update, a checkpoint iteration
    optimizers = {"model": torch.optim.SGD(model.parameters(), lr=0.05)}
    with pytest.raises(NonFiniteLossError) as err:
        fit(model, objective, optimizers, ShuffledBatches(toy_data(), 8), max_iterations=40, checkpoint_dir=tmp_path,
            checkpoint_every=5)  # fmt: skip
    assert err.value.step == 11 and err.value.last_iteration == 5
    assert err.value.last_checkpoint == tmp_path / "checkpoint_5.pt" and str(tmp_path / "checkpoint_5.pt") in str(err.value)
    assert [p.name for p in checkpoint_files(tmp_path)] == ["checkpoint_5.pt"]
    state = torch.load(tmp_path / "checkpoint_5.pt", weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["model"].values())


def test_after_a_resume_the_batch_means_and_the_evaluations_are_those_of_an_uninterrupted_run(tmp_path):
    data = toy_data()

    def run(n, directory, resume=None):
        logged = []
        model, objective, optimizers = make(seed=5 if resume else 0)
        result = fit(model, objective, optimizers, ShuffledBatches(data, 8, seed=2), max_iterations=n,
                     val_batches=SequentialBatches(data, 20), eval_every=10, log=lambda *a: logged.append(a), log_every=10,
                     checkpoint_dir=directory, checkpoint_every=4, resume=resume)  # fmt: skip
        return {(name, step): value for name, value, step in logged}, result, params(model, objective)

    straight, _, reference = run(30, tmp_path / "a")
    run(12, tmp_path / "b")  # checkpoint at 12: two iterations past the log at 10
    resumed, result, final = run(30, tmp_path / "c", resume=tmp_path / "b")
    assert torch.equal(final, reference)
    assert resumed[("batch.loss", 20)] == straight[("batch.loss", 20)]  # the mean of iterations 11..20, not 13..20
    assert {k: v for k, v in resumed.items() if k[1] > 12} == {k: v for k, v in straight.items() if k[1] > 12}

    # resumed from the final checkpoint, the run goes straight to its end with its last evaluation
    again, final_result, final_again = run(30, tmp_path / "d", resume=tmp_path / "c")
    assert again == {} and torch.equal(final_again, reference)
    assert final_result.val_metrics == result.val_metrics and final_result.val_metrics["loss"] == straight[("val.loss", 30)]
    assert final_result.resumed_at == 30 and iteration_of(final_result.resumed_from) == 30


def test_a_resumed_run_carries_the_best_weights_of_the_run_it_continues(tmp_path):
    data = toy_data()
    from genlab.training.engines import Selection

    def run(n, directory, resume=None):
        model, objective, optimizers = make()
        return fit(model, objective, optimizers, ShuffledBatches(data, 8, seed=2), max_iterations=n,
                   val_batches=SequentialBatches(data, 20), eval_every=5, checkpoint_dir=directory, checkpoint_every=5,
                   select=Selection("loss"), evaluate_best=True, resume=resume)  # fmt: skip

    first = run(20, tmp_path / "a")
    resumed = run(20, tmp_path / "b", resume=tmp_path / "a")  # nothing left to train: the best is the earlier run's
    assert resumed.best_checkpoint.parent == tmp_path / "b" / "best" and resumed.best_checkpoint.is_file()
    assert resumed.best_checkpoint.name == first.best_checkpoint.name and resumed.val_metrics == first.val_metrics


def test_terminate_event_checkpoint_is_the_stop_iteration(tmp_path):
    """A run stopped early (here by a handler) checkpoints the iteration it stopped at."""
    model, objective, optimizers = make()

    def stop_at_7(trainer):
        trainer.add_event_handler(Events.ITERATION_COMPLETED(once=7), lambda e: e.terminate())

    fit(model, objective, optimizers, ShuffledBatches(toy_data(), 8), max_iterations=40, checkpoint_dir=tmp_path,
        checkpoint_every=5, hooks=stop_at_7)  # fmt: skip
    assert [iteration_of(p) for p in checkpoint_files(tmp_path)] == [7, 5]
