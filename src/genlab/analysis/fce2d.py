"""Analysis of flow contrastive estimation on 2D data (docs/fce.md §4) from recorded runs.

Runs of ``experiments.fce2d`` are picked by config (dataset, flow, objective), never by id. For each
run the model is rebuilt from its config and ``model.pt``, the dataset is redrawn from its recorded
seed, and densities are evaluated on a grid over [-4, 4]^2: the data (a histogram), the flow's
exp(log q), the EBM's exp(-f - c) normalised by its learned constant c, and the EBM normalised
numerically on the grid (docs/fce.md §4.3 plots only the first; the second shows the density's shape when
c is off). Curves: -V with the log 4 reference, the accuracy with the 0.6 threshold, and the
log-density MSE against the true 8-Gaussian density. Nothing here trains.

Runs are compared with the original (``paper-comparison.csv``: the 8gaussians FCE runs next to the
reference README's plateau, docs/fce.md §4.2) only in the paper's setting (500,000 training and 50,000
evaluation points, 100 epochs: ``genlab.analysis.paper_setting``); the others are listed in
``paper-comparison-other-runs.csv`` with what differs, and drawn faded in the curves.

Command line::

    python -m genlab.analysis.fce2d                      # every completed run in data/sims/fce2d
    python -m genlab.analysis.fce2d --source mongodb://host:27017/genlab --out figures/
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from genlab.analysis import plots
from genlab.analysis.paper_setting import DIFFERS, differs_from_paper, split_runs
from genlab.analysis.runs import Run, analysis_parser, experiment_runs, load_model, load_runs
from genlab.data.toy2d import sample_toy2d
from genlab.metrics.density_grid import grid_cell_area, grid_log_density, normalise_on_grid
from genlab.paths import results_dir

LOG4 = math.log(4.0)
ORIGINAL_MSE = (0.03, 0.05)  # the reference's plateau on 8gaussians (docs/fce.md §4.2, README curves)
ORIGINAL_NEG_VALUE = (1.31, 1.33)  # its -V plateau, slightly below log 4 (docs/fce.md §4.2)
OUTLIER_DECADES = 3  # a logged MSE more than 10^3 times its curve's upper quartile is drawn at the axis edge
LIM = 4.0
GROUP = ["dataset.name", "model.options.flow", "training.objective"]


def load_fce_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.fce2d`` from a file store or Mongo URL (default ``data/sims/fce2d``;
    a missing default directory is no runs). A run resumed from another's checkpoint is one run with
    the metrics of its whole history (``load_runs`` joins resume chains), so the curves and
    ``results_table`` cover every iteration."""
    return experiment_runs("fce2d", source, where, status)


def label(config: Mapping[str, Any]) -> str:
    """``maf FCE`` / ``glow MLE``: the flow and how it was trained."""
    kind = "MLE" if config["training"]["objective"] == "flow_mle" else "FCE"
    return f"{config['model']['options']['flow']} {kind}"


def load_energy_flow(run: Run, map_location: Any = "cpu"):
    """The run's EBM and flow (``EnergyFlow``; ``ebm`` is None for flow-MLE runs), in eval mode."""
    return load_model(run, map_location)


def data_sample(run: Run, n: int = 200_000) -> torch.Tensor:
    """``n`` points of the run's dataset, drawn from its recorded data seed."""
    return sample_toy2d(run.config["dataset"]["name"], n, run.info["data_seed"])


def density_grids(run: Run, n: int = 300, data_points: int = 200_000) -> dict[str, np.ndarray]:
    """Densities on an ``n`` x ``n`` grid over [-4, 4]^2 (rows: y, columns: x): ``data`` (histogram),
    ``flow``, and for FCE runs ``ebm`` (learned constant) and ``ebm_grid`` (normalised on the grid)."""
    model = load_energy_flow(run)
    cell_area = grid_cell_area(LIM, n)
    half = math.sqrt(cell_area) / 2  # histogram cells centred on the grid points
    edges = np.linspace(-LIM - half, LIM + half, n + 1)
    points = data_sample(run, data_points).numpy()
    hist, _, _ = np.histogram2d(points[:, 1], points[:, 0], bins=[edges, edges])
    grids = {"data": hist / (len(points) * cell_area)}
    # grid_log_density indexes [x, y]; images are [row = y, column = x]
    _, _, log_q = grid_log_density(model.flow.log_prob, lim=LIM, n=n)
    grids["flow"] = log_q.T.exp().numpy()
    if model.ebm is not None:
        _, _, log_p = grid_log_density(model.ebm.log_prob, lim=LIM, n=n)
        grids["ebm"] = log_p.T.exp().numpy()
        grids["ebm_grid"] = normalise_on_grid(log_p, cell_area).T.exp().numpy()
    return grids


PANEL_TITLES = {"data": "data", "flow": "flow", "ebm": "EBM (learned log Z)", "ebm_grid": "EBM (grid-normalised)"}
TICKS = np.linspace(-LIM, LIM, 5)


