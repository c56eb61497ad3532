"""The README's own figures and commands: the quick start's measured block is the rendering of
``docs/measured/quickstart.json`` (written by ``scripts/measure_quickstart.py``), no other timing is
hard-coded there, a fresh demo gives the recorded metrics; the CPU-only torch option of ``bin/setup``;
the smoke run of every experiment is accepted, small, and records a completed run."""

from __future__ import annotations

import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch

from conftest import REPO, run_experiment
from genlab.analysis.runs import flatten_config, load_runs
from sacred.arg_parser import get_config_updates

sys.path.insert(0, str(REPO / "scripts"))  # the measurement script and its renderer are scripts, not a package
import measure_quickstart  # noqa: E402
from measured_block import block_body, duration, render_quickstart, with_block  # noqa: E402

README = REPO / "README.md"
MEASURED = REPO / "docs" / "measured" / "quickstart.json"
EXPERIMENTS = sorted(p.stem for p in (REPO / "scripts" / "experiments").glob("*.py") if p.stem != "__init__")
HARD_CODED_FIGURE = re.compile(  # "4 min 50 s", "about 2 minutes", "6-9 minutes", "6.1 GB", "NLL 110.3"
    r"\b\d+(?:[.,]\d+)?(?:\s*(?:-|–|to)\s*\d+(?:[.,]\d+)?)?\s*(?:min(?:ute)?s?|s|secs?|seconds?|h|hours?|[GMK]i?B)\b"
    r"|\bNLL\s+\d|\bDCI(?: disentanglement)?\s+\d"
)


