"""Analysis of MIM's image experiments (E6; Livne, Swersky & Fleet 2019, "MIM: Mutual Information
Machine"; docs/mim.md §6.3, §7) from recorded runs of ``experiments.mim_images``: the table of NLL / NMI /
KNN per model and the image figures of the original's README (prior samples, reconstructions, the t-SNE
of the codes, the VampPrior's pseudo-inputs).

Runs are picked by config, never by id: the dataset from ``dataset.name`` ("dynamic MNIST",
"dynamic FashionMNIST", "Omniglot"), the model from ``model.options.decoder`` and the objective
(``MODELS``: "convHVAE VAE", "convHVAE S-MIM", "PixelHVAE VAE", "PixelHVAE A-MIM", the README's four,
and "convHVAE A-MIM" / "PixelHVAE S-MIM" when run), the prior from ``model.options.prior``, the
repetition from ``seed``. Each run's numbers are its final ``test.*`` statistics
(``genlab.evaluations.mim_images``, on the best epoch's weights).

A run is in the paper's setting (``differs_from_paper`` empty) when it is not a smoke run, its data are
the full sets (not ``dataset.tiny``), its run length is the original's schedule (no
``training.max_iterations`` or ``training.phases``, ``training.epochs`` >= 2,000; early stopping ends
runs sooner anyway, so only these count), the warm-up is 100 epochs and the NLL uses 5,000 importance
samples on every test image (``evaluation.nll_examples`` and ``max_examples`` unset). Runs outside it
are summarised apart (``paper_setting`` False) and marked in the figures.

There are no paper values here: the paper's body and tables were not available to us (docs/mim.md §7),
so the numbers stand alone (``PAPER_NOTE``). Nothing here trains.
"""

from __future__ import annotations

import io
import textwrap
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from configs import mim_images as paper_configs

from genlab.analysis import plots
from genlab.analysis.paper_setting import DIFFERS, config_values
from genlab.analysis.runs import MISSING, Run, experiment_runs, lookup
from genlab.evaluations.base import evaluation_options
from genlab.paths import results_dir

EXPERIMENT = "mim_images"
DATASETS = {"mnist": "dynamic MNIST", "fashion_mnist": "dynamic FashionMNIST", "omniglot": "Omniglot"}
ARCHITECTURES = {"conv": "convHVAE", "pixel": "PixelHVAE"}
MODELS = ("convHVAE VAE", "convHVAE S-MIM", "PixelHVAE VAE", "PixelHVAE A-MIM", "convHVAE A-MIM", "PixelHVAE S-MIM")
PRIORS = {"vampprior": "VampPrior", "standard": "standard prior"}  # model.options.prior -> its label
METRICS = ("nll", "nll_std", "elbo_loss", "MI_ksg", "NMI", "clf_acc_KNN1", "clf_acc_KNN3", "clf_acc_KNN5", "clf_acc_KNN10")
SUMMARY_METRICS = ("nll", "NMI", "clf_acc_KNN1", "clf_acc_KNN3", "clf_acc_KNN5", "clf_acc_KNN10", "MI_ksg")
TABLE = ["run_id", "dataset", "model", "prior", "objective", "seed", *METRICS, "is_samples", "nll_examples",
         "iterations", "smoke", DIFFERS]  # fmt: skip
PAPER_EPOCHS = config_values(paper_configs.training)["epochs"]  # 2,000
PAPER_WARMUP = paper_configs.WARMUP  # 100
PAPER_IS_SAMPLES = evaluation_options([EXPERIMENT])["is_samples"]  # 5,000
PAPER_NOTE = "no paper values: the paper's tables could not be read (docs/mim.md §7); our numbers stand alone"
ROWS = 4  # rows of 8 real images (and as many reconstructions) in a figure's reconstruction panel


def load_image_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.mim_images`` from a file store or Mongo URL (default
    ``data/sims/mim_images``; a missing default directory is no runs)."""
    return experiment_runs(EXPERIMENT, source, where, status)


def _get(config: Mapping[str, Any], key: str, default: Any = None) -> Any:
    value = lookup(config, key)
    return default if value is MISSING else value


def model_label(config: Mapping[str, Any]) -> str:
    """"convHVAE" / "PixelHVAE" (``model.options.decoder``) and "VAE" (``hvae_vae``), "S-MIM"
    (``hvae_mim`` with ``training.loss.sample`` true, its default) or "A-MIM"."""
    decoder = _get(config, "model.options.decoder", "conv")
    objective = _get(config, "training.objective")
    if objective == "hvae_mim":
        method = "S-MIM" if _get(config, "training.loss.sample", True) in (True, None) else "A-MIM"
    else:
        method = {"hvae_vae": "VAE"}.get(objective, str(objective))
    return f"{ARCHITECTURES.get(decoder, decoder)} {method}"


def dataset_label(name: str) -> str:
    return DATASETS.get(name, name)


def differences(config: Mapping[str, Any]) -> list[str]:
    """What takes a run outside the paper's setting (module docstring), one phrase each; [] inside it."""
    out = [f"{key}=True" for key in ("training.smoke", "dataset.tiny") if _get(config, key)]
    for key in ("training.max_iterations", "training.phases"):
        if _get(config, key) is not None:
            out.append(f"{key}={_get(config, key)!r} (paper: early stopping within {PAPER_EPOCHS} epochs)")
    epochs = _get(config, "training.epochs")
    if epochs is not None and epochs < PAPER_EPOCHS:
        out.append(f"training.epochs={epochs} (paper: {PAPER_EPOCHS})")
    if (warmup := _get(config, "training.warmup", PAPER_WARMUP)) != PAPER_WARMUP:
        out.append(f"training.warmup={warmup} (paper: {PAPER_WARMUP})")
    if (samples := _get(config, "evaluation.is_samples", PAPER_IS_SAMPLES)) != PAPER_IS_SAMPLES:
        out.append(f"evaluation.is_samples={samples} (paper: {PAPER_IS_SAMPLES})")
    out += [f"evaluation.{key}={value}" for key in ("nll_examples", "max_examples")
            if (value := _get(config, f"evaluation.{key}")) is not None]  # fmt: skip
    return out


