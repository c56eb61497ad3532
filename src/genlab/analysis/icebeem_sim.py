"""Analysis of the ICE-BeeM nonlinear ICA simulations (Khemakhem et al., NeurIPS 2020, section 5.1,
figure panels (e) and (f); docs/icebeem.md §7, §8) from recorded runs.

It reads every completed run of ``experiments.icebeem_sim`` (default ``data/sims/icebeem_sim``, or a
Mongo URL) and picks them by config, never by id: the method from ``training.objective``
(``icebeem_fce`` ICE-BeeM, ``ivae`` iVAE, ``tcl`` TCL; an ICE-BeeM run with
``training.loss.flow_energy="plain"``, ``training.icebeem_original``, keeps its own label), the cell
from ``dataset.name`` (``tcl``, ``imca``), ``dataset.options.n_layers`` (L) and the number of points
per segment n (as the run recorded it, ``info["n_per_segment"]``), the repetition from ``seed``.

Each run's two final readouts (docs/icebeem.md §7): ``train.mcc``, the intended readout of the final
model, chosen without the ground truth, and ``train.mcc_paper``, made as the paper's numbers were
(best-of readouts chosen with the true sources, so optimistic); the table also keeps every
``train.mcc_<readout>`` component. The summary is the mean and standard deviation (ddof 1) over seeds
per (dataset, method, L, n). ``PAPER`` holds the published means read off the figure (docs/icebeem.md
§8, ±0.01); ``paper_comparison`` puts ours beside them, cell by cell (the paper's grid only).

A run is in the paper's setting when its data are the paper's (not ``dataset.tiny``; 20 segments of
dimension 5, ``vary_mean`` off, data seed 1), it is not a smoke run, its MCC is Pearson's and its run
length (the phases ``training.phases`` / ``max_iterations`` / ``epochs`` make) is that of its
method's named config in ``scripts/configs/icebeem_sim.py``. What the sweep varies (dataset, L, n,
seed, method) and the model's options are not compared. Runs outside the setting are summarised
apart (the ``differs_from_paper`` column says what differs) and drawn faded, with a footnote.

Figure: one panel per dataset, (e) "TCL" data and (f) IMCA data; MCC against observations per
segment (log scale), one colour per method, solid L = 2, dotted L = 4 as in the published figure;
ours as means with error bars of one standard deviation over seeds, the paper's values faded with
hollow squares. Nothing here trains.

Command line::

    python -m genlab.analysis.icebeem_sim                      # every completed run in data/sims/icebeem_sim
    python -m genlab.analysis.icebeem_sim --source mongodb://host:27017/genlab --out figures/
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import pandas as pd
from configs import icebeem_sim as paper_configs
from matplotlib.lines import Line2D

from genlab.analysis import plots
from genlab.analysis.paper_setting import DIFFERS, config_values
from genlab.analysis.runs import MISSING, Run, analysis_parser, canonical, experiment_runs, lookup
from genlab.paths import results_dir
from genlab.training.phases import parse_phases

EXPERIMENT = "icebeem_sim"
DATASETS = ("tcl", "imca")
PANELS = {"tcl": "(e) TCL data", "imca": "(f) IMCA data"}
N_PER_SEGMENT = (100, 200, 500, 1000, 2000)
LAYERS = (2, 4)
METHODS = {"icebeem_fce": "ICE-BeeM", "ivae": "iVAE", "tcl": "TCL"}  # training.objective -> label
ICEBEEM_ORIGINAL = "ICE-BeeM (original flow step)"  # training.icebeem_original (docs/icebeem.md §10.11)
READOUTS = {"mcc_paper": "train.mcc_paper: as the paper's numbers were made (best-of, chosen with the true sources)",
            "mcc": "train.mcc: the intended readout of the final model"}  # fmt: skip
GROUP = ["dataset", "method", "L", "n", DIFFERS]

# Mean MCC over 10 seeds at n = 100 / 200 / 500 / 1000 / 2000, read by eye off the published figure,
# ±0.01 (docs/icebeem.md §8): {(dataset, method, L): values}
PAPER: dict[tuple[str, str, int], tuple[float, ...]] = {
    ("tcl", "ICE-BeeM", 2): (0.85, 0.89, 0.91, 0.93, 0.94),
    ("tcl", "ICE-BeeM", 4): (0.66, 0.72, 0.78, 0.79, 0.81),
    ("tcl", "iVAE", 2): (0.90, 0.90, 0.905, 0.915, 0.92),
    ("tcl", "iVAE", 4): (0.555, 0.595, 0.66, 0.675, 0.74),
    ("tcl", "TCL", 2): (0.81, 0.865, 0.88, 0.89, 0.90),
    ("tcl", "TCL", 4): (0.59, 0.72, 0.81, 0.815, 0.835),
    ("imca", "ICE-BeeM", 2): (0.73, 0.775, 0.785, 0.795, 0.80),
    ("imca", "ICE-BeeM", 4): (0.605, 0.61, 0.635, 0.70, 0.71),
    ("imca", "iVAE", 2): (0.755, 0.78, 0.79, 0.80, 0.80),
    ("imca", "iVAE", 4): (0.50, 0.58, 0.585, 0.60, 0.65),
    ("imca", "TCL", 2): (0.66, 0.665, 0.665, 0.675, 0.68),
    ("imca", "TCL", 4): (0.585, 0.59, 0.615, 0.635, 0.68),
}

# the paper's data and evaluation (docs/icebeem.md §2, §6, §7) and the shared full-size switches
PAPER_SETTING = {"dataset.tiny": False, "training.smoke": False, "dataset.data_seed": 1,
                 "dataset.options.n_segments": 20, "dataset.options.dim": 5, "dataset.options.vary_mean": False,
                 "evaluation.correlation": "pearson"}  # fmt: skip
METHOD_CONFIGS = {"icebeem_fce": paper_configs.icebeem, "ivae": paper_configs.ivae, "tcl": paper_configs.tcl}
RUN_LENGTH = ("training.phases", "training.max_iterations", "training.epochs")


def load_sim_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.icebeem_sim`` from a file store or Mongo URL (default
    ``data/sims/icebeem_sim``; a missing default directory is no runs)."""
    return experiment_runs(EXPERIMENT, source, where, status)


