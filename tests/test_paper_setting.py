"""Paper tables use only runs in the paper's setting (genlab.analysis.paper_setting), the others are
listed apart with what differs; the figures mark outliers, have density scales and share one Hinton
scale. Configs, tables and curves are built here; nothing trains."""

from __future__ import annotations

import copy
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from genlab.analysis import disent, fce2d, plots  # noqa: E402
from genlab.analysis.paper_setting import DIFFERS, differences, reference_setting, split_runs  # noqa: E402

# the compared parts of recorded configs in the paper's setting (what Sacred records, trimmed)
DISENT_EVALUATION = {"run": ["objective_eval", "disentanglement"], "samples": None, "batch_size": 512,
                     "quantities": ["recon_nll", "kl"], "sample_seed": 1, "dci_samples": None, "dci_alpha": 0.02,
                     "mig_bins": 20, "factorvae_votes": 800, "max_examples": None}
PAPER_DISENT = {
    "seed": 3,
    "dataset": {"name": "dsprites", "source": "file", "path": None, "strides": None, "tiny": False,
                "condition": "recomb2range", "variant": "shape2tx", "val_fraction": 0.05},
    "training": {"objective": "factor_vae", "loss": {"gamma": 50.0}, "batch_size": 128, "lr": 1e-4, "epochs": 30,
                 "max_iterations": None, "phases": None, "smoke": False, "eval_every": 1000},
    "evaluation": DISENT_EVALUATION,
}
PAPER_DECODER = {**PAPER_DISENT, "training": {**PAPER_DISENT["training"], "objective": "gt_decoder", "max_iterations": 5000},
                 "evaluation": {k: DISENT_EVALUATION[k] for k in ("samples", "batch_size", "quantities", "sample_seed", "max_examples")}
                 | {"run": ["objective_eval"]}}
PAPER_FCE = {
    "seed": 42,
    "dataset": {"name": "8gaussians", "n_train": 500_000, "n_eval": 50_000, "data_seed": None, "tiny": False},
    "model": {"options": {"flow": "maf"}},
    "training": {"objective": "fce", "batch_size": 1000, "epochs": 100, "max_iterations": None, "phases": None, "smoke": False},
    "evaluation": {"run": []},
}


def changed(config: dict, **updates) -> dict:
    """A copy of ``config`` with dotted keys set (``changed(c, **{"dataset.tiny": True})``)."""
    config = copy.deepcopy(config)
    for dotted, value in updates.items():
        *parents, last = dotted.split(".")
        node = config
        for part in parents:
            node = node[part]
        node[last] = value
    return config


# --- the paper's setting ------------------------------------------------------------------------------


@pytest.mark.parametrize("config, experiment, length", [
    (PAPER_DISENT, "disent", {"epochs": 30}), (PAPER_DECODER, "decoders", {"iterations": 5000}), (PAPER_FCE, "fce2d", {"epochs": 100})])
def test_a_paper_default_config_has_no_differences(config, experiment, length):
    assert differences(config, experiment) == []
    # what a sweep varies is not compared; nor is how many examples an evaluation batch holds
    sweep = changed(config, **{"seed": 0, "dataset.name": "pinwheel" if experiment == "fce2d" else "shapes3d",
                               "training.batch_size": 64, "evaluation.batch_size": 4096})
    assert differences(sweep, experiment) == []
    # the same length given as one phase is the same run length
    as_phases = changed(config, **{"training.phases": [{"name": "train", **length}]})
    assert differences(as_phases, experiment) == []


