"""experiments.icebeem_images: every dataset x part composes with its paper settings, bad input fails
before any compute, the transfer part moves only g and starts from the pretrained f, the recipe
lists every run. Recorded runs of every part, the figures and the notebook: test_icebeem_images_analysis.py."""

from __future__ import annotations

import subprocess

import pytest
import torch

from conftest import REPO
from genlab.errors import ConfigError, MissingFile

QUIET = {"--loglevel": "ERROR"}
DATASETS = {"mnist": ("mnist", 90, 8, 5), "fashionmnist": ("fashion_mnist", 200, 8, 15),
            "cifar10": ("cifar10", 200, 8, 15), "cifar100": ("cifar100", 200, 85, 15)}  # fmt: skip
PARTS = ["pretrain", "baseline", "transfer", "transfer_n0", "transfer_baseline", "transfer_baseline_n0", "representation",
         "representation_baseline", "mcc", "mcc_baseline", "semisupervised", "semisupervised_baseline"]  # fmt: skip


@pytest.mark.parametrize("dataset", list(DATASETS))
@pytest.mark.parametrize("part", PARTS)
def test_every_dataset_and_part_composes_with_the_papers_settings(dataset, part):
    from experiments.icebeem_images import ex

    config = ex.run("print_config", named_configs=[dataset, part], options=QUIET).config
    name, features, n_labels, baseline_epochs = DATASETS[dataset]
    assert config["dataset"]["name"] == name and config["dataset"]["n_labels"] == n_labels
    assert config["model"]["options"]["feature_size"] == features and config["model"]["kind"] == "image_ebm"
    training = config["training"]
    assert training["batch_size"] == 63 and training["lr"] == 1e-3 and training["optimizer"] == "adam"
    unconditional = part in ("baseline", "representation_baseline", "mcc_baseline", "semisupervised_baseline") or part.endswith("_n0")
    assert training["objective"] == ("dsm" if unconditional else "cdsm")
    assert config["model"]["options"]["conditional"] is (not unconditional)
    assert ["dequantize", {"levels": 256}] in [list(t) for t in config["dataset"]["transforms"]]
    assert any(t[0] == "hflip" for t in config["dataset"]["transforms"]) is dataset.startswith("cifar")
    if part in ("pretrain", "baseline", "representation", "representation_baseline"):
        assert training["phases"] == [{"name": "pretrain", "iterations": 5001}]
    if part.startswith("transfer") and not part.startswith("transfer_baseline"):
        assert training["phases"] == [{"name": "transfer", "epochs": 10}] and config["pretrained"] == "auto"
        assert training["loss"]["update"] == ("none" if part == "transfer_n0" else "g")
    if part.startswith("transfer_baseline"):
        assert training["phases"] is None and training["epochs"] == baseline_epochs
    assert config["dataset"]["first_n"] == (6000 if part in ("transfer", "transfer_baseline") else None)


def test_bad_input_fails_before_any_compute(tmp_path):
    from experiments.icebeem_images import ex

    with pytest.raises(ConfigError, match="unknown part 'pretraining'"):
        ex.run("print_config", config_updates={"part": "pretraining"}, options=QUIET)
    with pytest.raises(ConfigError, match="unconditional baseline, trained by dsm"):
        ex.run("print_config", named_configs=["baseline"], config_updates={"training.objective": "cdsm"}, options=QUIET)
    with pytest.raises(ConfigError, match="builds on a 'pretrain' run"):
        ex.run("print_config", named_configs=["transfer"], config_updates={"pretrained": None}, options=QUIET)
    with pytest.raises(ConfigError, match="pair must be two different seeds"):
        ex.run("print_config", named_configs=["mcc"], config_updates={"pair": [3, 3]}, options=QUIET)
    with pytest.raises(ConfigError, match="has no test images"):
        ex.run("print_config", named_configs=["mnist", "representation", "smoke"], options=QUIET)
    # a CIFAR file that is not there: named, with where it comes from, at start-up
    with pytest.raises(MissingFile, match="cifar-10-python.tar.gz"):
        ex.run("main", named_configs=["cifar10", "pretrain"], config_updates={"dataset.path": str(tmp_path)}, options=QUIET)
    # a transfer run with no pretraining in the store says what to run first
    ex.observers.clear()
    from ingredients.observers import run_cli

    with pytest.raises(SystemExit):
        run_cli(ex, ["icebeem_images", "-F", str(tmp_path / "store"), "--loglevel", "ERROR", "with", "cifar10", "smoke",
                     "transfer"])  # fmt: skip
    ex.observers.clear()


def test_the_recipe_lists_every_run_of_the_original_readme():
    out = subprocess.run(["bash", str(REPO / "bin/icebeem/images.sh"), "--dry-run"], capture_output=True, text=True, check=True)
    lines = out.stdout.splitlines()
    assert len(lines) == 4 * (2 + 8 * 5 * 2 + 20 * 2 + 190 * 2 + 2)
    mnist = [line for line in lines if " with mnist " in line]
    assert sum(" mcc pair=" in line for line in mnist) == 190 and sum(" representation seed=" in line for line in mnist) == 20
    assert sum(" transfer_n0 " in line for line in mnist) == 5 and mnist[0].endswith("with mnist pretrain")
    staged = subprocess.run(["bash", str(REPO / "bin/icebeem/images.sh"), "--dry-run"], capture_output=True, text=True,
                            check=True, env={"STAGES": "semisupervised", "DATASETS": "cifar100", "PATH": "/usr/bin:/bin"})  # fmt: skip
    assert staged.stdout.split("\n")[:2] == ["python -m experiments.icebeem_images with cifar100 semisupervised",
                                             "python -m experiments.icebeem_images with cifar100 semisupervised_baseline"]


def test_transfer_starts_from_the_pretrained_f_and_trains_only_g(tmp_path):
    from experiments.icebeem_images import ex
    from genlab.analysis.runs import load_model, load_runs
    from ingredients.observers import run_cli

    store = tmp_path / "store"
    common = ["icebeem_images", "-F", str(store), "--loglevel", "ERROR", "with", "cifar10", "smoke", "training.batch_size=16",
              "training.progress=off"]  # fmt: skip
    for words in (["pretrain", "training.max_iterations=3"], ["transfer", "dataset.first_n=32", "training.max_iterations=4"]):
        ex.observers.clear()
        run_cli(ex, common + words)
    ex.observers.clear()
    runs = load_runs(store)
    pretrained, transferred = (load_model(r) for r in runs["run"])
    f0, f1 = pretrained.f.state_dict(), transferred.f.state_dict()
    assert all(torch.equal(f0[k], f1[k]) for k in f0)  # f frozen, BatchNorm statistics included (eval mode)
    assert transferred.g.weight.shape[1] == 2 and pretrained.g.weight.shape[1] == 8
    info = runs["run"].iloc[1].info
    assert info["pretrained"]["run_id"] == runs["run"].iloc[0].run_id and info["init_from"]["missing"] == ["g.weight"]
    medians = runs["run"].iloc[1].metric("epoch.loss_median")
    assert list(medians.index) == [2, 4]  # two epochs of 32 images in batches of 16
