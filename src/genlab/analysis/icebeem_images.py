"""Analysis of the ICE-BeeM image experiments (Khemakhem et al., NeurIPS 2020, sections 5.2-5.3,
figure panels (a)-(d); docs/icebeem.md §7, §8, §11) from recorded runs.

It reads every completed run of ``experiments.icebeem_images`` (default ``data/sims/icebeem_images``,
or a Mongo URL) and picks them by config, never by id: the part from ``part`` (the method is ICE-BeeM
for ``mcc``, ``transfer``, ``semisupervised`` and the baseline for their ``_baseline`` parts), the
dataset from ``dataset.name``, the pair of seeds of an MCC run from ``pair``, the transfer size N from
``dataset.first_n`` (None is N = 0: the whole held-out part with the unconditional model), the
repetition from ``seed``. Pretraining and representation runs only feed the others and are not
tabled.

Metrics (docs/icebeem.md §7):

- representation identifiability (panels (a), (b)): each MCC run's ``test.mcc_strong_in``,
  ``test.mcc_strong_out``, ``test.mcc_weak_in``, ``test.mcc_weak_out``; the figure shows the
  out-of-sample ones as box plots over pairs of seeds;
- transfer (panels (c), (d)): a run's ``epoch.loss_median`` at its last epoch (the largest step),
  times 1e4 as the paper plots it; over seeds, the median (the curve) and the standard deviation
  (ddof 1, NaN for one seed; the band is ±2 std, transfer only);
- semi-supervised: ``test.svm_accuracy`` (%) and ``test.svm_accuracy_std`` over the repetitions. The
  paper's accuracies could not be retrieved (docs/icebeem.md §11): the comparison has NaN there.

``PAPER_REPRESENTATION`` and ``PAPER_TRANSFER`` hold the values read by eye off the published figure
(docs/icebeem.md §8: ±0.01 for MCC, ±0.1 for the scaled losses); the ``*_comparison`` functions put
ours beside them. Smoke runs and runs on the tiny stand-in data (``training.smoke`` or
``dataset.tiny``) are kept but flagged in the column ``smoke``, summarised apart from the others and
drawn faded, with a footnote. A panel without runs is drawn with the paper's values alone and a note.
Nothing here trains.

Command line::

    python -m genlab.analysis.icebeem_images                   # every completed run in data/sims/icebeem_images
    python -m genlab.analysis.icebeem_images --source mongodb://host:27017/genlab --out figures/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from genlab.analysis import plots
from genlab.analysis.runs import MISSING, Run, analysis_parser, experiment_runs, lookup
from genlab.paths import results_dir

EXPERIMENT = "icebeem_images"
DATASETS = ("mnist", "fashion_mnist", "cifar10", "cifar100")
NAMES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "cifar10": "CIFAR10", "cifar100": "CIFAR100"}
ICEBEEM, BASELINE, TRANSFER = "ICE-BeeM", "Baseline", "Transfer"
METHODS = {"mcc": ICEBEEM, "mcc_baseline": BASELINE, "transfer": TRANSFER, "transfer_baseline": BASELINE,
           "semisupervised": ICEBEEM, "semisupervised_baseline": BASELINE}  # part -> label  # fmt: skip
SCORES = ("strong_in", "strong_out", "weak_in", "weak_out")  # test.mcc_<score>
SCALE = 1e4  # the paper plots the transfer loss x1e4 ("CDSM objective (scaled)")
TRANSFER_SIZES = (500, 1000, 2000, 3000, 4000, 5000, 6000)  # the N > 0 of the paper's curves
SMOKE_NOTE = "smoke run or tiny stand-in data (training.smoke / dataset.tiny)"
SEMISUPERVISED_NOTE = "the paper's semi-supervised accuracies could not be retrieved (docs/icebeem.md §11)"

# Panels (a), (b): MCC out of sample over pairs of seeds, read by eye off the published figure, ±0.01
# (docs/icebeem.md §8): {(dataset, method, score): (median, first quartile, third quartile)}
PAPER_REPRESENTATION: dict[tuple[str, str, str], tuple[float, float, float]] = {
    ("mnist", ICEBEEM, "weak_out"): (0.96, 0.95, 0.97),
    ("mnist", BASELINE, "weak_out"): (0.91, 0.88, 0.94),
    ("mnist", ICEBEEM, "strong_out"): (0.74, 0.67, 0.83),
    ("mnist", BASELINE, "strong_out"): (0.65, 0.57, 0.71),
    ("cifar10", ICEBEEM, "strong_out"): (0.87, 0.80, 0.88),
    ("cifar10", BASELINE, "strong_out"): (0.46, 0.35, 0.67),
    ("cifar100", ICEBEEM, "strong_out"): (0.86, 0.79, 0.91),
    ("cifar100", BASELINE, "strong_out"): (0.53, 0.34, 0.75),
}
# Panels (c), (d): the median over 5 seeds of the last epoch's median (C)DSM loss x1e4 at
# N = 500 / 1000 / 2000 / 3000 / 4000 / 5000 / 6000, read by eye, ±0.1 (docs/icebeem.md §8)
PAPER_TRANSFER: dict[tuple[str, str], tuple[float, ...]] = {
    ("mnist", TRANSFER): (3.05, 3.1, 3.0, 3.0, 3.0, 3.0, 2.95),
    ("mnist", BASELINE): (5.55, 6.05, 5.3, 4.85, 4.6, 4.4, 4.15),
    ("cifar10", TRANSFER): (8.55, 8.5, 8.0, 8.0, 8.05, 8.05, 8.05),
    ("cifar10", BASELINE): (9.8, 9.6, 8.9, 8.7, 8.5, 8.4, 8.35),
}
PAPER = {"representation": PAPER_REPRESENTATION, "transfer": PAPER_TRANSFER}


# --- runs and tables ----------------------------------------------------------------------------------


def load(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.icebeem_images`` from a file store or Mongo URL (default
    ``data/sims/icebeem_images``; a missing default directory is no runs)."""
    return experiment_runs(EXPERIMENT, source, where, status)


