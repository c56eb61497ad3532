"""Where genlab keeps data on disk.

Everything lives under the project's ``data/`` directory (the repository checkout that holds
``pyproject.toml``), so commands behave the same from the repository root and from ``scripts/``.
``GENLAB_DATA`` moves the whole tree, e.g. to a cluster's scratch space.
"""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout this package was installed from (editable install), else the working directory."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "pyproject.toml").is_file() and (parent / "src" / "genlab").is_dir():
            return parent
    return Path.cwd()


def data_dir() -> Path:
    return Path(os.environ.get("GENLAB_DATA", project_root() / "data"))


def raw_dir(dataset: str) -> Path:
    """Real, published data files the user puts in place: ``data/raw/<dataset>/``."""
    return data_dir() / "raw" / dataset


def generated_dir(dataset: str) -> Path:
    """Procedurally generated datasets, cached after their first build: ``data/generated/<dataset>/``."""
    return data_dir() / "generated" / dataset


def sims_dir(experiment: str) -> Path:
    """Default FileStorageObserver root of an experiment: ``data/sims/<experiment>/``."""
    return data_dir() / "sims" / experiment


def results_dir(paper: str) -> Path:
    """Tables and figures written by a paper's analysis: ``data/results/<paper>/``."""
    return data_dir() / "results" / paper


def checkpoints_dir(experiment: str) -> Path:
    """Checkpoints of runs that have no file-store run directory (e.g. Mongo-only runs)."""
    return data_dir() / "checkpoints" / experiment