def method_label(config: Mapping[str, Any]) -> str:
    """``ICE-BeeM`` / ``iVAE`` / ``TCL`` from ``training.objective``; ICE-BeeM with the original's
    flow step (``training.loss.flow_energy="plain"``) is ``ICE-BeeM (original flow step)``."""
    objective = config["training"]["objective"]
    if objective == "icebeem_fce" and lookup(config, "training.loss.flow_energy") == "plain":
        return ICEBEEM_ORIGINAL
    return METHODS.get(objective, objective)


def paper_method(method: str) -> str:
    """The paper's method a label is compared with (the original flow step is ICE-BeeM's)."""
    return "ICE-BeeM" if method == ICEBEEM_ORIGINAL else method


def n_per_segment(run: Run) -> int:
    """Points per segment: as the run recorded it, else from its config (None: the builder's default,
    2000, or 32 with ``dataset.tiny``)."""
    if run.info.get("n_per_segment") is not None:
        return int(run.info["n_per_segment"])
    value = lookup(run.config, "dataset.options.n_per_segment")
    if value not in (None, MISSING):
        return int(value)
    from genlab.data import DATASETS as SPECS
    from genlab.data.nonlinear_ica import DEFAULT_N_PER_SEGMENT

    tiny = SPECS[run.config["dataset"]["name"]].tiny if run.config["dataset"].get("tiny") else {}
    return int(tiny.get("n_per_segment", DEFAULT_N_PER_SEGMENT))