def _runs(runs: pd.DataFrame, parts) -> list[Run]:
    if runs is None or len(runs) == 0 or "run" not in runs:
        return []
    return [run for run in runs["run"] if run.config.get("part") in parts]


def is_smoke(config: Mapping[str, Any]) -> bool:
    """A smoke run or one on the tiny stand-in data (``training.smoke`` or ``dataset.tiny``)."""
    return any(bool(value) for value in (lookup(config, "training.smoke"), lookup(config, "dataset.tiny"))
               if value is not MISSING)  # fmt: skip


def transfer_size(config: Mapping[str, Any]) -> int:
    """N of a transfer run: ``dataset.first_n``; None (the whole held-out part) is N = 0."""
    value = lookup(config, "dataset.first_n")
    return 0 if value in (None, MISSING) else int(value)


def _final(run: Run, name: str) -> float:
    return float(run.final_metrics().get(name, np.nan))


REPRESENTATION = ["run_id", "dataset", "method", "seed_i", "seed_j", *SCORES, "smoke"]


def representation_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per MCC run (parts ``mcc``, ``mcc_baseline``): ``run_id``, ``dataset``, ``method``
    (ICE-BeeM / Baseline), the pair of seeds compared (``seed_i`` < ``seed_j``), the four scores
    ``strong_in`` ... ``weak_out`` (its ``test.mcc_<score>``) and ``smoke``."""
    rows = []
    for run in _runs(runs, ("mcc", "mcc_baseline")):
        i, j = sorted(int(s) for s in run.config["pair"])
        rows.append({"run_id": run.run_id, "dataset": run.config["dataset"]["name"],
                     "method": METHODS[run.config["part"]], "seed_i": i, "seed_j": j,
                     **{score: _final(run, f"test.mcc_{score}") for score in SCORES}, "smoke": is_smoke(run.config)})  # fmt: skip
    return pd.DataFrame(rows, columns=REPRESENTATION)


def representation_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, smoke) and score: the median, quartiles and count over pairs (the box of
    panels (a), (b)). One row per (dataset, method, smoke, score)."""
    columns = ["dataset", "method", "smoke", "score", "count", "median", "q1", "q3"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    long = table.melt(id_vars=["dataset", "method", "smoke"], value_vars=list(SCORES), var_name="score")
    grouped = long.dropna(subset=["value"]).groupby(["dataset", "method", "smoke", "score"], sort=True)["value"]
    out = grouped.agg(count="size", median="median", q1=lambda v: v.quantile(0.25), q3=lambda v: v.quantile(0.75))
    return out.reset_index()[columns]


TRANSFER_COLUMNS = ["run_id", "dataset", "method", "N", "seed", "loss", "epochs", "smoke"]


def transfer_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per transfer run (parts ``transfer``, ``transfer_baseline``): ``run_id``, ``dataset``,
    ``method`` (Transfer / Baseline), ``N`` (0 for ``dataset.first_n`` None), ``seed``, ``loss`` (the
    last epoch's ``epoch.loss_median`` x1e4, NaN if no epoch ended), ``epochs`` (how many were logged)
    and ``smoke``."""
    rows = []
    for run in _runs(runs, ("transfer", "transfer_baseline")):
        try:
            medians = run.metric("epoch.loss_median")
        except KeyError:
            medians = pd.Series(dtype=float)
        rows.append({"run_id": run.run_id, "dataset": run.config["dataset"]["name"],
                     "method": METHODS[run.config["part"]], "N": transfer_size(run.config), "seed": run.config["seed"],
                     "loss": SCALE * _final(run, "epoch.loss_median"), "epochs": len(medians),
                     "smoke": is_smoke(run.config)})  # fmt: skip
    return pd.DataFrame(rows, columns=TRANSFER_COLUMNS)


def transfer_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, method, N, smoke): the ``median`` of the scaled loss over seeds (the curve of
    docs/icebeem.md §7), its ``std`` (ddof 1; NaN for one seed; the band is ±2 std) and ``count``."""
    columns = ["dataset", "method", "N", "smoke", "count", "median", "std"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    grouped = table.groupby(["dataset", "method", "N", "smoke"], sort=True)["loss"]
    out = grouped.agg(count="size", median="median", std=lambda v: v.std(ddof=1)).reset_index()
    return out[columns]


SEMISUPERVISED = ["run_id", "dataset", "method", "accuracy", "std", "repetitions", "smoke"]


def semisupervised_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per semi-supervised run: ``run_id``, ``dataset``, ``method`` (ICE-BeeM / Baseline),
    ``accuracy`` (``test.svm_accuracy``, %), ``std`` (``test.svm_accuracy_std``), ``repetitions``
    (the accuracies it recorded, else ``evaluation.svm_repetitions``) and ``smoke``."""
    rows = []
    for run in _runs(runs, ("semisupervised", "semisupervised_baseline")):
        recorded = run.info.get("svm_accuracies")
        repetitions = len(recorded) if recorded is not None else lookup(run.config, "evaluation.svm_repetitions")
        rows.append({"run_id": run.run_id, "dataset": run.config["dataset"]["name"], "method": METHODS[run.config["part"]],
                     "accuracy": _final(run, "test.svm_accuracy"), "std": _final(run, "test.svm_accuracy_std"),
                     "repetitions": None if repetitions is MISSING else repetitions, "smoke": is_smoke(run.config)})  # fmt: skip
    return pd.DataFrame(rows, columns=SEMISUPERVISED)


# --- the paper's values, and ours beside them ------------------------------------------------------------


def paper_representation_table() -> pd.DataFrame:
    """``PAPER_REPRESENTATION`` as rows: dataset, method, score, paper_median, paper_q1, paper_q3."""
    return pd.DataFrame([{"dataset": d, "method": m, "score": s, "paper_median": v[0], "paper_q1": v[1], "paper_q3": v[2]}
                         for (d, m, s), v in PAPER_REPRESENTATION.items()])  # fmt: skip


def paper_transfer_table() -> pd.DataFrame:
    """``PAPER_TRANSFER`` as rows: dataset, method, N, paper (the scaled loss)."""
    return pd.DataFrame([{"dataset": d, "method": m, "N": n, "paper": v}
                         for (d, m), values in PAPER_TRANSFER.items() for n, v in zip(TRANSFER_SIZES, values)])  # fmt: skip


def _beside(paper: pd.DataFrame, ours: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Every paper row with each of our groups at it (smoke groups as their own rows), NaN where none."""
    merged = paper.merge(ours, on=keys, how="left")
    merged["count"] = merged["count"].fillna(0).astype(int)
    merged["smoke"] = merged["smoke"].astype(object).where(merged["count"] > 0, False).astype(bool)
    return merged


def representation_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Every box of panels (a), (b) with the paper's median and IQR and, beside it, ours (median,
    quartiles and count over pairs; smoke groups apart); ``diff`` is our median minus the paper's."""
    keys = ["dataset", "method", "score"]
    merged = _beside(paper_representation_table(), representation_summary(table), keys)
    merged["diff"] = merged["median"] - merged["paper_median"]
    return merged[[*keys, "paper_median", "paper_q1", "paper_q3", "median", "q1", "q3", "diff", "count", "smoke"]]


def transfer_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """Every point of the curves of panels (c), (d) with the paper's scaled loss and, beside it, ours
    (median, std over seeds and count; smoke groups apart); ``diff`` is ours minus the paper's."""
    keys = ["dataset", "method", "N"]
    ours = summary.astype({"N": "int64"})
    merged = _beside(paper_transfer_table(), ours, keys)
    merged["diff"] = merged["median"] - merged["paper"]
    return merged[[*keys, "paper", "median", "std", "diff", "count", "smoke"]]


def semisupervised_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """Our semi-supervised accuracies per (dataset, method, smoke) (the mean over runs of each run's
    accuracy and std, and the runs), beside a ``paper`` column that is NaN: the paper's accuracies could
    not be retrieved (``note``, docs/icebeem.md §11)."""
    columns = ["dataset", "method", "smoke", "runs", "accuracy", "std", "paper", "note"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    grouped = table.groupby(["dataset", "method", "smoke"], sort=True)
    out = grouped.agg(runs=("run_id", "size"), accuracy=("accuracy", "mean"), std=("std", "mean")).reset_index()
    return out.assign(paper=np.nan, note=SEMISUPERVISED_NOTE)[columns]


def paper_comparison(representation: pd.DataFrame, transfer: pd.DataFrame, semisupervised: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """``{"representation", "transfer", "semisupervised"}``: the three comparisons with the paper,
    from ``representation_table``, ``transfer_summary`` and ``semisupervised_table``."""
    return {"representation": representation_comparison(representation), "transfer": transfer_comparison(transfer),
            "semisupervised": semisupervised_comparison(semisupervised)}  # fmt: skip


# --- figures --------------------------------------------------------------------------------------------

COLORS = {ICEBEEM: "C0", TRANSFER: "C0", BASELINE: "C1"}
FADED = 0.35  # alpha of smoke runs
PAPER_ALPHA = 0.4


def _empty(ax, text: str = "no runs") -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=9, color="0.4")


def _boxes(ax, table: pd.DataFrame, dataset: str, cells: list[tuple[str, str, float, str]], note: bool = True) -> list[str]:
    """Box plots of our out-of-sample scores at (method, score, x, label) cells of ``dataset`` (the
    runs in the paper's setting if any, else the smoke runs, faded), with the paper's median and IQR
    as faded markers beside them; returns the footnote marks."""
    marks, drawn = [], False
    for method, score, x, _ in cells:
        rows = table[(table["dataset"] == dataset) & (table["method"] == method)] if len(table) else table
        full = rows[~rows["smoke"].astype(bool)] if len(rows) else rows
        smoke = full.empty and not rows.empty
        values = (rows if smoke else full)[score].dropna().to_numpy(dtype=float) if len(rows) else np.array([])
        if len(values):
            drawn = True
            alpha = FADED if smoke else 1.0
            ax.boxplot([values], positions=[x], widths=0.5, patch_artist=True, manage_ticks=False,
                       boxprops={"facecolor": COLORS[method], "alpha": 0.5 * alpha},
                       medianprops={"color": "k", "alpha": alpha}, whiskerprops={"alpha": alpha},
                       capprops={"alpha": alpha}, flierprops={"alpha": alpha, "markersize": 3})  # fmt: skip
            if smoke:
                marks.append(SMOKE_NOTE)
        paper = PAPER_REPRESENTATION.get((dataset, method, score))
        if paper is not None:
            median, q1, q3 = paper
            ax.errorbar([x + 0.38], [median], yerr=[[median - q1], [q3 - median]], fmt="D", mfc="none",
                        color=COLORS[method], alpha=PAPER_ALPHA, capsize=3, ms=5)  # fmt: skip
    ax.set_ylim(0, 1.05)
    ax.grid(alpha=0.3, axis="y")
    if note and not drawn:
        _empty(ax, f"no {NAMES.get(dataset, dataset)} MCC runs")
    return marks


MNIST_CELLS = [(ICEBEEM, "weak_out", 1.0, "ICE-BeeM\nweak"), (BASELINE, "weak_out", 2.0, "Baseline\nweak"),
               (ICEBEEM, "strong_out", 3.0, "ICE-BeeM\nstrong"), (BASELINE, "strong_out", 4.0, "Baseline\nstrong")]  # fmt: skip
STRONG_CELLS = [(ICEBEEM, "strong_out", 1.0, "ICE-BeeM"), (BASELINE, "strong_out", 2.0, "Baseline")]


def representation_figure(table: pd.DataFrame):
    """Panels (a) MNIST, MCC out of sample: box plots over pairs of seeds of ICE-BeeM weak, Baseline
    weak, ICE-BeeM strong, Baseline strong; (b) CIFAR10 and CIFAR100, strong MCC out of sample,
    ICE-BeeM against the baseline; one more panel like (a) per other dataset with MCC runs. The paper's
    medians are faded hollow diamonds with their IQR; smoke runs are faded, with a footnote."""
    others = [d for d in dict.fromkeys(table["dataset"]) if d not in ("mnist", "cifar10", "cifar100")] if len(table) else []
    fig, axes = plt.subplots(1, 2 + len(others), figsize=(4.6 * (2 + len(others)) + 1, 4.2), squeeze=False)
    axes = axes[0]
    marks = _boxes(axes[0], table, "mnist", MNIST_CELLS)
    axes[0].set_xticks([c[2] for c in MNIST_CELLS], [c[3] for c in MNIST_CELLS], fontsize=8)
    axes[0].set_title("(a) MNIST, MCC out of sample")
    axes[0].set_ylabel("MCC (out of sample)")
    # (b): two groups on one axis, CIFAR10 at x = 1, 2 and CIFAR100 at 3.5, 4.5
    ax, ticks = axes[1], []
    for dataset, shift in (("cifar10", 0.0), ("cifar100", 2.5)):
        cells = [(m, s, x + shift, f"{NAMES[dataset]}\n{label}") for m, s, x, label in STRONG_CELLS]
        marks += _boxes(ax, table, dataset, cells, note=False)
        ticks += cells
    ax.set_xticks([c[2] for c in ticks], [c[3] for c in ticks], fontsize=8)
    for dataset, center in (("cifar10", 1.5), ("cifar100", 4.0)):
        if not len(table) or not (table["dataset"] == dataset).any():
            ax.text(center, 0.5, f"no {NAMES[dataset]}\nMCC runs", ha="center", va="center", fontsize=9, color="0.4")
    ax.set_title("(b) CIFAR10/100, strong MCC out of sample")
    for ax, dataset in zip(axes[2:], others):
        marks += _boxes(ax, table, dataset, MNIST_CELLS)
        ax.set_xticks([c[2] for c in MNIST_CELLS], [c[3] for c in MNIST_CELLS], fontsize=8)
        ax.set_title(f"{NAMES.get(dataset, dataset)}, MCC out of sample (not in the paper's figure)", fontsize=9)
    handles = [Patch(color=COLORS[ICEBEEM], alpha=0.5, label="ICE-BeeM (ours, over pairs of seeds)"),
               Patch(color=COLORS[BASELINE], alpha=0.5, label="Baseline (ours)"),
               Line2D([], [], color="k", marker="D", mfc="none", ls="", alpha=PAPER_ALPHA,
                      label="paper: median, IQR (read off its figure)")]  # fmt: skip
    fig.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3)
    fig.tight_layout()
    _footnote(fig, marks, y=-0.09)
    return fig


def _footnote(fig, marks, y: float = -0.01):
    distinct = sorted(set(marks))
    if distinct:
        fig.text(0.01, y, f"* drawn faded: {' | '.join(distinct)}", ha="left", va="top", fontsize=7)


def transfer_figure(summary: pd.DataFrame):
    """Panels (c) MNIST and (d) CIFAR10, and one per other dataset with transfer runs: the median over
    seeds of the scaled last-epoch loss against N > 0, transfer with a ±2 std band, the baseline as a
    line; the paper's curves faded (hollow squares, dashed); smoke groups faded, with a footnote."""
    datasets = ["mnist", "cifar10"]
    if len(summary):
        datasets += [d for d in DATASETS if d not in datasets and (summary["dataset"] == d).any()]
        datasets += [d for d in dict.fromkeys(summary["dataset"]) if d not in datasets]
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.8 * len(datasets), 4.0), squeeze=False)
    marks = []
    for k, (ax, dataset) in enumerate(zip(axes[0], datasets)):
        for method in (TRANSFER, BASELINE):
            paper = PAPER_TRANSFER.get((dataset, method))
            if paper is not None:
                ax.plot(TRANSFER_SIZES, paper, "--", marker="s", mfc="none", ms=5, color=COLORS[method], alpha=PAPER_ALPHA)
        ours = summary[(summary["dataset"] == dataset) & (summary["N"].astype(int) > 0)] if len(summary) else summary
        for (method, smoke), group in ours.groupby(["method", "smoke"], sort=True):
            group = group.sort_values("N")
            n, median = group["N"].astype(float), group["median"].astype(float)
            alpha = FADED if smoke else 1.0
            ax.plot(n, median, "-", marker="o", ms=4, color=COLORS.get(method, "0.3"), alpha=alpha, lw=1.6)
            if method == TRANSFER:
                band = 2 * group["std"].astype(float).fillna(0.0)
                ax.fill_between(n, median - band, median + band, color=COLORS[method], alpha=0.2 * alpha, lw=0)
            if smoke:
                marks.append(SMOKE_NOTE)
        if ours.empty:
            _empty(ax, f"no {NAMES.get(dataset, dataset)} transfer runs with N > 0")
        letter = {"mnist": "(c) ", "cifar10": "(d) "}.get(dataset, "")
        extra = "" if letter else " (not in the paper's figure)"
        ax.set_title(f"{letter}{NAMES.get(dataset, dataset)} transfer{extra}", fontsize=10 if letter else 9)
        ax.set_xlabel("N (held-out training images)")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.set_ylabel("last-epoch median (C)DSM loss x1e4")
    handles = [Line2D([], [], color=COLORS[TRANSFER], marker="o", label="Transfer (ours): median over seeds, ±2 std"),
               Line2D([], [], color=COLORS[BASELINE], marker="o", label="Baseline (ours): median over seeds"),
               Line2D([], [], color="k", ls="--", marker="s", mfc="none", alpha=PAPER_ALPHA,
                      label="paper (read off its figure)")]  # fmt: skip
    fig.legend(handles=handles, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, 0.0), ncol=3)
    fig.tight_layout()
    _footnote(fig, marks, y=-0.09)
    return fig


