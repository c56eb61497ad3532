"""Where runs are recorded, decided on the command line (design rule 8), and the CLI entry point.

- default: a FileStorageObserver under ``data/sims/<experiment>/``;
- Sacred's own flags choose otherwise: ``-F DIR`` (another file store), ``-m HOST:PORT:DB`` (adds a
  MongoObserver), ``-u`` (unobserved);
- ``GENLAB_MONGO=mongodb://host:port/db`` adds a MongoObserver (for bin/ sweeps and SLURM arrays).
"""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import urlparse

from sacred import Experiment
from sacred.observers import FileStorageObserver, MongoObserver
from sacred.utils import apply_backspaces_and_linefeeds

from genlab.devices import keep_freed_memory
from genlab.paths import sims_dir

_FILE_FLAGS = {"-F", "--file_storage"}
_MONGO_FLAGS = {"-m", "--mongo_db"}
_UNOBSERVED_FLAGS = {"-u", "--unobserved"}


def _flags(argv: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in argv if a.startswith("-")}


def mongo_from_env(env: dict[str, str] | None = None) -> MongoObserver | None:
    """A MongoObserver for ``GENLAB_MONGO=mongodb://host:port/db`` (db defaults to ``genlab``)."""
    url = (env if env is not None else os.environ).get("GENLAB_MONGO")
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"GENLAB_MONGO={url!r} is not a mongodb://host:port/db URL")
    return MongoObserver(url=url, db_name=parsed.path.strip("/") or "genlab")


def add_default_observers(ex: Experiment, argv: list[str]) -> None:
    """The default observers, unless the command line chooses; none on the processes of a
    ``torchrun`` launch other than rank 0 (``RANK``), which alone records the run."""
    flags = _flags(argv)
    if flags & _UNOBSERVED_FLAGS or os.environ.get("RANK", "0") != "0":
        return
    if not flags & _FILE_FLAGS:
        ex.observers.append(FileStorageObserver(str(sims_dir(ex.path))))
    if not flags & _MONGO_FLAGS:
        mongo = mongo_from_env()
        if mongo is not None:
            ex.observers.append(mongo)


class _NamedConfigDocstrings(logging.Filter):
    """Sacred warns 'Added new config entry: "<ingredient>.__doc__"' for every documented named
    config of an ingredient; the docstrings are intended (design rule 6), the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("Added new config entry") and record.getMessage().endswith('__doc__"'))


def prepare(ex: Experiment) -> Experiment:
    """Settings every genlab experiment shares."""
    ex.captured_out_filter = apply_backspaces_and_linefeeds  # tqdm's \r updates, not 10k lines
    logger = logging.getLogger("genlab")
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s - %(name)s - %(message)s"))
        handler.addFilter(_NamedConfigDocstrings())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    ex.logger = logger
    return ex


def run_cli(ex: Experiment, argv: list[str] | None = None):
    """The command line of a genlab experiment, with its default observers."""
    argv = list(sys.argv if argv is None else argv)
    keep_freed_memory()
    add_default_observers(ex, argv[1:])
    return ex.run_commandline(argv)


def run_dir(run) -> str | None:
    """The run's FileStorageObserver directory, if it has one."""
    for observer in run.observers:
        if isinstance(observer, FileStorageObserver) and getattr(observer, "dir", None):
            return observer.dir
    return None


def checkpoint_dir(run) -> str:
    """``<run dir>/checkpoints`` in a file store, else ``data/checkpoints/<experiment>/<start time>_<pid>``."""
    base = run_dir(run)
    if base is not None:
        return os.path.join(base, "checkpoints")
    from genlab.paths import checkpoints_dir

    stamp = run.start_time.strftime("%Y%m%d-%H%M%S") if run.start_time else "run"
    return str(checkpoints_dir(run.experiment_info["name"]) / f"{stamp}_{run._id or os.getpid()}")


def add_torch_artifact(run, obj, name: str) -> None:
    """Save ``obj`` with torch.save and record it as the artifact ``name`` (file store and/or GridFS)."""
    import tempfile

    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        torch.save(obj, path)
        run.add_artifact(path, name=name)


def record_fit(run, fitted, model) -> None:
    """After training: how far it went, where it resumed from, its phases, the best evaluation, and
    the state dict the results describe (``model.pt``: the weights, their moving average, or the
    best); when that is not the final training weights, those are ``model_last.pt``."""
    run.info["iterations"] = fitted.iterations
    run.info["phases"] = [{"name": n, "start": a, "end": b, "stopped": s} for n, a, b, s in fitted.phases]
    if fitted.resumed_from is not None:
        run.info["resumed_from"] = str(fitted.resumed_from)
    if fitted.best_checkpoint is not None:
        run.info["best"] = {"checkpoint": str(fitted.best_checkpoint), "score": fitted.best_score}
    evaluated = fitted.eval_model if fitted.eval_model is not None else model
    add_torch_artifact(run, evaluated.state_dict(), "model.pt")
    if evaluated is not model or fitted.best_checkpoint is not None:
        add_torch_artifact(run, model.state_dict(), "model_last.pt")


def log_final(run, metrics: dict, step: int, results: dict) -> None:
    """Log each ``<split>.<quantity>`` of ``metrics`` at the final step and collect them into ``results``."""
    for name, value in metrics.items():
        run.log_scalar(name, float(value), step)
        results[name] = float(value)
