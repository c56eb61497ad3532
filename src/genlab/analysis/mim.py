"""Analysis of "MIM: Mutual Information Machine" (Livne, Swersky & Fleet 2019; docs/mim.md §6.2, §7.3)
from recorded runs of ``experiments.mim``: the sweep figures of E2-E5 beside the paper's values, the
reconstruction and latent figures of E1, and the collapse verdict of E2.

It reads every completed run of ``experiments.mim`` (default ``data/sims/mim``, or a Mongo URL) and
picks them by config, never by id:

- the experiment from ``dataset.name`` and ``training.loss.inv_H``: ``toyMIM`` / ``toyVAE`` /
  ``toyAE`` E1, ``toy4`` E2 (``inv_H`` false) or E3 (``inv_H`` true), ``toy4_20`` E4,
  ``pca_fashion_mnist20`` E5 (``experiment_of``);
- the method from ``training.objective`` and ``training.loss``: ``mim`` with ``sample`` true "MIM"
  (S-MIM), with ``sample`` false "A-MIM", ``vae_mc`` "VAE", ``ae`` "AE"; with ``inv_H`` the entropy
  term inverted, "MIM - H" / "A-MIM - H" (the joint entropy removed) and "VAE + H" (added)
  (``method_label``);
- the sweep's axis from ``model.options.mid_dim`` (E2, E3) or ``model.options.z_dim`` (E4, E5), the
  repetition from ``seed``.

Each run's numbers are its final ``test.*`` statistics (``genlab.evaluations.mim_stats``, on the best
epoch's weights), the four the figures plot being ``MI_ksg`` (KSG mutual information), ``H_q_x`` (the
figures' "NLL"), ``x_recon_err`` (the figures' "Recon. RMSE") and ``clf_acc_KNN5``.

A run is in the paper's setting (``differs_from_paper`` empty) when its data are the full streams
(not ``dataset.tiny``; the toys' 10,000 points a pass; FashionMNIST from the published files, 20
components, augmented), it is not a smoke run, its run length (``training.phases`` /
``max_iterations`` / ``epochs``) and ``training.warmup`` are those of its experiment's named config in
``scripts/configs/mim.py`` (with every other setting that named config fixes, the swept key, the
seed and the method aside) and its statistics used ``mim_stats``' defaults. ``dataset.options.pca_fit``
is not compared (``train`` is the correct fit, ``per_split`` the original's; both are MIM's setting).
Runs outside the setting are summarised apart and drawn faded, with a footnote.

``PAPER_VALUES`` holds the paper's values, means over 10 seeds read by eye off the original
repository's committed figures (approximate, ±1 tick of their axes; docs/mim.md §7.3). Nothing here
trains.

Command line::

    python -m genlab.analysis.mim                       # every completed run in data/sims/mim
    python -m genlab.analysis.mim --source mongodb://host:27017/genlab --out figures/
    python -m genlab.analysis.mim --images-source data/sims/mim_images   # E6's store (the default)

The image experiments (E6, ``experiments.mim_images``) are tabled and drawn by
``genlab.analysis.mim_images``; the command line writes their results beside these (``--images-source``).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import torch
from configs import mim as paper_configs
from matplotlib.lines import Line2D
from matplotlib.patches import Ellipse

from genlab.analysis import mim_images, plots
from genlab.analysis.paper_setting import DIFFERS, config_values
from genlab.analysis.runs import MISSING, Run, analysis_parser, canonical, experiment_runs, flatten_config, load_runs, lookup
from genlab.evaluations.base import evaluation_options
from genlab.paths import results_dir
from genlab.training.phases import parse_phases

EXPERIMENT = "mim"
EXPERIMENTS = ("E1", "E2", "E3", "E4", "E5")
SWEEPS = ("E2", "E3", "E4", "E5")
E1_DATASETS = {"toyMIM": "MIM", "toyVAE": "VAE", "toyAE": "AE"}  # the animation's panels: dataset -> its method
DATASETS = {**{name: "E1" for name in E1_DATASETS}, "toy4_20": "E4", "pca_fashion_mnist20": "E5"}  # toy4: E2 or E3
MID_DIMS = (5, 20, 50, 100, 200, 300, 400, 500)
Z_DIMS = (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
AXIS = {"E2": "mid_dim", "E3": "mid_dim", "E4": "z_dim", "E5": "z_dim"}  # the swept model option
AXIS_VALUES = {"E2": MID_DIMS, "E3": MID_DIMS, "E4": Z_DIMS, "E5": Z_DIMS}
TITLES = {"E1": "E1: reconstructions and latents (toyMIM / toyVAE / toyAE)",
          "E2": "E2: expressiveness (toy4, z_dim 2)",
          "E3": "E3: the inverted entropy term (toy4, z_dim 2)",
          "E4": "E4: the bottleneck on toy4_20 (mid_dim 50)",
          "E5": "E5: the bottleneck on pca_fashion_mnist20 (mid_dim 50)"}  # fmt: skip
METRICS = {"MI_ksg": "MI (KSG)", "H_q_x": "NLL (H_q_x)", "x_recon_err": "Recon. RMSE (x_recon_err)",
           "clf_acc_KNN5": "KNN5 accuracy"}  # the four plotted test statistics, in the figures' order
METHODS = ("MIM", "A-MIM", "VAE", "AE", "MIM - H", "A-MIM - H", "VAE + H")  # the row order
PAPER_METHODS = {"E2": ("MIM", "VAE"), "E3": ("MIM - H", "VAE + H"), "E4": ("MIM", "VAE"), "E5": ("MIM", "VAE")}
COLORS = {"MIM": "C0", "VAE": "C1", "A-MIM": "C2", "AE": "C4", "MIM - H": "C0", "VAE + H": "C1", "A-MIM - H": "C2"}
E1_NAMED = {"toyMIM": paper_configs.e1_mim, "toyVAE": paper_configs.e1_vae, "toyAE": paper_configs.e1_ae}
NAMED = {"E2": paper_configs.e2, "E3": paper_configs.e3, "E4": paper_configs.e4, "E5": paper_configs.e5}

_E2_MIM = {"MI_ksg": (4.9, 6.75, 6.75, 6.85, 6.9, 6.8, 6.9, 6.8),
           "H_q_x": (3.2, 3.25, 3.3, 3.15, 3.25, 3.2, 3.2, 3.15),
           "x_recon_err": (0.24, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01, 0.01),
           "clf_acc_KNN5": (0.81, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95)}  # fmt: skip
_E2_VAE = {"MI_ksg": (0.0, 0.2, 0.95, 1.2, 1.45, 1.45, 1.45, 1.45),
           "H_q_x": (2.0, 1.97, 1.85, 1.82, 1.81, 1.81, 1.82, 1.81),
           "x_recon_err": (1.17, 1.07, 0.72, 0.62, 0.52, 0.52, 0.51, 0.52),
           "clf_acc_KNN5": (0.21, 0.28, 0.54, 0.64, 0.735, 0.735, 0.745, 0.735)}  # fmt: skip
_E3_MIM_H = {"MI_ksg": (0.0,) * 8,
             "H_q_x": (3.5, 3.5, 3.5, 3.5, 3.5, 28.0, 57.0, 77.0),  # 2-5 up to mid_dim 200 (3.5 the read value)
             "x_recon_err": (1.42, 1.20, 1.25, 1.14, 1.10, 1.27, 1.36, 1.38),
             "clf_acc_KNN5": (0.20,) * 8}  # fmt: skip
_E3_VAE_H = {"MI_ksg": (1.7, *(6.7,) * 7),
             "H_q_x": (2.75,) * 8,
             "x_recon_err": (0.76, *(0.02,) * 7),
             "clf_acc_KNN5": (0.52, *(0.95,) * 7)}  # fmt: skip
_E4_MIM = {"MI_ksg": (0.81, 1.72, 1.90, 1.88, 1.87, 1.85, 1.77, 1.79, 1.73, 1.69),
           "H_q_x": (88.0, 93.0, 100.0, 107.0, 114.0, 124.0, 132.0, 140.0, 146.0, 155.0),
           "x_recon_err": (144.4, 143.9, 144.7, 144.0, 144.4, 145.4, 145.9, 146.0, 145.7, 146.3),
           "clf_acc_KNN5": (0.985, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0)}  # fmt: skip
_E4_VAE = {"MI_ksg": (1.38, 1.42, 1.38, 1.27, 1.16, 1.14, 1.06, 0.93, 0.88, 0.83),
           "H_q_x": (76.0, 78.0, 79.0, 81.0, 85.0, 81.0, 83.0, 87.0, 87.0, 91.0),
           "x_recon_err": (144.8, 147.5, 150.0, 151.0, 151.5, 151.6, 152.7, 153.5, 153.4, 155.0),
           "clf_acc_KNN5": (0.92, 0.93, 0.91, 0.86, 0.80, 0.80, 0.76, 0.69, 0.685, 0.645)}  # fmt: skip
_E5_MIM = {"MI_ksg": (0.71, 1.76, 2.18, 2.55, 2.78, 2.80, 2.61, 2.72, 3.0, 2.55),
           "H_q_x": (75.0, 60.0, 88.0, 69.0, 91.0, 88.0, 89.0, 88.0, 132.0, 126.0),
           "x_recon_err": (8.9, 9.6, 6.2, 5.45, 5.4, 5.0, 4.85, 5.25, 7.5, 5.2),
           "clf_acc_KNN5": (0.21, 0.335, 0.39, 0.44, 0.43, 0.49, 0.46, 0.48, 0.505, 0.47)}  # fmt: skip
_E5_VAE = {"MI_ksg": (1.35, 1.80, 2.03, 2.08, 1.80, 1.59, 1.39, 1.29, 1.15, 1.01),
           "H_q_x": (30.0,) * 10,
           "x_recon_err": (7.3, 6.85, 6.7, 6.6, 6.75, 6.95, 7.1, 7.1, 7.2, 7.3),
           "clf_acc_KNN5": (0.30, 0.31, 0.31, 0.32, 0.305, 0.30, 0.28, 0.265, 0.25, 0.245)}  # fmt: skip

# The paper's values: the means over 10 seeds read by eye off the original repository's committed
# figures (approximate, +-1 tick of their axes; docs/mim.md §7.3), at AXIS_VALUES[experiment]
# (mid_dim 5..500 for E2 and E3, z_dim 2..20 for E4 and E5): {experiment: {method: {metric: values}}}.
# E3's "MIM - H" NLL is read as 3.5 for mid_dim 5..200, where the figure shows values between 2 and 5.
PAPER_VALUES: dict[str, dict[str, dict[str, tuple[float, ...]]]] = {
    "E2": {"MIM": _E2_MIM, "VAE": _E2_VAE},
    "E3": {"MIM - H": _E3_MIM_H, "VAE + H": _E3_VAE_H},
    "E4": {"MIM": _E4_MIM, "VAE": _E4_VAE},
    "E5": {"MIM": _E5_MIM, "VAE": _E5_VAE},
}

# the data of the paper's setting (module docstring): {dataset: {dotted key: value}}
_TOY_DATA = {"dataset.options.n": 10_000}
DATA_SETTING = {**{name: _TOY_DATA for name in (*E1_DATASETS, "toy4", "toy4_20")},
                "pca_fashion_mnist20": {"dataset.options.source": "file", "dataset.options.n": None,
                                        "dataset.options.n_components": 20, "dataset.options.augment": True}}  # fmt: skip
FULL_SIZE = {"dataset.tiny": False, "training.smoke": False}
RUN_LENGTH = ("training.phases", "training.max_iterations", "training.epochs")
METHOD_KEYS = ("seed", "training.objective", "training.loss.sample", "training.loss.inv_H")  # what picks the method
NOT_COMPARED_EVALUATION_OPTIONS = ("batch_size",)
TABLE = ["run_id", "experiment", "method", "dataset", "objective", "sample", "inv_H", "mid_dim", "z_dim", "seed",
         *METRICS, "iterations", "smoke", DIFFERS]  # fmt: skip


# --- runs -----------------------------------------------------------------------------------------


def load_mim_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.mim`` from a file store or Mongo URL (default ``data/sims/mim``; a missing
    default directory is no runs)."""
    return experiment_runs(EXPERIMENT, source, where, status)


