"""genlab.analysis.icebeem_images from tiny recorded runs of experiments.icebeem_images (CIFAR-10's
synthetic stand-in, smoke settings): the tables hold the recorded metrics, the summaries the median
and spread over seeds, the comparisons the paper's values (docs/icebeem.md §8); the figures and the
notebook are drawn from the records, and from an empty store."""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
import pytest
from conftest import execute_notebook
from threadpoolctl import threadpool_limits

from genlab.analysis import icebeem_images

COMMON = ["training.batch_size=16", "training.progress=off"]
RUNS = [  # (part and settings), in the order they build on each other
    ["pretrain", "training.max_iterations=3"],
    ["baseline", "training.max_iterations=3"],
    *[["transfer", "dataset.first_n=32", f"seed={s}", "training.max_iterations=4"] for s in (0, 1)],  # 2 epochs of 2 steps
    ["transfer_n0", "seed=0", "training.max_iterations=4", "training.batch_size=64"],  # the whole held-out part (~100): 1 epoch
    *[["transfer_baseline", "dataset.first_n=32", f"seed={s}", "training.max_iterations=4"] for s in (0, 1)],
    *[[part, f"seed={s}", "training.max_iterations=2"] for part in ("representation", "representation_baseline") for s in (0, 1, 2)],
    *[[part, f"pair={pair}"] for part in ("mcc", "mcc_baseline") for pair in ("[0,1]", "[0,2]", "[1,2]")],
    ["semisupervised"],
    ["semisupervised_baseline"],
]  # fmt: skip
PAIRS = [(0, 1), (0, 2), (1, 2)]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A file store with every part recorded once per seed / pair, in process, one BLAS thread (the
    CCA of the weak MCC is ~100x slower with two threads on a busy 2-core machine)."""
    from experiments.icebeem_images import ex
    from ingredients.observers import run_cli

    root = tmp_path_factory.mktemp("icebeem-images-analysis")
    store = root / "sims" / "icebeem_images"
    saved = os.environ.get("GENLAB_DATA")
    os.environ["GENLAB_DATA"] = str(root)
    try:
        with threadpool_limits(limits=1):
            for args in RUNS:
                ex.observers.clear()  # run_cli adds its file store observer on every call
                run_cli(ex, ["icebeem_images", "-F", str(store), "--loglevel", "ERROR", "with", "cifar10", "smoke",
                             *COMMON, *args])  # fmt: skip
    finally:
        ex.observers.clear()
        os.environ.pop("GENLAB_DATA") if saved is None else os.environ.__setitem__("GENLAB_DATA", saved)
    return store


@pytest.fixture(scope="module")
def runs(store):
    return icebeem_images.load(store)


def test_every_recorded_run_is_loaded(runs):
    assert len(runs) == len(RUNS) and set(runs["status"]) == {"COMPLETED"}
    assert runs["part"].value_counts().to_dict() == {
        "pretrain": 1, "baseline": 1, "transfer": 3, "transfer_baseline": 2, "representation": 3,
        "representation_baseline": 3, "mcc": 3, "mcc_baseline": 3, "semisupervised": 1, "semisupervised_baseline": 1}  # fmt: skip


def test_the_representation_table_holds_each_pairs_scores(runs):
    table = icebeem_images.representation_table(runs)
    assert len(table) == 6 and list(table.columns) == icebeem_images.REPRESENTATION
    for method in ("ICE-BeeM", "Baseline"):
        rows = table[table["method"] == method]
        assert sorted(zip(rows["seed_i"], rows["seed_j"])) == PAIRS
    assert set(table["dataset"]) == {"cifar10"} and table["smoke"].all()
    by_id = {run.run_id: run for run in runs["run"]}
    for _, row in table.iterrows():
        final = by_id[row["run_id"]].final_metrics()
        for score in icebeem_images.SCORES:
            assert row[score] == final[f"test.mcc_{score}"]
            assert 0.0 <= row[score] <= 1.0 + 1e-9
    summary = icebeem_images.representation_summary(table)
    assert len(summary) == 2 * 4 and (summary["count"] == 3).all()
    cell = summary[(summary["method"] == "Baseline") & (summary["score"] == "strong_out")].iloc[0]
    values = table.loc[table["method"] == "Baseline", "strong_out"]
    assert cell["median"] == pytest.approx(values.median()) and cell["q1"] == pytest.approx(values.quantile(0.25))


def test_the_transfer_table_is_the_last_epochs_median_loss_x1e4(runs):
    table = icebeem_images.transfer_table(runs)
    assert len(table) == 5 and list(table.columns) == icebeem_images.TRANSFER_COLUMNS
    by_id = {run.run_id: run for run in runs["run"]}
    for _, row in table.iterrows():
        medians = by_id[row["run_id"]].metric("epoch.loss_median")
        assert len(medians) == row["epochs"] >= 1
        assert row["loss"] == pytest.approx(1e4 * medians.loc[medians.index.max()])
        assert np.isfinite(row["loss"])
    cells = sorted(zip(table["method"], table["N"], table["seed"]))
    assert cells == [("Baseline", 32, 0), ("Baseline", 32, 1), ("Transfer", 0, 0), ("Transfer", 32, 0), ("Transfer", 32, 1)]
    assert table.loc[table["N"] == 32, "epochs"].tolist() == [2, 2, 2, 2]  # 32 images, batches of 16, 4 steps
    summary = icebeem_images.transfer_summary(table)
    assert summary[["method", "N", "count"]].values.tolist() == [["Baseline", 32, 2], ["Transfer", 0, 1], ["Transfer", 32, 2]]
    transfer = summary[(summary["method"] == "Transfer") & (summary["N"] == 32)].iloc[0]
    a, b = table.loc[(table["method"] == "Transfer") & (table["N"] == 32), "loss"]
    assert transfer["median"] == pytest.approx((a + b) / 2) and transfer["std"] == pytest.approx(abs(a - b) / math.sqrt(2))
    assert math.isnan(summary[summary["N"] == 0].iloc[0]["std"])  # one seed: no spread


def test_the_semisupervised_table_and_the_missing_paper_values(runs):
    table = icebeem_images.semisupervised_table(runs)
    assert table["method"].tolist() == ["ICE-BeeM", "Baseline"] and (table["repetitions"] == 5).all()
    by_id = {run.run_id: run for run in runs["run"]}
    for _, row in table.iterrows():
        run = by_id[row["run_id"]]
        assert row["accuracy"] == run.final_metrics()["test.svm_accuracy"]
        assert row["accuracy"] == pytest.approx(np.mean(run.info["svm_accuracies"]))
        assert 0 <= row["accuracy"] <= 100 and row["std"] >= 0
    comparison = icebeem_images.semisupervised_comparison(table)
    assert comparison["paper"].isna().all() and (comparison["note"] == icebeem_images.SEMISUPERVISED_NOTE).all()


def test_the_comparisons_hold_the_papers_values_beside_ours(runs):
    compared = icebeem_images.paper_comparison(icebeem_images.representation_table(runs),
                                               icebeem_images.transfer_summary(icebeem_images.transfer_table(runs)),
                                               icebeem_images.semisupervised_table(runs))  # fmt: skip
    representation = compared["representation"]
    assert len(representation) == len(icebeem_images.PAPER_REPRESENTATION)  # ours only at cifar10 strong_out: one row each
    cifar10 = representation[(representation["dataset"] == "cifar10")].set_index("method")
    assert cifar10.loc["ICE-BeeM", "paper_median"] == 0.87 and cifar10.loc["Baseline", "paper_q3"] == 0.67
    assert (cifar10["count"] == 3).all() and cifar10["smoke"].all()
    assert cifar10.loc["ICE-BeeM", "diff"] == pytest.approx(cifar10.loc["ICE-BeeM", "median"] - 0.87)
    assert (representation.loc[representation["dataset"] != "cifar10", "count"] == 0).all()
    transfer = compared["transfer"]
    assert len(transfer) == 4 * 7 and (transfer["count"] == 0).all()  # N = 32 is not on the paper's curves
    mnist = transfer[(transfer["dataset"] == "mnist") & (transfer["method"] == "Baseline")]
    assert mnist["N"].tolist() == [500, 1000, 2000, 3000, 4000, 5000, 6000]
    assert tuple(mnist["paper"]) == icebeem_images.PAPER_TRANSFER[("mnist", "Baseline")]
    ours = pd.DataFrame([{"dataset": "cifar10", "method": "Transfer", "N": 500, "smoke": False, "count": 5,
                          "median": 8.0, "std": 1.0}])  # fmt: skip
    point = icebeem_images.transfer_comparison(ours).query("count > 0").iloc[0]
    assert (point["paper"], point["diff"]) == (8.55, pytest.approx(-0.55))


def test_main_writes_the_tables_and_figures(store, tmp_path, capsys):
    icebeem_images.main(["--source", str(store), "--out", str(tmp_path)])
    assert f"{len(RUNS)} completed icebeem_images runs" in capsys.readouterr().out
    for name in ("representation.png", "transfer.png"):
        assert (tmp_path / name).stat().st_size > 0
    for name in ("representation", "transfer", "transfer-summary", "semisupervised", "paper-comparison-transfer"):
        assert (tmp_path / f"{name}.csv").is_file()
    assert len(pd.read_csv(tmp_path / "transfer.csv")) == 5


def test_an_empty_store_gives_empty_tables_and_the_figures_still_draw(tmp_path, capsys, monkeypatch):
    empty = tmp_path / "store"
    empty.mkdir()
    runs = icebeem_images.load(empty)
    assert runs.empty
    made = icebeem_images.tables(runs)
    for name in ("representation", "representation-summary", "transfer", "transfer-summary", "semisupervised",
                 "paper-comparison-semisupervised"):  # fmt: skip
        assert made[name].empty, name
    assert len(made["paper-comparison-transfer"]) == 28 and (made["paper-comparison-transfer"]["count"] == 0).all()
    paths = icebeem_images.figures(runs, tmp_path / "out")
    assert paths["figure_representation"].stat().st_size > 0 and paths["figure_transfer"].stat().st_size > 0
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nothing"))  # the default store does not exist: no runs
    assert icebeem_images.load().empty
    icebeem_images.main(["--out", str(tmp_path / "default")])
    assert "0 completed icebeem_images runs" in capsys.readouterr().out


def test_other_datasets_get_their_own_panels():
    rows = [{"dataset": "fashion_mnist", "method": m, "N": n, "smoke": False, "count": 2, "median": v, "std": 0.1}
            for m, v in (("Transfer", 3.0), ("Baseline", 4.0)) for n in (500, 1000)]  # fmt: skip
    fig = icebeem_images.transfer_figure(pd.DataFrame(rows))
    assert [ax.get_title() for ax in fig.axes][:3] == ["(c) MNIST transfer", "(d) CIFAR10 transfer",
                                                       "FashionMNIST transfer (not in the paper's figure)"]  # fmt: skip
    table = pd.DataFrame([{"run_id": 1, "dataset": "fashion_mnist", "method": "ICE-BeeM", "seed_i": 0, "seed_j": 1,
                           "strong_in": 0.5, "strong_out": 0.4, "weak_in": 0.9, "weak_out": 0.8, "smoke": False}])  # fmt: skip
    assert len(icebeem_images.representation_figure(table).axes) == 3


def test_the_notebook_redraws_the_panels_from_the_records(store, tmp_path):
    text = execute_notebook("icebeem_images.ipynb", {"GENLAB_ICEBEEM_IMAGES_RUNS": str(store), "GENLAB_MONGO": "",
                                                     "GENLAB_RESULTS": str(tmp_path / "results"),
                                                     "GENLAB_DATA": str(tmp_path)}, tmp_path)  # fmt: skip
    assert f"{len(RUNS)} completed icebeem_images runs" in text
    assert (tmp_path / "results" / "representation.png").stat().st_size > 0
    assert (tmp_path / "results" / "transfer.png").stat().st_size > 0
    assert len(pd.read_csv(tmp_path / "results" / "representation.csv")) == 6
