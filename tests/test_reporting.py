"""Progress of runs and of their end-of-run evaluations (genlab.training.reporting), and smoke runs
that are small end to end: log lines whose ETA is for the whole (resumed) run, a bar that is closed
however the run ends, "auto" decided from stderr before Sacred's capture, recorded runs that show
their progress, and evaluation.smoke capping every evaluation."""

from __future__ import annotations

import fcntl
import json
import logging
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading

import numpy as np
import pytest
import torch
from ignite.engine import Engine, Events
from torch import nn

from conftest import REPO, TINY_DISENT, TINY_FCE, run_experiment
from genlab.data.base import FactorGrid, from_numpy
from genlab.data.batches import ShuffledBatches
from genlab.data.sources import DataParts
from genlab.data.toy2d import Points
from genlab.objectives.base import Objective
from genlab.training import reporting
from genlab.training.engines import fit
from genlab.training.optimizers import OptimizerFactory
from genlab.training.reporting import attach_progress, progress_mode, resolve_mode

QUIET = {"--loglevel": "ERROR"}


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


class Lines(logging.Handler):
    """The messages a logger writes (genlab's loggers do not propagate once an experiment is imported)."""

    def __init__(self, name: str):
        super().__init__(logging.INFO)
        self.logger, self.messages = logging.getLogger(name), []

    def emit(self, record):
        self.messages.append(record.getMessage())

    def __enter__(self):
        self._level = self.logger.level
        self.logger.addHandler(self)
        self.logger.setLevel(logging.INFO)
        return self.messages

    def __exit__(self, *exc):
        self.logger.removeHandler(self)
        self.logger.setLevel(self._level)


class Ticking(Objective):
    """Each step takes 0.25 s on the fake clock and returns ``loss`` = its iteration (1, 2, ...)."""

    def __init__(self, clock: Clock):
        self.clock = clock

    def train_step(self, model, optimizers, batch, progress):
        self.clock.t += 0.25
        fit_loss = model(batch["x"]).pow(2).mean()
        for opt in optimizers.values():
            opt.zero_grad()
        fit_loss.backward()
        for opt in optimizers.values():
            opt.step()
        return {"loss": torch.tensor(float(progress.iteration + 1))}

    def eval_step(self, model, batch):
        return {"loss": model(batch["x"]).pow(2).mean()}


def ticking_fit(clock, **kwargs):
    torch.manual_seed(0)
    model, objective = nn.Linear(2, 1), Ticking(clock)
    optimizers = objective.make_optimizers(model, OptimizerFactory("sgd", lr=0.01))
    points = Points(torch.randn(200, 2, generator=torch.Generator().manual_seed(0)))
    return fit(model, objective, optimizers, ShuffledBatches(points, 10, seed=1), **kwargs)  # 20 batches an epoch


# --- log lines -----------------------------------------------------------------------------------


