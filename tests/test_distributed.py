"""Data-parallel training with ignite.distributed (gloo, 2 CPU processes): the run records once and
its result equals the single-process run with the same global batch; batches shard exactly."""

from __future__ import annotations

import pytest
import torch

from conftest import TINY, run_experiment
from genlab.analysis.runs import load_runs
from genlab.data.batches import ShuffledBatches
from genlab.data.toy2d import Points
from genlab.training.distributed import Sharded

COMMON = [*TINY, "dataset.condition=recomb2range", "training.max_iterations=30", "training.eval_every=10",
          "training.checkpoint_every=10", "seed=1", "model.kim"]


@pytest.mark.slow  # the fast suite runs two processes under torchrun (below)
def test_two_gloo_processes_record_one_run_equal_to_one_process(tmp_path):
    run_experiment("decoders", ["with", *COMMON], tmp_path)
    run_experiment("decoders", ["with", *COMMON, "training.backend=gloo", "training.nproc_per_node=2"], tmp_path)
    runs = load_runs(tmp_path / "sims" / "decoders")
    assert runs["status"].tolist() == ["COMPLETED", "COMPLETED"]  # one record per command
    single, parallel = runs["run"]
    assert parallel.info["processes"] == {"backend": "gloo", "world_size": 2}
    assert parallel.info["iterations"] == 30 and parallel.info["split_sizes"] == single.info["split_sizes"]
    assert set(parallel.metric_names()) == set(single.metric_names())
    for name in single.metric_names():  # logged once per step, by rank 0, as the mean over the processes
        a, b = single.metric(name), parallel.metric(name)
        assert list(b.index) == list(a.index), name
        assert b.to_numpy() == pytest.approx(a.to_numpy(), rel=1e-5), name
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (single, parallel))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=5e-5)  # summation order differs across processes
    assert not (tmp_path / "sims" / "decoders" / "3").exists()
    assert sorted(p.name for p in (tmp_path / "sims" / "decoders" / "2" / "checkpoints").glob("*.pt")) == [
        "checkpoint_20.pt", "checkpoint_30.pt"]  # written once, by rank 0


def test_torchrun_processes_agree_on_rank_zeros_seed_and_record_once(tmp_path):
    import os
    import subprocess
    import sys

    from conftest import REPO

    env = {**os.environ, "GENLAB_DATA": str(tmp_path), "PYTHONWARNINGS": "ignore"}
    env.pop("GENLAB_MONGO", None)
    args = [a for a in COMMON if not a.startswith("seed=")]  # each process draws its own seed: rank 0's wins
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "-m", "experiments.decoders",
                           "with", *args, "training.backend=gloo"], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (parallel,) = load_runs(tmp_path / "sims" / "decoders")["run"]
    assert parallel.info["processes"] == {"backend": "gloo", "world_size": 2}
    run_experiment("decoders", ["with", *args, f"seed={parallel.config['seed']}"], tmp_path)  # the same, one process
    single = load_runs(tmp_path / "sims" / "decoders")["run"].iloc[1]
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (single, parallel))
    for key in a:
        torch.testing.assert_close(b[key], a[key], rtol=1e-4, atol=5e-5)  # summation order differs across processes; the seed is drawn afresh each time


def points(n=48):
    return Points(torch.arange(n, dtype=torch.float32).unsqueeze(1).repeat(1, 2))


def test_the_processes_slices_make_up_the_single_process_batches_and_resume_exactly():
    whole = ShuffledBatches(points(), 12, seed=5)
    parts = [ShuffledBatches(points(), 12, seed=5, rank=r, world_size=3) for r in range(3)]
    for position in (0, 5, 9):  # also in the middle of the second and third epoch
        for batches in (whole, *parts):
            batches.bind(lambda: position)
        merged = [torch.cat(bs) for bs in zip(*[[b["x"] for b in p] for p in parts])]
        assert all(torch.equal(m, w["x"]) for m, w in zip(merged, whole))
    with pytest.raises(ValueError, match="cannot be split evenly over 5 processes"):
        ShuffledBatches(points(), 12, rank=0, world_size=5)


def test_sharded_keeps_each_process_rows_of_whole_batches():
    whole = ShuffledBatches(points(), 8, seed=1)
    halves = [Sharded(ShuffledBatches(points(), 8, seed=1), r, 2).bind(lambda: 3) for r in range(2)]
    whole.bind(lambda: 3)
    for w, a, b in zip(whole, *halves):
        assert torch.equal(torch.cat([a["x"], b["x"]]), w["x"]) and len(a["x"]) == 4
    assert len(halves[0]) == len(whole)


def test_bad_parallel_settings_fail_before_any_compute():
    from experiments.decoders import ex

    quiet = {"--loglevel": "ERROR"}
    with pytest.raises(ValueError, match="unknown training.backend 'mpi'"):
        ex.run("print_config", config_updates={"training.backend": "mpi"}, options=quiet)
    with pytest.raises(ValueError, match="nproc_per_node > 1 needs training.backend"):
        ex.run("print_config", config_updates={"training.nproc_per_node": 2}, options=quiet)
    with pytest.raises(ValueError, match="batch_size=64 cannot be split over 3 processes"):
        ex.run("print_config", config_updates={"training.backend": "gloo", "training.nproc_per_node": 3}, options=quiet)