def _flag(config: Mapping[str, Any], key: str, default: bool) -> bool:
    value = lookup(config, key)
    return default if value is MISSING or value is None else bool(value)


def experiment_of(config: Mapping[str, Any]) -> str | None:
    """E1-E5 from ``dataset.name`` and ``training.loss.inv_H`` (module docstring); None for other data."""
    name = lookup(config, "dataset.name")
    if name == "toy4":
        return "E3" if _flag(config, "training.loss.inv_H", False) else "E2"
    return DATASETS.get(name)


def method_label(config: Mapping[str, Any]) -> str:
    """"MIM" (S-MIM, ``sample`` true), "A-MIM", "VAE", "AE"; with ``inv_H`` "MIM - H" / "A-MIM - H" (the
    entropy term removed) and "VAE + H" (added). Another objective keeps its name."""
    objective = lookup(config, "training.objective")
    if objective == "mim":
        label = "MIM" if _flag(config, "training.loss.sample", True) else "A-MIM"
    else:
        label = {"vae_mc": "VAE", "ae": "AE"}.get(objective, str(objective))
    if _flag(config, "training.loss.inv_H", False):
        label += " - H" if objective == "mim" else " + H"
    return label


def _named_config(config: Mapping[str, Any], experiment: str | None):
    if experiment == "E1":
        return E1_NAMED.get(lookup(config, "dataset.name"))
    return NAMED.get(experiment)