def test_log_lines_give_the_eta_of_the_whole_run_and_the_means_since_the_last_line(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(reporting, "_clock", clock)
    with Lines("genlab.training") as lines:
        ticking_fit(clock, max_iterations=200, progress="log", progress_every=25)
    # 100 of 200 iterations in 25 s: 25 s to go (an epoch is 20 iterations: not its ETA)
    assert lines == ["iteration 100/200 (50%), 4.00 it/s, ETA 0:00:25, loss 50.5",
                     "iteration 200/200 (100%), 4.00 it/s, ETA 0:00:00, loss 150.5"]  # fmt: skip


def test_a_resumed_run_reports_the_rest_of_the_run_at_its_own_rate(monkeypatch, tmp_path):
    clock = Clock()
    monkeypatch.setattr(reporting, "_clock", clock)
    ticking_fit(clock, max_iterations=100, checkpoint_dir=tmp_path, checkpoint_every=50)
    clock.t = 1000.0
    with Lines("genlab.training") as lines:
        ticking_fit(clock, max_iterations=200, checkpoint_dir=tmp_path / "more", resume=tmp_path, progress="log",
                    progress_every=10)  # fmt: skip
    # 40 iterations in the 10 s since the resume: 4 it/s, 60 to go
    assert [m for m in lines if m.startswith("iteration")] == [
        "iteration 140/200 (70%), 4.00 it/s, ETA 0:00:15, loss 120.5",
        "iteration 180/200 (90%), 4.00 it/s, ETA 0:00:05, loss 160.5",
        "iteration 200/200 (100%), 4.00 it/s, ETA 0:00:00, loss 190.5"]  # fmt: skip


def test_log_lines_at_every_iteration_and_once_at_the_end():
    clock, outputs = Clock(), iter(range(1, 100))

    def step(engine, batch):
        clock.t += 1.0
        return {"loss": torch.tensor(float(next(outputs))), "acc": 0.5, "skip": torch.zeros(3)}

    engine = Engine(step)
    with Lines("genlab.training") as lines:
        attach_progress(engine, "log", 7, every_seconds=3, clock=clock, remember=False)
        engine.run(range(7), max_epochs=1)
    assert lines == ["iteration 3/7 (42%), 1.00 it/s, ETA 0:00:04, loss 2, acc 0.5",
                     "iteration 6/7 (85%), 1.00 it/s, ETA 0:00:01, loss 5, acc 0.5",
                     "iteration 7/7 (100%), 1.00 it/s, ETA 0:00:00, loss 7, acc 0.5"]  # fmt: skip


# --- the bar -------------------------------------------------------------------------------------


def stepping(fail_at=None):
    def step(engine, batch):
        if engine.state.iteration == fail_at:
            raise RuntimeError(f"broken at {fail_at}")
        return {"loss": torch.tensor(1.0)}

    return Engine(step)


def test_the_bar_is_closed_when_the_run_is_terminated():
    engine = stepping()
    engine.add_event_handler(Events.ITERATION_COMPLETED(once=7), lambda e: e.terminate())
    bar = attach_progress(engine, "bar", 50, remember=False)
    engine.run(range(10), max_epochs=5)
    assert bar.bar.n == 7 and bar.bar.total == 50 and bar.closed


def test_the_bar_is_closed_when_the_run_raises_and_the_error_still_propagates():
    engine = stepping(fail_at=5)
    bar = attach_progress(engine, "bar", 50, remember=False)
    with pytest.raises(RuntimeError, match="broken at 5"):
        engine.run(range(10), max_epochs=5)
    assert bar.bar.n == 4 and bar.closed


def test_the_bar_covers_the_whole_resumed_run_and_true_still_means_bar(tmp_path, capsys):
    clock = Clock()
    ticking_fit(clock, max_iterations=100, checkpoint_dir=tmp_path, checkpoint_every=50)
    capsys.readouterr()
    ticking_fit(clock, max_iterations=200, checkpoint_dir=tmp_path / "more", resume=tmp_path, progress=True)
    err = capsys.readouterr().err
    assert re.search(r"50%\|.*\| 100/200", err)  # starts where the run resumed, out of the whole run
    assert re.search(r"100%\|.*\| 200/200", err) and err.endswith("\n")  # closed: its last line ended


# --- modes and config ----------------------------------------------------------------------------


def test_modes():
    assert [progress_mode(v) for v in (True, False, None, "auto", "bar", "log", "off")] == \
        ["bar", "off", "off", "auto", "bar", "log", "off"]  # fmt: skip
    with pytest.raises(ValueError, match="'auto', 'bar', 'log', 'off'.*'sometimes'"):
        progress_mode("sometimes")


def test_auto_is_a_bar_on_a_terminal_and_log_lines_otherwise(monkeypatch):
    monkeypatch.setattr(reporting, "_STDERR_IS_TERMINAL", False)
    assert resolve_mode("auto") == "log"
    monkeypatch.setattr(reporting, "_STDERR_IS_TERMINAL", True)
    assert resolve_mode("auto") == "bar"


PROBE = """
import os, sys
from genlab.training import reporting
read, write = os.pipe()
os.dup2(write, 2)  # what Sacred's output capture (capture mode "fd") does once the run starts
print(sys.stderr.isatty(), reporting.stderr_is_terminal(), reporting.resolve_mode("auto"))
"""


def test_auto_is_decided_from_stderr_as_it_was_when_genlab_was_imported():
    master, slave = pty.openpty()
    try:
        on_terminal = subprocess.run([sys.executable, "-c", PROBE], stdout=subprocess.PIPE, stderr=slave, text=True,
                                     cwd=REPO, timeout=120, check=True).stdout.split()  # fmt: skip
    finally:
        os.close(slave), os.close(master)
    piped = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, cwd=REPO, timeout=120,
                           check=True).stdout.split()  # fmt: skip
    assert on_terminal == ["False", "True", "bar"]  # a pipe by then, a terminal before
    assert piped == ["False", "False", "log"]


