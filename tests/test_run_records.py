"""Run records that never lie and never lose work (issue 10), each fault reproduced on a real
experiment run: metrics reach the record when a checkpoint is written (not only at Sacred's 10 s
heartbeat), a resume with a changed config is refused unless allowed (and then applied), a resume
without a seed takes the checkpointed run's, SIGTERM at any point records INTERRUPTED and the
end-of-run evaluation resumes from the final checkpoint, and the result nests by split."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

from conftest import REPO, TINY_FCE, TINY_DISENT, run_experiment
from genlab.analysis.runs import load_runs

ENV = {**os.environ, "PYTHONWARNINGS": "ignore"}
ENV.pop("GENLAB_MONGO", None)


def start(name: str, args: list[str], data: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", f"experiments.{name}", *args], cwd=REPO / "scripts",
                            env={**ENV, "GENLAB_DATA": str(data)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def wait_for(predicate, timeout: float = 300.0, proc: subprocess.Popen | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the run ended (status {proc.returncode}) before the condition:\n{err[-3000:]}")
        time.sleep(0.05)
    raise AssertionError("timed out")


def read_json(path: Path):
    """A record file, or None while it is missing or half written (Sacred rewrites it in place)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def only_run(store: Path) -> Path:
    dirs = [p for p in store.iterdir() if (p / "run.json").is_file()]
    assert len(dirs) == 1, dirs
    return dirs[0]


