"""genlab.analysis.icebeem_sim from tiny recorded runs of experiments.icebeem_sim: the table holds the
recorded readouts, the summary the known mean and spread over seeds, the comparison the paper's
values; the figures and the notebook are drawn from the records; bin/icebeem/sims.sh lists the sweep."""

from __future__ import annotations

import math
import os
import shlex
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from conftest import REPO, execute_notebook, run_experiment

from genlab.analysis import icebeem_sim

SHORT = {
    "icebeem": ['training.phases=[{"name":"flow_mle","epochs":1,"optimizers":["flow"]},'
                '{"name":"ebm","epochs":1,"optimizers":["ebm"],"evaluate":True},'
                '{"name":"flow_1","epochs":1,"optimizers":["flow"]},'
                '{"name":"ebm_1","epochs":1,"optimizers":["ebm"],"evaluate":True}]',
                "model.options.flow_options.n_layers=1"],
    "ivae": ['training.phases=[{"name":"train","iterations":30}]'],
    "tcl": ['training.phases=[{"name":"mlr","iterations":10,"optimizers":["mlr"]},'
            '{"name":"all","iterations":20,"optimizers":["all"]}]', "training.batch_size=100"],
}  # fmt: skip
RUNS = [("icebeem", "tcl", 2, 0), ("icebeem", "tcl", 2, 1), ("ivae", "imca", 2, 0), ("tcl", "imca", 4, 0)]


@pytest.fixture(scope="module")
def sim_runs(tmp_path_factory):
    """Four tiny recorded runs (32 points per segment), made side by side: ICE-BeeM on "TCL" data with
    two seeds, iVAE on IMCA, TCL on IMCA with L = 4."""
    data = tmp_path_factory.mktemp("icebeem-sim-analysis")

    def record(spec):
        method, dataset, layers, seed = spec
        run_experiment("icebeem_sim", ["with", f"training.{method}", f"dataset.{dataset}", "dataset.tiny",
                                       f"dataset.options.n_layers={layers}", f"seed={seed}", "training.progress=off",
                                       *SHORT[method]], data)  # fmt: skip

    with ThreadPoolExecutor(min(len(RUNS), os.cpu_count() or 1)) as pool:
        list(pool.map(record, RUNS))
    return data / "sims" / "icebeem_sim"


@pytest.fixture(scope="module")
def runs(sim_runs):
    return icebeem_sim.load_sim_runs(sim_runs)


def test_the_table_holds_each_runs_recorded_readouts(sim_runs, runs):
    table = icebeem_sim.results_table(runs)
    assert len(table) == len(RUNS) and list(table["run_id"]) == list(runs["run_id"])
    for run, (_, row) in zip(runs["run"], table.iterrows()):
        final = run.final_metrics()
        assert row["mcc"] == final["train.mcc"] and row["mcc_paper"] == final["train.mcc_paper"]
        assert all(row[k.split(".", 1)[1]] == v for k, v in final.items() if k.startswith("train.mcc"))
        assert row["L"] == run.config["dataset"]["options"]["n_layers"] and row["seed"] == run.config["seed"]
        assert row["n"] == 32  # dataset.tiny
        assert "dataset.tiny=True (paper: False)" in row["differs_from_paper"]
    cells = sorted(zip(table["method"], table["dataset"], table["L"], table["seed"]))
    assert cells == [("ICE-BeeM", "tcl", 2, 0), ("ICE-BeeM", "tcl", 2, 1), ("TCL", "imca", 4, 0), ("iVAE", "imca", 2, 0)]
    assert icebeem_sim.load_sim_runs(sim_runs, where={"training.objective": "tcl"})["dataset.name"].tolist() == ["imca"]


def test_method_labels_come_from_the_config():
    config = {"training": {"objective": "icebeem_fce", "loss": {"flow_energy": "plain"}}}
    assert icebeem_sim.method_label(config) == icebeem_sim.ICEBEEM_ORIGINAL
    config["training"]["loss"]["flow_energy"] = "augmented"
    assert icebeem_sim.method_label(config) == "ICE-BeeM"
    assert icebeem_sim.method_label({"training": {"objective": "ivae"}}) == "iVAE"