def test_the_config_refuses_a_wrong_progress_value():
    from experiments.fce2d import ex

    with pytest.raises(ValueError, match="training.progress must be one of 'auto', 'bar', 'log', 'off'.*'sometimes'"):
        ex.run("print_config", config_updates={"training.progress": "sometimes"}, options=QUIET)
    with pytest.raises(ValueError, match="training.progress_every must be a number of seconds >= 0"):
        ex.run("print_config", config_updates={"training.progress_every": -1}, options=QUIET)
    for value in (True, False, "log", "bar", "off", "auto"):
        cfg = ex.run("print_config", config_updates={"training.progress": value}, options=QUIET).config["training"]
        assert cfg["progress"] == value and cfg["progress_every"] == 30


# --- recorded runs -------------------------------------------------------------------------------

FCE = [a for a in TINY_FCE if not a.startswith("training.progress")]  # 40 iterations, progress left at "auto"


def test_a_recorded_run_logs_its_progress_where_stderr_is_not_a_terminal(tmp_path):
    run_experiment("fce2d", ["with", "model.maf", *FCE, "training.progress_every=0"], tmp_path)
    cout = (tmp_path / "sims" / "fce2d" / "1" / "cout.txt").read_text()
    lines = re.findall(r"INFO - genlab.training - iteration (\d+)/40 \(\d+%\), [\d.]+ it/s, ETA \d+:\d\d:\d\d, ", cout)
    assert lines == [str(i) for i in range(1, 41)]


