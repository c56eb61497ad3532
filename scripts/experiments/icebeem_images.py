"""ICE-BeeM on images (Khemakhem et al., NeurIPS 2020, sections 5.2-5.3, figure panels (a)-(d);
docs/icebeem.md): conditional EBMs E(x, y) = f(x)^T g(y) by conditional denoising score matching
against the unconditional E(x) = sum f(x) by DSM, on MNIST, FashionMNIST, CIFAR-10 and CIFAR-100.

    python -m experiments.icebeem_images with mnist pretrain                 # CDSM on digits 0-7, 5,001 steps
    python -m experiments.icebeem_images with mnist baseline                 # DSM, the unconditional EBM
    python -m experiments.icebeem_images with mnist transfer dataset.first_n=500 seed=3
    python -m experiments.icebeem_images with mnist transfer_baseline dataset.first_n=500 seed=3
    python -m experiments.icebeem_images with mnist transfer_n0 seed=3       # N = 0 of the transfer grid
    python -m experiments.icebeem_images with mnist representation seed=7    # one seed; also _baseline
    python -m experiments.icebeem_images with mnist mcc pair=[3,7]           # one pair of seeds; also _baseline
    python -m experiments.icebeem_images with mnist semisupervised           # also semisupervised_baseline
    python -m experiments.icebeem_images with cifar10 pretrain smoke         # a smoke run on a stand-in

The parts and their settings: ``configs/icebeem_images.py``. Transfer, semi-supervised and MCC runs
find the runs they build on in the run store by config (``pretrained="auto"``, the store this run
records to unless ``pretrained_source`` names another, a directory or a MongoDB URL); or give
``pretrained=<run directory or model.pt>``. Logged: ``batch.loss`` (the (C)DSM loss of docs/icebeem.md
§4b, not yet x1e4); transfer parts ``epoch.loss_median`` every epoch; representation parts the artifact
``features.npz``; MCC parts ``test.mcc_{strong,weak}_{in,out}``; semi-supervised parts
``test.svm_accuracy`` (and ``_std``). The recipe: ``bin/icebeem/images.sh``; the figures:
``genlab.analysis.icebeem_images`` and ``notebooks/icebeem_images.ipynb``.
"""

from __future__ import annotations

import io
from typing import Any, Mapping

import numpy as np
from configs import icebeem_images as paper
from sacred.observers import FileStorageObserver

from genlab.errors import ConfigError, MissingFile
from genlab.metrics.identifiability import pair_scores
from ingredients.experiment import genlab_experiment, nested, plain, train_and_evaluate
from ingredients.observers import run_cli

EXPERIMENT = "icebeem_images"
FEATURES = "features.npz"
MODEL_KEYS = ("architecture", "feature_size", "final_layer", "ngf", "augment", "positive")  # what f's weights depend on

ex = genlab_experiment(
    EXPERIMENT,
    dataset_kinds=["labelled_images"],
    dataset=paper.dataset,
    model_kinds=["image_ebm"],
    objectives=["cdsm", "dsm"],
    training=[paper.training],
    evaluations=["test_features", "semisupervised_svm"],
    evaluation=paper.evaluation,
)
ex.add_config(
    part="pretrain",  # one of configs.icebeem_images.PARTS (each is a named config)
    pretrained=None,  # the run a part builds on: "auto" (found in the run store by config), a run directory or model.pt
    pretrained_source=None,  # where "auto" looks: None (the store this run records to), a directory or a MongoDB URL
    pair=[0, 1],  # the seeds of the two representation runs an MCC part compares
)
for config in paper.DATASETS + paper.PARTS_CONFIGS + paper.ORIGINAL:
    ex.named_config(config)


@ex.config_hook
def check_part(config, command_name, logger):
    """The part and what it needs, refused at start-up: an unknown part, an objective of the wrong kind,
    a part that builds on another without ``pretrained``, a bad pair, test features without test images."""
    part, objective = config["part"], config["training"]["objective"]
    if part not in paper.PARTS:
        raise ConfigError(f"unknown part {part!r}; parts: {', '.join(paper.PARTS)} (named configs of the same names)")
    if part in paper.UNCONDITIONAL and objective != "dsm":
        raise ConfigError(f"part {part!r} is the unconditional baseline, trained by dsm, not {objective!r}")
    if part in ("pretrain", "representation", "mcc", "semisupervised") and objective != "cdsm":
        raise ConfigError(f"part {part!r} is ICE-BeeM, trained by cdsm, not {objective!r}")
    needs = paper.NEEDS.get(part)
    if needs is None and config["pretrained"] is not None:
        raise ConfigError(f"part {part!r} builds on no other run; pretrained={config['pretrained']!r} would be ignored")
    if needs is not None and config["pretrained"] is None:
        raise ConfigError(f"part {part!r} builds on a {needs!r} run: give pretrained='auto' (the latest matching run "
                          "in the store) or a run directory / model.pt")  # fmt: skip
    if part.startswith("mcc"):
        pair = list(config["pair"])
        if len(pair) != 2 or not all(isinstance(s, int) for s in pair) or pair[0] == pair[1]:
            raise ConfigError(f"pair must be two different seeds [i, j], got {config['pair']!r}")
        if config["pretrained"] != "auto":
            raise ConfigError("an MCC part finds its two representation runs in the store: pretrained='auto'")
    dataset = config["dataset"]
    if part.startswith("representation"):
        options = dataset.get("options") or {}
        if options.get("split", "train") != "train":
            raise ConfigError("the representation parts score the test split: dataset.options.split must be 'train'")
        if dataset.get("labels") != "all":
            raise ConfigError("the representation parts train on every class: dataset.labels='all'")
        if dataset["name"] in ("mnist", "fashion_mnist") and (options.get("source") == "embedded" or dataset.get("tiny")):
            raise ConfigError(f"{dataset['name']} source=embedded has no test images for the test features; use the IDX "
                              "files (bin/get-data) or, for a smoke run, the cifar10 stand-in (with cifar10 ... smoke)")  # fmt: skip
    return {}


