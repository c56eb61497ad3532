"""The inspection commands of the README (dataset.show, model.show, training.show) and starting a
run from another run's weights (model.init_from)."""

from __future__ import annotations

import importlib

import pytest
import torch

from conftest import REPO, TINY_DISENT, run_experiment
from genlab.analysis.runs import load_runs
from genlab.data import load_dataset
from genlab.data.transforms import Composition
from sacred.arg_parser import get_config_updates


def command(experiment: str, *args: str, capsys) -> str:
    """``python -m experiments.<experiment> <command> with ...``, run in this process; its stdout."""
    ex = importlib.import_module(f"experiments.{experiment}").ex
    name, _, *words = args
    updates, named = get_config_updates(words)
    capsys.readouterr()
    ex.run(name, updates, named, options={"--loglevel": "ERROR"})
    return capsys.readouterr().out


def test_show_commands_describe_what_would_be_built(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    out = command("disent", "dataset.show", "with", "dataset.generated", "dataset.tiny", "dataset.condition=recomb2element", capsys=capsys)
    assert "dsprites (factor_images)" in out and "posX" in out and "variant=leave1out" in out and "test" in out
    out = command("disent", "model.show", "with", "model.burgess", capsys=capsys)
    assert "trainable parameters:" in out and "ConvTranspose2d" in out
    out = command("disent", "model.show", "with", "model.burgess", "dataset.shapes3d", capsys=capsys)
    assert "Conv2d(3, 32" in out  # built for the dataset's 3-channel images
    out = command("disent", "training.show", "with", "training.cci_vae", capsys=capsys)
    assert "objective 'cci_vae'" in out and "loss.c_max = 20.0" in out and "adam lr 0.0001" in out
    out = command("fce2d", "dataset.show", "with", "dataset.rings", "dataset.n_train=20000", capsys=capsys)
    assert "rings (points)" in out and "training mean" in out and "20,000 examples" in out
    out = command("fce2d", "model.show", "with", "model.glow", capsys=capsys)
    assert "ebm: 17,026 trainable parameters" in out and "flow: 46,840 trainable parameters" in out


def test_transforms_are_composed_into_the_training_batches():
    from ingredients.experiment import data_batches

    data = load_dataset({"name": "8gaussians", "n_train": 200, "n_eval": 50, "data_seed": None, "options": {}}, "cpu", 0)
    config = {"training": {"batch_size": 20, "eval_batch_size": 50},
              "dataset": {"transforms": [["gaussian_noise", {"std": 0.5}]], "eval_transforms": []}}
    parts = data_batches(data, config, seed=3)
    assert isinstance(parts.train.transform, Composition) and parts.val.transform is None
    first = next(iter(parts.train.bind(lambda: 4)))["x"]
    again = next(iter(parts.train.bind(lambda: 4)))["x"]  # the same batch after a "resume" at iteration 4
    plain = next(iter(data_batches(data, {**config, "dataset": {"transforms": [], "eval_transforms": []}}, 3).train.bind(lambda: 4)))["x"]
    assert torch.equal(first, again) and not torch.equal(first, plain)
    assert (first - plain).std().item() == pytest.approx(0.5, rel=0.2)


def test_init_from_copies_another_runs_weights(recorded, tmp_path):
    source = load_runs(recorded / "sims" / "disent", where={"training.objective": "beta_vae"}).iloc[0]["run"]
    source_dir = recorded / "sims" / "disent" / str(source.run_id)
    common = ["with", *TINY_DISENT, "dataset.condition=recomb2range", "training.max_iterations=0", "seed=2", "evaluation.run=[]"]
    run_experiment("disent", [*common, f"model.init_from={source_dir}"], tmp_path)
    run_experiment("disent", [*common, f"model.init_from={source_dir / 'model.pt'}", "model.options.latent_size=6",
                              "model.init_strict=False"], tmp_path)
    same, smaller = load_runs(tmp_path / "sims" / "disent")["run"]
    want = torch.load(source.artifact_path("model.pt"), weights_only=True)
    got = torch.load(same.artifact_path("model.pt"), weights_only=True)
    assert same.info["init_from"]["loaded"] == len(want) and all(torch.equal(got[k], want[k]) for k in want)
    assert same.config["model"]["init_from"] == str(source_dir)  # recorded in the run's config
    info = smaller.info["init_from"]
    got = torch.load(smaller.artifact_path("model.pt"), weights_only=True)
    assert info["missing"] == info["unused"] == ["decoder.0.weight", "encoder.11.bias", "encoder.11.weight"]  # latent-sized
    assert torch.equal(got["encoder.0.weight"], want["encoder.0.weight"])  # the convolutions are copied
    failed = run_experiment("disent", [*common, f"model.init_from={source_dir}", "model.options.latent_size=6"], tmp_path,
                            check=False)
    assert failed.returncode != 0 and "size mismatch" in failed.stderr


def test_an_experiment_runs_phases_a_schedule_the_moving_average_and_the_best_weights(tmp_path):
    import json

    from genlab.analysis.runs import load_model

    phases = [{"name": "fast", "iterations": 10}, {"name": "slow", "iterations": 10, "lr": {"model": 1e-4}}]
    run_experiment("decoders", ["with", "dataset.generated", "dataset.tiny", "dataset.condition=recomb2range", "model.kim",
                                "training.progress=False", "training.log_every=5", "training.eval_every=5", "seed=3",
                                f"training.phases={json.dumps(phases)}", "training.scheduler=step",
                                "training.scheduler_options.step_size=5", "training.select=val.recon_nll",
                                "training.evaluate_best=True", "training.ema=0.9", "training.evaluate_ema=True"], tmp_path)
    run = load_runs(tmp_path / "sims" / "decoders").iloc[0]["run"]
    assert run.status == "COMPLETED" and run.info["iterations"] == 20
    assert run.info["phases"] == [{"name": "fast", "start": 0, "end": 10, "stopped": False},
                                  {"name": "slow", "start": 10, "end": 20, "stopped": False}]
    assert run.metric("train.phase").to_dict() == {0: 0.0, 10: 1.0}
    assert {"model.pt", "model_last.pt"} <= set(run.artifact_names())  # the best moving average, and the last weights
    best = run.info["best"]
    assert best["score"] == min(run.metric("val.recon_nll").to_numpy())  # the selected evaluation is the best one
    model = load_model(run)
    last = torch.load(run.artifact_path("model_last.pt"), weights_only=True)
    assert any(not torch.equal(v, last[k]) for k, v in model.state_dict().items())
