"""genlab.analysis.mim from tiny recorded runs of experiments.mim: the table infers the experiment,
method and axis from the config and holds the recorded statistics; the summary is the known mean and
spread over seeds beside the paper's exact values; the sweep, toy and E1 figures are drawn from the
records; the collapse verdict compares MIM with the VAE; the command line and the notebook write the
tables and figures."""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from conftest import execute_notebook, run_experiment  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.contour import ContourSet  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402

from genlab.analysis import mim  # noqa: E402

SHORT = ["training.smoke", "dataset.tiny", "training.max_iterations=40", "training.eval_every=epoch", "training.progress=off"]
RUNS = [["e2", "training.mim", "model.options.mid_dim=5", "seed=1"],
        ["e2", "training.vae", "model.options.mid_dim=5", "seed=1"],
        ["e1_mim"]]  # fmt: skip
QUIET = {"--loglevel": "ERROR"}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three tiny recorded runs (40 iterations on 1,280-point streams), made side by side: S-MIM and
    the VAE of E2 at mid_dim 5, and E1's MIM panel on toyMIM."""
    data = tmp_path_factory.mktemp("mim-analysis")
    with pytest.MonkeyPatch.context() as patch, ThreadPoolExecutor(len(RUNS)) as pool:
        patch.setenv("OMP_NUM_THREADS", "1")  # tiny MLPs, three processes side by side: one thread each
        list(pool.map(lambda args: run_experiment("mim", ["with", *args, *SHORT], data), RUNS))
    return data / "sims" / "mim"


@pytest.fixture(scope="module")
def table(store):
    return mim.runs_table(store)


