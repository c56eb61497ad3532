"""Analysis of "The Role of Disentanglement in Generalisation" (docs/disent.md §5) from recorded runs.

Runs are picked by config (``load_runs(source, where=...)``), never by id: the VAE-family runs of
``experiments.disent`` and the ground-truth decoders of ``experiments.decoders`` are grouped by
(dataset, condition, variant). ``results_table`` reads the final metrics the experiments logged
(posterior-mean NLL on the training and excluded combinations; DCI, MIG and FactorVAE score on the
training split; the ground-truth decoder's disentanglement is 1 by construction). Figure functions
rebuild models and data from the runs' configs. Nothing here trains.

Command line::

    python -m genlab.analysis.disent figures --where training.objective=beta_vae   # newest matching run
    python -m genlab.analysis.disent paper        # every split with runs: CSVs, figures, paper comparison

Only runs in the paper's setting (full data from the published files, the paper's run length, no
smoke run, uncapped evaluations: ``genlab.analysis.paper_setting``) go into ``paper-comparison.csv``;
the others are listed in ``paper-comparison-other-runs.csv``, each with what differs, and drawn
faded in the figures.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Callable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch

from genlab.analysis import plots
from genlab.analysis.disent_paper import paper_table
from genlab.analysis.paper_setting import DIFFERS, differs_from_paper, split_runs
from genlab.analysis.runs import Run, load_data, load_model, load_runs
from genlab.data import SplitData
from genlab.paths import results_dir, sims_dir

GROUP = ["dataset.name", "dataset.condition", "dataset.variant"]
CONDITION_ORDER = ["recomb2element", "recomb2range", "extrp"]  # the paper's panels: r2e, r2r, extrp
GT_DECODER = "GT decoder"


def model_label(config: Mapping[str, Any]) -> str:
    """The paper's name of a run's model: VAE, β-VAE (β=8), FactorVAE (γ=50), CCI-VAE, GT decoder."""
    training = config["training"]
    loss = training.get("loss", {})
    objective = training["objective"]
    if objective in ("beta_vae", "vae"):
        return "VAE" if float(loss.get("beta", 1.0)) == 1.0 else f"β-VAE (β={loss['beta']:g})"
    if objective == "factor_vae":
        return f"FactorVAE (γ={loss['gamma']:g})"
    if objective == "cci_vae":
        return f"CCI-VAE (γ={loss['gamma']:g}, C={loss['c_max']:g})"
    if objective == "gt_decoder":
        return GT_DECODER
    return objective


def load_disent_runs(disent_source=None, decoders_source=None, where: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Completed runs of ``experiments.disent`` and ``experiments.decoders`` in one table.

    Sources default to the file stores ``data/sims/disent`` and ``data/sims/decoders`` (either may be
    a Mongo URL instead; a missing default directory counts as no runs). A run resumed from another's
    checkpoint is one run with the metrics of its whole history (``load_runs`` joins resume chains).
    """
    tables = []
    for experiment, source in (("disent", disent_source), ("decoders", decoders_source)):
        if source is None:
            source = sims_dir(experiment)
            if not Path(source).is_dir():
                continue
        tables.append(load_runs(source, where=where, experiment=experiment, status="COMPLETED"))
    tables = [t for t in tables if not t.empty]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=["run_id", "experiment", "run"])


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: model label, split, train/val/test NLL, DCI, MIG and FactorVAE score, and
    ``differs_from_paper``: what in its config differs from the paper's setting ("" for none;
    ``genlab.analysis.paper_setting``)."""
    rows = []
    for run in runs["run"]:
        final = run.final_metrics()
        gt = run.config["training"]["objective"] == "gt_decoder"
        rows.append(
            {
                "experiment": run.experiment,
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
                # the ground-truth decoder's code is the factors themselves: disentangled by construction
                "disentanglement": 1.0 if gt else final.get("train.dci_disentanglement", np.nan),
                "completeness": 1.0 if gt else final.get("train.dci_completeness", np.nan),
                "informativeness": final.get("train.dci_informativeness", np.nan),
                "mig": final.get("train.mig", np.nan),
                "factorvae_score": final.get("train.factorvae_score", np.nan),
                DIFFERS: differs_from_paper(run),
            }
        )
    return pd.DataFrame(rows)


def select_models(table: pd.DataFrame) -> pd.DataFrame:
    """One run per (dataset, condition, variant, model): the most disentangled one, the paper's rule
    ("for each setting we kept the run with the highest disentanglement", docs/disent.md §5.1), with
    ``n_runs`` recording how many runs it was chosen from. Runs in the paper's setting come first: a
    run outside it (non-empty ``differs_from_paper``) is chosen only for a model that has none."""
    if table.empty:
        return table.assign(n_runs=[])
    keys = ["dataset", "condition", "variant", "model"]
    counts = table.groupby(keys, dropna=False)["run_id"].transform("size")
    outside = table[DIFFERS].fillna("").astype(bool) if DIFFERS in table else False
    ranked = table.assign(n_runs=counts, _outside=outside).sort_values(
        ["_outside", "disentanglement", "run_id"], ascending=[True, False, True])
    return ranked.drop_duplicates(keys).drop(columns="_outside").sort_values(keys).reset_index(drop=True)


PAPER_COLUMNS = {"train_nll": "paper_train_nll", "test_nll": "paper_test_nll", "disentanglement": "paper_disentanglement"}
COMPARED = ["dataset", "condition", "variant", "model"]


def compare_with_paper(table: pd.DataFrame) -> pd.DataFrame:
    """genlab's selected runs in the paper's setting (``genlab.analysis.paper_setting``) next to the
    published values (docs/disent.md §7), where the paper has them; ``other_runs_vs_paper`` lists the rest."""
    in_setting, _ = split_runs(table)
    ours = select_models(in_setting)[[*COMPARED, "n_runs", "iterations", "train_nll", "test_nll", "disentanglement"]]
    return ours.merge(paper_table().rename(columns=PAPER_COLUMNS), on=COMPARED, how="inner")


def other_runs_vs_paper(table: pd.DataFrame) -> pd.DataFrame:
    """Every run outside the paper's setting next to the published values of its split and model,
    each with ``differs_from_paper`` (what in its config differs); not for the paper's tables."""
    _, others = split_runs(table)
    ours = others[[*COMPARED, "experiment", "run_id", "iterations", "train_nll", "test_nll", "disentanglement", DIFFERS]]
    return ours.merge(paper_table().rename(columns=PAPER_COLUMNS), on=COMPARED, how="inner")