def runs_table(source=None) -> pd.DataFrame:
    """One row per completed run in ``source`` (a file store, a Mongo URL, None for
    ``data/sims/mim_images``, or a table of ``load_image_runs``): ``TABLE``'s columns (every final
    ``test.*`` statistic without its prefix, ``is_samples`` and ``nll_examples`` as the evaluation
    used them, ``iterations`` trained), any other ``test.*`` statistic, and ``run`` (the :class:`Run`)."""
    runs = source if isinstance(source, pd.DataFrame) else load_image_runs(source)
    rows = []
    for run in runs["run"] if len(runs) else []:
        config, counts = run.config, run.info.get("mim_images", {})
        rows.append({
            "run_id": run.run_id, "dataset": dataset_label(_get(config, "dataset.name")), "model": model_label(config),
            "prior": _get(config, "model.options.prior"), "objective": _get(config, "training.objective"),
            "seed": config.get("seed"),
            **{k.split(".", 1)[1]: v for k, v in run.final_metrics().items() if k.startswith("test.")},
            "is_samples": counts.get("is_samples"), "nll_examples": counts.get("nll_examples"),
            "iterations": run.info.get("iterations"), "smoke": bool(_get(config, "training.smoke", False)),
            DIFFERS: "; ".join(differences(config)), "run": run,
        })  # fmt: skip
    table = pd.DataFrame(rows)
    others = sorted(c for c in table.columns if c not in TABLE and c != "run")
    return table.reindex(columns=[*TABLE, *others, "run"])


def _order(table: pd.DataFrame) -> pd.DataFrame:
    """Sorted by dataset, model and prior in the README's order, the paper's setting first, then seed."""
    keys = {"_d": table["dataset"].map({v: i for i, v in enumerate(DATASETS.values())}).fillna(len(DATASETS)),
            "_m": table["model"].map({m: i for i, m in enumerate(MODELS)}).fillna(len(MODELS)),
            "_p": table["prior"].map({p: i for i, p in enumerate(PRIORS)}).fillna(len(PRIORS)),
            "_o": table[DIFFERS].fillna("") != "" if DIFFERS in table else ~table["paper_setting"]}  # fmt: skip
    by = ["_d", "dataset", "_m", "model", "_p", "_o", *(["seed"] if "seed" in table else [])]
    return table.assign(**keys).sort_values(by, kind="stable").drop(columns=list(keys)).reset_index(drop=True)


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (dataset, model, prior, ``paper_setting``): ``count`` and the mean and standard deviation over
    seeds (ddof 1; NaN for one seed) of ``SUMMARY_METRICS`` (``<metric>_mean``, ``<metric>_std``); runs
    outside the paper's setting are their own rows. No paper column: ``PAPER_NOTE``."""
    keys = ["dataset", "model", "prior", "paper_setting"]
    stats = [f"{m}_{s}" for m in SUMMARY_METRICS for s in ("mean", "std")]
    if not len(table):
        return pd.DataFrame(columns=[*keys, "count", *stats])
    ours = table.assign(paper_setting=table[DIFFERS].fillna("") == "", prior=table["prior"].fillna("?"))
    present = [m for m in SUMMARY_METRICS if m in ours]
    grouped = ours.groupby(keys, sort=False)
    out = pd.concat([grouped.size().rename("count"), grouped[present].mean().add_suffix("_mean"),
                     grouped[present].std().add_suffix("_std")], axis=1).reset_index()  # fmt: skip
    return _order(out.reindex(columns=[*keys, "count", *stats]))


# --- figures --------------------------------------------------------------------------------------


def image_arrays(run: Run) -> dict[str, np.ndarray]:
    """The run's ``mim_images.npz``: samples, real, reconstructions, tsne, tsne_labels (+ pseudo_inputs)."""
    with np.load(io.BytesIO(run.artifact_bytes("mim_images.npz"))) as arrays:
        return {k: arrays[k] for k in arrays.files}