def _length(values: Mapping[str, Any]) -> tuple[list, str] | None:
    """The phases a run-length setting makes and a short description, None if unreadable."""
    try:
        phases = parse_phases(values.get("training.phases"), iterations=values.get("training.max_iterations"),
                              epochs=values.get("training.epochs"))  # fmt: skip
    except (TypeError, ValueError):
        return None
    text = ", ".join(f"{p.name} {p.iterations} it" if p.iterations is not None else f"{p.name} {p.epochs} ep" for p in phases)
    return phases, text


def differences(config: Mapping[str, Any]) -> list[str]:
    """What in a run's config differs from the paper's setting (module docstring), one
    ``"key=value (paper: value)"`` each; [] in the setting."""
    out = []
    for key, paper in PAPER_SETTING.items():
        value = lookup(config, key)
        if value is MISSING:
            out.append(f"{key} not recorded (paper: {paper!r})")
        elif canonical(value) != paper:
            out.append(f"{key}={canonical(value)!r} (paper: {paper!r})")
    objective = lookup(config, "training.objective")
    if objective not in METHOD_CONFIGS:
        return [*out, f"training.objective={objective!r} (not a method of the paper)"]
    named = config_values(METHOD_CONFIGS[objective])
    reference = _length({key: named.get(key.split(".", 1)[1]) for key in RUN_LENGTH})
    ours = _length({key: value for key in RUN_LENGTH if (value := lookup(config, key)) is not MISSING})
    if ours is None:
        out.append(f"run length not recorded (paper: {reference[1]})")
    elif ours[0] != reference[0]:
        out.append(f"run length {ours[1]} (paper: {reference[1]})")
    return out


def differs_from_paper(run: Run) -> str:
    """A run's differences from the paper's setting, joined by "; " ("" in the setting)."""
    return "; ".join(differences(run.config))


