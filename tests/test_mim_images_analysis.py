"""genlab.analysis.mim_images from tiny recorded runs of experiments.mim_images (smoke settings, the
embedded digits): the table labels dataset, model and prior from the config and holds the recorded
statistics and what differs from the paper's setting; the summary is the mean and spread over seeds; the
image figures are drawn from each run's mim_images.npz; the command line and the notebook write the
tables and figures."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from conftest import execute_notebook  # noqa: E402
from test_mim_images_experiment import PIXEL, SMALL, config_of, record  # noqa: E402

from genlab.analysis import mim, mim_images  # noqa: E402

RUNS = [[*SMALL, "model.convhvae", "training.vae", "seed=1"],
        [*SMALL, "model.convhvae", "training.vae", "seed=2"],
        ["dynamic_fashion_mnist", *SMALL, "model.pixelhvae", "model.standard", "training.amim", *PIXEL, "seed=1"]]  # fmt: skip
CELLS = [("dynamic FashionMNIST", "PixelHVAE A-MIM", "standard", "hvae_mim", 1),
         ("dynamic MNIST", "convHVAE VAE", "vampprior", "hvae_vae", 1),
         ("dynamic MNIST", "convHVAE VAE", "vampprior", "hvae_vae", 2)]  # fmt: skip


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three tiny runs (4 updates, 4 importance samples on 64 images), in process with one thread: the
    convHVAE VAE with the VampPrior at seeds 1 and 2 on MNIST, the PixelHVAE A-MIM with the standard
    prior on FashionMNIST (its tiny stand-in)."""
    root = tmp_path_factory.mktemp("mim-images-analysis")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for args in RUNS:
            record(root, args)
    finally:
        torch.set_num_threads(threads)
    return root


@pytest.fixture(scope="module")
def table(store):
    return mim_images.runs_table(store)


def test_the_table_labels_each_run_and_holds_its_statistics(table):
    assert list(table.columns[: len(mim_images.TABLE)]) == mim_images.TABLE and table.columns[-1] == "run"
    assert sorted(zip(table["dataset"], table["model"], table["prior"], table["objective"], table["seed"])) == CELLS
    for _, row in table.iterrows():
        final = row["run"].final_metrics()
        for metric in mim_images.METRICS:
            assert row[metric] == final[f"test.{metric}"]
        assert (row["is_samples"], row["nll_examples"], row["iterations"], row["smoke"]) == (4, 64, 4, True)
        for difference in ("training.smoke=True", "dataset.tiny=True", "training.max_iterations=4", "training.warmup=1 (paper: 100)",
                           "evaluation.is_samples=4 (paper: 5000)", "evaluation.max_examples=64"):  # fmt: skip
            assert difference in row[mim_images.DIFFERS]


@pytest.mark.parametrize("named, label", [([], "convHVAE VAE"), (["training.smim"], "convHVAE S-MIM"),
                                          (["model.pixelhvae"], "PixelHVAE VAE"), (["model.pixelhvae", "training.amim"], "PixelHVAE A-MIM"),
                                          (["training.amim"], "convHVAE A-MIM")])  # fmt: skip
def test_the_model_comes_from_the_config_and_the_paper_setting_is_the_named_configs(named, label):
    config = config_of(["omniglot", *named, "model.standard"], {"seed": 7})
    assert mim_images.model_label(config) == label and mim_images.differences(config) == []
    assert mim_images.differences(config_of(named, {"training.epochs": 3000})) == []  # early stopping ends runs anyway
    assert mim_images.differences(config_of(named, {"training.epochs": 100, "evaluation.nll_examples": 1000})) == [
        "training.epochs=100 (paper: 2000)", "evaluation.nll_examples=1000"]  # fmt: skip
    assert mim_images.dataset_label(config["dataset"]["name"]) == "Omniglot"


def test_the_summary_is_the_mean_and_spread_over_seeds(table):
    summary = mim_images.summary_table(table)
    assert summary[["dataset", "model", "prior", "paper_setting", "count"]].values.tolist() == [
        ["dynamic MNIST", "convHVAE VAE", "vampprior", False, 2], ["dynamic FashionMNIST", "PixelHVAE A-MIM", "standard", False, 1]]
    vae, amim = summary.iloc[0], summary.iloc[1]
    a, b = table.loc[table["model"] == "convHVAE VAE", "nll"]
    assert vae["nll_mean"] == pytest.approx((a + b) / 2) and vae["nll_std"] == pytest.approx(abs(a - b) / math.sqrt(2))
    for metric in mim_images.SUMMARY_METRICS:
        values = table.loc[table["model"] == "convHVAE VAE", metric]
        assert vae[f"{metric}_mean"] == pytest.approx(values.mean()) and math.isnan(amim[f"{metric}_std"])
    known = pd.DataFrame([{"dataset": "Omniglot", "model": m, "prior": "vampprior", "seed": s, "nll": v, "NMI": 0.5,
                           mim_images.DIFFERS: d} for m, s, v, d in [("convHVAE S-MIM", 1, 90.0, ""), ("convHVAE S-MIM", 2, 92.0, ""),
                                                                     ("convHVAE S-MIM", 3, 200.0, "training.smoke=True"),
                                                                     ("convHVAE VAE", 1, 89.0, "")]])  # fmt: skip
    summary = mim_images.summary_table(known)
    assert summary[["model", "paper_setting", "count", "nll_mean"]].values.tolist() == [
        ["convHVAE VAE", True, 1, 89.0], ["convHVAE S-MIM", True, 2, 91.0], ["convHVAE S-MIM", False, 1, 200.0]]
    assert summary.iloc[1]["nll_std"] == pytest.approx(math.sqrt(2)) and summary["clf_acc_KNN5_mean"].isna().all()
    assert mim_images.summary_table(table.iloc[:0]).empty