def section(text: str, heading: str) -> str:
    """From the ``## heading`` line to the next second-level heading."""
    start = text.index(f"\n## {heading}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end >= 0 else len(text)]


def subsection(text: str, heading: str) -> str:
    start = text.index(f"\n### {heading}\n")
    end = re.compile(r"\n##+ ").search(text, start + 1)
    return text[start : end.start() if end else len(text)]


# --- the measured block -----------------------------------------------------------------------------


def test_readme_block_is_the_rendering_of_the_measurement():
    measured = json.loads(MEASURED.read_text())
    assert block_body(README.read_text(), "quickstart") == render_quickstart(measured), (
        "README's quickstart block differs from docs/measured/quickstart.json: "
        "run .venv/bin/python scripts/measure_quickstart.py --render-only")


def test_quick_start_hard_codes_no_timing_size_or_metric_outside_the_block():
    quick_start = section(README.read_text(), "Quick start")
    outside = with_block(quick_start, "quickstart", "")
    assert HARD_CODED_FIGURE.findall(outside) == []
    assert HARD_CODED_FIGURE.search("the demo takes 4 min 50 s") and HARD_CODED_FIGURE.search("about 2 minutes")


def test_demo_header_points_to_the_block_instead_of_a_timing():
    header = "".join(line for line in (REPO / "bin" / "demo").read_text().splitlines(True) if line.startswith("#"))
    assert HARD_CODED_FIGURE.findall(header) == []
    assert "docs/measured/quickstart.json" in header and "README" in header


def test_block_rewrite_keeps_everything_around_the_block():
    text = "intro\n<!-- measured: quickstart -->\nold figures\n<!-- /measured -->\nafter\n"
    new = with_block(text, "quickstart", "new figures")
    assert new == "intro\n<!-- measured: quickstart -->\nnew figures\n<!-- /measured -->\nafter\n"
    assert block_body(new, "quickstart") == "new figures"
    assert with_block(new, "quickstart", "new figures") == new  # rewriting is idempotent
    with pytest.raises(ValueError, match="exactly one"):
        block_body(text + text, "quickstart")


def test_rendering_states_measured_steps_failures_and_unrecorded_conditions():
    measured = {
        "measured_by": "the script", "date": "2026-12-02 15:00 UTC",
        "conditions": {"cores": 2, "cpu_capability": "AVX2", "torch": "2.14.1", "torch_threads": 2,
                       "cuda_device": None, "python": None, "commit": "abc"},
        "timings": {"demo": {"seconds": [249.4], "exit_status": 0, "load_average_before": [1.5, 1.25, 1.0]},
                    "test": {"seconds": [700], "exit_status": 1, "load_average_before": [2.0, 2.0, 2.0]}},
        "demo": {"args": [], "run_id": 1, "metrics": {"test.recon_nll": 110.6912, "train.recon_nll": 94.01}},
        "venv": {"total_gib": 6.14, "cuda_gib": 3.21, "triton_gib": 0.88, "reused": True},
    }
    text = render_quickstart(measured)
    assert "CPU cores 2" in text and "torch CPU capability `AVX2`" in text and "GPU none" in text
    assert "not recorded: CPU, Python" in text
    assert "| `bin/setup`: a fresh `.venv` from PyPI | not measured this time |" in text
    assert "| 4 min 09 s | 1.50 / 1.25 / 1.00 |" in text
    assert "11 min 40 s (failed: exit status 1)" in text
    assert "train NLL 94.01, test NLL 110.69" in text
    assert "6.1 GiB of disk, of which 3.2 GiB are CUDA libraries" in text and "0.9 GiB Triton" in text
    assert "(`--skip-setup`): the demo ran that checkout's code" in text
    assert [duration(s) for s in (42, 59.6, 60, 3599)] == ["42 s", "1 min 00 s", "1 min 00 s", "59 min 59 s"]


def test_disk_use_counts_hard_links_once_and_splits_out_cuda_and_triton(tmp_path):
    site = tmp_path / "venv" / "lib" / "python3.11" / "site-packages"
    files = {}
    for package in ("nvidia/cublas", "cuda_bindings", "triton", "torch"):
        (site / package).mkdir(parents=True)
        files[package] = site / package / "lib.so"
        files[package].write_bytes(os.urandom(64 * 1024))
    os.link(files["torch"], site / "torch" / "same.so")
    sizes = measure_quickstart.venv_disk(tmp_path / "venv")
    one = measure_quickstart.disk_use([files["torch"]])
    assert one >= 64 * 1024
    assert measure_quickstart.disk_use([files["torch"], site / "torch" / "same.so"]) == one
    assert sizes["cuda"] == measure_quickstart.disk_use([site / "nvidia", site / "cuda_bindings"])
    assert sizes["triton"] == measure_quickstart.disk_use([site / "triton"])
    assert sizes["cuda"] + sizes["triton"] + one <= sizes["total"] < sizes["cuda"] + sizes["triton"] + 2 * one + 64 * 1024
    assert measure_quickstart.in_gib({"total": 3 * 2**29}) == {"total_gib": 1.5}


@pytest.mark.slow
def test_measurement_script_records_a_short_demo_and_rewrites_the_block(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# x\n<!-- measured: quickstart -->\nstale\n<!-- /measured -->\n")
    out = tmp_path / "quickstart.json"
    demo_args = ["dataset.tiny", "training.max_iterations=20", "evaluation.samples=500", "evaluation.dci_samples=500",
                 "evaluation.factorvae_votes=20"]
    subprocess.run([sys.executable, str(REPO / "scripts" / "measure_quickstart.py"), "--skip-setup", "--skip-tests",
                    "--json", str(out), "--readme", str(readme), "--demo-args", *demo_args],
                   check=True, capture_output=True, text=True, timeout=1200)
    measured = json.loads(out.read_text())
    assert set(measured["timings"]) == {"demo"} and measured["timings"]["demo"]["exit_status"] == 0
    assert measured["timings"]["demo"]["seconds"][0] > 0 and len(measured["timings"]["demo"]["load_average_before"]) == 3
    assert measured["demo"]["args"] == demo_args and measured["demo"]["metrics"]["test.recon_nll"] > 0
    assert measured["conditions"]["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert measured["conditions"]["cores"] == len(os.sched_getaffinity(0))
    assert measured["venv"]["reused"] and measured["venv"]["total_gib"] > measured["venv"]["cuda_gib"] >= 0
    assert block_body(readme.read_text(), "quickstart") == render_quickstart(measured)


@pytest.mark.slow
def test_a_fresh_demo_gives_the_measured_metrics(tmp_path):
    measured = json.loads(MEASURED.read_text())
    recorded = measured["conditions"].get("cpu_capability")
    here = torch.backends.cpu.get_cpu_capability()
    if recorded is None:
        pytest.skip("docs/measured/quickstart.json records no CPU capability (the reviewer's figures); "
                    "rerun scripts/measure_quickstart.py")
    if recorded != here:
        pytest.skip(f"the demo was measured with {recorded} kernels, this CPU has {here}: convolutions round differently")
    env = {**os.environ, "GENLAB_DATA": str(tmp_path)}
    env.pop("GENLAB_MONGO", None)
    subprocess.run([str(REPO / "bin" / "demo"), *measured["demo"]["args"]], check=True, capture_output=True, text=True,
                   timeout=1800, env=env)
    final = load_runs(tmp_path / "sims" / "disent", experiment="disent", status="COMPLETED").iloc[-1]["run"].final_metrics()
    digits = measured["demo"].get("rounded_to")
    for name, value in measured["demo"]["metrics"].items():
        assert (round(final[name], digits) if digits else final[name]) == value, name


# --- CPU-only torch ---------------------------------------------------------------------------------


def fake_venv(path: Path) -> Path:
    """A venv whose python only logs its arguments (one line per call): bin/setup runs without pip."""
    (path / "bin").mkdir(parents=True)
    python = path / "bin" / "python"
    python.write_text(f'#!/bin/sh\necho "$*" >> "{path / "calls"}"\n')
    python.chmod(0o755)
    return path


def setup_calls(venv: Path, **env: str) -> tuple[list[str], str]:
    proc = subprocess.run([str(REPO / "bin" / "setup")], env={**os.environ, "GENLAB_VENV": str(venv), **env},
                          capture_output=True, text=True, timeout=60, check=True)
    calls = venv / "calls"
    return (calls.read_text().splitlines() if calls.exists() else []), proc.stderr


def test_setup_installs_the_pinned_torch_from_the_index_the_readme_names(tmp_path):
    index = re.search(r"GENLAB_TORCH_INDEX=(\S+) bin/setup", section(README.read_text(), "Quick start")).group(1)
    assert index == "https://download.pytorch.org/whl/cpu"
    pins = [d for d in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
            if d.split("==")[0] in ("torch", "torchvision")]
    calls, _ = setup_calls(fake_venv(tmp_path / "cpu"), GENLAB_TORCH_INDEX=index)
    from_index = [i for i, c in enumerate(calls) if f"--index-url {index}" in c]
    editable = [i for i, c in enumerate(calls) if "-e .[dev]" in c]
    assert len(from_index) == 1 and calls[from_index[0]].endswith(" ".join(pins)) and from_index[0] < editable[0]

    calls, _ = setup_calls(fake_venv(tmp_path / "default"))
    assert editable and not any("--index-url" in c for c in calls)  # unset: everything from PyPI, as before

    calls_before = len(calls)
    calls, stderr = setup_calls(tmp_path / "default", GENLAB_TORCH_INDEX=index)  # already set up: left as it is
    assert len(calls) == calls_before and "applies to a new one" in stderr


# --- smoke runs -------------------------------------------------------------------------------------

SMALL = {"training.max_iterations": 500, "evaluation.max_examples": 2000, "eval_triplets": 2000,
         "dataset.n_train": 10_000, "dataset.n_eval": 10_000}  # at most this where an experiment has the key


def smoke_commands() -> dict[str, list[str]]:
    """``{experiment: [with, KEY=VALUE or named config, ...]}`` from the README's smoke-run block."""
    block = subsection(README.read_text(), "Smoke runs")
    commands = {}
    for line in block.replace("\\\n", " ").splitlines():
        if line.startswith("python -m experiments."):
            words = shlex.split(line, comments=True)
            name = words[2].removeprefix("experiments.")
            assert name not in commands, f"two smoke runs of experiments.{name}"
            commands[name] = words[3:]
    return commands


def test_readme_shows_one_smoke_run_for_every_experiment():
    commands = smoke_commands()
    assert sorted(commands) == EXPERIMENTS
    assert all(args[0] == "with" for args in commands.values())


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_run_is_accepted_and_small(experiment, tmp_path, monkeypatch):
    """Each README command, composed as ``print_config`` would (in this process: no training)."""
    words = smoke_commands()[experiment][1:]  # after "with"
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    ex = importlib.import_module(f"experiments.{experiment}").ex
    updates, named = get_config_updates(words)
    config = flatten_config(ex.run("print_config", updates, named, options={"--loglevel": "ERROR"}).config)
    assert "training.max_iterations" in config and "seed" in config
    for key, most in SMALL.items():
        if key in config:
            assert config[key] is not None and config[key] <= most, f"{key} = {config[key]}"
    assert config.get("dataset.tiny") is True or "dataset.n_train" in config, "neither a tiny grid nor a small sample"
    assert config["training.smoke"] is True


@pytest.mark.slow
@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_smoke_run_records_a_completed_run(experiment, tmp_path):
    run_experiment(experiment, smoke_commands()[experiment], tmp_path)
    runs = load_runs(tmp_path / "sims" / experiment)
    assert list(runs["status"]) == ["COMPLETED"]