def test_a_flush_hands_the_logged_metrics_to_the_observers_before_any_heartbeat(tmp_path):
    """The mechanism: logged points are on disk right after ``heartbeat.flush``, although the run
    is killed (-9) long before Sacred's first heartbeat."""
    script = tmp_path / "exp.py"
    script.write_text(textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(REPO / 'scripts')!r})
        from sacred import Experiment
        from sacred.observers import FileStorageObserver
        from ingredients import heartbeat
        ex = Experiment("flush")
        ex.observers.append(FileStorageObserver({str(tmp_path / 'store')!r}))
        @ex.main
        def main(_run):
            for step in range(1, 6):
                _run.log_scalar("loss", 1.0 / step, step)
            if sys.argv[1] == "flush":
                heartbeat.flush(_run)
            os.kill(os.getpid(), signal.SIGKILL)
        ex.run()
    """))
    for mode in ("flush", "no-flush"):
        subprocess.run([sys.executable, str(script), mode], env=ENV, capture_output=True, timeout=120)
    flushed, unflushed = sorted((tmp_path / "store").iterdir())[:2]
    assert json.loads((flushed / "metrics.json").read_text())["loss"]["steps"] == [1, 2, 3, 4, 5]
    assert not (unflushed / "metrics.json").exists()  # the fault: a run killed early had no metrics at all


def test_a_run_killed_after_a_checkpoint_has_every_metric_up_to_it_and_its_resume_is_one_logical_run(tmp_path):
    store = tmp_path / "sims" / "fce2d"
    args = ["with", "model.maf", *TINY_FCE, "training.max_iterations=100000", "seed=3"]
    proc = start("fce2d", args, tmp_path)
    try:
        wait_for(lambda: store.is_dir() and any(store.glob("*/checkpoints/checkpoint_20.pt")), proc=proc)
        run_dir = only_run(store)
        has_20 = lambda m: m and 20 in m.get("batch.neg_value", {}).get("steps", [])  # noqa: E731
        metrics = wait_for(lambda: has_20(read_json(run_dir / "metrics.json")) and read_json(run_dir / "metrics.json"), 8)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
    finally:
        proc.kill()
    assert {10, 20} <= set(metrics["batch.neg_value"]["steps"]) and 20 in metrics["val.neg_value"]["steps"]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "RUNNING"  # what Sacred left

    runs = load_runs(store, dead_after=0)
    assert list(runs["status"]) == ["PROBABLY_DEAD"]
    killed_at = max(json.loads((run_dir / "metrics.json").read_text())["batch.neg_value"]["steps"])

    # resumed from the killed run (no seed given: the checkpointed run's) to twice as far, against the same run uninterrupted
    length = f"training.max_iterations={2 * killed_at}"
    run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, length, f"training.resume={run_dir}"], tmp_path, cwd=REPO / "scripts")
    run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, length, "seed=3"], tmp_path / "straight", cwd=REPO / "scripts")
    joined = load_runs(store).iloc[0]
    straight = load_runs(tmp_path / "straight" / "sims" / "fce2d").iloc[0]["run"]
    assert joined["links"] == [int(run_dir.name), int(run_dir.name) + 1]
    assert joined["run"].config["seed"] == 3 and 20 <= joined["run"].info["resumed_at"] <= killed_at
    for name in ("batch.neg_value", "batch.ebm_update", "val.neg_value"):
        assert joined["run"].metric(name).to_dict() == straight.metric(name).to_dict(), name
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (joined["run"], straight))
    assert all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    data = tmp_path_factory.mktemp("short")
    run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, "training.max_iterations=20", "seed=5"], data, cwd=REPO / "scripts")
    return only_run(data / "sims" / "fce2d")


def test_a_resume_with_a_changed_setting_is_refused_before_anything_is_recorded(short_run, tmp_path):
    proc = run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, "training.lr=0.01", f"training.resume={short_run}"],
                          tmp_path, check=False, cwd=REPO / "scripts")  # fmt: skip
    assert proc.returncode != 0
    assert "training.lr: 0.001 -> 0.01" in proc.stderr and "training.resume_changes=" in proc.stderr
    assert not (tmp_path / "sims").exists()


def test_an_allowed_change_is_applied_after_loading_and_recorded(short_run, tmp_path):
    run_experiment("fce2d", ["with", "model.maf", *TINY_FCE, "training.lr=0.0005", "training.max_iterations=30",
                             f"training.resume={short_run}", "training.resume_changes=['training.lr']"], tmp_path, cwd=REPO / "scripts")  # fmt: skip
    run = load_runs(tmp_path / "sims" / "fce2d", resumes="separate").iloc[0]["run"]
    assert run.info["resume_changes"] == {"training.lr": {"checkpointed": 0.001, "now": 0.0005, "applied_to_optimizers": True}}
    state = torch.load(Path(run.info["checkpoint_dir"]) / "checkpoint_30.pt", weights_only=False)
    lrs = {g["lr"] for key, opt in state.items() if key.startswith("optimizer_") for g in opt["param_groups"]}
    assert lrs == {0.0005}


def test_the_result_nests_by_split(short_run):
    result = json.loads((short_run / "run.json").read_text())["result"]
    assert set(result) == {"val"} and isinstance(result["val"]["neg_value"], float)


def test_sigterm_during_the_end_of_run_evaluation_records_interrupted_and_the_evaluation_resumes(tmp_path):
    store = tmp_path / "sims" / "disent"
    args = ["with", *TINY_DISENT, "training.max_iterations=20", "training.eval_every=10", "training.checkpoint_every=10", "seed=1"]
    long_evaluation = "evaluation.factorvae_votes=2000"  # a minute of scoring: time to interrupt it
    proc = start("disent", [*args, long_evaluation], tmp_path)
    wait_for(lambda: store.is_dir() and any(store.glob("*/checkpoints/checkpoint_20.pt")), proc=proc)
    run_dir = only_run(store)
    wait_for(lambda: "model.pt" in ((read_json(run_dir / "run.json") or {}).get("artifacts") or []), 60, proc=proc)
    proc.send_signal(signal.SIGTERM)  # the weights are recorded: the end-of-run evaluation is under way
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "interrupted by SIGTERM" in err and "training.resume=" in err
    record = json.loads((run_dir / "run.json").read_text())
    assert record["status"] == "INTERRUPTED" and not record.get("result")

    # the evaluation resumes from the final checkpoint (here with the fast default vote count, allowed to change)
    run_experiment("disent", [*args, f"training.resume={run_dir}", "training.resume_changes=['evaluation.factorvae_votes']"],
                   tmp_path, cwd=REPO / "scripts")  # fmt: skip
    joined = load_runs(store).iloc[0]
    assert joined["status"] == "COMPLETED" and joined["run"].info["resumed_at"] == 20
    assert {"train.dci_disentanglement", "val.loss"} <= set(joined["run"].final_metrics())


def test_sigterm_during_start_up_records_interrupted(tmp_path):
    store = tmp_path / "sims" / "disent"
    proc = start("disent", ["with", *TINY_DISENT, "training.max_iterations=20"], tmp_path)
    wait_for(lambda: store.is_dir() and any(store.glob("*/run.json")), proc=proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM
    assert json.loads((only_run(store) / "run.json").read_text())["status"] == "INTERRUPTED"


# A too-large learning rate overflows at a step that depends on the CPU's kernels; this divergence
# happens at training step 25 everywhere: the EBM's weights become infinite, its loss NaN.
DIVERGE_AT_25 = """
import torch
from genlab.objectives.fce import FlowContrastiveEstimation
_step, _calls = FlowContrastiveEstimation.train_step, []
def _diverging(self, model, optimizers, batch, progress):
    _calls.append(1)
    if len(_calls) >= 25:
        with torch.no_grad():
            for p in model.ebm.parameters():
                p.mul_(float("inf"))
    return _step(self, model, optimizers, batch, progress)
FlowContrastiveEstimation.train_step = _diverging
"""


def test_a_nan_names_the_last_finite_checkpoint_which_resumes_with_a_smaller_lr(tmp_path):
    args = ["with", "model.maf", *TINY_FCE, "training.max_iterations=200", "training.checkpoint_every=10", "seed=2"]
    proc = run_experiment("fce2d", args, tmp_path, check=False, cwd=REPO / "scripts", inject=DIVERGE_AT_25)
    assert proc.returncode != 0
    run = load_runs(tmp_path / "sims" / "fce2d").iloc[0]["run"]
    last = run.info["last_finite_checkpoint"]
    assert run.status == "FAILED" and (last["iteration"], run.info["nonfinite_at"]) == (20, 25)
    assert Path(last["checkpoint"]).is_file() and last["checkpoint"] in proc.stderr
    state = torch.load(last["checkpoint"], weights_only=False)
    assert all(torch.isfinite(v).all() for v in state["model"].values())
    run_experiment("fce2d", [*args, "training.lr=1e-5", f"training.resume={last['checkpoint']}", "training.resume_changes=['training.lr']",
                             f"training.max_iterations={last['iteration'] + 2}"], tmp_path, cwd=REPO / "scripts")  # fmt: skip
    assert load_runs(tmp_path / "sims" / "fce2d", resumes="separate").iloc[-1]["status"] == "COMPLETED"
