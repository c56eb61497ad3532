"""experiments.fce2d end to end on tiny data: records, reloads, resumes, draws; bad input fails first;
the notebook redraws the figures from the recorded runs."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from conftest import TINY_FCE, execute_notebook, run_experiment

from genlab.analysis import fce2d
from genlab.analysis.runs import load_runs
from genlab.registry import UnknownNameError

def test_runs_are_recorded_and_reload(fce_runs):
    runs = fce2d.load_fce_runs(fce_runs / "sims" / "fce2d")
    assert list(runs["status"]) == ["COMPLETED", "COMPLETED"]
    fce, mle = runs["run"]
    assert fce.config["training"]["objective"] == "fce" and mle.config["training"]["objective"] == "flow_mle"
    assert fce.config["training"]["batch_size"] == 500 and fce.config["training"]["lr"] == 1e-3  # fce_2d + overrides
    assert {"batch.neg_value", "batch.accuracy", "batch.ebm_update", "val.mse_ebm", "val.mse_ebm_grid",
            "val.mse_flow", "val.neg_value", "val.flow_nll"} <= set(fce.metric_names())
    assert fce.metric("val.mse_ebm").index.tolist() == [20, 40]
    assert {"batch.nll", "val.flow_nll"} <= set(mle.metric_names()) and "val.mse_flow" not in mle.metric_names()

    model = fce2d.load_energy_flow(fce)
    data = fce2d.data_sample(fce, 2000)
    from genlab.data.toy2d import load_toy2d

    assert torch.equal(data, load_toy2d("8gaussians", 2000, 1, seed=3).train.x)  # the run's data seed
    held_out = load_toy2d("8gaussians", 4000, 2000, seed=3).eval
    with torch.no_grad():
        mse = (model.ebm.log_prob(held_out.x) - held_out.log_density).pow(2).mean().item()
    assert mse == pytest.approx(fce.final_metrics()["val.mse_ebm"], rel=1e-4)  # reloaded = recorded
    assert fce2d.load_energy_flow(mle).ebm is None


def test_resume_continues_exactly(fce_runs, tmp_path):
    first = fce_runs / "sims" / "fce2d" / "1"
    run_experiment("fce2d", ["with", str(first / "config.json"), f"training.resume={first / 'checkpoints' / 'checkpoint_20.pt'}"],
                   tmp_path)
    resumed = load_runs(tmp_path / "sims" / "fce2d").iloc[0]["run"]
    original = load_runs(fce_runs / "sims" / "fce2d").iloc[0]["run"]
    assert resumed.info["resumed_from"].endswith("checkpoint_20.pt")
    a, b = (torch.load(r.artifact_path("model.pt"), weights_only=True) for r in (resumed, original))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_figures_and_table_from_recorded_runs(fce_runs, tmp_path):
    runs = fce2d.load_fce_runs(fce_runs / "sims" / "fce2d")
    grids = fce2d.density_grids(runs.iloc[0]["run"], n=60, data_points=20_000)
    assert set(grids) == {"data", "flow", "ebm", "ebm_grid"}
    cell = fce2d.grid_cell_area(fce2d.LIM, 60)
    assert grids["ebm_grid"].sum() * cell == pytest.approx(1.0, rel=1e-4)
    assert grids["data"].sum() * cell == pytest.approx(1.0, abs=0.01)  # 8gaussians: almost all mass in [-4, 4]^2
    paths = fce2d.figures(runs, tmp_path, n=60)
    assert {"results", "8gaussians-densities", "8gaussians-curves", "pinwheel-densities", "pinwheel-curves"} <= set(paths)
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    table = pd.read_csv(paths["results"])
    assert table["objective"].tolist() == ["fce", "flow_mle"] and table["mse_ebm"].notna().tolist() == [True, False]
    assert 0.0 < table.loc[0, "ebm_update_fraction"] <= 1.0


def test_bad_input_fails_before_any_compute():
    from experiments.fce2d import ex

    quiet = {"--loglevel": "ERROR"}
    with pytest.raises(UnknownNameError, match="valid points datasets: 2spirals, 8gaussians, checkerboard, pinwheel, rings, spiral$"):
        ex.run("print_config", config_updates={"dataset.name": "moons"}, options=quiet)
    with pytest.raises(ValueError, match="'dsprites' is factor_images data; this experiment takes points datasets"):
        ex.run("print_config", config_updates={"dataset.name": "dsprites"}, options=quiet)
    with pytest.raises(UnknownNameError, match="valid flows: glow, maf"):
        ex.run("print_config", config_updates={"model.options.flow": "realnvp"}, options=quiet)
    with pytest.raises(ValueError, match="no hyperparameter.*flow_lr"):
        ex.run("print_config", config_updates={"training.objective": "flow_mle", "training.loss": {"flow_lr": 1e-3}},
               options=quiet)
    with pytest.raises(ValueError, match="optimizer 'adam' has no option.*beta.*betas, eps, weight_decay"):
        ex.run("print_config", config_updates={"training.optimizer_options.beta": 0.9}, options=quiet)
    with pytest.raises(UnknownNameError, match="valid fce2d objectives: fce, flow_mle"):
        ex.run("print_config", named_configs=[], config_updates={"training.objective": "beta_vae"}, options=quiet)


def test_every_named_config_composes():
    from experiments.fce2d import ex

    names = [name for name, _ in ex.gather_named_configs()]
    expected = {f"dataset.{d}" for d in ("8gaussians", "spiral", "2spirals", "checkerboard", "rings", "pinwheel")}
    assert expected | {"model.glow", "model.maf", "training.fce_2d", "training.flow_mle_2d"} <= set(names)
    for name in names:
        ex.run("print_config", named_configs=[name], options={"--loglevel": "ERROR"})
    default = ex.run("print_config", options={"--loglevel": "ERROR"}).config
    named = ex.run("print_config", named_configs=["training.fce_2d"], options={"--loglevel": "ERROR"}).config
    assert named["training"] == default["training"]  # fce_2d is the default
    assert default["model"]["options"]["with_ebm"] is True
    config = ex.run("print_config", named_configs=["training.flow_mle_2d"], options={"--loglevel": "ERROR"}).config
    assert config["training"]["objective"] == "flow_mle" and config["training"]["loss"] == {}
    assert config["training"]["lr"] == 7e-4 and config["training"]["batch_size"] == 1000
    assert config["model"]["options"]["with_ebm"] is False  # the objective's model setting, recorded in the config


def test_notebook_redraws_the_figures_from_recorded_runs(fce_runs, tmp_path):
    text = execute_notebook("fce2d.ipynb", {"GENLAB_FCE_RUNS": str(fce_runs / "sims" / "fce2d"),
                                            "GENLAB_RESULTS": str(tmp_path / "results"), "GENLAB_DATA": str(tmp_path)}, tmp_path)
    assert (tmp_path / "results" / "8gaussians-densities.png").is_file()
    assert (tmp_path / "results" / "pinwheel-curves.png").is_file()
    assert "2 completed fce2d runs" in text