def _length(values: Mapping[str, Any]) -> tuple[list, str] | None:
    """The phases a run-length setting makes and how to say it, None if unreadable."""
    try:
        phases = parse_phases(values.get("training.phases"), iterations=values.get("training.max_iterations"),
                              epochs=values.get("training.epochs"))  # fmt: skip
    except (TypeError, ValueError):
        return None
    deciding = next((key for key in RUN_LENGTH if values.get(key) is not None), "training.epochs")
    return phases, f"{deciding}={canonical(values.get(deciding))!r}"


def paper_setting(config: Mapping[str, Any]) -> dict[str, Any]:
    """The paper's setting of a run's experiment as ``{dotted key: value}`` (module docstring): the
    data, the shared switches, what its named config fixes (the swept key, the seed and the method
    aside; the run length included) and ``mim_stats``' default options. {} for data of no experiment."""
    experiment = experiment_of(config)
    named = _named_config(config, experiment)
    if named is None:
        return {}
    fixed = flatten_config(config_values(named))
    swept = f"model.options.{AXIS[experiment]}" if experiment in AXIS else None
    training = config_values(paper_configs.mim_training)
    setting = {**DATA_SETTING.get(lookup(config, "dataset.name"), {}), **FULL_SIZE,
               "training.phases": None, "training.max_iterations": None, "training.epochs": training["epochs"],
               "training.warmup": training["warmup"]}  # fmt: skip
    setting.update({k: v for k, v in fixed.items() if k not in METHOD_KEYS and k != swept})
    options = evaluation_options(["mim_stats"])
    setting.update({f"evaluation.{k}": canonical(v) for k, v in options.items() if k not in NOT_COMPARED_EVALUATION_OPTIONS})
    return setting