def test_a_recorded_run_on_a_terminal_draws_one_bar_on_it_and_keeps_it_out_of_the_record(tmp_path):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))
    chunks: list[bytes] = []

    def drain():
        while True:
            try:
                data = os.read(master, 65536)
            except OSError:
                return
            if not data:
                return
            chunks.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    env = {**os.environ, "GENLAB_DATA": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    env.pop("GENLAB_MONGO", None)
    try:
        proc = subprocess.run([sys.executable, "-m", "experiments.fce2d", "with", "model.maf", *FCE], cwd=REPO, env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave, timeout=900)  # fmt: skip
    finally:
        os.close(slave)
        reader.join(10)
        os.close(master)
    terminal = b"".join(chunks).decode("utf-8", "replace")
    assert proc.returncode == 0, terminal[-3000:]
    assert re.search(r"100%\|.*\| 40/40 \[", terminal)  # the whole run, to its end
    cout = (tmp_path / "sims" / "fce2d" / "1" / "cout.txt").read_text()
    assert "Started run" in cout and "it/s" not in cout and "\r" not in cout


# --- smoke runs: small end to end ----------------------------------------------------------------


def grid(sizes, first_id=0):
    """Every combination of the factors' classes once; image i (1 x 1 x K+2 pixels) holds its K
    classes and its id (two bytes), which the counting model reads back."""
    k = len(sizes)
    classes = FactorGrid(tuple(f"f{i}" for i in range(k)), tuple(np.arange(s) for s in sizes)).classes()
    ids = first_id + np.arange(len(classes))[:, None]
    images = np.concatenate([classes, ids // 256, ids % 256], axis=1).astype(np.uint8).reshape(-1, 1, 1, k + 2)
    return from_numpy(images, classes, classes * 0.1, (1, 1, k + 2), [f"f{i}" for i in range(k)], bits=False)


class Counting(nn.Module):
    """An encoder that codes each image by its classes (plus noise) and records the ids it saw."""

    def __init__(self, k: int):
        super().__init__()
        self.k, self.ids = k, []

    def encode(self, x):
        p = (x.flatten(1) * 255).round()
        self.ids.append((p[:, -2] * 256 + p[:, -1]).long())
        codes = p[:, : self.k] + 0.01 * torch.randn(len(x), self.k)
        return codes, torch.zeros_like(codes)


class CountingObjective:
    def __init__(self):
        self.examples = 0

    def eval_step(self, model, batch):
        self.examples += len(batch["x"])
        return {"recon_nll": torch.tensor(1.0), "kl": torch.tensor(0.0)}


def evaluate_grid(names, options):
    from genlab.evaluations import EvalContext, run_evaluations

    torch.manual_seed(0)
    data = DataParts("grid", train=grid((5, 8, 10, 10)), test=grid((3, 10, 10, 10), first_id=4000))  # 4000, 3000
    model, objective = Counting(4), CountingObjective()
    metrics, info = run_evaluations(EvalContext(model, objective, data, torch.device("cpu")), names, options)
    return model, objective, metrics, info


def test_a_smoke_runs_evaluations_draw_at_most_2000_examples_and_say_when_they_start_and_end(monkeypatch):
    from experiments.disent import ex
    from ingredients.evaluation import evaluation_settings

    config = ex.run("print_config", named_configs=["training.smoke"], options=QUIET).config
    assert config["evaluation"]["max_examples"] == 2000
    names, options = evaluation_settings(config["evaluation"])
    assert names == ["objective_eval", "disentanglement"]
    monkeypatch.setitem(reporting._run_settings, "mode", "log")  # as a run told progress="log", progress_every=0
    monkeypatch.setitem(reporting._run_settings, "every_seconds", 0.0)
    with Lines("genlab.evaluation") as lines:
        model, objective, metrics, info = evaluate_grid(names, options)
    assert objective.examples == 2 * 2000 and info["objective_eval_examples"] == {"train": 2000, "test": 2000}
    seen = torch.cat(model.ids)
    assert len(seen.unique()) <= 2000 and bool((seen < 4000).all())  # a sample of the training images ...
    assert len(seen) <= 3 * 2000  # ... DCI and MIG, the FactorVAE score's scales and its votes
    assert info["disentanglement_examples"] == {"images": 2000, "dci_mig": 2000, "factorvae_votes": 15}
    assert {"train.dci_disentanglement", "train.factorvae_score", "test.recon_nll"} <= set(metrics)
    assert lines[0].startswith("evaluation objective_eval: started (") and "max_examples=2000" in lines[0]
    batches = [m.split(",")[0] for m in lines if m.startswith("objective_eval train: batch")]
    assert batches == [f"objective_eval train: batch {i}/4 ({25 * i}%)" for i in range(1, 5)]  # progress lines
    done = [m for m in lines if m.startswith("evaluation objective_eval: done")]
    assert len(done) == 1 and re.fullmatch(r"evaluation objective_eval: done in \d+:\d\d:\d\d \([\d.]+ s\)", done[0])
    assert any(m.startswith("evaluation disentanglement: started (") for m in lines)
    assert lines[-1].startswith("evaluation disentanglement: done in ")
    assert set(info["evaluation_seconds"]) == {"objective_eval", "disentanglement"}


def test_without_the_smoke_cap_the_evaluations_see_whole_splits():
    from experiments.disent import ex
    from ingredients.evaluation import evaluation_settings

    config = ex.run("print_config", config_updates={"evaluation.factorvae_votes": 5, "training.max_iterations": 200},
                    options=QUIET).config  # fmt: skip
    assert config["evaluation"]["max_examples"] is None
    model, objective, _, info = evaluate_grid(*evaluation_settings(config["evaluation"]))
    assert info["objective_eval_examples"] == {"train": 4000, "test": 3000}
    assert len(torch.cat(model.ids).unique()) == 4000


def test_a_recorded_smoke_run_is_small_end_to_end(tmp_path):
    args = ["with", *TINY_DISENT, "training.smoke", "training.max_iterations=10",
            "training.progress=log", "training.progress_every=0"]  # fmt: skip
    run_experiment("disent", args, tmp_path)
    run = tmp_path / "sims" / "disent" / "1"
    info, config = (json.loads((run / f"{name}.json").read_text()) for name in ("info", "config"))
    assert config["evaluation"]["max_examples"] == 2000
    assert info["split_sizes"]["train"] > 2000 and info["objective_eval_examples"] == {"train": 2000}
    assert info["disentanglement_examples"]["images"] == 2000
    cout = (run / "cout.txt").read_text()
    for line in ("evaluation objective_eval: started", "objective_eval train: batch 4/4 (100%)",
                 "evaluation objective_eval: done in", "evaluation disentanglement: started",
                 "evaluation disentanglement: done in", "genlab.training - iteration 10/10 (100%)"):  # fmt: skip
        assert line in cout, line
