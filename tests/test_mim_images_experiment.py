"""experiments.mim_images end to end: every dataset x architecture x prior x objective composes with the
original's schedule; bad input fails before any compute; each model of the README's grid trains a few
steps on the embedded digits, records the image statistics and artifacts and reloads; a resumed run
reproduces an uninterrupted one; binarisation is redrawn for every training batch and fixed for
validation and test; the grid lists the README's runs."""

from __future__ import annotations

import io
import subprocess

import numpy as np
import pytest
import torch
from conftest import REPO

from genlab.analysis.runs import load_model, load_runs
from genlab.errors import ConfigError, MissingFile

QUIET = {"--loglevel": "ERROR"}
SMALL = ["smoke", "training.max_iterations=4", "training.progress=off", "training.checkpoint_every=2",
         "evaluation.max_examples=64", "evaluation.is_samples=4", "evaluation.is_chunk=2", "evaluation.tsne_points=64",
         "evaluation.ksg_points=64"]  # fmt: skip
PIXEL = ["model.options.pixel_channels=8", "model.options.pixel_layers=2"]  # a small PixelCNN: its sampler runs 784 passes
GRID = {"conv_vae": ("model.convhvae", "training.vae"), "conv_smim": ("model.convhvae", "training.smim"),
        "pixel_vae": ("model.pixelhvae", "training.vae"), "pixel_amim": ("model.pixelhvae", "training.amim")}  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def record(store, args):
    from experiments.mim_images import ex
    from ingredients.observers import run_cli

    ex.observers.clear()
    run_cli(ex, ["mim_images", "-F", str(store), "--loglevel", "ERROR", "with", *args])


def config_of(named, updates=None):
    from experiments.mim_images import ex

    return ex.run("print_config", named_configs=named, config_updates=updates or {}, options=QUIET).config


@pytest.mark.parametrize("dataset, name, n_val", [("dynamic_mnist", "mnist", 10_000), ("dynamic_fashion_mnist", "fashion_mnist", 10_000),
                                                  ("omniglot", "omniglot", 1345)])  # fmt: skip
@pytest.mark.parametrize("pair", GRID)
@pytest.mark.parametrize("prior", ["vampprior", "standard"])
def test_every_run_of_the_grid_composes_with_the_original_schedule(dataset, name, n_val, pair, prior):
    architecture, objective = GRID[pair]
    config = config_of([dataset, architecture, f"model.{prior}", objective])
    data, model, training = config["dataset"], config["model"], config["training"]
    assert (data["name"], data["options"]["n_val"], data["transforms"], data["eval_transforms"]) == (name, n_val, ["binarize"], ["binarize"])
    assert model["kind"] == "hvae_vamp" and model["options"]["prior"] == prior
    assert model["options"]["decoder"] == ("pixel" if pair.startswith("pixel") else "conv")
    assert model["options"]["components"] == 500 and model["options"]["pseudo_init"] == "data"
    assert training["objective"] == ("hvae_vae" if pair.endswith("vae") else "hvae_mim")
    if training["objective"] == "hvae_mim":
        assert training["loss"]["sample"] is pair.endswith("smim")
    assert (training["optimizer"], training["lr"], training["batch_size"], training["epochs"]) == ("adam_norm_grad", 5e-4, 100, 2000)
    assert (training["loss"]["warmup"], training["early_stopping_patience"], training["early_stopping_after_epochs"]) == (100, 51, 100)
    assert training["select"] == "val.loss" and training["evaluate_best"] and config["evaluation"]["is_samples"] == 5000


def test_bad_input_fails_before_any_compute(tmp_path):
    with pytest.raises(ConfigError, match="components >= 100"):
        config_of(["training.smim"], {"model.options.components": 50})
    with pytest.raises(ConfigError, match="validation part"):
        config_of([], {"dataset.options.n_val": 0})
    from experiments.mim_images import ex

    ex.observers.clear()
    with pytest.raises(MissingFile, match="chardata.mat"):  # the start-up check of the data, before anything is built
        ex.run("main", named_configs=["omniglot"], config_updates={"dataset.options.path": str(tmp_path / "nowhere")}, options=QUIET)
    with pytest.raises(ConfigError, match="dense"):
        config_of([], {"model.options.decoder": "dense"})


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    store = tmp_path_factory.mktemp("mim_images")
    for pair, (architecture, objective) in GRID.items():
        record(store, [*SMALL, architecture, objective, *(PIXEL if pair.startswith("pixel") else []), "seed=2"])
    return store