def renderer(run: Run) -> Callable[[dict], torch.Tensor]:
    """``batch -> logits`` of a run's model: a VAE reconstructs ``x`` from its posterior mean, the
    ground-truth decoder renders ``factors``."""
    model = load_model(run)
    if run.config["model"]["kind"] == "gt_decoder":
        return lambda batch: model(batch["factors"])
    return lambda batch: model(batch["x"])["logits"]


def example_batches(data: SplitData, n: int = 6, seed: int = 0) -> dict[str, dict]:
    """``n`` random images (with their factors) of the training and, if any, test combinations."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for split in ("train", "test"):
        part = getattr(data, split)
        if len(part):
            out[split] = part.batch(torch.randperm(len(part), generator=g)[:n].sort().values.to(part.device))
    return out


def run_figure(run: Run, out_dir: str | Path, n: int = 8) -> Path:
    """One PNG of a recorded VAE run: reconstructions of training and held-out (test) combinations on
    top, latent traversals of a training image below (latents by decreasing KL)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model = load_model(run)
    batches = example_batches(load_data(run), n)
    n_cols = sum(len(b["x"]) for b in batches.values())
    fig = plt.figure(figsize=(1.1 * n_cols, 2.5 + 1.05 * model.latent_size), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[2.3, 1.05 * model.latent_size])
    plots.reconstructions({model_label(run.config): lambda b: model(b["x"])["logits"]}, batches, fig=top)
    top.suptitle(f"run {run.run_id}: {model_label(run.config)} — reconstructions (posterior mean)", fontsize=10)
    plots.traversals(model, batches["train"]["x"][0], fig=bottom)
    bottom.suptitle("latent traversals of the first training image", fontsize=10)
    path = out_dir / f"run{run.run_id}-reconstructions-traversals.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path