# --- finding the runs a part builds on ----------------------------------------------------------------


def store_of(run, given: str | None) -> str:
    """Where ``pretrained="auto"`` looks: ``given``, else this run's file store, else its MongoDB."""
    if given is not None:
        return str(given)
    for observer in run.observers:
        if isinstance(observer, FileStorageObserver):
            return str(observer.basedir)
    for observer in run.observers:
        if hasattr(observer, "url") and hasattr(observer, "db_name"):
            return observer.url if observer.url.rstrip("/").endswith("/" + observer.db_name) else f"{observer.url}/{observer.db_name}"
    raise ConfigError("pretrained='auto' looks in the run store this run records to, and it records to none: "
                      "give pretrained_source=<store directory or MongoDB URL>, or pretrained=<run directory>")  # fmt: skip


def find_run(source: str, part: str, config: Mapping[str, Any], seed: int | None = None):
    """The latest completed run of ``part`` in ``source`` with this run's dataset, classes, feature
    extractor and smoke settings (and ``seed``, if given); MissingFile naming what to run first."""
    from genlab.analysis.runs import load_runs

    dataset, model = config["dataset"], config["model"]["options"]
    where = {"part": part, "dataset.name": dataset["name"], "dataset.n_labels": dataset["n_labels"],
             "dataset.tiny": bool(dataset.get("tiny", False)), "training.smoke": bool(config["training"]["smoke"]),
             **{f"model.options.{k}": model[k] for k in MODEL_KEYS}}  # fmt: skip
    if seed is not None:
        where["seed"] = int(seed)
    try:
        runs = load_runs(source, where=where, experiment=EXPERIMENT, status="COMPLETED")
    except FileNotFoundError:
        runs = []
    if len(runs) == 0:
        wanted = ", ".join(f"{k}={v!r}" for k, v in where.items())
        raise MissingFile(f"no completed {part!r} run in {source} with {wanted}: run `python -m experiments.{EXPERIMENT} "
                          f"with <dataset> {part}{'' if seed is None else f' seed={seed}'}` (recording to that store) "
                          "first, or give pretrained=<run directory or model.pt>")  # fmt: skip
    return runs.iloc[-1]["run"]


def pretrained_weights(run, config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """The ``model.pt`` a transfer or semi-supervised part starts from, and what to record about it."""
    given = config["pretrained"]
    if given != "auto":
        return str(given), {"path": str(given)}
    source = store_of(run, config["pretrained_source"])
    found = find_run(source, paper.NEEDS[config["part"]], config)
    return str(found.artifact_path("model.pt")), {"source": source, "run_id": found.run_id}


def pair_mcc(run, config: Mapping[str, Any]) -> dict[str, Any]:
    """Strong and weak MCC, in and out of sample, of two representation runs' test features (docs/icebeem.md §7)."""
    source = store_of(run, config["pretrained_source"])
    needs = paper.NEEDS[config["part"]]
    seeds = sorted(int(s) for s in config["pair"])
    found = [find_run(source, needs, config, seed) for seed in seeds]
    features = []
    for other in found:
        with np.load(io.BytesIO(other.artifact_bytes(FEATURES))) as arrays:
            features.append((arrays["features"], arrays["labels"]))
    if not np.array_equal(features[0][1], features[1][1]):
        raise ValueError(f"runs {found[0].run_id} and {found[1].run_id} scored different test images (their labels differ)")
    run.info["pair_runs"] = {str(seed): other.run_id for seed, other in zip(seeds, found)}
    run.info["pair_source"] = source
    scores = pair_scores(features[0][0], features[1][0])
    results = {}
    for name, value in scores.items():
        run.log_scalar(f"test.mcc_{name}", float(value), 0)
        results[f"test.mcc_{name}"] = float(value)
    return nested(results)


@ex.main
def main(_run, _config, _seed):
    config = plain(_config)
    if config["part"].startswith("mcc"):
        return pair_mcc(_run, config)
    if paper.NEEDS.get(config["part"]) is not None:
        weights, record = pretrained_weights(_run, config)
        _run.info["pretrained"] = record
        config["model"]["init_from"] = weights
    return train_and_evaluate(_run, config, _seed)


if __name__ == "__main__":
    run_cli(ex)