def test_each_model_records_the_image_statistics_and_reloads(recorded):
    runs = load_runs(recorded)
    assert len(runs) == len(GRID) and set(runs["status"]) == {"COMPLETED"}
    for run in runs["run"]:
        final = run.final_metrics()
        for name in ("nll", "nll_std", "elbo_loss", "MI_ksg", "NMI", "clf_acc_KNN1", "clf_acc_KNN5", "clf_acc_KNN10"):
            assert f"test.{name}" in final, name
        assert final["test.nll"] > 0 and 0.0 <= final["test.NMI"] <= 1.0 and 0.0 <= final["test.clf_acc_KNN5"] <= 1.0
        assert final["test.nll"] <= final["test.elbo_loss"] + 5.0  # the IS bound is (nearly) tighter than one sample's
        assert {"val.loss", "val.elbo_loss", "batch.beta", "batch.recon_nll"} <= set(run.metric_names())
        assert {"mim_images.npz", "generations.png", "reconstructions.png", "pseudoinputs.png", "z_embed.png",
                "model.pt"} <= set(run.artifact_names())  # fmt: skip
        arrays = np.load(io.BytesIO(run.artifact_path("mim_images.npz").read_bytes()))
        assert arrays["samples"].shape == (64, 1, 28, 28) and arrays["reconstructions"].shape == arrays["real"].shape
        assert arrays["tsne"].shape == (64, 2) and arrays["pseudo_inputs"].shape == (50, 1, 28, 28)
        assert run.info["mim_images"]["is_samples"] == 4 and run.info["test_part"] == "val"
        model = load_model(run)
        assert model.decoder == run.config["model"]["options"]["decoder"] and model.components == 50


def test_s_mim_decodes_and_a_mim_does_not(recorded):
    smim = load_runs(recorded, where={"training.loss.sample": True}).iloc[0]["run"]
    amim = load_runs(recorded, where={"training.loss.sample": False}).iloc[0]["run"]
    assert smim.metric("batch.beta").min() == 1.0 and len(smim.metric("batch.dec_loss"))  # smoke: warm-up 1 epoch
    assert "batch.dec_loss" not in amim.metric_names()


def test_the_pseudo_inputs_start_at_the_first_training_images(tmp_path):
    from genlab.data import load_dataset

    record(tmp_path, [*SMALL, "training.max_iterations=1", "evaluation.run=[]"])
    run = load_runs(tmp_path).iloc[0]["run"]
    data = load_dataset(run.config["dataset"])
    first = data.train.batch(slice(0, 50))["x"].reshape(50, -1)
    weights = torch.load(run.artifact_path("model.pt"), weights_only=True)["pseudo_weight"]
    assert (weights - first).abs().max() < 0.1  # one AdamNormGrad step of 5e-4 and N(0, 0.01^2) noise from the grey images


def test_training_batches_are_rebinarised_and_evaluation_batches_fixed():
    from experiments.mim_images import image_batches

    from genlab.data import load_dataset

    config = config_of(["smoke"])
    data = load_dataset(config["dataset"])
    batches = image_batches(data, config, seed=0)
    batches.train.bind(lambda: 0)
    first = next(iter(batches.train))["x"]
    assert set(first.unique().tolist()) <= {0.0, 1.0}
    again = [next(iter(batches.val))["x"] for _ in range(2)]
    assert torch.equal(again[0], again[1]) and set(again[0].unique().tolist()) <= {0.0, 1.0}
    index = torch.arange(32)
    grey = data.train.batch(index)
    from genlab.data.transforms import batch_generator, compose

    binarize = compose(config["dataset"]["transforms"])
    a, b = (binarize(grey, batch_generator(0, i, data.train.device))["x"] for i in (0, 1))
    assert not torch.equal(a, b)  # another batch index, another draw of the same images
    assert abs(a.mean().item() - grey["x"].mean().item()) < 0.05


def test_resume_reproduces_an_uninterrupted_run(tmp_path):
    args = [*SMALL, "evaluation.run=[]", "seed=4"]
    record(tmp_path, [*args, "training.max_iterations=4"])
    first = load_runs(tmp_path).iloc[0]["run"]
    record(tmp_path, [*args, "training.max_iterations=6", f"training.resume={first.info['checkpoint_dir']}/checkpoint_2.pt"])
    record(tmp_path, [*args, "training.max_iterations=6"])
    runs = load_runs(tmp_path, resumes="separate")
    resumed, straight = runs.iloc[1]["run"], runs.iloc[2]["run"]
    assert resumed.info["resumed_from"].endswith("checkpoint_2.pt")
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (resumed, straight))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_grid_lists_the_readme_runs():
    out = subprocess.run([str(REPO / "bin" / "mim" / "images.sh"), "--dry-run"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 3 * 4 * 2 * 10 and len(set(lines)) == len(lines)
    assert "python -m experiments.mim_images with omniglot model.pixelhvae model.standard training.amim seed=10" in lines
    assert not any("pixelhvae" in line and "smim" in line for line in lines)
