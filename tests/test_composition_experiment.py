"""experiments.composition end to end on tiny generated dSprites: records, reloads, and the rebuilt
composer reproduces the logged test NLL; names are checked before any compute; the sweep composes."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genlab.analysis.runs import load_model, load_runs
from genlab.registry import UnknownNameError

REPO = Path(__file__).resolve().parents[1]
QUIET = {"--loglevel": "ERROR"}


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    data = tmp_path_factory.mktemp("genlab-data")
    env = {**os.environ, "GENLAB_DATA": str(data), "PYTHONWARNINGS": "ignore"}
    env.pop("GENLAB_MONGO", None)
    args = ["with", "dataset.generated", "dataset.tiny", "dataset.condition=recomb2range", "training.max_iterations=20",
            "training.eval_every=10", "training.log_every=5", "training.progress=False", "eval_triplets=300",
            "training.batch_size=32", "evaluation.dci_samples=1000", "evaluation.factorvae_votes=40", "model.mlp_mixer", "seed=1"]
    proc = subprocess.run([sys.executable, "-m", "experiments.composition", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        raise AssertionError(f"experiments.composition failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return data


def test_the_run_is_recorded_and_reloads(recorded):
    runs = load_runs(recorded / "sims" / "composition")
    assert runs["status"].tolist() == ["COMPLETED"]
    assert runs["training.objective"].tolist() == ["composer"]  # the experiment's default training
    assert runs["model.options.mixer"].tolist() == ["mlp"]
    for column in ("train.recon_nll", "test.recon_nll", "val.recon_nll", "train.dci_disentanglement", "train.mig",
                   "train.factorvae_score", "batch.loss"):
        assert runs[column].notna().all(), column
    run = runs.iloc[0]["run"]
    assert run.info["input_shape"] == [1, 64, 64] and run.info["n_actions"] == run.info["model_inputs"]["n_factors"] == 5
    assert run.metric("val.recon_nll").index.tolist() == [10, 20]
    assert "model.pt" in run.artifact_names()


def test_the_rebuilt_composer_reproduces_the_logged_test_nll(recorded):
    from genlab.analysis.runs import load_data
    from genlab.data.triplets import split_triplets
    from genlab.objectives import build_objective
    from genlab.training.engines import create_evaluator
    from genlab.training.handlers import evaluate

    run = load_runs(recorded / "sims" / "composition").iloc[0]["run"]
    model = load_model(run)
    fixed = split_triplets(load_data(run), run.config["eval_triplets"], run.config["triplet_seed"], batch_size=128)
    objective = build_objective(run.config["training"]["objective"], **run.config["training"]["loss"])
    with torch.no_grad():
        nll = evaluate(create_evaluator(model, objective), fixed["test"])["recon_nll"]
    assert nll == pytest.approx(run.final_metrics()["test.recon_nll"], rel=1e-4)


def test_bad_names_fail_before_any_compute():
    from experiments.composition import ex

    def config(**updates):
        return ex.run("print_config", config_updates=updates, options=QUIET)

    with pytest.raises(UnknownNameError, match="valid mixers: interpolation, linear, mlp"):
        config(**{"model.options.mixer": "nope"})
    with pytest.raises(UnknownNameError, match="valid architectures: burgess"):
        config(**{"model.options.architecture": "nope"})
    with pytest.raises(UnknownNameError, match="valid composition objectives: composer$"):
        config(**{"training.objective": "beta_vae"})
    with pytest.raises(UnknownNameError, match="recomb2element, recomb2range"):
        config(**{"dataset.condition": "recomb"})
    assert config().config["training"]["loss"] == {"beta": 1.0}


def test_every_named_config_composes():
    from experiments.composition import ex

    names = [name for name, _ in ex.gather_named_configs()]
    assert {"model.burgess_v2", "model.linear_mixer", "model.interpolation_mixer", "model.mlp_mixer", "training.composer"} <= set(names)
    for name in names:
        ex.run("print_config", named_configs=[name], options=QUIET)


def test_sweep_lists_one_valid_command_per_split():
    from sacred.arg_parser import _convert_value  # how Sacred reads KEY=VALUE

    from experiments.composition import ex

    lines = subprocess.run([REPO / "bin/disent/composition.sh", "--dry-run", "dataset.source=generated"],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    assert len(lines) == 3
    seen = set()
    for line in lines:
        words = shlex.split(line)
        assert words[:4] == ["python", "-m", "experiments.composition", "with"]
        named = [w for w in words[4:] if "=" not in w]
        updates = {k: _convert_value(v) for k, v in (w.split("=", 1) for w in words[4:] if "=" in w)}
        cfg = ex.run("print_config", named_configs=named, config_updates=updates, options=QUIET).config
        assert cfg["model"]["options"]["mixer"] == "linear" and cfg["training"]["objective"] == "composer"
        seen.add((cfg["dataset"]["condition"], cfg["dataset"]["variant"]))
    assert seen == {("extrp", "blank_side"), ("recomb2range", "shape2tx"), ("recomb2element", "leave1out")}
    bad = subprocess.run([REPO / "bin/disent/composition.sh", "--dry-run"], env={**os.environ, "DATASETS": "nope"},
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "unknown dataset" in bad.stderr