TABLE = ["run_id", "method", "dataset", "L", "n", "seed", "mcc", "mcc_paper"]


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: ``run_id``, ``method``, ``dataset``, ``L``, ``n``, ``seed``, its final
    ``mcc`` and ``mcc_paper``, every ``train.mcc_<readout>`` component it recorded (as
    ``mcc_<readout>``; NaN for the other methods' readouts) and ``differs_from_paper``."""
    rows = []
    for run in runs["run"]:
        final = run.final_metrics()
        rows.append({
            "run_id": run.run_id, "method": method_label(run.config), "dataset": run.config["dataset"]["name"],
            "L": int(run.config["dataset"]["options"]["n_layers"]), "n": n_per_segment(run), "seed": run.config["seed"],
            **{k.split(".", 1)[1]: v for k, v in final.items() if k.startswith("train.mcc")},
            DIFFERS: differs_from_paper(run),
        })  # fmt: skip
    table = pd.DataFrame(rows, columns=[*TABLE, DIFFERS]) if not rows else pd.DataFrame(rows)
    components = sorted(c for c in table.columns if c.startswith("mcc_") and c != "mcc_paper")
    return table.reindex(columns=[*TABLE, *components, DIFFERS])


def summary(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, standard deviation (over seeds, ddof 1; NaN for one seed) and count of ``mcc`` and
    ``mcc_paper`` per (dataset, method, L, n), runs outside the paper's setting apart (by their
    ``differs_from_paper``); sorted by dataset and method in the paper's order, then L, n."""
    columns = [*GROUP, "count", "mcc_mean", "mcc_std", "mcc_paper_mean", "mcc_paper_std"]
    if table.empty:
        return pd.DataFrame(columns=columns)
    table = table.assign(**{DIFFERS: table[DIFFERS].fillna("")})
    grouped = table.groupby(GROUP, sort=False)
    out = grouped.agg(count=("seed", "size"), mcc_mean=("mcc", "mean"), mcc_std=("mcc", "std"),
                      mcc_paper_mean=("mcc_paper", "mean"), mcc_paper_std=("mcc_paper", "std")).reset_index()  # fmt: skip
    methods = [*METHODS.values(), ICEBEEM_ORIGINAL]
    order = {"_dataset": out["dataset"].map({d: i for i, d in enumerate(DATASETS)}).fillna(len(DATASETS)),
             "_method": out["method"].map({m: i for i, m in enumerate(methods)}).fillna(len(methods))}
    out = out.assign(**order).sort_values(["_dataset", "_method", "method", "L", "n", DIFFERS])
    return out[columns].reset_index(drop=True)


def paper_table() -> pd.DataFrame:
    """``PAPER`` as rows: dataset, method, L, n, paper."""
    return pd.DataFrame([{"dataset": d, "method": m, "L": L, "n": n, "paper": v}
                         for (d, m, L), values in PAPER.items() for n, v in zip(N_PER_SEGMENT, values)])  # fmt: skip


def paper_comparison(summary: pd.DataFrame) -> pd.DataFrame:
    """Every cell of the paper's grid with the paper's mean MCC and, beside it, ours: one row per
    summary group of that cell (ICE-BeeM's cells also get the ``ICE-BeeM (original flow step)``
    groups; runs outside the paper's setting as their own rows, marked), NaN where no run was made.
    ``diff_mcc_paper`` / ``diff_mcc`` are ours minus the paper's. Groups at an n the paper did not
    run are left out."""
    paper = paper_table().rename(columns={"method": "paper_method"})
    ours = summary.assign(paper_method=summary["method"].map(paper_method)).astype({"L": "int64", "n": "int64"})
    merged = paper.merge(ours, on=["dataset", "paper_method", "L", "n"], how="left")
    merged["method"] = merged["method"].fillna(merged["paper_method"])
    merged["count"] = merged["count"].fillna(0).astype(int)
    merged[DIFFERS] = merged[DIFFERS].fillna("")
    merged["diff_mcc_paper"] = merged["mcc_paper_mean"] - merged["paper"]
    merged["diff_mcc"] = merged["mcc_mean"] - merged["paper"]
    merged = merged.astype({"L": int, "n": int})
    return merged[["dataset", "method", "L", "n", "paper", "mcc_paper_mean", "mcc_paper_std", "diff_mcc_paper",
                   "mcc_mean", "mcc_std", "diff_mcc", "count", DIFFERS]]  # fmt: skip


def _colors(methods) -> dict[str, str]:
    base = {"ICE-BeeM": "C0", "iVAE": "C1", "TCL": "C2", ICEBEEM_ORIGINAL: "C3"}
    extra = iter(f"C{i}" for i in range(4, 10))
    known = [m for m in base if m in set(methods)]
    return {**{m: base[m] for m in known}, **{m: next(extra, "0.4") for m in sorted(set(methods) - set(base))}}


STYLE = {2: "-", 4: ":"}  # the published figure: solid L = 2, dotted L = 4


def figure(summary: pd.DataFrame, readout: str = "mcc_paper"):
    """Panels (e) "TCL" data and (f) IMCA data: mean MCC (``readout``: ``mcc_paper`` or ``mcc``)
    against observations per segment, one line per (method, L) with error bars of one standard
    deviation over seeds; the paper's means faded, hollow squares. Groups outside the paper's
    setting are drawn faded, and a footnote says what differs."""
    if readout not in READOUTS:
        raise ValueError(f"readout must be one of {', '.join(READOUTS)}, not {readout!r}")
    paper = paper_table()
    colors = _colors([*paper["method"], *summary.get("method", [])])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.3), sharex=True, sharey=True)
    ticks = sorted(set(N_PER_SEGMENT) | {int(n) for n in summary.get("n", [])})
    marks = []
    for ax, dataset in zip(axes, DATASETS):
        for (method, L), cell in paper[paper["dataset"] == dataset].groupby(["method", "L"], sort=True):
            ax.plot(cell["n"], cell["paper"], STYLE.get(L, "--"), color=colors[method], alpha=0.35, lw=1.2,
                    marker="s", mfc="none", ms=5)  # fmt: skip
        ours = summary[summary["dataset"] == dataset] if len(summary) else summary
        for (method, L, mark), group in ours.groupby(["method", "L", DIFFERS], sort=True):
            group = group.sort_values("n")
            marks.append(mark)
            std = group[f"{readout}_std"].astype(float)
            ax.errorbar(group["n"].astype(float), group[f"{readout}_mean"].astype(float),
                        yerr=None if std.isna().all() else std.fillna(0.0), fmt=STYLE.get(int(L), "--"),
                        color=colors[method], marker="o", ms=4, capsize=3, lw=1.5, alpha=0.45 if mark else 1.0)  # fmt: skip
        ax.set_xscale("log")
        ax.set_xticks(ticks, [str(n) for n in ticks])
        ax.minorticks_off()
        ax.set_ylim(0, 1)
        ax.set_xlabel("observations per segment")
        ax.set_title(PANELS[dataset])
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"MCC ({readout})")
    handles = [Line2D([], [], color=c, lw=2, label=m) for m, c in colors.items()
               if m in set(paper["method"]) | set(summary.get("method", []))]  # fmt: skip
    handles += [Line2D([], [], color="k", ls="-", label="L = 2"), Line2D([], [], color="k", ls=":", label="L = 4"),
                Line2D([], [], color="k", marker="o", ms=4, label="ours: mean ± std over seeds"),
                Line2D([], [], color="k", alpha=0.35, marker="s", mfc="none", label="paper (read off its figure)")]  # fmt: skip
    fig.legend(handles=handles, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    fig.suptitle(READOUTS[readout], fontsize=10)
    fig.tight_layout()
    plots.note_not_paper_setting(fig, marks)
    return fig



def figures(runs: pd.DataFrame, out_dir: str | Path | None = None) -> dict[str, Path]:
    """``results.csv`` (every run), ``summary.csv`` (over seeds), ``paper-comparison.csv`` and the
    figures ``mcc_paper.png`` (the paper's readout) and ``mcc.png`` (the intended one) under
    ``out_dir`` (default ``data/results/icebeem_sim``); returns ``{name: path}``. Without runs the
    tables are empty and the figures show the paper's values alone."""
    out_dir = Path(out_dir) if out_dir is not None else results_dir(EXPERIMENT)
    out_dir.mkdir(parents=True, exist_ok=True)
    table = results_table(runs)
    means = summary(table)
    paths = {"results": out_dir / "results.csv", "summary": out_dir / "summary.csv",
             "comparison": out_dir / "paper-comparison.csv"}
    table.to_csv(paths["results"], index=False)
    means.to_csv(paths["summary"], index=False)
    paper_comparison(means).to_csv(paths["comparison"], index=False)
    for readout in READOUTS:
        paths[f"figure_{readout}"] = plots.save_figure(figure(means, readout), out_dir / f"{readout}.png")
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = analysis_parser("icebeem_sim", __doc__)
    args = parser.parse_args(argv)
    runs = load_sim_runs(args.source)
    paths = figures(runs, args.out)
    print(f"{len(runs)} completed icebeem_sim runs")
    means = pd.read_csv(paths["summary"], keep_default_na=False, na_values={c: [""] for c in ("mcc_std", "mcc_paper_std")})
    if len(means):
        shown = means.assign(paper_setting=means[DIFFERS] == "").drop(columns=[DIFFERS])
        print(shown.to_string(index=False))
        comparison = pd.read_csv(paths["comparison"], keep_default_na=False, na_values={"mcc_std": [""], "mcc_paper_std": [""]})
        compared = comparison[comparison["count"] > 0]
        print("against the paper, the cells with runs (paper_setting False: runs outside the paper's setting):")
        print(compared.assign(paper_setting=compared[DIFFERS] == "").drop(columns=[DIFFERS]).to_string(index=False)
              if len(compared) else "  (no run in the paper's grid of n)")
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