def test_the_reference_is_each_experiments_own_default_config(tmp_path):
    from experiments.decoders import ex as decoders
    from experiments.disent import ex as disent_ex
    from experiments.fce2d import ex as fce

    quiet = {"--loglevel": "ERROR"}
    fake = tmp_path / "dsprites.npz"
    fake.touch()  # the config hook only checks that the published file exists
    for name, ex, named in (("disent", disent_ex, []), ("disent", disent_ex, ["training.factor_vae"]),
                            ("decoders", decoders, []), ("fce2d", fce, []), ("fce2d", fce, ["training.flow_mle_2d"])):
        updates = {"dataset.path": str(fake)} if name != "fce2d" else {}
        config = ex.run("print_config", named_configs=named, config_updates=updates, options=quiet).config
        assert differences(config, name) == [], (name, named)
    smoke = disent_ex.run("print_config", named_configs=["dataset.generated", "dataset.tiny", "training.smoke"], options=quiet).config
    assert differences(smoke, "disent") == [
        "dataset.source=generated (paper: file)", "dataset.tiny=True (paper: False)", "training.smoke=True (paper: False)",
        "evaluation.max_examples=2000 (paper: None)", "training.max_iterations=200 (paper: training.epochs=30)"]
    assert reference_setting("decoders")["training.max_iterations"] == 5000  # configs.disent.gt_decoder
    assert reference_setting("fce2d")["dataset.n_train"] == 500_000 and reference_setting("fce2d")["training.epochs"] == 100


def test_a_tiny_smoke_short_generated_run_lists_exactly_what_differs():
    tiny = changed(PAPER_DISENT, **{"dataset.source": "generated", "dataset.tiny": True, "training.max_iterations": 200,
                                    "training.smoke": True, "evaluation.max_examples": 2000, "evaluation.factorvae_votes": 40})
    assert differences(tiny, "disent") == [
        "dataset.source=generated (paper: file)", "dataset.tiny=True (paper: False)", "training.smoke=True (paper: False)",
        "evaluation.max_examples=2000 (paper: None)", "evaluation.factorvae_votes=40 (paper: 800)",
        "training.max_iterations=200 (paper: training.epochs=30)"]
    assert differences(changed(PAPER_DISENT, **{"dataset.strides": [1, 1, 2, 4, 2, 2]}), "disent") == [
        "dataset.strides=[1, 1, 2, 4, 2, 2] (paper: None)"]
    assert differences(changed(PAPER_DECODER, **{"training.max_iterations": 30}), "decoders") == [
        "training.max_iterations=30 (paper: training.max_iterations=5000)"]
    short = changed(PAPER_FCE, **{"dataset.n_train": 4000, "dataset.n_eval": 2000, "training.max_iterations": 40})
    assert differences(short, "fce2d") == ["dataset.n_train=4000 (paper: 500000)", "dataset.n_eval=2000 (paper: 50000)",
                                           "training.max_iterations=40 (paper: training.epochs=100)"]
    assert differences(changed(PAPER_FCE, **{"training.epochs": 20}), "fce2d") == ["training.epochs=20 (paper: training.epochs=100)"]
    unrecorded = copy.deepcopy(PAPER_FCE)
    del unrecorded["dataset"]["n_eval"]
    assert differences(unrecorded, "fce2d") == ["dataset.n_eval not recorded (paper: 50000)"]
    with pytest.raises(ValueError, match="no paper setting is known for experiment 'composition'"):
        differences(PAPER_DISENT, "composition")


def test_split_runs_marks_the_other_runs():
    tiny = changed(PAPER_DISENT, **{"dataset.tiny": True})
    runs = pd.DataFrame({"run_id": [1, 2], "run": [SimpleNamespace(config=PAPER_DISENT, experiment="disent"),
                                                   SimpleNamespace(config=tiny, experiment="disent")]})
    paper, others = split_runs(runs)
    assert paper["run_id"].tolist() == [1] and DIFFERS not in paper
    assert others["run_id"].tolist() == [2] and others[DIFFERS].tolist() == ["dataset.tiny=True (paper: False)"]


# --- the comparison tables ------------------------------------------------------------------------------