def differences(config: Mapping[str, Any]) -> list[str]:
    """What in a run's config differs from the paper's setting, one ``"key=value (paper: value)"``
    each (an unrecorded key counts as different); [] in the setting."""
    setting = paper_setting(config)
    if not setting:
        return [f"dataset.name={lookup(config, 'dataset.name')!r} (not a dataset of the paper)"]
    out = []
    for key, paper in setting.items():
        if key in RUN_LENGTH:
            continue
        value = lookup(config, key)
        if value is MISSING:
            out.append(f"{key} not recorded (paper: {paper!r})")
        elif canonical(value) != canonical(paper):
            out.append(f"{key}={canonical(value)!r} (paper: {paper!r})")
    ours = _length({key: value for key in RUN_LENGTH if (value := lookup(config, key)) is not MISSING})
    reference = _length(setting)
    if ours is None:
        out.append(f"run length not recorded (paper: {reference[1]})")
    elif ours[0] != reference[0]:
        out.append(f"{ours[1]} (paper: {reference[1]})")
    return out


def differs_from_paper(run: Run) -> str:
    """A run's differences from the paper's setting, joined by "; " ("" in the setting)."""
    return "; ".join(differences(run.config))


def _as_int(value: Any) -> Any:
    return int(value) if isinstance(value, (int, float, np.integer)) and not isinstance(value, bool) else None


def runs_table(source=None) -> pd.DataFrame:
    """One row per completed run of ``experiments.mim`` in ``source`` (a file store, a Mongo URL,
    None for ``data/sims/mim``, or a table of ``load_runs`` / ``load_mim_runs``): ``run_id``,
    ``experiment`` (E1-E5, None for other data), ``method``, ``dataset``, ``objective``, ``sample``,
    ``inv_H``, ``mid_dim``, ``z_dim``, ``seed``, the four plotted statistics (``METRICS``), every other
    final ``test.*`` statistic (without the ``test.`` prefix), ``iterations`` (trained), ``smoke``,
    ``differs_from_paper`` and ``run`` (the :class:`Run`, for the figures; not written to CSV)."""
    runs = source if isinstance(source, pd.DataFrame) else load_mim_runs(source)
    rows = []
    for run in runs["run"] if len(runs) else []:
        config = run.config
        final = run.final_metrics()
        objective = lookup(config, "training.objective")
        rows.append({
            "run_id": run.run_id, "experiment": experiment_of(config), "method": method_label(config),
            "dataset": lookup(config, "dataset.name"), "objective": objective,
            "sample": _flag(config, "training.loss.sample", True) if objective == "mim" else None,
            "inv_H": _flag(config, "training.loss.inv_H", False),
            "mid_dim": _as_int(lookup(config, "model.options.mid_dim")), "z_dim": _as_int(lookup(config, "model.options.z_dim")),
            "seed": config.get("seed"),
            **{k.split(".", 1)[1]: v for k, v in final.items() if k.startswith("test.")},
            "iterations": run.info.get("iterations"), "smoke": _flag(config, "training.smoke", False),
            DIFFERS: differs_from_paper(run), "run": run,
        })  # fmt: skip
    table = pd.DataFrame(rows)
    others = sorted(c for c in table.columns if c not in TABLE and c != "run")
    table = table.reindex(columns=[*TABLE, *others, "run"])
    return table.astype({"mid_dim": "Int64", "z_dim": "Int64"})


# --- the sweeps (E2-E5) ---------------------------------------------------------------------------


def _check_sweep(experiment: str) -> str:
    if experiment not in SWEEPS:
        raise ValueError(f"experiment must be one of {', '.join(SWEEPS)}, not {experiment!r}")
    return AXIS[experiment]


def paper_table(experiment: str) -> pd.DataFrame:
    """``PAPER_VALUES[experiment]`` as rows: method, the axis, ``paper_<metric>`` for each metric."""
    axis = _check_sweep(experiment)
    return pd.DataFrame([{"method": method, axis: x, **{f"paper_{m}": values[m][i] for m in METRICS}}
                         for method, values in PAPER_VALUES[experiment].items()
                         for i, x in enumerate(AXIS_VALUES[experiment])])  # fmt: skip


def _order(methods: pd.Series) -> pd.Series:
    return methods.map({m: i for i, m in enumerate(METHODS)}).fillna(len(METHODS))