def tile(images: np.ndarray, cols: int = 8) -> np.ndarray:
    """(N, 1, H, W) images as one (rows * H, cols * W) grid, blank cells white."""
    images = np.asarray(images, dtype=float).reshape(len(images), *np.shape(images)[-2:])
    rows, (h, w) = -(-len(images) // cols), images.shape[1:]
    grid = np.ones((rows * cols, h, w))
    grid[: len(images)] = images
    return grid.reshape(rows, cols, h, w).transpose(0, 2, 1, 3).reshape(rows * h, cols * w)


def _grid(ax, images: np.ndarray, title: str) -> None:
    ax.imshow(tile(images), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set(xticks=[], yticks=[])
    ax.set_title(title, fontsize=8)


def _title(model: str, prior: str | None, dataset: str, seed: Any, mark: str = "") -> str:
    return f"{model}, {PRIORS.get(prior, f'{prior} prior')}, {dataset}, seed {seed}{mark}"


def image_figure(run: Run, fig=None, title: str | None = None):
    """One run's README figures side by side: 64 prior samples, the first 32 test images (top half) above
    their reconstructions, the t-SNE of the test codes coloured by label and, with the VampPrior, the
    first 64 pseudo-inputs."""
    arrays = image_arrays(run)
    panels = 4 if "pseudo_inputs" in arrays else 3
    fig = fig or plt.figure(figsize=(2.6 * panels, 3.0), layout="constrained")
    axes = fig.subplots(1, panels)
    _grid(axes[0], arrays["samples"][:64], "prior samples")
    n = ROWS * 8
    _grid(axes[1], np.concatenate([arrays["real"][:n], arrays["reconstructions"][:n]]), "real (top) / reconstructed")
    axes[1].axhline(-0.5 + 28 * -(-min(n, len(arrays["real"])) // 8), color="C3", lw=1)
    labels = arrays["tsne_labels"]
    many = labels.max(initial=0) >= 10  # Omniglot's alphabets: a continuous map; digits: one tab10 colour per class
    axes[2].scatter(*arrays["tsne"].T, c=labels, s=3, cmap="nipy_spectral" if many else "tab10", vmin=0, vmax=None if many else 9)
    axes[2].set(xticks=[], yticks=[])
    axes[2].set_title(f"t-SNE of {len(labels)} test codes", fontsize=8)
    if panels == 4:
        _grid(axes[3], arrays["pseudo_inputs"][:64], "pseudo-inputs")
    config = run.config
    fig.suptitle(title or _title(model_label(config), _get(config, "model.options.prior"),
                                 dataset_label(_get(config, "dataset.name")), config.get("seed")), fontsize=9)  # fmt: skip
    return fig


def _dataset_rows(table: pd.DataFrame, dataset: str | None) -> pd.DataFrame:
    if not len(table):
        return table
    dataset = dataset_label(dataset) if dataset is not None else _order(table)["dataset"].iloc[0]
    return _order(table[table["dataset"] == dataset])


def images_figure(table: pd.DataFrame, dataset: str | None = None, fig=None):
    """One row per model (``MODELS``' order) of ``image_figure`` for ``dataset`` (a label or a
    ``dataset.name``; None: the first present): each model's run in the paper's setting first, then the
    VampPrior, then the lowest seed; runs outside the setting starred, with a footnote. None without runs."""
    rows = _dataset_rows(table, dataset)
    chosen = [group.iloc[0] for _, group in rows.groupby("model", sort=False)] if len(rows) else []
    if not chosen:
        return None
    fig = fig or plt.figure(figsize=(10.4, 3.2 * len(chosen)), layout="constrained")
    for sub, row in zip(np.atleast_1d(fig.subfigures(len(chosen), 1)), chosen):
        image_figure(row["run"], fig=sub, title=_title(row["model"], row["prior"], row["dataset"], row["seed"],
                                                      " *" if row[DIFFERS] else ""))  # fmt: skip
    marks = sorted({row[DIFFERS] for row in chosen if row[DIFFERS]})
    if marks:
        text = "* not the paper's setting: " + " | ".join(marks)
        fig.text(0.01, -0.01, textwrap.fill(text, 160), ha="left", va="top", fontsize=7)
    return fig


def write_image_results(table: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """``image_runs.csv`` (without the ``run`` handles), ``image_summary.csv`` and, per dataset with
    runs, ``images_<dataset.name>.png`` under ``out_dir`` (default ``data/results/mim``); ``{name: path}``."""
    out = Path(out_dir) if out_dir is not None else results_dir("mim")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"image_runs": out / "image_runs.csv", "image_summary": out / "image_summary.csv"}
    table.drop(columns=["run"], errors="ignore").to_csv(paths["image_runs"], index=False)
    summary_table(table).to_csv(paths["image_summary"], index=False)
    names = {label: name for name, label in DATASETS.items()}
    for label in dict.fromkeys(_order(table)["dataset"]) if len(table) else []:
        name = names.get(label, str(label)).replace(" ", "_")
        paths[f"images_{name}"] = plots.save_figure(images_figure(table, label), out / f"images_{name}.png")
    return paths