# --- output ---------------------------------------------------------------------------------------------


def tables(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Every table of the analysis, by the name of its CSV file (without ``.csv``)."""
    representation, transfer, semisupervised = representation_table(runs), transfer_table(runs), semisupervised_table(runs)
    summary = transfer_summary(transfer)
    compared = paper_comparison(representation, summary, semisupervised)
    return {"representation": representation, "representation-summary": representation_summary(representation),
            "transfer": transfer, "transfer-summary": summary, "semisupervised": semisupervised,
            **{f"paper-comparison-{name}": table for name, table in compared.items()}}  # fmt: skip


def figures(runs: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Writes every table of ``tables`` as CSV and the figures ``representation.png`` (panels (a), (b))
    and ``transfer.png`` (panels (c), (d)) under ``out_dir`` (default ``data/results/icebeem_images``);
    returns ``{name: path}``. Without runs the tables are empty and the figures show the paper's values."""
    out_dir = Path(out_dir) if out_dir is not None else results_dir(EXPERIMENT)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    made = tables(runs)
    for name, table in made.items():
        paths[name] = out_dir / f"{name}.csv"
        table.to_csv(paths[name], index=False)
    paths["figure_representation"] = plots.save_figure(representation_figure(made["representation"]),
                                                       out_dir / "representation.png")  # fmt: skip
    paths["figure_transfer"] = plots.save_figure(transfer_figure(made["transfer-summary"]), out_dir / "transfer.png")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = analysis_parser(EXPERIMENT, __doc__)
    args = parser.parse_args(argv)
    runs = load(args.source)
    paths = figures(runs, args.out)
    print(f"{len(runs)} completed {EXPERIMENT} runs")
    made = tables(runs)
    for name in ("representation-summary", "transfer-summary", "paper-comparison-semisupervised"):
        if len(made[name]):
            print(f"{name}:")
            print(made[name].to_string(index=False))
    print(SEMISUPERVISED_NOTE)
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
