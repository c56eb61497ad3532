"""Analysis of "Symmetric Equilibrium Learning of VAEs" (Flach, Schlesinger & Shekhovtsov, AISTATS
2024; docs/symvae.md §5) from recorded runs: the FID table and the sample grids.

It reads every completed run of ``experiments.symvae`` (default ``data/sims/symvae``, or a Mongo URL)
and picks them by config, never by id: the variant from ``dataset.name`` and
``model.options.encoder`` (``mnist-ladder``, ``mnist-reverse``, ``fmnist-ladder``), the method from
``training.objective`` (``sym_equilibrium`` "Symmetric", ``binary_elbo`` "ELBO"), the repetition
from ``seed``. Each run's numbers are its final ``train.fid_random_code`` and ``train.fid_limiting``
and what they were made with (iterations, bits, FID images, chain steps, from the run's record).

A run is in the README's setting (``differs_from_paper`` empty; ``genlab.analysis.paper_setting``)
when its data are the real files at full size, it is not a smoke run, it ran the 200,000 iterations
of ``training.sym`` and its FIDs used the defaults (70,000 vs 70,000 images, 1000 chain steps). The
others (short CPU runs, FIDs on subsets) are listed with what differs. ``README_FID`` holds the
repository README's table (docs/symvae.md §5: 200k iterations, 30 / 100 bits, 70k vs 70k); the
paper's own table was not available. Nothing here trains.

Command line::

    python -m genlab.analysis.symvae                     # every completed run in data/sims/symvae
    python -m genlab.analysis.symvae --source mongodb://host:27017/genlab --out figures/
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Mapping

import matplotlib.pyplot as plt
import pandas as pd
import torch

from genlab.analysis.paper_setting import DIFFERS, differs_from_paper
from genlab.analysis.runs import analysis_parser, experiment_runs, lookup
from genlab.paths import results_dir

EXPERIMENT = "symvae"
VARIANTS = ("mnist-ladder", "mnist-reverse", "fmnist-ladder")
METHODS = {"binary_elbo": "ELBO", "sym_equilibrium": "Symmetric"}  # training.objective -> label, the README's row order
DATASET_PREFIX = {"mnist": "mnist", "fashion_mnist": "fmnist"}

# The repository README's FID table (docs/symvae.md §5): {(variant, method): (random code, limiting)}
README_FID: dict[tuple[str, str], tuple[float, float]] = {
    ("mnist-ladder", "ELBO"): (3.2227, 36.6440),
    ("mnist-ladder", "Symmetric"): (1.6543, 4.1015),
    ("mnist-reverse", "ELBO"): (5.2889, 14.2256),
    ("mnist-reverse", "Symmetric"): (1.4746, 4.9559),
    ("fmnist-ladder", "ELBO"): (37.8115, 119.1699),
    ("fmnist-ladder", "Symmetric"): (43.6204, 42.3663),
}
TABLE = ["run_id", "variant", "method", "seed", "iterations", "nz0", "nz1", "fid_images", "chain_steps",
         "fid_random_code", "fid_limiting", DIFFERS]  # fmt: skip


def load_symvae_runs(source=None, where: Mapping[str, Any] | None = None, status: str | None = "COMPLETED") -> pd.DataFrame:
    """Runs of ``experiments.symvae`` from a file store or Mongo URL (default ``data/sims/symvae``;
    a missing default directory is no runs)."""
    return experiment_runs(EXPERIMENT, source, where, status)


def variant_label(config: Mapping[str, Any]) -> str:
    """``mnist-ladder`` / ``mnist-reverse`` / ``fmnist-ladder`` from the dataset and the encoder."""
    dataset = config["dataset"]["name"]
    return f"{DATASET_PREFIX.get(dataset, dataset)}-{lookup(config, 'model.options.encoder')}"


def method_label(config: Mapping[str, Any]) -> str:
    objective = config["training"]["objective"]
    return METHODS.get(objective, objective)


def results_table(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (columns ``TABLE``): its variant, method, seed, length, bits, the FID's size
    and chain length, both FIDs (NaN when the run computed none) and ``differs_from_paper``."""
    rows = []
    for run in runs["run"]:
        final = run.final_metrics()
        made = run.info.get("symvae_samples", {})
        options = run.config["model"]["options"]
        rows.append({
            "run_id": run.run_id, "variant": variant_label(run.config), "method": method_label(run.config),
            "seed": run.config["seed"], "iterations": run.info.get("iterations"), "nz0": options["nz0"], "nz1": options["nz1"],
            "fid_images": made.get("fid_images", 0), "chain_steps": made.get("chain_steps"),
            "fid_random_code": final.get("train.fid_random_code", float("nan")),
            "fid_limiting": final.get("train.fid_limiting", float("nan")),
            DIFFERS: differs_from_paper(run),
        })  # fmt: skip
    return pd.DataFrame(rows, columns=TABLE)