def test_the_summary_is_the_mean_and_spread_over_seeds(runs):
    table = icebeem_sim.results_table(runs)
    means = icebeem_sim.summary(table)
    assert len(means) == 3 and means["count"].tolist() == [2, 1, 1]  # tcl data first
    icebeem = means.iloc[0]
    assert (icebeem["dataset"], icebeem["method"], icebeem["L"], icebeem["n"]) == ("tcl", "ICE-BeeM", 2, 32)
    for readout in ("mcc", "mcc_paper"):
        a, b = table.loc[table["method"] == "ICE-BeeM", readout]
        assert icebeem[f"{readout}_mean"] == pytest.approx((a + b) / 2)
        assert icebeem[f"{readout}_std"] == pytest.approx(abs(a - b) / math.sqrt(2))  # ddof 1
    assert means.iloc[1:]["mcc_std"].isna().all()  # one seed: no spread


def test_the_comparison_holds_the_papers_values_beside_ours(runs):
    comparison = icebeem_sim.paper_comparison(icebeem_sim.summary(icebeem_sim.results_table(runs)))
    assert len(comparison) == 2 * 3 * 2 * 5 and (comparison["count"] == 0).all()  # n = 32 is not in the paper's grid
    for (dataset, method, layers), values in icebeem_sim.PAPER.items():
        cell = comparison[(comparison["dataset"] == dataset) & (comparison["method"] == method) & (comparison["L"] == layers)]
        assert cell["n"].tolist() == [100, 200, 500, 1000, 2000] and tuple(cell["paper"]) == values
    assert icebeem_sim.PAPER[("imca", "TCL", 4)] == (0.585, 0.59, 0.615, 0.635, 0.68)
    ours = pd.DataFrame([  # a known answer: ours 0.80 +- 0.02 at the paper's 0.85 (TCL data, ICE-BeeM, L = 2, n = 100)
        {"dataset": "tcl", "method": "ICE-BeeM", "L": 2, "n": 100, "differs_from_paper": "", "count": 10,
         "mcc_mean": 0.7, "mcc_std": 0.05, "mcc_paper_mean": 0.8, "mcc_paper_std": 0.02},
        {"dataset": "tcl", "method": icebeem_sim.ICEBEEM_ORIGINAL, "L": 2, "n": 100, "differs_from_paper": "", "count": 3,
         "mcc_mean": 0.6, "mcc_std": 0.1, "mcc_paper_mean": 0.9, "mcc_paper_std": 0.01},
    ])  # fmt: skip
    comparison = icebeem_sim.paper_comparison(ours)
    cell = comparison[(comparison["dataset"] == "tcl") & (comparison["L"] == 2) & (comparison["n"] == 100)
                      & (comparison["count"] > 0)].set_index("method")  # fmt: skip
    assert cell.loc["ICE-BeeM", "paper"] == cell.loc[icebeem_sim.ICEBEEM_ORIGINAL, "paper"] == 0.85
    assert cell.loc["ICE-BeeM", "diff_mcc_paper"] == pytest.approx(-0.05)
    assert cell.loc[icebeem_sim.ICEBEEM_ORIGINAL, "diff_mcc"] == pytest.approx(-0.25)
    assert len(comparison) == 61  # every paper cell once, ICE-BeeM's n = 100 cell twice


def test_figures_and_tables_are_written_from_the_records(runs, tmp_path, capsys, monkeypatch):
    paths = icebeem_sim.figures(runs, tmp_path)
    assert set(paths) == {"results", "summary", "comparison", "figure_mcc_paper", "figure_mcc"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    assert pd.read_csv(paths["results"])["mcc"].tolist() == pytest.approx(icebeem_sim.results_table(runs)["mcc"].tolist())
    with pytest.raises(ValueError, match="readout must be one of mcc_paper, mcc"):
        icebeem_sim.figure(icebeem_sim.summary(icebeem_sim.results_table(runs)), "mcc_flow")
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))  # no store: no runs, the paper's values alone
    assert icebeem_sim.load_sim_runs().empty
    icebeem_sim.main(["--out", str(tmp_path / "none")])
    assert "0 completed icebeem_sim runs" in capsys.readouterr().out
    assert (tmp_path / "none" / "mcc.png").stat().st_size > 0