def disent_table() -> pd.DataFrame:
    """Rows as ``disent.results_table`` writes them: two β-VAE runs on shape2tx, the tiny one more
    disentangled, and a FactorVAE run that is tiny only."""
    split = dict(dataset="dsprites", condition="recomb2range", variant="shape2tx", experiment="disent")
    tiny = "dataset.tiny=True (paper: False); training.max_iterations=200 (paper: training.epochs=30)"
    return pd.DataFrame([
        dict(split, run_id=1, model="β-VAE (β=8)", iterations=140_000, train_nll=100.0, test_nll=210.0, disentanglement=0.4, **{DIFFERS: ""}),
        dict(split, run_id=2, model="β-VAE (β=8)", iterations=200, train_nll=900.0, test_nll=950.0, disentanglement=0.9, **{DIFFERS: tiny}),
        dict(split, run_id=3, model="FactorVAE (γ=20)", iterations=200, train_nll=800.0, test_nll=990.0, disentanglement=0.2, **{DIFFERS: tiny}),
    ])


def test_the_disent_comparison_holds_only_paper_setting_runs_and_lists_the_others_marked():
    table = disent_table()
    comparison = disent.compare_with_paper(table)
    assert comparison["model"].tolist() == ["β-VAE (β=8)"] and comparison["train_nll"].tolist() == [100.0]
    assert comparison["paper_test_nll"].tolist() == [215.95] and DIFFERS not in comparison
    others = disent.other_runs_vs_paper(table)
    assert sorted(others["run_id"]) == [2, 3]
    assert (others[DIFFERS].str.contains("dataset.tiny=True")).all()
    assert others.loc[others["run_id"] == 3, "paper_train_nll"].item() == 28.00
    chosen = disent.select_models(table)  # a paper-setting run is chosen over a more disentangled tiny one
    assert chosen.set_index("model")["run_id"].to_dict() == {"β-VAE (β=8)": 1, "FactorVAE (γ=20)": 3}


def test_the_fce_comparison_holds_only_paper_setting_runs_and_lists_the_others_marked():
    row = dict(dataset="8gaussians", objective="fce", flow="maf", mse_ebm=0.013, final_neg_value=1.33)
    table = pd.DataFrame([
        dict(row, run_id=1, iterations=50_000, **{DIFFERS: ""}),
        dict(row, run_id=2, iterations=40, mse_ebm=2.0, **{DIFFERS: "dataset.n_train=4000 (paper: 500000)"}),
        dict(row, run_id=3, iterations=40, dataset="pinwheel", **{DIFFERS: "dataset.n_train=4000 (paper: 500000)"}),
    ])
    comparison = fce2d.compare_with_original(table)
    assert comparison["run_id"].tolist() == [1] and comparison["original_mse"].tolist() == ["0.03-0.05"]
    others = fce2d.other_runs_vs_original(table)
    assert others["run_id"].tolist() == [2] and others[DIFFERS].tolist() == ["dataset.n_train=4000 (paper: 500000)"]


# --- figures ---------------------------------------------------------------------------------------------


class CurveRun:
    """What ``fce2d.curves_figure`` reads of a run: config, experiment, id and metric curves."""

    def __init__(self, run_id, config, metrics):
        self.run_id, self.config, self.experiment, self._metrics = run_id, config, "fce2d", metrics

    def metric_names(self):
        return sorted(self._metrics)

    def metric(self, name):
        steps, values = self._metrics[name]
        return pd.Series(values, index=pd.Index(steps, name="step"), dtype=float)