def fid_table(table: pd.DataFrame) -> pd.DataFrame:
    """The README's table beside ours: per (variant, method, setting) the mean FIDs over seeds and
    their count, with ``readme_random_code`` / ``readme_limiting``; every cell of the README's table
    is listed (count 0 where no run was made), runs outside its setting in their own rows."""
    rows = []
    groups = table.assign(**{DIFFERS: table[DIFFERS].fillna("")}).groupby(["variant", "method", DIFFERS], sort=False) \
        if len(table) else []  # fmt: skip
    seen = set()
    for (variant, method, differs), group in groups:
        seen.add((variant, method, differs))
        readme = README_FID.get((variant, method), (float("nan"), float("nan")))
        rows.append({"variant": variant, "method": method, "count": len(group),
                     "fid_random_code": group["fid_random_code"].mean(), "readme_random_code": readme[0],
                     "fid_limiting": group["fid_limiting"].mean(), "readme_limiting": readme[1],
                     "iterations": int(group["iterations"].max()), "fid_images": int(group["fid_images"].max()),
                     DIFFERS: differs})  # fmt: skip
    for (variant, method), readme in README_FID.items():
        if (variant, method, "") not in seen:
            rows.append({"variant": variant, "method": method, "count": 0, "fid_random_code": float("nan"),
                         "readme_random_code": readme[0], "fid_limiting": float("nan"), "readme_limiting": readme[1],
                         "iterations": 0, "fid_images": 0, DIFFERS: ""})  # fmt: skip
    out = pd.DataFrame(rows)
    order = {v: i for i, v in enumerate(VARIANTS)}
    methods = {m: i for i, m in enumerate(METHODS.values())}
    out = out.assign(_v=out["variant"].map(order).fillna(len(order)), _m=out["method"].map(methods).fillna(len(methods)),
                     _d=out[DIFFERS] != "")  # fmt: skip
    return out.sort_values(["_v", "_d", "_m", DIFFERS]).drop(columns=["_v", "_m", "_d"]).reset_index(drop=True)


def samples_of(run) -> dict[str, torch.Tensor]:
    """The run's recorded sample tensors (``samples.pt``: grid rows and 40 images of each FID set)."""
    return torch.load(io.BytesIO(run.artifact_bytes("samples.pt")), map_location="cpu")


def _tile(images: torch.Tensor, columns: int = 10) -> torch.Tensor:
    from torchvision.utils import make_grid

    return make_grid(images.float().clamp(0, 1), nrow=columns, padding=2)[0]


def sample_grids(runs: pd.DataFrame, fig=None):
    """One row per run (variant, method, seed), two panels: 40 random-code images and 40 limiting-chain
    images as the FID scored them (docs/symvae.md §4.3)."""
    records = sorted(runs["run"], key=lambda r: (VARIANTS.index(variant_label(r.config)) if variant_label(r.config) in VARIANTS
                                                  else len(VARIANTS), method_label(r.config), r.config["seed"]))  # fmt: skip
    fig = fig or plt.figure(figsize=(9, 2.3 * max(len(records), 1)))
    axes = fig.subplots(max(len(records), 1), 2, squeeze=False)
    for row, run in zip(axes, records):
        samples = samples_of(run)
        label = f"{variant_label(run.config)} {method_label(run.config)} (seed {run.config['seed']}, {run.info.get('iterations')} it)"
        for ax, key, title in zip(row, ("random_code_fid", "limiting_fid"), ("random code", "limiting")):
            ax.imshow(_tile(samples[key]).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{label}: {title}", fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    fig.tight_layout()
    return fig


def figures(runs: pd.DataFrame, out_dir=None) -> dict[str, Path]:
    """Write ``runs.csv``, ``fid_table.csv`` and ``samples.png`` under ``out_dir`` (default
    ``data/results/symvae``); returns their paths."""
    out = Path(out_dir) if out_dir is not None else results_dir("symvae")
    out.mkdir(parents=True, exist_ok=True)
    table = results_table(runs)
    paths = {"runs": out / "runs.csv", "fid_table": out / "fid_table.csv", "samples": out / "samples.png"}
    table.to_csv(paths["runs"], index=False)
    fid_table(table).to_csv(paths["fid_table"], index=False)
    fig = sample_grids(runs)
    fig.savefig(paths["samples"], dpi=110)
    plt.close(fig)
    return paths


def main(argv: list[str] | None = None) -> None:
    parser = analysis_parser("symvae", __doc__)
    args = parser.parse_args(argv)
    runs = load_symvae_runs(args.source)
    paths = figures(runs, args.out)
    print(f"{len(runs)} completed symvae runs")
    shown = pd.read_csv(paths["fid_table"], keep_default_na=False, na_values={c: [""] for c in ("fid_random_code", "fid_limiting")})
    print(shown.assign(readme_setting=shown[DIFFERS] == "").drop(columns=[DIFFERS]).to_string(index=False))
    for name, path in paths.items():
        print(f"{name}: {path}")


if __name__ == "__main__":
    main()