def _row(table, experiment, method):
    rows = table[(table["experiment"] == experiment) & (table["method"] == method)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_the_table_infers_experiment_method_and_axis_and_holds_the_recorded_statistics(table):
    assert len(table) == len(RUNS)
    cells = sorted(zip(table["experiment"], table["method"], table["dataset"], table["mid_dim"], table["z_dim"], table["seed"]))
    assert cells == [("E1", "MIM", "toyMIM", 50, 2, 1), ("E2", "MIM", "toy4", 5, 2, 1), ("E2", "VAE", "toy4", 5, 2, 1)]
    for _, row in table.iterrows():
        final = row["run"].final_metrics()
        for metric in (*mim.METRICS, "H_P_x", "MI", "clf_acc_KNN1", "Dkl"):
            assert row[metric] == final[f"test.{metric}"]
        assert row["smoke"] and row["iterations"] == 40 and not row["inv_H"]
        assert "dataset.tiny=True (paper: False)" in row[mim.DIFFERS] and "training.smoke=True (paper: False)" in row[mim.DIFFERS]
        assert "training.max_iterations=40" in row[mim.DIFFERS]
    assert _row(table, "E2", "MIM")["objective"] == "mim" and _row(table, "E2", "MIM")["sample"] == True  # noqa: E712
    assert _row(table, "E2", "VAE")["objective"] == "vae_mc"
    assert "training.epochs=49" in _row(table, "E1", "MIM")[mim.DIFFERS]  # E1's own run length


@pytest.mark.parametrize("config, experiment, method", [
    ({"dataset": {"name": "toy4"}, "training": {"objective": "mim", "loss": {"sample": True, "inv_H": False}}}, "E2", "MIM"),
    ({"dataset": {"name": "toy4"}, "training": {"objective": "mim", "loss": {"sample": False}}}, "E2", "A-MIM"),
    ({"dataset": {"name": "toy4"}, "training": {"objective": "mim", "loss": {"sample": True, "inv_H": True}}}, "E3", "MIM - H"),
    ({"dataset": {"name": "toy4"}, "training": {"objective": "vae_mc", "loss": {"inv_H": True}}}, "E3", "VAE + H"),
    ({"dataset": {"name": "toy4_20"}, "training": {"objective": "vae_mc", "loss": {}}}, "E4", "VAE"),
    ({"dataset": {"name": "pca_fashion_mnist20"}, "training": {"objective": "mim", "loss": {}}}, "E5", "MIM"),
    ({"dataset": {"name": "toyAE"}, "training": {"objective": "ae", "loss": {}}}, "E1", "AE"),
    ({"dataset": {"name": "toyVAE"}, "training": {"objective": "vae_mc"}}, "E1", "VAE"),
    ({"dataset": {"name": "mnist"}, "training": {"objective": "vae_mc"}}, None, "VAE"),
])  # fmt: skip
def test_experiment_and_method_come_from_the_config(config, experiment, method):
    assert mim.experiment_of(config) == experiment and mim.method_label(config) == method


@pytest.mark.parametrize("named", [["e2", "training.vae"], ["e3", "training.mim"], ["e4", "training.mim"], ["e5", "training.vae"],
                                   ["e1_mim"], ["e1_ae"]])  # fmt: skip
def test_the_named_configs_are_the_papers_setting_and_a_change_is_named(named):
    from experiments.mim import ex

    axis = {"e2": "model.options.mid_dim", "e3": "model.options.mid_dim", "e4": "model.options.z_dim",
            "e5": "model.options.z_dim"}  # fmt: skip
    updates = {"seed": 7, **({axis[named[0]]: 20} if named[0] in axis else {})}
    config = ex.run("print_config", named_configs=named, config_updates=updates, options=QUIET).config
    assert mim.differences(config) == []  # the sweep's axis and the seed are not compared
    shorter = ex.run("print_config", named_configs=named, config_updates={"training.epochs": 10, "model.options.layers": 3},
                     options=QUIET).config  # fmt: skip
    paper_epochs = 49 if named[0].startswith("e1") else 200
    assert mim.differences(shorter) == [f"training.epochs=10 (paper: training.epochs={paper_epochs})"]
    warm = ex.run("print_config", named_configs=[*named, "dataset.tiny"], config_updates={"training.warmup": 1},
                  options=QUIET).config  # fmt: skip
    differs = mim.differences(warm)
    assert "dataset.tiny=True (paper: False)" in differs and any(d.startswith("training.warmup=1 ") for d in differs)


def test_the_papers_values_are_the_ones_read_off_its_figures():
    paper = mim.PAPER_VALUES
    assert set(paper) == set(mim.SWEEPS) and set(paper["E3"]) == {"MIM - H", "VAE + H"}
    for experiment, methods in paper.items():
        for values in methods.values():
            assert set(values) == set(mim.METRICS)
            assert all(len(v) == len(mim.AXIS_VALUES[experiment]) for v in values.values())
    assert paper["E2"]["MIM"]["MI_ksg"] == (4.9, 6.75, 6.75, 6.85, 6.9, 6.8, 6.9, 6.8)
    assert paper["E2"]["VAE"]["clf_acc_KNN5"] == (0.21, 0.28, 0.54, 0.64, 0.735, 0.735, 0.745, 0.735)
    assert paper["E3"]["MIM - H"]["H_q_x"] == (3.5, 3.5, 3.5, 3.5, 3.5, 28, 57, 77)
    assert paper["E3"]["VAE + H"]["x_recon_err"] == (0.76, *(0.02,) * 7)
    assert paper["E4"]["MIM"]["x_recon_err"][0] == 144.4 and paper["E4"]["VAE"]["H_q_x"][-1] == 91
    assert paper["E5"]["MIM"]["H_q_x"] == (75, 60, 88, 69, 91, 88, 89, 88, 132, 126)
    assert paper["E5"]["VAE"]["clf_acc_KNN5"][-1] == 0.245 and paper["E5"]["VAE"]["H_q_x"] == (30,) * 10


def test_the_summary_holds_mean_std_count_beside_the_papers_exact_values(table):
    summary = mim.sweep_summary(table, "E2")
    for metric in mim.METRICS:
        assert {f"{metric}_mean", f"{metric}_std", f"paper_{metric}"} <= set(summary.columns)
    ours = summary[summary["count"] > 0]
    assert sorted(zip(ours["method"], ours["mid_dim"], ours["count"])) == [("MIM", 5, 1), ("VAE", 5, 1)]
    for _, row in ours.iterrows():
        recorded = _row(table, "E2", row["method"])
        assert all(row[f"{m}_mean"] == pytest.approx(recorded[m]) for m in mim.METRICS)
        assert all(math.isnan(row[f"{m}_std"]) for m in mim.METRICS)  # one seed: no spread
        assert row["paper_MI_ksg"] == mim.PAPER_VALUES["E2"][row["method"]]["MI_ksg"][0]
    papers = summary[summary["count"] == 0]  # every point of the paper's curves, count 0 without runs in its setting
    assert len(papers) == 2 * len(mim.MID_DIMS)
    for method, values in mim.PAPER_VALUES["E2"].items():
        rows = papers[papers["method"] == method].sort_values("mid_dim")
        assert rows["mid_dim"].tolist() == list(mim.MID_DIMS)
        for metric in mim.METRICS:
            assert tuple(rows[f"paper_{metric}"]) == values[metric]  # exactly
    assert (mim.sweep_summary(table, "E4")["count"] == 0).all() and len(mim.sweep_summary(table, "E4")) == 20
    with pytest.raises(ValueError, match="experiment must be one of E2, E3, E4, E5"):
        mim.sweep_summary(table, "E1")


DIFFERS_KEY = mim.DIFFERS


def _synthetic(rows):
    base = {"experiment": "E2", "mid_dim": 20, "z_dim": 2, DIFFERS_KEY: "", "H_q_x": 3.0, "x_recon_err": 0.1}
    return pd.DataFrame([{**base, **row} for row in rows])


def test_the_summary_and_the_verdict_give_known_answers():
    known = _synthetic([{"method": "MIM", "seed": 1, "MI_ksg": 1.0, "clf_acc_KNN5": 0.9},
                        {"method": "MIM", "seed": 2, "MI_ksg": 3.0, "clf_acc_KNN5": 0.7},
                        {"method": "VAE", "seed": 1, "MI_ksg": 0.5, "clf_acc_KNN5": 0.3},
                        {"method": "VAE", "seed": 2, "MI_ksg": 0.1, "clf_acc_KNN5": 0.9,
                         DIFFERS_KEY: "training.smoke=True"}])  # fmt: skip
    summary = mim.sweep_summary(known, "E2")
    cell = summary[(summary["method"] == "MIM") & (summary["mid_dim"] == 20)].iloc[0]
    assert cell["count"] == 2 and cell["MI_ksg_mean"] == 2.0 and cell["MI_ksg_std"] == pytest.approx(math.sqrt(2))
    assert cell["paper_MI_ksg"] == 6.75 and cell["paper_clf_acc_KNN5"] == 0.95
    vae = summary[(summary["method"] == "VAE") & (summary["mid_dim"] == 20)].set_index(DIFFERS_KEY)
    assert vae.loc["", "count"] == 1 and vae.loc["training.smoke=True", "count"] == 1  # apart
    assert (vae["paper_MI_ksg"] == 0.2).all()
    verdict = mim.collapse_verdict(known).iloc[0]
    assert verdict["MIM_MI"] == 2.0 and verdict["VAE_MI"] == pytest.approx(0.3) and verdict["mim_higher_MI"]
    assert verdict["MIM_KNN5"] == pytest.approx(0.8) and verdict["VAE_KNN5"] == pytest.approx(0.6) and verdict["mim_higher_KNN5"]
    assert verdict["verdict"].startswith("MIM avoids") and verdict["outside_paper_setting"] == 1
    assert (verdict["paper_MIM_MI"], verdict["paper_VAE_KNN5"]) == (6.75, 0.28)
    collapsed = mim.collapse_verdict(known.assign(MI_ksg=known["MI_ksg"][::-1].values)).iloc[0]
    assert not collapsed["mim_higher_MI"] and collapsed["verdict"] == "not shown: MIM's MI not above the VAE's"
    only_mim = mim.collapse_verdict(known[known["method"] == "MIM"]).iloc[0]
    assert only_mim["mim_higher_MI"] is None and only_mim["verdict"] == "no runs of both MIM and VAE"
    assert mim.collapse_verdict(known, mid_dim=300).iloc[0]["count_MIM"] == 0


def test_the_verdict_of_the_recorded_runs(table):
    verdict = mim.collapse_verdict(table)
    assert verdict["mid_dim"].tolist() == [5]
    row = verdict.iloc[0]
    mim_run, vae_run = _row(table, "E2", "MIM"), _row(table, "E2", "VAE")
    assert (row["count_MIM"], row["count_VAE"]) == (1, 1) and row["outside_paper_setting"] == 2
    assert row["MIM_MI"] == mim_run["MI_ksg"] and row["VAE_KNN5"] == vae_run["clf_acc_KNN5"]
    assert row["mim_higher_MI"] == (mim_run["MI_ksg"] > vae_run["MI_ksg"])
    assert (row["paper_MIM_MI"], row["paper_VAE_MI"], row["paper_MIM_KNN5"]) == (4.9, 0.0, 0.81)


def test_the_sweep_figure_draws_ours_beside_the_papers(table):
    fig = mim.sweep_figure(table, "E2")
    axes = fig.axes
    assert len(axes) == 4 and [ax.get_title() for ax in axes] == list(mim.METRICS.values())
    for ax, metric in zip(axes, mim.METRICS):
        dashed = [line for line in ax.get_lines() if line.get_linestyle() == "--"]
        assert sorted(tuple(line.get_ydata()) for line in dashed) == sorted(v[metric] for v in mim.PAPER_VALUES["E2"].values())
        ours = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
        assert sorted((tuple(line.get_xdata()), tuple(line.get_ydata())) for line in ours) == \
            sorted(((5.0,), (float(_row(table, "E2", m)[metric]),)) for m in ("MIM", "VAE"))  # fmt: skip
        assert ax.get_xlabel() == "mid_dim"
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert {"MIM (paper)", "VAE (paper)", "MIM (ours) *", "VAE (ours) *"} == set(labels)
    assert any("not the paper's setting" in t.get_text() for t in fig.texts)  # the smoke runs' footnote
    plt.close(fig)
    empty = mim.sweep_figure(table, "E5")  # no runs: the paper's values alone
    assert len(empty.axes) == 4 and all(len(ax.get_lines()) == 2 for ax in empty.axes) and empty.axes[0].get_xlabel() == "z_dim"
    plt.close(empty)


def test_the_toy_figure_draws_the_reconstructions_and_200_posteriors(table):
    run = _row(table, "E1", "MIM")["run"]
    view = mim.toy_view(run)
    fig = mim.toy_figure(run)
    top, bottom = fig.axes[:2]
    assert len(fig.axes) == 2
    ellipses = [p for p in bottom.patches if isinstance(p, Ellipse)]
    assert len(ellipses) == 200
    assert [e.width for e in ellipses] == pytest.approx((2 * view["q_std"][:, 0]).tolist())
    assert [e.height for e in ellipses] == pytest.approx((2 * view["q_std"][:, 1]).tolist())
    np.testing.assert_allclose([e.center for e in ellipses], view["q_mean"].numpy(), rtol=1e-6)
    dots = [c for c in top.collections if isinstance(c, PathCollection)]
    assert len(dots) == 1 and dots[0].get_facecolors()[0].tolist() == [1.0, 0.0, 0.0, 1.0]  # red
    np.testing.assert_allclose(dots[0].get_offsets(), view["x_recon"].numpy(), rtol=1e-6)
    text = " ".join(t.get_text() for t in top.texts)
    assert f"RMSE = {view['x_recon_err']:.2f}" in text and f"MI = {view['MI_ksg']:.2f}" in text
    assert top.get_xlim() == (-2, 2) and bottom.get_xlim() == (-3, 3)
    contours = [c for c in top.collections if isinstance(c, ContourSet)]  # P(x): 5 levels
    assert len(contours) == 1 and len(contours[0].levels) == 5
    plt.close(fig)
    other = mim.toy_figure(_row(table, "E2", "VAE")["run"])  # any 2-D run
    assert sum(isinstance(p, Ellipse) for p in other.axes[1].patches) == 200
    plt.close(other)
    panels = mim.e1_figure(table)  # only the MIM panel exists
    assert len(panels.axes) == 2 and panels.axes[0].get_title() == "MIM on toyMIM (seed 1)"
    plt.close(panels)
    assert mim.e1_figure(table[table["experiment"] != "E1"]) is None


def test_the_e1_animation_has_one_frame_per_evaluation(table, tmp_path):
    from PIL import Image

    run = _row(table, "E1", "MIM")["run"]
    recorded = mim.toy_frames(run)
    assert len(recorded["frames"]) == len(recorded["evaluations"]) == 4  # 40 iterations, an evaluation every 10
    assert all(frame["x"].shape == (200, 2) and frame["q_std"].shape == (200, 2) for frame in recorded["frames"])
    assert not all(bool((a["q_mean"] == b["q_mean"]).all()) for a, b in zip(recorded["frames"], recorded["frames"][1:]))
    with Image.open(mim.animation(run, tmp_path / "e1.gif")) as gif:
        assert gif.n_frames == 4
    with pytest.raises(ValueError, match="training.loss.frames"):
        mim.toy_frames(_row(table, "E2", "VAE")["run"])


def test_the_command_line_writes_the_tables_and_figures(store, table, tmp_path, capsys, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))  # no mim_images store: its tables empty, no image figures
    mim.main(["--source", str(store), "--out", str(out)])
    printed = capsys.readouterr().out
    assert f"{len(RUNS)} completed mim runs" in printed and "E2 collapse verdict:" in printed
    assert "0 completed mim_images runs" in printed
    names = {"runs.csv", "collapse.csv", "e1.png", *(f"summary_E{i}.csv" for i in range(2, 6)),
             *(f"sweep_E{i}.png" for i in range(2, 6)), f"toy_{_row(table, 'E1', 'MIM')['run_id']}.png",
             f"animation_{_row(table, 'E1', 'MIM')['run_id']}.gif", "image_runs.csv", "image_summary.csv"}  # fmt: skip
    assert {p.name for p in out.iterdir()} == names and all((out / n).stat().st_size > 0 for n in names)
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == len(RUNS) and "run" not in runs.columns and set(runs["method"]) == {"MIM", "VAE"}
    assert pd.read_csv(out / "summary_E2.csv")["count"].sum() == 2
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "empty"))  # no store: no runs, the paper's values alone
    mim.main(["--out", str(tmp_path / "none")])
    assert "0 completed mim runs" in capsys.readouterr().out
    assert (tmp_path / "none" / "sweep_E3.png").stat().st_size > 0 and not (tmp_path / "none" / "e1.png").exists()


def test_the_notebook_draws_the_figures_from_the_records(store, tmp_path):
    text = execute_notebook("mim.ipynb", {"GENLAB_MIM_RUNS": str(store), "GENLAB_MIM_IMAGES_RUNS": "", "GENLAB_MONGO": "",
                                          "GENLAB_RESULTS": str(tmp_path / "results"), "GENLAB_DATA": str(tmp_path)},
                            tmp_path)  # fmt: skip
    assert f"{len(RUNS)} completed mim runs" in text and "2 runs for E2: " in text
    assert "no runs for E3" in text and "no runs for E4" in text and "no runs for E5" in text
    assert "mid_dim 5: " in text and "no runs for E1" not in text
    assert "0 completed mim_images runs" in text and "no image runs yet" in text  # E6: no store under GENLAB_DATA
    shown = pd.read_csv(tmp_path / "results" / "runs.csv")
    assert len(shown) == len(RUNS) and set(shown["experiment"]) == {"E1", "E2"}
    assert (tmp_path / "results" / "e1.png").stat().st_size > 0 and (tmp_path / "results" / "sweep_E2.png").is_file()