def sweep_summary(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """Per (method, axis value, ``differs_from_paper``) of ``experiment``'s runs: ``count`` and the
    mean and standard deviation over seeds (ddof 1; NaN for one seed) of each plotted statistic
    (``<metric>_mean``, ``<metric>_std``), beside the paper's value at that point (``paper_<metric>``,
    NaN where the paper has none). Every point of the paper's curves is listed, with count 0 where no
    run was made; runs outside the paper's setting are their own rows (with the paper's value beside
them too). Sorted by method (``METHODS``' order), axis value, the paper's setting first."""
    axis = _check_sweep(experiment)
    stats = [f"{m}_{s}" for m in METRICS for s in ("mean", "std")]
    columns = ["experiment", "method", axis, DIFFERS, "count", *stats, *(f"paper_{m}" for m in METRICS)]
    ours = table[table["experiment"] == experiment] if len(table) else table
    if len(ours):
        ours = ours.assign(**{DIFFERS: ours[DIFFERS].fillna(""), axis: ours[axis].astype("int64")})
        grouped = ours.groupby(["method", axis, DIFFERS], sort=False)
        means = grouped[list(METRICS)].mean().add_suffix("_mean")
        stds = grouped[list(METRICS)].std().add_suffix("_std")
        counts = grouped.size().rename("count")
        ours = pd.concat([counts, means, stds], axis=1).reset_index()
    else:
        ours = pd.DataFrame(columns=["method", axis, DIFFERS, "count", *stats])
    paper = paper_table(experiment)
    outside = ours[DIFFERS] != ""
    inside = paper.merge(ours[~outside], on=["method", axis], how="outer")  # every paper point, count 0 without runs
    merged = pd.concat([inside, ours[outside].merge(paper, on=["method", axis], how="left")], ignore_index=True)
    merged["count"] = merged["count"].fillna(0).astype(int)
    merged[DIFFERS] = merged[DIFFERS].fillna("")
    merged["experiment"] = experiment
    merged = merged.assign(_m=_order(merged["method"]), _d=merged[DIFFERS] != "")
    merged = merged.sort_values(["_m", "method", axis, "_d", DIFFERS]).reset_index(drop=True)
    return merged.astype({axis: int, **{c: float for c in stats}})[columns]


def _color(method: str, extra: dict[str, str]) -> str:
    if method in COLORS:
        return COLORS[method]
    return extra.setdefault(method, f"C{5 + len(extra) % 5}")


def sweep_figure(table: pd.DataFrame, experiment: str, fig=None):
    """E2-E5: four panels (``METRICS``: MI_ksg, NLL, Recon., KNN5) against ``mid_dim`` (E2, E3) or
    ``z_dim`` (E4, E5): per method ours as the mean with error bars of one standard deviation over
    seeds, from whatever runs exist (a point without runs absent, a method without runs not drawn),
    and the paper's values (``PAPER_VALUES``, always drawn) dashed in the same colour, labelled
    "paper". Runs outside the paper's setting are drawn faded, with a footnote."""
    axis = _check_sweep(experiment)
    summary = sweep_summary(table, experiment)
    fig = fig or plt.figure(figsize=(16, 3.9))
    axes = fig.subplots(1, len(METRICS), squeeze=True)
    extra: dict[str, str] = {}
    marks, handles = [], {}
    ours = summary[summary["count"] > 0]
    for ax, (metric, label) in zip(axes, METRICS.items()):
        for method, values in PAPER_VALUES[experiment].items():
            color = _color(method, extra)
            ax.plot(AXIS_VALUES[experiment], values[metric], "--", color=color, lw=1.3, alpha=0.7, marker="s", mfc="none", ms=4)
            name = f"{method} (paper)"
            handles.setdefault(name, Line2D([], [], color=color, ls="--", marker="s", mfc="none", label=name))
        for (method, mark), group in ours.groupby(["method", DIFFERS], sort=False):
            group = group.sort_values(axis)
            color = _color(method, extra)
            std = group[f"{metric}_std"].astype(float)
            ax.errorbar(group[axis].astype(float), group[f"{metric}_mean"].astype(float),
                        yerr=None if std.isna().all() else std.fillna(0.0), fmt="-o", color=color, ms=4, capsize=3,
                        lw=1.6, alpha=0.45 if mark else 1.0)  # fmt: skip
            marks.append(mark)
            name = f"{method} (ours){' *' if mark else ''}"
            handles.setdefault(name, Line2D([], [], color=color, marker="o", alpha=0.45 if mark else 1.0, label=name))
        ax.set_xlabel(axis)
        if axis == "mid_dim":
            ax.set_xscale("log")
        ticks = sorted(set(AXIS_VALUES[experiment]) | {int(x) for x in ours[axis]})
        ax.set_xticks(ticks, [str(x) for x in ticks], fontsize=7, rotation=45 if axis == "mid_dim" else 0)
        ax.minorticks_off()
        ax.set_title(label, fontsize=10)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{TITLES[experiment]}: ours (mean ± std over seeds) and the paper's (dashed)", fontsize=10)
    fig.legend(handles=list(handles.values()), fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.tight_layout()
    plots.note_not_paper_setting(fig, marks)
    return fig


def collapse_verdict(table: pd.DataFrame, mid_dim: int | None = None) -> pd.DataFrame:
    """The paper's claim of E2, "MIM avoids the VAE's posterior collapse": per ``mid_dim`` (every one
    with runs, or only ``mid_dim``), the mean ``MI_ksg`` and ``clf_acc_KNN5`` of MIM's and the VAE's
    runs (all E2 runs given: filter ``table`` first to keep, e.g., the paper's setting), their counts,
    whether MIM's exceed the VAE's (``mim_higher_MI``, ``mim_higher_KNN5``; None without runs of both),
    the paper's values and a ``verdict``; ``outside_paper_setting`` counts the runs that differ."""
    rows = []
    e2 = table[table["experiment"] == "E2"] if len(table) else table
    values = sorted({int(v) for v in e2["mid_dim"].dropna()}) if len(e2) else []
    if mid_dim is not None:
        values = [int(mid_dim)]
    for value in values:
        at = e2[e2["mid_dim"] == value] if len(e2) else e2
        mim, vae = (at[at["method"] == m] if len(at) else at for m in ("MIM", "VAE"))
        row: dict[str, Any] = {"mid_dim": value, "count_MIM": len(mim), "count_VAE": len(vae)}
        for metric, short in (("MI_ksg", "MI"), ("clf_acc_KNN5", "KNN5")):
            ours = {m: float(g[metric].mean()) if len(g) else math.nan for m, g in (("MIM", mim), ("VAE", vae))}
            row[f"MIM_{short}"], row[f"VAE_{short}"] = ours["MIM"], ours["VAE"]
            both = len(mim) and len(vae)
            row[f"mim_higher_{short}"] = bool(ours["MIM"] > ours["VAE"]) if both else None
            if value in MID_DIMS:
                i = MID_DIMS.index(value)
                row[f"paper_MIM_{short}"] = PAPER_VALUES["E2"]["MIM"][metric][i]
                row[f"paper_VAE_{short}"] = PAPER_VALUES["E2"]["VAE"][metric][i]
            else:
                row[f"paper_MIM_{short}"] = row[f"paper_VAE_{short}"] = math.nan
        if row["mim_higher_MI"] is None:
            row["verdict"] = "no runs of both MIM and VAE"
        elif row["mim_higher_MI"] and row["mim_higher_KNN5"]:
            row["verdict"] = "MIM avoids the VAE's collapse (higher MI and KNN5), as in the paper"
        else:
            row["verdict"] = "not shown: MIM's " + " and ".join(
                n for n, k in (("MI", "mim_higher_MI"), ("KNN5", "mim_higher_KNN5")) if not row[k]) + " not above the VAE's"
        row["outside_paper_setting"] = int((at[DIFFERS].fillna("") != "").sum()) if len(at) else 0
        rows.append(row)
    columns = ["mid_dim", "count_MIM", "count_VAE", "MIM_MI", "VAE_MI", "paper_MIM_MI", "paper_VAE_MI", "mim_higher_MI",
               "MIM_KNN5", "VAE_KNN5", "paper_MIM_KNN5", "paper_VAE_KNN5", "mim_higher_KNN5", "verdict",
               "outside_paper_setting"]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)


# --- the toy figures (E1 and any 2-D run) ---------------------------------------------------------


def toy_view(run: Run) -> dict[str, Any]:
    """The run's ``toy_view.pt`` (``genlab.evaluations.mim_stats``; 2-D data only)."""
    if "toy_view.pt" not in run.artifact_names():
        raise ValueError(f"run {run.run_id} ({lookup(run.config, 'dataset.name')}) recorded no toy_view.pt: "
                         "only runs on 2-D data do")  # fmt: skip
    return torch.load(io.BytesIO(run.artifact_bytes("toy_view.pt")), map_location="cpu")


CONTOUR_LEVELS = np.array([0.1, 0.3, 0.5, 0.7, 0.9])  # the 5 contours of P(x), as fractions of its peak


def _density(name: str, span: float = 2.0, steps: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from genlab.data.mixtures import mixture

    grid = torch.linspace(-span, span, steps, dtype=torch.float64)
    xx, yy = torch.meshgrid(grid, grid, indexing="xy")
    points = torch.stack((xx.reshape(-1), yy.reshape(-1)), dim=1)
    density = mixture(name).log_prob(points).exp().reshape(steps, steps)
    return xx.numpy(), yy.numpy(), density.numpy()


def toy_figure(run: Run, fig=None):
    """docs/mim.md §6.2 for one 2-D run: on top the true P(x) (5 density contours on [-2, 2]^2, from
    ``genlab.data.mixtures``) with the 200 sampled reconstructions as red dots and the view's
    "RMSE = .." / "MI = .."; below the encoder's q(z|x) of the 200 points as green 1-sigma ellipses
    (width 2 std_1, height 2 std_2 at the mean, the means as dots) and p(z)'s unit circle dashed, on [-3, 3]^2."""
    view = toy_view(run)
    name = lookup(run.config, "dataset.name")
    title = f"{method_label(run.config)} on {name} (seed {run.config.get('seed')})"
    return draw_view(view, name, title, f"RMSE = {float(view['x_recon_err']):.2f}\nMI = {float(view['MI_ksg']):.2f}", fig)


def draw_view(view: Mapping[str, Any], name: str, title: str, text: str, fig=None):
    """``toy_figure``'s two panels for one view (``toy_view.pt`` or a frame of ``toy_frames.pt``) of
    dataset ``name``, with ``text`` in the top panel's corner."""
    fig = fig or plt.figure(figsize=(3.6, 7.0))
    top, bottom = fig.subplots(2, 1)
    xx, yy, density = _density(name)
    top.contour(xx, yy, density, levels=CONTOUR_LEVELS * density.max(), cmap="Blues", linewidths=1.0)
    recon = view["x_recon"].numpy()
    top.scatter(recon[:, 0], recon[:, 1], s=6, c="red", label="reconstructions")
    top.text(0.03, 0.97, text, transform=top.transAxes, va="top", fontsize=8, bbox={"facecolor": "white", "alpha": 0.7, "lw": 0})
    top.set(xlim=(-2, 2), ylim=(-2, 2), aspect="equal")
    top.set_title(title, fontsize=9)
    top.set_xlabel("x: P(x) and sampled reconstructions", fontsize=8)
    mean, std = view["q_mean"].numpy(), view["q_std"].numpy()
    for (mx, my), (sx, sy) in zip(mean, std):
        bottom.add_patch(Ellipse((mx, my), 2 * sx, 2 * sy, fill=False, edgecolor="green", lw=0.6, alpha=0.6))
    bottom.scatter(mean[:, 0], mean[:, 1], s=2, c="green")  # the means: the AE's delta encoder has no visible ellipse
    angle = np.linspace(0, 2 * np.pi, 200)
    bottom.plot(np.cos(angle), np.sin(angle), "--", color="k", lw=1.0, label="p(z)")
    bottom.set(xlim=(-3, 3), ylim=(-3, 3), aspect="equal")
    bottom.set_xlabel("z: q(z|x) 1-sigma ellipses, p(z) dashed", fontsize=8)
    for ax in (top, bottom):
        ax.tick_params(labelsize=7)
    return fig


def toy_frames(run: Run) -> dict[str, Any]:
    """The run's ``toy_frames.pt``: the 200-point view of every in-training evaluation (runs with
    ``training.loss.frames``, as the E1 configs; ``genlab.evaluations.mim_stats``)."""
    if "toy_frames.pt" not in run.artifact_names():
        raise ValueError(f"run {run.run_id} recorded no toy_frames.pt: only runs with training.loss.frames=True (e1_*) do")
    return torch.load(io.BytesIO(run.artifact_bytes("toy_frames.pt")), map_location="cpu")


def animation(run: Run, path: str | Path, fps: int = 4) -> Path:
    """The run's per-epoch frames (``toy_frames``) as an animated GIF at ``path`` (matplotlib's
    ``PillowWriter``): the original's ``--vis-progress`` frames, which its README assembled into its
    animation outside the repository. Each frame shows the epoch and the reconstruction error of its
    200 points (the KSG MI of 200 points would mean little)."""
    from matplotlib.animation import PillowWriter

    recorded = toy_frames(run)
    name = lookup(run.config, "dataset.name")
    title = f"{method_label(run.config)} on {name}"
    fig = plt.figure(figsize=(3.6, 7.0))
    writer = PillowWriter(fps=fps)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with writer.saving(fig, str(path), dpi=80):
        for epoch, view in enumerate(recorded["frames"], start=1):
            fig.clear()
            error = float((view["x"] - view["x_recon"]).norm(dim=-1).mean())
            draw_view(view, name, f"{title}, epoch {epoch}", f"RMSE = {error:.2f} (200 points)", fig)
            writer.grab_frame()
    plt.close(fig)
    return path


def e1_figure(table: pd.DataFrame, fig=None):
    """The three E1 panels side by side (MIM on toyMIM, VAE on toyVAE, AE on toyAE: ``toy_figure`` of
    each), those that exist (the lowest seed in the paper's setting first, else the lowest seed);
    None when there is no E1 run."""
    e1 = table[table["experiment"] == "E1"] if len(table) else table
    chosen = []
    for dataset, method in E1_DATASETS.items():
        panel = e1[(e1["dataset"] == dataset) & (e1["method"] == method)] if len(e1) else e1
        if len(panel):
            panel = panel.assign(_d=panel[DIFFERS].fillna("") != "").sort_values(["_d", "seed"])
            chosen.append(panel.iloc[0])
    if not chosen:
        return None
    fig = fig or plt.figure(figsize=(3.8 * len(chosen), 7.4), layout="constrained")
    for sub, row in zip(np.atleast_1d(fig.subfigures(1, len(chosen))), chosen):
        toy_figure(row["run"], fig=sub)
    plots.note_not_paper_setting(fig, [row[DIFFERS] for row in chosen])
    return fig


# --- output ---------------------------------------------------------------------------------------



def _out(out_dir: str | Path | None) -> Path:
    out = Path(out_dir) if out_dir is not None else results_dir(EXPERIMENT)
    out.mkdir(parents=True, exist_ok=True)
    return out


def write_tables(table: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """``runs.csv`` (every run, without the ``run`` handles) and ``collapse.csv`` (E2's verdict) under
    ``out_dir`` (default ``data/results/mim``)."""
    out = _out(out_dir)
    paths = {"runs": out / "runs.csv", "collapse": out / "collapse.csv"}
    table.drop(columns=["run"], errors="ignore").to_csv(paths["runs"], index=False)
    collapse_verdict(table).to_csv(paths["collapse"], index=False)
    return paths


def write_sweep(table: pd.DataFrame, experiment: str, out_dir: str | Path | None = None) -> dict[str, Path]:
    """``summary_<experiment>.csv`` (``sweep_summary``) and ``sweep_<experiment>.png``
    (``sweep_figure``) under ``out_dir`` (default ``data/results/mim``)."""
    out = _out(out_dir)
    path = out / f"summary_{experiment}.csv"
    sweep_summary(table, experiment).to_csv(path, index=False)
    return {f"summary_{experiment}": path,
            f"sweep_{experiment}": plots.save_figure(sweep_figure(table, experiment), out / f"sweep_{experiment}.png")}  # fmt: skip


def write_e1(table: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """With E1 runs, ``e1.png`` (``e1_figure``), ``toy_<run_id>.png`` (``toy_figure``) and, where the
    run kept its frames, ``animation_<run_id>.gif`` (``animation``) for each of them under ``out_dir`` (default ``data/results/mim``); {} without."""
    fig = e1_figure(table)
    if fig is None:
        return {}
    out = _out(out_dir)
    paths = {"e1": plots.save_figure(fig, out / "e1.png")}
    for _, row in table[table["experiment"] == "E1"].iterrows():
        paths[f"toy_{row['run_id']}"] = plots.save_figure(toy_figure(row["run"]), out / f"toy_{row['run_id']}.png")
        if "toy_frames.pt" in row["run"].artifact_names():
            paths[f"animation_{row['run_id']}"] = animation(row["run"], out / f"animation_{row['run_id']}.gif")
    return paths


def figures(table: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """Everything, under ``out_dir`` (default ``data/results/mim``): ``runs.csv``, ``collapse.csv``
    (``write_tables``), ``summary_E2.csv`` .. ``summary_E5.csv`` with ``sweep_E2.png`` ..
    ``sweep_E5.png`` (``write_sweep``) and, with E1 runs, ``e1.png`` and ``toy_<run_id>.png``
    (``write_e1``); returns ``{name: path}``. Without runs the tables are empty and the sweep figures
    show the paper's values alone."""
    paths = write_tables(table, out_dir)
    for experiment in SWEEPS:
        paths.update(write_sweep(table, experiment, out_dir))
    paths.update(write_e1(table, out_dir))
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = analysis_parser("mim", __doc__)
    parser.add_argument("--images-source", default=None,
                        help="mim_images runs (E6): file-store directory or mongodb://host:port/db (default data/sims/mim_images)")
    args = parser.parse_args(argv)
    table = runs_table(args.source)
    paths = figures(table, args.out)
    print(f"{len(table)} completed mim runs")
    if len(table):
        counts = table.assign(paper_setting=table[DIFFERS] == "").groupby(["experiment", "method", "paper_setting"]).size()
        print(counts.rename("runs").reset_index().to_string(index=False))
        for experiment in SWEEPS:
            summary = sweep_summary(table, experiment)
            ours = summary[summary["count"] > 0]
            if len(ours):
                print(f"{experiment} (paper_setting False: runs outside the paper's setting):")
                shown = ours.assign(paper_setting=ours[DIFFERS] == "").drop(columns=[DIFFERS, "experiment"])
                print(shown.to_string(index=False))
        verdict = collapse_verdict(table)
        if len(verdict):
            print("E2 collapse verdict:")
            print(verdict[["mid_dim", "count_MIM", "count_VAE", "MIM_MI", "VAE_MI", "MIM_KNN5", "VAE_KNN5", "verdict"]]
                  .to_string(index=False))  # fmt: skip
    images = mim_images.runs_table(args.images_source)
    paths.update(mim_images.write_image_results(images, args.out))
    print(f"{len(images)} completed mim_images runs ({mim_images.PAPER_NOTE})")
    if len(images):
        print(mim_images.summary_table(images).to_string(index=False))
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
