"""experiments.symvae end to end on the embedded MNIST digits: every named config composes; bad input
fails before any compute; each variant x method records a run (FIDs with a stand-in TorchScript
extractor, grids, samples) that reloads and rebuilds; resume continues exactly (both optimizers);
the analysis table and the notebook are drawn from the records; bin/symvae.sh lists the table's runs."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from conftest import REPO, execute_notebook, run_experiment

from genlab.analysis import symvae
from genlab.analysis.runs import load_model, load_runs
from genlab.errors import MissingFile
from genlab.registry import UnknownNameError

QUIET = {"--loglevel": "ERROR"}
VARIANTS = {"mnist_ladder": ("mnist", "ladder", "bernoulli"), "mnist_reverse": ("mnist", "reverse", "bernoulli"),
            "fmnist_ladder": ("fashion_mnist", "ladder", "gaussian")}  # fmt: skip
METHODS = {"sym": "sym_equilibrium", "elbo": "binary_elbo"}
SHORT = ["dataset.tiny", "training.smoke", "training.batch_size=32", "training.max_iterations=4", "training.log_every=2",
         "training.checkpoint_every=2", "training.progress=off", "evaluation.chain_steps=2", "evaluation.fid_images=64",
         "evaluation.fid_batch_size=32"]  # fmt: skip


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("method", METHODS)
def test_every_variant_and_method_composes(variant, method):
    from experiments.symvae import ex

    config = ex.run("print_config", named_configs=[variant, f"training.{method}"], options=QUIET).config
    dataset, encoder, likelihood = VARIANTS[variant]
    assert config["dataset"]["name"] == dataset and config["dataset"]["options"]["split"] == "all"
    assert (config["model"]["kind"], config["model"]["options"]["encoder"], config["model"]["options"]["likelihood"]) == \
        ("binary_hvae", encoder, likelihood)  # fmt: skip
    assert config["training"]["objective"] == METHODS[method]
    assert (config["training"]["lr"], config["training"]["batch_size"], config["training"]["max_iterations"]) == (1e-4, 1024, 200_000)
    assert config["dataset"]["transforms"][0][0] == ("flip_pixels" if dataset == "mnist" else "gaussian_noise")


def test_the_papers_runs_and_the_original_batching_compose():
    from experiments.symvae import ex

    paper = ex.run("print_config", named_configs=["fmnist_ladder", "paper_fmnist", "training.original_batches"], options=QUIET).config
    assert paper["training"]["max_iterations"] == 280_000 and paper["training"]["sampler"] == "random_slices"
    assert (paper["model"]["options"]["nz0"], paper["model"]["options"]["nz1"], paper["model"]["options"]["trunk"]) == (50, 200, 1000)
    mnist = ex.run("print_config", named_configs=["paper_mnist"], options=QUIET).config
    assert mnist["training"]["max_iterations"] == 1_000_000 and mnist["model"]["options"]["nz1"] == 100


def test_bad_input_fails_before_any_compute(tmp_path, monkeypatch):
    from experiments.symvae import ex

    with pytest.raises(UnknownNameError, match="valid symvae objectives: binary_elbo, sym_equilibrium"):
        ex.run("print_config", config_updates={"training.objective": "vae"}, options=QUIET)
    with pytest.raises(ValueError, match="unknown training.sampler 'slices'"):
        ex.run("print_config", config_updates={"training.sampler": "slices"}, options=QUIET)
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path))
    with pytest.raises(MissingFile, match="bin/get-data fid"):  # a full run needs the Inception weights
        ex.run("main", named_configs=["dataset.tiny"], options=QUIET)
    with pytest.raises(MissingFile, match="bin/get-data mnist"):
        ex.run("main", config_updates={"evaluation.fid_images": 0}, options=QUIET)


@pytest.fixture(scope="module")
def stand_in_weights(tmp_path_factory):
    """A tiny TorchScript 'Inception' (N, 3, 299, 299) -> (N, 8): the FID code path without the real weights."""
    path = tmp_path_factory.mktemp("fid") / "stand_in.pt"
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AvgPool2d(23), torch.nn.Flatten(), torch.nn.Linear(3 * 13 * 13, 8), torch.nn.ReLU())
    torch.jit.script(net).save(str(path))
    return path


@pytest.fixture(scope="module")
def symvae_runs(tmp_path_factory, stand_in_weights):
    """One tiny recorded run per variant x method, side by side."""
    data = tmp_path_factory.mktemp("symvae")

    def record(spec):
        variant, method = spec
        run_experiment("symvae", ["with", variant, f"training.{method}", *SHORT, f"evaluation.fid_weights={stand_in_weights}",
                                  "seed=1"], data)  # fmt: skip

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(record, [(v, m) for v in VARIANTS for m in METHODS]))
    return data


def test_each_variant_and_method_records_fids_grids_and_a_model_that_rebuilds(symvae_runs):
    runs = load_runs(symvae_runs / "sims" / "symvae")
    assert len(runs) == 6 and set(runs["status"]) == {"COMPLETED"}
    for run in runs["run"]:
        final = run.final_metrics()
        assert final["train.fid_random_code"] > 0 and final["train.fid_limiting"] > 0
        assert {"model.pt", "grid.png", "samples.pt"} <= set(run.artifact_names())
        assert run.artifact_bytes("grid.png")[:8] == b"\x89PNG\r\n\x1a\n"
        samples = symvae.samples_of(run)
        assert samples["data"].shape == (10, 1, 28, 28) and samples["limiting_fid"].shape == (40, 1, 28, 28)
        assert run.info["symvae_samples"]["fid_images"] == 64 and run.info["symvae_samples"]["chain_steps"] == 2
        model = load_model(run)
        assert sum(p.numel() for p in model.parameters()) > 1_000_000
        per_unit = {"sym_equilibrium": "batch.qloss", "binary_elbo": "batch.dloss"}[run.config["training"]["objective"]]
        assert any(name.startswith(per_unit) for name in run.metric_names())
        if run.config["model"]["options"]["encoder"] == "ladder":
            assert "batch.qmi0" in run.metric_names()
        if run.config["model"]["options"]["likelihood"] == "bernoulli":  # FID material thresholded (docs/symvae.md §4.3)
            assert set(samples["random_code_fid"].unique().tolist()) <= {0.0, 1.0}


def test_the_table_and_the_notebook_are_drawn_from_the_records(symvae_runs, tmp_path):
    runs = symvae.load_symvae_runs(symvae_runs / "sims" / "symvae")
    table = symvae.results_table(runs)
    assert sorted(zip(table["variant"], table["method"])) == sorted(symvae.README_FID)
    assert (table["iterations"] == 4).all() and table["differs_from_paper"].str.contains("dataset.tiny").all()
    fids = symvae.fid_table(table)
    assert len(fids) == 12  # 6 of ours (outside the README's setting) and the README's 6 cells without runs
    ours = fids[fids["count"] == 1]
    assert ours.set_index(["variant", "method"]).loc[("mnist-ladder", "Symmetric"), "readme_limiting"] == 4.1015
    text = execute_notebook("symvae.ipynb", {"GENLAB_SYMVAE_RUNS": str(symvae_runs / "sims" / "symvae"), "GENLAB_MONGO": "",
                                             "GENLAB_RESULTS": str(tmp_path)}, cwd=REPO)  # fmt: skip
    assert "6 completed symvae runs" in text
    assert (tmp_path / "samples.png").stat().st_size > 10_000 and (tmp_path / "fid_table.csv").exists()


@pytest.mark.parametrize("method", ["sym", "elbo"])
def test_resume_continues_exactly(method, tmp_path):
    args = ["with", f"training.{method}", "dataset.tiny", "training.batch_size=16", "training.checkpoint_every=2",
            "training.progress=off", "evaluation.fid_images=0", "evaluation.chain_steps=1", "seed=5",
            "model.options.nz0=8", "model.options.nz1=16"]  # fmt: skip
    run_experiment("symvae", [*args, "training.max_iterations=4"], tmp_path)
    first = load_runs(tmp_path / "sims" / "symvae").iloc[0]["run"]
    run_experiment("symvae", [*args, "training.max_iterations=6", f"training.resume={first.info['checkpoint_dir']}/checkpoint_2.pt"], tmp_path)
    run_experiment("symvae", [*args, "training.max_iterations=6"], tmp_path)
    runs = load_runs(tmp_path / "sims" / "symvae", resumes="separate")
    resumed, straight = runs.iloc[1]["run"], runs.iloc[2]["run"]
    assert resumed.info["resumed_from"].endswith("checkpoint_2.pt") and resumed.info["iterations"] == 6
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (resumed, straight))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_the_sweep_lists_the_readme_table():
    out = subprocess.run([str(REPO / "bin" / "symvae.sh"), "--dry-run"], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == 6 and all(line.startswith("python -m experiments.symvae with ") for line in lines)
    assert {(line.split()[4], line.split()[5]) for line in lines} == {(v, f"training.{m}") for v in VARIANTS for m in METHODS}
    paper = subprocess.run([str(REPO / "bin" / "symvae.sh"), "--dry-run"], capture_output=True, text=True, check=True,
                           env={**os.environ, "PAPER": "1"}).stdout  # fmt: skip
    assert paper.count("paper_fmnist") == 2 and paper.count("paper_mnist") == 4
