"""Analysis of flow contrastive estimation on 2D data (docs/fce.md §4) from recorded runs.

Runs of ``experiments.fce2d`` are picked by config (dataset, flow, objective), never by id. For each
run the model is rebuilt from its config and ``model.pt``, the dataset is redrawn from its recorded
seed, and densities are evaluated on a grid over [-4, 4]^2: the data (a histogram), the flow's
exp(log q), the EBM's exp(-f - c) normalised by its learned constant c, and the EBM normalised
numerically on the grid (docs/fce.md §4.3 plots only the first; the second shows the density's shape when
c is off). Curves: -V with the log 4 reference, the accuracy with the 0.6 threshold, and the
log-density MSE against the true 8-Gaussian density. Nothing here trains.

Command line::

    python -m genlab.analysis.fce2d                      # every completed run in data/sims/fce2d
    python -m genlab.analysis.fce2d --source mongodb://host:27017/genlab --out figures/
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from genlab.analysis.runs import Run, load_model, load_runs
from genlab.data.toy2d import sample_toy2d
from genlab.metrics.density_grid import grid_cell_area, grid_log_density, normalise_on_grid
from genlab.paths import results_dir, sims_dir

LOG4 = math.log(4.0)
ORIGINAL_MSE = (0.03, 0.05)  # the reference's plateau on 8gaussians (docs/fce.md §4.2, README curves)
LIM = 4.0
GROUP = ["dataset.name", "model.options.flow", "training.objective"]


def load_fce_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.fce2d`` from a file store or Mongo URL (default ``data/sims/fce2d``;
    a missing default directory is no runs). A run resumed from another's checkpoint is one run with
    the metrics of its whole history (``load_runs`` joins resume chains), so the curves and
    ``results_table`` cover every iteration."""
    if source is None:
        source = sims_dir("fce2d")
        if not Path(source).is_dir():
            return pd.DataFrame(columns=["run_id", "experiment", "run"])
    return load_runs(source, where=where, experiment="fce2d", status=status)


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


def density_figure(runs: pd.DataFrame, n: int = 300):
    """One row per run: data | flow | EBM (learned constant) | EBM (grid-normalised), viridis."""
    rows = list(runs["run"])
    fig, axes = plt.subplots(len(rows), 4, figsize=(12, 3.1 * len(rows)), squeeze=False)
    for ax_row, run in zip(axes, rows):
        grids = density_grids(run, n)
        for ax, key in zip(ax_row, PANEL_TITLES):
            ax.set_xticks([]), ax.set_yticks([])
            if key not in grids:
                ax.axis("off")
                continue
            ax.imshow(grids[key], origin="lower", extent=(-LIM, LIM, -LIM, LIM), cmap="viridis")
            ax.set_title(f"{PANEL_TITLES[key]}" if key != "data" else f"{run.config['dataset']['name']}: data", fontsize=9)
        ax_row[0].set_ylabel(f"run {run.run_id}\n{label(run.config)}", fontsize=9)
    fig.tight_layout()
    return fig


def curves_figure(runs: pd.DataFrame):
    """-V (with log 4), accuracy (with the 0.6 threshold) and the log-density MSEs against the step."""
    fig, (ax_v, ax_acc, ax_mse) = plt.subplots(1, 3, figsize=(15, 3.8))
    for run in runs["run"]:
        names, name = set(run.metric_names()), f"run {run.run_id} {label(run.config)} {run.config['dataset']['name']}"
        if "batch.neg_value" in names:
            ax_v.plot(run.metric("batch.neg_value"), lw=0.8, label=name)
            ax_acc.plot(run.metric("batch.accuracy"), lw=0.8, label=name)
        for key, style in (("val.mse_ebm", "-"), ("val.mse_ebm_grid", ":"), ("val.mse_flow", "--")):
            if key in names:
                ax_mse.plot(run.metric(key), style, lw=1, label=f"{name}: {key.split('.', 1)[1]}")
    ax_v.axhline(LOG4, color="k", lw=0.7, ls="--", label="log 4")
    ax_acc.axhline(0.6, color="k", lw=0.7, ls="--", label="threshold 0.6")
    ax_mse.axhspan(*ORIGINAL_MSE, color="0.85", label="original's plateau")
    ax_mse.set_yscale("log")
    for ax, title in ((ax_v, "-V(α, θ)"), (ax_acc, "accuracy (training batch)"), (ax_mse, "MSE of log density (8gaussians)")):
        ax.set_title(title)
        ax.set_xlabel("step")
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: what it was and its final evaluation (MSEs, -V, accuracy, flow NLL)."""
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
        })
    return pd.DataFrame(rows)


def _save(fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def figures(runs: pd.DataFrame, out_dir: str | Path | None = None, n: int = 300) -> dict[str, Path]:
    """``results.csv``, and per dataset ``<dataset>-densities.png`` and ``<dataset>-curves.png``
    under ``out_dir`` (default ``data/results/fce2d``)."""
    out_dir = Path(out_dir) if out_dir is not None else results_dir("fce2d")
    out_dir.mkdir(parents=True, exist_ok=True)
    if runs.empty:
        return {}
    paths = {"results": out_dir / "results.csv"}
    results_table(runs).to_csv(paths["results"], index=False)
    for dataset, group in runs.groupby("dataset.name", sort=True):
        paths[f"{dataset}-densities"] = _save(density_figure(group, n), out_dir / f"{dataset}-densities.png")
        paths[f"{dataset}-curves"] = _save(curves_figure(group), out_dir / f"{dataset}-curves.png")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m genlab.analysis.fce2d", description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default=None, help="fce2d runs: file-store directory or mongodb://host:port/db")
    parser.add_argument("--out", default=None, help="output directory (default data/results/fce2d)")
    parser.add_argument("--grid", type=int, default=300, help="grid points per axis")
    args = parser.parse_args(argv)
    runs = load_fce_runs(args.source)
    paths = figures(runs, args.out, args.grid)
    print(f"{len(runs)} completed fce2d runs")
    if paths:
        print(pd.read_csv(paths["results"]).to_string(index=False))
        for name, path in paths.items():
            print(f"{name}: {path}")


if __name__ == "__main__":
    main()