def split_figures(runs: pd.DataFrame, out_dir: str | Path, n: int = 5) -> dict[str, Path]:
    """For the runs of one (dataset, condition, variant): ``<variant>-metrics.csv`` (every run, with
    ``differs_from_paper``), and, for the selected run of each model (one in the paper's setting where
    there is one), NLL vs disentanglement (runs outside the paper's setting faded, with a footnote),
    reconstructions of the same train/test images (the GT decoder renders them from their factors),
    and Hinton diagrams of R on one scale (the GT decoder's is the identity, as in the paper)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = results_table(runs)
    selected = select_models(table)
    by_id = {(r.experiment, r.run_id): r for r in runs["run"]}
    chosen = [by_id[(e, i)] for e, i in zip(selected["experiment"], selected["run_id"])]
    first = chosen[0]
    dataset, condition = first.config["dataset"]["name"], first.config["dataset"]["condition"]
    variant = first.config["dataset"]["variant"] or "all"
    paths = {"metrics": out_dir / f"{variant}-metrics.csv"}
    table.to_csv(paths["metrics"], index=False)

    title = f"{dataset} {condition} {variant}"
    fig = plots.nll_vs_disentanglement(selected, title=title)
    plots.note_not_paper_setting(fig, selected[DIFFERS])
    paths["disent_vs_nll"] = plots.save_figure(fig, out_dir / f"{variant}-disent_vs_nll.png")

    vae_first = sorted(chosen, key=lambda r: r.config["training"]["objective"] == "gt_decoder")
    renderers = {model_label(r.config): renderer(r) for r in vae_first}
    fig = plots.reconstructions(renderers, example_batches(load_data(first), n))
    paths["reconstructions"] = plots.save_figure(fig, out_dir / f"{variant}-reconstructions.png")

    panels = {}
    for r in vae_first:
        names = r.info["factor_names"]
        R = np.eye(len(names)) if r.config["training"]["objective"] == "gt_decoder" else np.asarray(r.info["dci_R"])
        panels[model_label(r.config)] = (R, names)
    paths["hinton"] = plots.save_figure(plots.hinton_panels(panels), out_dir / f"{variant}-hinton.png")
    return paths


def dataset_figure(table: pd.DataFrame, dataset: str, out_dir: str | Path) -> Path:
    """The paper's per-dataset figure: NLL against disentanglement, one panel per condition
    (recombination to element, to range, extrapolation), train and test joined per model. A model
    without a run in the paper's setting is drawn faded from its selected other run, and a footnote
    says what differs."""
    selected = select_models(table[table["dataset"] == dataset])
    conditions = [c for c in CONDITION_ORDER if c in set(selected["condition"])]
    fig, axes = plt.subplots(1, len(conditions), figsize=(4.6 * len(conditions), 3.8), squeeze=False)
    for ax, condition in zip(axes[0], conditions):
        part = selected[selected["condition"] == condition]
        for variant, rows in part.groupby("variant"):
            plots.nll_vs_disentanglement(rows, ax=ax, title=f"{condition} / {variant}", log=condition == "extrp")
    plots.note_not_paper_setting(fig, selected[DIFFERS])
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    return plots.save_figure(fig, out_dir / "disent_vs_nll.png")


def paper_figures(runs: pd.DataFrame, out_root: str | Path | None = None) -> dict[str, Any]:
    """Everything the paper shows, for every split that has runs: per split the CSV and figures of
    ``split_figures`` under ``<out_root>/<dataset>/<condition>/``, per dataset ``disent_vs_nll.png``,
    ``paper-comparison.csv`` (genlab's selected runs in the paper's setting next to the published
    numbers) and ``paper-comparison-other-runs.csv`` (every other run next to them, with
    ``differs_from_paper``; ``genlab.analysis.paper_setting``)."""
    out_root = Path(out_root) if out_root is not None else results_dir("disent")
    outputs: dict[str, Any] = {"splits": {}, "datasets": {}}
    if runs.empty:
        return outputs
    for key, group in runs.groupby(GROUP, dropna=False, sort=True):
        outputs["splits"][key] = split_figures(group, out_root / str(key[0]) / str(key[1]))
    table = results_table(runs)
    for dataset in sorted(set(table["dataset"])):
        outputs["datasets"][dataset] = dataset_figure(table, dataset, out_root / dataset)
    outputs["comparison"] = out_root / "paper-comparison.csv"
    compare_with_paper(table).to_csv(outputs["comparison"], index=False)
    outputs["other_runs"] = out_root / "paper-comparison-other-runs.csv"
    other_runs_vs_paper(table).to_csv(outputs["other_runs"], index=False)
    return outputs


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
    parser.add_argument("command", choices=["figures", "paper"],
                        help="figures: the newest matching run's reconstructions and traversals; paper: every split")
    parser.add_argument("--source", default=None, help="disent runs: file-store directory or mongodb://host:port/db")
    parser.add_argument("--decoders", default=None, help="ground-truth decoder runs (default data/sims/decoders)")
    parser.add_argument("--out", default=None, help="output directory (default data/results/disent)")
    parser.add_argument("--where", nargs="*", default=[], metavar="KEY=VALUE", help="config filters (JSON values)")
    args = parser.parse_args(argv)
    where = _parse_where(args.where)

    if args.command == "paper":
        runs = load_disent_runs(args.source, args.decoders, where)
        outputs = paper_figures(runs, args.out)
        print(f"{len(runs)} completed runs; figures and tables under {args.out or results_dir('disent')}")
        if "comparison" in outputs:
            comparison, others = (pd.read_csv(outputs[k]) for k in ("comparison", "other_runs"))
            print(f"in the paper's setting ({outputs['comparison']}):")
            print(comparison.to_string(index=False) if len(comparison) else "  (no run)")
            print(f"{len(others)} other runs next to the paper, not in its setting: {outputs['other_runs']}")
        return

    runs = load_runs(args.source or sims_dir("disent"), where=where, experiment="disent", status="COMPLETED")
    if runs.empty:
        raise SystemExit(f"no completed disent run in {args.source or sims_dir('disent')} matches {args.where}")
    run: Run = runs.iloc[-1]["run"]
    path = run_figure(run, args.out or results_dir("disent") / "runs")
    print(f"run {run.run_id} ({model_label(run.config)}, {run.config['dataset']['name']} "
          f"{run.config['dataset']['condition']}/{run.config['dataset']['variant']}, {run.info.get('iterations')} iterations)")
    for name, value in sorted(run.final_metrics().items()):
        if name.split(".")[0] in ("train", "val", "test"):
            print(f"  {name:<28} {value:10.4f}")
    print(f"reconstructions and latent traversals: {path}")


if __name__ == "__main__":
    main()