def density_figure(runs: pd.DataFrame, n: int = 300):
    """One row per run: data | flow | EBM (learned constant) | EBM (grid-normalised), viridis."""
    rows = [(f"run {run.run_id}\n{label(run.config)}", run.config["dataset"]["name"], density_grids(run, n)) for run in runs["run"]]
    return density_grid_figure(rows)


def density_grid_figure(rows):
    """The density figure from ``(row label, dataset name, grids)`` rows (``density_grids``' keys):
    each panel over [-4, 4]^2 with its x and y ticks and its own colour bar (density per unit area)."""
    fig, axes = plt.subplots(len(rows), 4, figsize=(14, 3.2 * len(rows)), squeeze=False, layout="constrained")
    for ax_row, (row_label, dataset, grids) in zip(axes, rows):
        for ax, key in zip(ax_row, PANEL_TITLES):
            if key not in grids:
                ax.axis("off")
                continue
            image = ax.imshow(grids[key], origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="viridis")
            ax.set_xticks(TICKS), ax.set_yticks(TICKS)
            ax.tick_params(labelsize=7)
            ax.set_xlabel("x", fontsize=8)
            fig.colorbar(image, ax=ax, shrink=0.85).ax.tick_params(labelsize=7)
            ax.set_title(f"{PANEL_TITLES[key]}" if key != "data" else f"{dataset}: data", fontsize=9)
        ax_row[0].set_ylabel(f"{row_label}\ny", fontsize=9)
    return fig


def outliers(values: pd.Series, decades: float = OUTLIER_DECADES) -> pd.Series:
    """Which values of a positive curve (an MSE) are outliers: non-finite, or more than
    ``10**decades`` times the curve's upper quartile (a robust scale: one spike does not move it)."""
    finite = values[np.isfinite(values) & (values > 0)]
    if finite.empty:
        return ~np.isfinite(values)
    return ~np.isfinite(values) | (values > finite.quantile(0.75) * 10.0**decades)


def _draw_mse(ax, curves: list[tuple[pd.Series, str, str, float]]) -> int:
    """Log-scale MSE curves ``(values, style, label, alpha)``: y-limits from the points that are not
    outliers (and the original's plateau), outliers as ^ markers on the top edge with a note. Returns
    how many points were not drawn to scale."""
    kept, spikes = [], []
    for values, style, name, alpha in curves:
        out = outliers(values)
        line = ax.plot(values.where(~out), style, lw=1, alpha=alpha, label=name)[0]
        kept.append(values[~out & (values > 0)])
        spikes.append((values[out & ~values.isna()], line.get_color()))
    ax.set_yscale("log")
    inliers = pd.concat(kept) if kept else pd.Series(dtype=float)
    if inliers.empty:
        return 0
    bottom, top = min(inliers.min(), ORIGINAL_MSE[0]) / 2, max(inliers.max(), ORIGINAL_MSE[1]) * 2
    ax.set_ylim(bottom, top)
    n_out = sum(len(v) for v, _ in spikes)
    for values, color in spikes:
        if len(values):
            ax.plot(values.index, np.full(len(values), top), "^", color=color, ms=6, clip_on=False, label="_outliers")
    if n_out:
        largest = max(v.max() for v, _ in spikes if len(v))
        note = (f"{n_out} point{'s' * (n_out > 1)} above {10 ** OUTLIER_DECADES:g}x {'their' if n_out > 1 else 'its'} curve's "
                f"upper quartile not shown to scale\n(^ on the top edge; largest {largest:.2g})")
        ax.text(0.0, -0.2, note, transform=ax.transAxes, va="top", fontsize=7)
    return n_out


