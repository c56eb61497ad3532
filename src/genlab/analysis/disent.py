"""Analysis of "The Role of Disentanglement in Generalisation" (disent.md 5) from recorded runs.

Runs are picked by config (``load_runs(source, where=...)``), never by id. For each recorded run
``results_table`` reads the final metrics the experiment logged (posterior-mean NLL on the training
and excluded combinations, DCI on the training split); the figure functions rebuild models and data
from the runs' configs. Nothing here trains.

Command line (used by ``bin/demo``)::

    python -m genlab.analysis.disent figures --source data/sims/disent --out data/results/disent \\
        --where training.objective=beta_vae dataset.source=generated
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from genlab.analysis import plots
from genlab.analysis.runs import Run, load_model, load_runs
from genlab.data import SplitData, load_split_data
from genlab.paths import results_dir, sims_dir

GROUP = ["dataset.name", "dataset.condition", "dataset.variant"]


def model_label(config: Mapping[str, Any]) -> str:
    """The paper's name of a run's model: VAE, beta-VAE (beta=8), FactorVAE (gamma=50), CCI-VAE ..."""
    training = config["training"]
    loss = training.get("loss", {})
    objective = training["objective"]
    if objective in ("beta_vae", "vae"):
        return "VAE" if float(loss.get("beta", 1.0)) == 1.0 else f"β-VAE (β={loss['beta']:g})"
    if objective == "factor_vae":
        return f"FactorVAE (γ={loss['gamma']:g})"
    if objective == "cci_vae":
        return f"CCI-VAE (γ={loss['gamma']:g}, C={loss['c_max']:g})"
    return objective


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per completed run: label, split, train/val/test NLL and DCI scores (NaN if missing)."""
    rows = []
    for _, r in runs.iterrows():
        run: Run = r["run"]
        final = run.final_metrics()
        rows.append(
            {
                "run_id": run.run_id,
                "model": model_label(run.config),
                "dataset": run.config["dataset"]["name"],
                "condition": run.config["dataset"]["condition"],
                "variant": run.config["dataset"]["variant"] or "",
                "seed": run.config.get("seed"),
                "iterations": run.info.get("iterations"),
                "train_nll": final.get("train.recon_nll", np.nan),
                "val_nll": final.get("val.recon_nll", np.nan),
                "test_nll": final.get("test.recon_nll", np.nan),
                "disentanglement": final.get("train.dci_disentanglement", np.nan),
                "completeness": final.get("train.dci_completeness", np.nan),
                "informativeness": final.get("train.dci_informativeness", np.nan),
            }
        )
    return pd.DataFrame(rows)


def rebuild_data(run: Run, device: str | torch.device = "cpu") -> SplitData:
    """The run's train/val/test data, rebuilt from its recorded dataset config."""
    cfg = dict(run.config["dataset"])
    return load_split_data(
        cfg.pop("name"), cfg.pop("condition"), cfg.pop("variant"), cfg.pop("val_fraction"), cfg.pop("split_seed"),
        device=device, **cfg,
    )


def example_images(data: SplitData, n: int = 6, seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` random images of the training and (if any) test combinations, reproducible by seed."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for split in ("train", "test"):
        part = getattr(data, split)
        if len(part):
            index = torch.randperm(len(part), generator=g)[:n].sort().values
            out[split] = part.pixels(index)
    return out


def run_figure(run: Run, out_dir: str | Path, n: int = 8) -> Path:
    """One PNG of a recorded run: reconstructions of training and held-out (test) combinations on
    top, latent traversals of a training image below (latents by decreasing KL)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(run)
    images = example_images(rebuild_data(run), n)
    n_cols = sum(len(x) for x in images.values())
    fig = plt.figure(figsize=(1.1 * n_cols, 2.5 + 1.05 * model.latent_size), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.3, 1.05 * model.latent_size])
    plots.reconstructions({model_label(run.config): model}, images, fig=top)
    top.suptitle(f"run {run.run_id}: {model_label(run.config)} — reconstructions (posterior mean)", fontsize=10)
    plots.traversals(model, images["train"][0], fig=bottom)
    bottom.suptitle("latent traversals of the first training image", fontsize=10)
    path = out_dir / f"run{run.run_id}-reconstructions-traversals.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def split_figures(runs: pd.DataFrame, out_dir: str | Path, n: int = 5) -> dict[str, Path]:
    """For one (dataset, condition, variant): the metrics CSV, NLL vs disentanglement, the
    reconstructions of every model on the same train/test images, and the Hinton diagrams of R."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = results_table(runs)
    first: Run = runs.iloc[0]["run"]
    variant = first.config["dataset"]["variant"] or "all"
    paths = {"metrics": out_dir / f"{variant}-metrics.csv"}
    table.to_csv(paths["metrics"], index=False)

    fig = plots.nll_vs_disentanglement(table, title=f"{first.config['dataset']['name']} {first.config['dataset']['condition']} {variant}")
    paths["disent_vs_nll"] = out_dir / f"{variant}-disent_vs_nll.png"
    fig.savefig(paths["disent_vs_nll"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    models = {f"{model_label(r.config)} #{r.run_id}": load_model(r) for r in runs["run"]}
    images = example_images(rebuild_data(first), n)
    fig = plots.reconstructions(models, images)
    paths["reconstructions"] = out_dir / f"{variant}-reconstructions.png"
    fig.savefig(paths["reconstructions"], dpi=110, bbox_inches="tight")
    plt.close(fig)

    fig, axes = plt.subplots(1, len(runs), figsize=(3.2 * len(runs), 4.2), squeeze=False)
    for ax, (name, r) in zip(axes[0], zip(models, runs["run"])):
        plots.hinton(np.asarray(r.info["dci_R"]), r.info["factor_names"], ax=ax, title=name)
    paths["hinton"] = out_dir / f"{variant}-hinton.png"
    fig.savefig(paths["hinton"], dpi=110, bbox_inches="tight")
    plt.close(fig)
    return paths


def _parse_where(pairs: list[str]) -> dict[str, Any]:
    where = {}
    for pair in pairs:
        key, _, raw = pair.partition("=")
        try:
            where[key] = json.loads(raw)
        except json.JSONDecodeError:
            where[key] = raw
    return where


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m genlab.analysis.disent", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["figures"], help="draw the figures of the newest matching run")
    parser.add_argument("--source", default=str(sims_dir("disent")), help="file-store directory or mongodb://host:port/db")
    parser.add_argument("--out", default=str(results_dir("disent") / "runs"))
    parser.add_argument("--where", nargs="*", default=[], metavar="KEY=VALUE", help="config filters (JSON values)")
    args = parser.parse_args(argv)

    runs = load_runs(args.source, where=_parse_where(args.where), experiment="disent", status="COMPLETED")
    if runs.empty:
        raise SystemExit(f"no completed disent run in {args.source} matches {args.where}")
    run: Run = runs.iloc[-1]["run"]
    path = run_figure(run, args.out)
    print(f"run {run.run_id} ({model_label(run.config)}, {run.config['dataset']['name']} "
          f"{run.config['dataset']['condition']}/{run.config['dataset']['variant']}, {run.info.get('iterations')} iterations)")
    for name, value in sorted(run.final_metrics().items()):
        if name.split(".")[0] in ("train", "val", "test"):
            print(f"  {name:<28} {value:10.4f}")
    print(f"reconstructions and latent traversals: {path}")


if __name__ == "__main__":
    main()