def test_the_figures_are_drawn_from_the_recorded_images(table):
    vae = table[(table["model"] == "convHVAE VAE") & (table["seed"] == 1)].iloc[0]["run"]
    arrays = mim_images.image_arrays(vae)
    fig = mim_images.image_figure(vae)
    samples, recon, tsne, pseudo = fig.axes
    np.testing.assert_allclose(samples.get_images()[0].get_array(), mim_images.tile(arrays["samples"]))
    top = mim_images.tile(np.concatenate([arrays["real"][:32], arrays["reconstructions"][:32]]))
    np.testing.assert_allclose(recon.get_images()[0].get_array(), top)
    np.testing.assert_allclose(tsne.collections[0].get_offsets(), arrays["tsne"])
    assert pseudo.get_images()[0].get_array().shape == (7 * 28, 8 * 28)  # 50 pseudo-inputs, rows of 8
    plt.close(fig)
    pixel = table[table["model"] == "PixelHVAE A-MIM"].iloc[0]["run"]
    fig = mim_images.image_figure(pixel)
    assert len(fig.axes) == 3  # the standard prior: no pseudo-inputs
    plt.close(fig)
    fig = mim_images.images_figure(table, "mnist")  # one row per model: the lowest seed of the convHVAE VAE
    assert [sub.get_suptitle() for sub in fig.subfigs] == ["convHVAE VAE, VampPrior, dynamic MNIST, seed 1 *"]
    assert any("not the paper's setting" in t.get_text() and "dataset.tiny=True" in t.get_text() for t in fig.texts)
    plt.close(fig)
    fig = mim_images.images_figure(table.assign(dataset="dynamic MNIST"))
    assert [sub.get_suptitle().split(",")[0] for sub in fig.subfigs] == ["convHVAE VAE", "PixelHVAE A-MIM"]
    plt.close(fig)
    assert mim_images.images_figure(table, "omniglot") is None and mim_images.images_figure(table.iloc[:0]) is None


def test_the_results_and_the_command_line(store, table, tmp_path, capsys, monkeypatch):
    paths = mim_images.write_image_results(table, tmp_path / "direct")
    assert set(paths) == {"image_runs", "image_summary", "images_mnist", "images_fashion_mnist"}
    assert all(path.stat().st_size > 0 for path in paths.values())
    written = pd.read_csv(paths["image_runs"])
    assert len(written) == 3 and "run" not in written and written["nll"].tolist() == pytest.approx(table["nll"].tolist())
    assert pd.read_csv(paths["image_summary"])["count"].tolist() == [2, 1]
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))  # no mim store: the toys' figures show the paper's values
    mim.main(["--images-source", str(store), "--out", str(tmp_path / "cli")])
    printed = capsys.readouterr().out
    assert "0 completed mim runs" in printed and "3 completed mim_images runs" in printed and "PixelHVAE A-MIM" in printed
    assert {"image_runs.csv", "image_summary.csv", "images_mnist.png", "images_fashion_mnist.png", "sweep_E2.png"} <= {
        p.name for p in (tmp_path / "cli").iterdir()}  # fmt: skip
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "nothing"))
    assert mim_images.load_image_runs().empty and mim_images.runs_table().empty


def test_the_notebook_draws_the_image_results(store, tmp_path):
    text = execute_notebook("mim.ipynb", {"GENLAB_MIM_IMAGES_RUNS": str(store), "GENLAB_MIM_RUNS": "", "GENLAB_MONGO": "",
                                          "GENLAB_RESULTS": str(tmp_path / "results"), "GENLAB_DATA": str(tmp_path),
                                          "OMP_NUM_THREADS": "1"}, tmp_path)  # fmt: skip
    assert "0 completed mim runs" in text and "3 completed mim_images runs" in text
    assert "dynamic MNIST: 2 runs (images_mnist.png)" in text and "dynamic FashionMNIST: 1 runs" in text
    results = tmp_path / "results"
    assert (results / "images_mnist.png").stat().st_size > 0 and (results / "images_fashion_mnist.png").stat().st_size > 0
    assert pd.read_csv(results / "image_summary.csv")["count"].tolist() == [2, 1]