def test_the_notebook_redraws_the_figures_from_the_records(sim_runs, tmp_path):
    text = execute_notebook("icebeem_sim.ipynb", {"GENLAB_ICEBEEM_RUNS": str(sim_runs), "GENLAB_MONGO": "",
                                                  "GENLAB_RESULTS": str(tmp_path / "results"),
                                                  "GENLAB_DATA": str(tmp_path)}, tmp_path)  # fmt: skip
    assert f"{len(RUNS)} completed icebeem_sim runs" in text
    assert icebeem_sim.READOUTS["mcc"] in text and icebeem_sim.READOUTS["mcc_paper"] in text
    shown = pd.read_csv(tmp_path / "results" / "results.csv")
    assert len(shown) == len(RUNS) and set(shown["method"]) == {"ICE-BeeM", "iVAE", "TCL"}
    assert (tmp_path / "results" / "mcc_paper.png").stat().st_size > 0 and (tmp_path / "results" / "mcc.png").is_file()


def _sweep(*args, seeds=None):
    env = {k: v for k, v in os.environ.items() if k != "SEEDS"}
    if seeds is not None:
        env["SEEDS"] = seeds
    return subprocess.run([REPO / "bin/icebeem/sims.sh", "--dry-run", *args], env=env, check=True, capture_output=True,
                          text=True).stdout.splitlines()  # fmt: skip


def test_the_sweep_lists_every_cell_method_and_seed_once():
    lines = _sweep()
    assert len(lines) == len(set(lines)) == 2 * 3 * 2 * 5 * 10
    assert lines[0] == ("python -m experiments.icebeem_sim with dataset.tcl training.icebeem "
                        "dataset.options.n_layers=2 dataset.options.n_per_segment=100 seed=0")  # fmt: skip
    cells = {tuple(shlex.split(line)[4:]) for line in lines}
    assert {(f"dataset.{d}", f"training.{m}", f"dataset.options.n_layers={L}", f"dataset.options.n_per_segment={n}", f"seed={s}")
            for d in ("tcl", "imca") for m in ("icebeem", "ivae", "tcl") for L in (2, 4)
            for n in (100, 200, 500, 1000, 2000) for s in range(10)} == cells  # fmt: skip
    one_seed = _sweep("device=cuda", seeds="0")
    assert len(one_seed) == 60 and all(line.endswith(" seed=0 device=cuda") for line in one_seed)

    from experiments.icebeem_sim import ex

    for line in one_seed[::10]:  # the first command of each (dataset, method) composes
        words = shlex.split(line)[4:]
        updates = {k: int(v) if v.isdigit() else v for k, v in (w.split("=", 1) for w in words if "=" in w)}
        cfg = ex.run("print_config", named_configs=[w for w in words if "=" not in w], config_updates=updates,
                     options={"--loglevel": "ERROR"}).config  # fmt: skip
        assert cfg["dataset"]["options"]["n_per_segment"] == 100 and cfg["dataset"]["data_seed"] == 1


def test_an_icebeem_run_records_the_paper_readout_and_the_intended_one_and_rebuilds(runs):
    import torch

    from genlab.analysis.runs import load_model
    from genlab.data import load_dataset
    from genlab.metrics.mcc import fast_ica, mcc

    run = next(r for r in runs["run"] if r.config["training"]["objective"] == "icebeem_fce")
    final = run.final_metrics()
    assert run.config["model"]["kind"] == "icebeem"
    flow_evaluations = run.metric("val.mcc_flow_ica")
    assert len(flow_evaluations) == 2  # after each EBM phase
    assert final["train.mcc_paper"] == pytest.approx(flow_evaluations.max())  # the original's best-of readout
    assert final["train.mcc"] == final["train.mcc_ebm_ica"] == pytest.approx(run.metric("val.mcc_ebm_ica").iloc[-1])
    model = load_model(run).eval()
    data = load_dataset(run.config["dataset"], "cpu", run.config["seed"]).train.batch(slice(None))
    with torch.no_grad():
        features = model.ebm.f(data["x"]).numpy()
    assert mcc(fast_ica(features), data["s"].numpy()) == pytest.approx(final["train.mcc"], abs=1e-6)  # rebuilt = recorded