def curves_figure(runs: pd.DataFrame):
    """-V (with log 4), accuracy (with the 0.6 threshold) and the log-density MSEs against the step
    (log scale; outliers such as one diverged evaluation are marked on the top edge, not drawn to
    scale). Runs outside the paper's setting are faded, labelled ``*``, and a footnote says what differs."""
    fig, (ax_v, ax_acc, ax_mse) = plt.subplots(1, 3, figsize=(15, 3.8))
    mse_curves, marks = [], []
    for run in runs["run"]:
        names, name = set(run.metric_names()), f"run {run.run_id} {label(run.config)} {run.config['dataset']['name']}"
        mark = differs_from_paper(run)
        marks.append(mark)
        alpha, name = (0.45, f"{name} *") if mark else (1.0, name)
        if "batch.neg_value" in names:
            ax_v.plot(run.metric("batch.neg_value"), lw=0.8, alpha=alpha, label=name)
            ax_acc.plot(run.metric("batch.accuracy"), lw=0.8, alpha=alpha, label=name)
        for key, style in (("val.mse_ebm", "-"), ("val.mse_ebm_grid", ":"), ("val.mse_flow", "--")):
            if key in names:
                mse_curves.append((run.metric(key), style, f"{name}: {key.split('.', 1)[1]}", alpha))
    ax_v.axhline(LOG4, color="k", lw=0.7, ls="--", label="log 4")
    ax_acc.axhline(0.6, color="k", lw=0.7, ls="--", label="threshold 0.6")
    ax_mse.axhspan(*ORIGINAL_MSE, color="0.85", label="original's plateau")
    _draw_mse(ax_mse, mse_curves)
    for ax, title in ((ax_v, "-V(α, θ)"), (ax_acc, "accuracy (training batch)"), (ax_mse, "MSE of log density (8gaussians)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    plots.note_not_paper_setting(fig, marks)
    return fig


def _final_neg_value(run: Run) -> float:
    """The mean of the logged training -V over the last 10% of the run (docs/fce.md §4.2)."""
    if "batch.neg_value" not in run.metric_names():
        return np.nan
    value = run.metric("batch.neg_value")
    return float(value[value.index >= 0.9 * value.index.max()].mean())


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it was, its final evaluation (MSEs, -V, accuracy, flow NLL), the
    training -V over its last 10% and ``differs_from_paper`` (what in its config differs from the
    paper's setting, "" for none; ``genlab.analysis.paper_setting``)."""
    rows = []
    for run in runs["run"]:
        final = run.final_metrics()
        ebm_updates = run.metric("batch.ebm_update") if "batch.ebm_update" in run.metric_names() else None
        rows.append({
            "run_id": run.run_id, "dataset": run.config["dataset"]["name"], "flow": run.config["model"]["options"]["flow"],
            "objective": run.config["training"]["objective"], "seed": run.config["seed"],
            "iterations": run.info.get("iterations"),
            **{k.split(".", 1)[1]: final.get(k, np.nan) for k in (
                "val.mse_ebm", "val.mse_ebm_grid", "val.mse_flow", "val.neg_value", "val.accuracy", "val.flow_nll", "val.log_z")},
            "ebm_update_fraction": float(ebm_updates.mean()) if ebm_updates is not None else np.nan,
            "final_neg_value": _final_neg_value(run),
            DIFFERS: differs_from_paper(run),
        })
    return pd.DataFrame(rows)


COMPARED = ["run_id", "flow", "iterations", "mse_ebm", "original_mse", "final_neg_value", "original_neg_value", "log4"]


def _against_original(table: pd.DataFrame) -> pd.DataFrame:
    fce = table[(table["dataset"] == "8gaussians") & (table["objective"] == "fce")] if len(table) else table
    return fce.assign(original_mse="%.2f-%.2f" % ORIGINAL_MSE, original_neg_value="%.2f-%.2f" % ORIGINAL_NEG_VALUE,
                      log4=LOG4).reset_index(drop=True)


def compare_with_original(table: pd.DataFrame) -> pd.DataFrame:
    """The 8gaussians FCE runs of ``results_table`` in the paper's setting next to the original's
    plateaus (docs/fce.md §4.2): final ``mse_ebm`` and the last 10% of -V."""
    in_setting, _ = split_runs(table)
    return _against_original(in_setting)[COMPARED]


def other_runs_vs_original(table: pd.DataFrame) -> pd.DataFrame:
    """The other 8gaussians FCE runs (outside the paper's setting) next to the original's plateaus,
    each with ``differs_from_paper``; not for the comparison."""
    _, others = split_runs(table)
    return _against_original(others)[[*COMPARED, DIFFERS]]



def figures(runs: pd.DataFrame, out_dir: str | Path | None = None, n: int = 300) -> dict[str, Path]:
    """``results.csv`` (every run, with ``differs_from_paper``), ``paper-comparison.csv`` (the runs in
    the paper's setting next to the original), ``paper-comparison-other-runs.csv`` (the others), and
    per dataset ``<dataset>-densities.png`` and ``<dataset>-curves.png`` under ``out_dir`` (default
    ``data/results/fce2d``)."""
    out_dir = Path(out_dir) if out_dir is not None else results_dir("fce2d")
    out_dir.mkdir(parents=True, exist_ok=True)
    if runs.empty:
        return {}
    paths = {"results": out_dir / "results.csv", "comparison": out_dir / "paper-comparison.csv",
             "other_runs": out_dir / "paper-comparison-other-runs.csv"}
    table = results_table(runs)
    table.to_csv(paths["results"], index=False)
    compare_with_original(table).to_csv(paths["comparison"], index=False)
    other_runs_vs_original(table).to_csv(paths["other_runs"], index=False)
    for dataset, group in runs.groupby("dataset.name", sort=True):
        paths[f"{dataset}-densities"] = plots.save_figure(density_figure(group, n), out_dir / f"{dataset}-densities.png")
        paths[f"{dataset}-curves"] = plots.save_figure(curves_figure(group), out_dir / f"{dataset}-curves.png")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = analysis_parser("fce2d", __doc__)
    parser.add_argument("--grid", type=int, default=300, help="grid points per axis")
    args = parser.parse_args(argv)
    runs = load_fce_runs(args.source)
    paths = figures(runs, args.out, args.grid)
    print(f"{len(runs)} completed fce2d runs")
    if paths:
        print(pd.read_csv(paths["results"]).to_string(index=False))
        comparison = pd.read_csv(paths["comparison"])
        print("against the original, runs in the paper's setting:")
        print(comparison.to_string(index=False) if len(comparison) else "  (no run)")
        for name, path in paths.items():
            print(f"{name}: {path}")


if __name__ == "__main__":
    main()
