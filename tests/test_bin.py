"""bin/ tools: the sweep lists valid commands, the SLURM wrapper runs line K, observers from the env."""

import shlex
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_dsprites_sweep_lists_the_papers_runs_and_each_composes():
    from sacred.arg_parser import _convert_value  # how Sacred reads KEY=VALUE

    from experiments.disent import ex

    lines = subprocess.run([REPO / "bin/disent/dsprites.sh", "--dry-run", "dataset.source=generated"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(lines) == 3 * (3 + 3 + 1)
    assert sum("training.loss.beta=8 " in l for l in lines) == 3 and sum("training.cci_vae" in l for l in lines) == 3
    seen = set()
    for line in lines:
        words = shlex.split(line)
        assert words[:4] == ["python", "-m", "experiments.disent", "with"]
        named = [w for w in words[4:] if "=" not in w]
        updates = {k: _convert_value(v) for k, v in (w.split("=", 1) for w in words[4:] if "=" in w)}
        run = ex.run("print_config", named_configs=named, config_updates=updates, options={"--loglevel": "ERROR"})
        cfg = run.config
        assert cfg["dataset"]["source"] == "generated"
        seen.add((cfg["dataset"]["condition"], cfg["dataset"]["variant"], cfg["training"]["objective"], str(cfg["training"]["loss"])))
    assert len(seen) == len(lines)  # no duplicates
    assert {c for c, *_ in seen} == {"extrp", "recomb2range", "recomb2element"}


def test_fce2d_sweep_lists_every_dataset_flow_and_objective_and_each_composes():
    from sacred.arg_parser import _convert_value

    from experiments.fce2d import ex

    lines = subprocess.run([REPO / "bin/fce2d.sh", "--dry-run", "training.max_iterations=100"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    seen = set()
    for line in lines:
        words = shlex.split(line)
        assert words[:4] == ["python", "-m", "experiments.fce2d", "with"]
        named = [w for w in words[4:] if "=" not in w]
        updates = {k: _convert_value(v) for k, v in (w.split("=", 1) for w in words[4:] if "=" in w)}
        cfg = ex.run("print_config", named_configs=named, config_updates=updates, options={"--loglevel": "ERROR"}).config
        assert cfg["training"]["max_iterations"] == 100 and cfg["seed"] == 42
        seen.add((cfg["dataset"]["name"], cfg["model"]["options"]["flow"], cfg["training"]["objective"]))
    assert len(lines) == len(seen) == 6 * 2 * 2


def test_slurm_array_runs_the_requested_line(tmp_path):
    jobs = tmp_path / "jobs.txt"
    jobs.write_text(f"echo one > {tmp_path}/out\necho two > {tmp_path}/out\n")
    subprocess.run([REPO / "bin/slurm-array", jobs], env={"SLURM_ARRAY_TASK_ID": "2", "PATH": "/usr/bin:/bin"}, check=True)
    assert (tmp_path / "out").read_text() == "two\n"
    missing = subprocess.run([REPO / "bin/slurm-array", jobs, "7"], capture_output=True, text=True)
    assert missing.returncode != 0 and "line 7" in missing.stderr