def test_curves_keep_the_scale_of_a_curve_with_one_spike_and_mark_the_spike():
    steps = list(range(500, 10_001, 500))
    mse = [5.0 * 0.7**i + 0.03 for i in range(len(steps))]
    mse[6] = 1e12  # one diverged evaluation
    batch = (list(range(50, 10_001, 50)), [1.35] * 200)
    spiky = CurveRun(1, PAPER_FCE, {"val.mse_ebm": (steps, mse), "batch.neg_value": batch, "batch.accuracy": batch})
    short = changed(PAPER_FCE, **{"training.max_iterations": 40})
    tiny = CurveRun(2, short, {"val.mse_ebm": ([20, 40], [3.0, 1.0])})
    fig = fce2d.curves_figure(pd.DataFrame({"run": [spiky, tiny]}))
    ax = fig.axes[2]
    bottom, top = ax.get_ylim()
    assert top < 1e3 and bottom <= min(mse) and top >= 5.0  # the spike does not set the scale; every other point fits
    spike_line = next(line for line in ax.lines if line.get_label() == "run 1 maf FCE 8gaussians: mse_ebm")
    assert np.isnan(spike_line.get_ydata()[6]) and np.isfinite(np.delete(spike_line.get_ydata(), 6)).all()
    markers = [line for line in ax.lines if line.get_marker() == "^"]
    assert len(markers) == 1 and markers[0].get_xdata().tolist() == [steps[6]] and markers[0].get_ydata().tolist() == [top]
    notes = " ".join(t.get_text() for t in ax.texts)
    assert "1 point above 1000x" in notes and "not shown to scale" in notes and "1e+12" in notes
    # the short run is drawn faded, labelled *, and the footnote says what differs
    assert any(line.get_label() == "run 2 maf FCE 8gaussians *: mse_ebm" and line.get_alpha() < 1 for line in ax.lines)
    footnote = " ".join(t.get_text() for t in fig.texts)
    assert "not the paper's setting" in footnote and "training.max_iterations=40 (paper:" in footnote.replace("\n", " ")
    plt.close(fig)

    calm = CurveRun(1, PAPER_FCE, {"val.mse_ebm": (steps, [m for i, m in enumerate(mse) if i != 6] + [0.03])})
    fig = fce2d.curves_figure(pd.DataFrame({"run": [calm]}))
    assert not [line for line in fig.axes[2].lines if line.get_marker() == "^"] and not fig.axes[2].texts and not fig.texts
    plt.close(fig)


def test_density_panels_have_data_ticks_and_a_colour_bar():
    x = np.linspace(-4, 4, 40)
    bump = np.exp(-(x[None, :] ** 2 + x[:, None] ** 2))
    fce_grids = {"data": bump, "flow": bump, "ebm": 2 * bump, "ebm_grid": bump}
    fig = fce2d.density_grid_figure([("run 1\nmaf FCE", "8gaussians", fce_grids), ("run 2\nglow MLE", "pinwheel", {"data": bump, "flow": bump})])
    images = [ax for ax in fig.axes if ax.images]
    assert len(images) == 6
    for ax in images:
        assert ax.get_xticks().tolist() == [-4, -2, 0, 2, 4] and ax.get_yticks().tolist() == [-4, -2, 0, 2, 4]
        assert ax.images[0].colorbar is not None
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(colorbars) == 6
    assert images[2].images[0].colorbar.vmax == pytest.approx(2 * bump.max())  # each panel on its own scale
    plt.close(fig)


def test_hinton_panels_share_the_largest_scale_and_say_so():
    small = np.array([[0.5, 0.0], [0.0, 0.25]])
    large = np.array([[2.0, 0.0], [0.0, -1.0]])  # |R|: the sign does not count
    fig = plots.hinton_panels({"VAE": (small, ["a", "b"]), "GT decoder": (large, ["a", "b"])})
    widths = [max(p.get_width() for p in ax.patches) for ax in fig.axes]
    assert widths == [pytest.approx(np.sqrt(0.5 / 2.0) * 0.9), pytest.approx(0.9)]
    assert "one scale for all panels" in fig.get_suptitle() and "largest |R| = 2" in fig.get_suptitle()
    plt.close(fig)
    alone = plots.hinton(small, ["a", "b"])  # alone: its own largest entry fills the cell
    assert max(p.get_width() for p in alone.axes[0].patches) == pytest.approx(0.9)
    plt.close(alone)


def test_the_paper_scatter_fades_runs_outside_the_paper_setting():
    table = disent_table()
    fig = plots.nll_vs_disentanglement(disent.select_models(table))
    ax = fig.axes[0]
    labelled = {line.get_label(): line.get_alpha() for line in ax.lines if not line.get_label().startswith("_")}
    assert labelled["β-VAE (β=8)"] in (None, 1.0) and labelled["FactorVAE (γ=20) *"] < 1
    plots.note_not_paper_setting(fig, table[DIFFERS])
    assert fig.texts and "dataset.tiny=True" in fig.texts[0].get_text()
    plt.close(fig)
