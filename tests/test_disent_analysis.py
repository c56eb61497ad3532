"""The ground-truth decoder experiment, the paper's analysis and the notebook, on tiny recorded runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from conftest import execute_notebook

from genlab.analysis import disent
from genlab.analysis.runs import load_data, load_model, load_runs
from genlab.losses import bernoulli_nll


def test_decoder_run_records_and_its_reloaded_model_reproduces_the_test_nll(recorded):
    runs = load_runs(recorded / "sims" / "decoders")
    assert runs["status"].tolist() == ["COMPLETED"]
    run = runs.iloc[0]["run"]
    assert run.config["training"]["objective"] == "gt_decoder" and run.config["training"]["lr"] == 1e-3
    assert run.config["model"]["options"]["inputs"] == "normalised"
    decoder = load_model(run)
    test = load_data(run).test
    with torch.no_grad():
        nll = bernoulli_nll(decoder(test.values), test.pixels(slice(None))).item()
    assert nll == pytest.approx(run.final_metrics()["test.recon_nll"], rel=1e-4)


def test_results_select_runs_by_config_and_sit_next_to_the_paper(recorded):
    runs = disent.load_disent_runs(recorded / "sims" / "disent", recorded / "sims" / "decoders")
    table = disent.results_table(runs)
    assert sorted(table["model"]) == ["FactorVAE (γ=20)", "GT decoder", "β-VAE (β=8)"]
    assert table.loc[table["model"] == "GT decoder", "disentanglement"].item() == 1.0
    assert table[["train_nll", "test_nll"]].notna().all().all()
    # the tiny recorded runs are not the paper's setting: listed next to the paper apart, each marked
    assert disent.compare_with_paper(table).empty
    others = disent.other_runs_vs_paper(table)
    assert len(others) == 3 and set(others["variant"]) == {"shape2tx"}
    assert others.loc[others["model"] == "GT decoder", "paper_test_nll"].item() == 138.97
    gt = others.loc[others["model"] == "GT decoder", "differs_from_paper"].item()
    assert gt == ("dataset.source=generated (paper: file); dataset.tiny=True (paper: False); "
                  "training.max_iterations=30 (paper: training.max_iterations=5000)")
    assert others["differs_from_paper"].str.contains("evaluation.factorvae_votes=40 (paper: 800)", regex=False).sum() == 2
    doubled = pd.concat([table, table.assign(run_id=99, disentanglement=0.0)])
    chosen = disent.select_models(doubled)  # the most disentangled run of each model
    assert len(chosen) == 3 and (chosen["n_runs"] == 2).all() and 99 not in set(chosen["run_id"])


def test_notebook_redraws_the_figures_from_recorded_runs(recorded, tmp_path):
    env = {"GENLAB_RUNS": str(recorded / "sims" / "disent"), "GENLAB_DECODER_RUNS": str(recorded / "sims" / "decoders"),
           "GENLAB_RESULTS": str(tmp_path / "results"), "GENLAB_DATA": str(tmp_path)}
    text = execute_notebook("disent.ipynb", env, tmp_path)
    out = tmp_path / "results" / "dsprites"
    split_files = {p.name for p in (out / "recomb2range").iterdir()}
    assert {"shape2tx-metrics.csv", "shape2tx-disent_vs_nll.png", "shape2tx-reconstructions.png", "shape2tx-hinton.png"} <= split_files
    assert (out / "disent_vs_nll.png").is_file()
    assert pd.read_csv(tmp_path / "results" / "paper-comparison.csv").empty  # no run in the paper's setting
    others = pd.read_csv(tmp_path / "results" / "paper-comparison-other-runs.csv")
    assert sorted(others["model"]) == ["FactorVAE (γ=20)", "GT decoder", "β-VAE (β=8)"]
    assert others["differs_from_paper"].str.contains("dataset.tiny=True").all()
    assert "3 completed runs" in text and "3 runs not in the paper's setting" in text
