"""Reload runs recorded by Sacred observers into a pandas table, from a file store or from MongoDB.

Both of Sacred's persistent observers are read with plain json / pymongo / gridfs (the library never
imports Sacred):

* a FileStorageObserver directory ``<root>/<run_id>/`` with ``config.json``, ``run.json``,
  ``info.json``, ``metrics.json``, ``cout.txt`` and the artifacts as files;
* a MongoObserver database: the ``runs`` collection (one document per run, config and info inside,
  artifacts as ``[{name, file_id}]`` in GridFS) and the ``metrics`` collection
  (``{run_id, name, steps, values, timestamps}``).

``load_runs`` returns one row per run; its ``run`` column holds a :class:`Run` that reads metrics and
artifacts the same way for both backends. ``load_model`` rebuilds any run's model from its config, the
model inputs it recorded in ``info["model_inputs"]`` and its ``model.pt`` artifact; ``load_data`` its data.

Sacred stores values through jsonpickle: tuples as ``{"py/tuple": [...]}``, numpy scalars and
arrays as ``{"py/object": "numpy...", ...}``. These are decoded here (tuples, numpy scalars to
Python scalars, numpy arrays to arrays); any other pickled object is left as its dict. Times are
naive UTC ``pandas.Timestamp`` (Sacred records ``utcnow``; MongoDB keeps milliseconds, the file
store microseconds).
"""

from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = ["Run", "load_runs", "load_model", "load_data", "flatten_config", "STANDARD_COLUMNS"]

STANDARD_COLUMNS = ["run_id", "experiment", "status", "start_time", "stop_time"]

_MISSING = object()
_SACRED_HOST_PORT_DB = re.compile(r"^(?P<host>[^:/@\s]+):(?P<port>\d+):(?P<db>[^:/\s]+)$")


# --- values ----------------------------------------------------------------------------------


def _decode(obj: Any) -> Any:
    """Undo the parts of Sacred's jsonpickle encoding that plain values use (see module docstring)."""
    if isinstance(obj, list):
        return [_decode(v) for v in obj]
    if isinstance(obj, dict):
        if set(obj) == {"py/tuple"}:
            return tuple(_decode(v) for v in obj["py/tuple"])
        kind = obj.get("py/object")
        if isinstance(kind, str) and kind.startswith("numpy."):
            if "value" in obj:  # numpy scalar
                return obj["value"]
            if kind == "numpy.ndarray" and "values" in obj and "dtype" in obj:
                return np.asarray(obj["values"], dtype=obj["dtype"])
        return {k: _decode(v) for k, v in obj.items()}
    return obj


def _strip_observer_bookkeeping(info: Mapping | None) -> dict:
    """Sacred's MongoObserver writes ``info["metrics"] = [{"id", "name"}, ...]`` (links to its metric
    documents) into the run's shared info dict, so it also lands in a FileStorageObserver's info.json
    when both observe a run. It is observer bookkeeping, not something the experiment recorded."""
    info = dict(info or {})
    links = info.get("metrics")
    if isinstance(links, list) and all(isinstance(m, dict) and set(m) == {"id", "name"} for m in links):
        del info["metrics"]
    return info


def _time(value: Any) -> pd.Timestamp:
    if value is None:
        return pd.NaT
    return pd.Timestamp(value)


def flatten_config(config: Mapping, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> ``{"a.b.c": value}``; lists and tuples stay values; an empty dict stays ``{}``."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten_config(value, name + "."))
        else:
            flat[name] = dict(value) if isinstance(value, Mapping) else value
    return flat


def _lookup(config: Mapping, dotted: str) -> Any:
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return _MISSING
        node = node[part]
    return node


def _canonical(value: Any) -> Any:
    """Tuples compare equal to lists (JSON has only lists); nested containers compared element-wise."""
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return _canonical(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _equal(a: Any, b: Any) -> bool:
    a, b = _canonical(a), _canonical(b)
    # bool is an int in Python but not in MongoDB: keep True != 1 so both backends agree.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    try:
        return bool(a == b)
    except Exception:
        return False


def _matches(config: Mapping, where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        value = _lookup(config, key)
        if value is _MISSING:
            return False
        if callable(wanted):
            if not wanted(value):
                return False
        elif isinstance(wanted, (list, tuple, set, frozenset)):
            if not any(_equal(value, alt) for alt in wanted):
                return False
        elif not _equal(value, wanted):
            return False
    return True


def _mongo_scalar(value: Any) -> bool:
    """Values whose MongoDB equality match is a superset of ``_equal`` (so the query only narrows)."""
    if isinstance(value, bool):
        return True
    if isinstance(value, int):
        return -(2**63) <= value < 2**63
    return isinstance(value, (str, float))


def _mongo_query(where: Mapping[str, Any], experiment: str | None, status: Any) -> dict:
    query: dict[str, Any] = {}
    if experiment is not None:
        query["experiment.name"] = experiment
    if status is not None:
        query["status"] = status if isinstance(status, str) else {"$in": list(status)}
    for key, wanted in where.items():
        if callable(wanted):
            continue
        if isinstance(wanted, (list, tuple, set, frozenset)):
            if wanted and all(_mongo_scalar(v) for v in wanted):
                query[f"config.{key}"] = {"$in": list(wanted)}
        elif _mongo_scalar(wanted):
            query[f"config.{key}"] = wanted
    return query


# --- backends --------------------------------------------------------------------------------


class _FileStore:
    def __init__(self, root: Path):
        self.root = root

    def describe(self) -> str:
        return str(self.root)

    def run_dirs(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir() and (p / "run.json").is_file()]

    @staticmethod
    def _read_json(path: Path, default: Any) -> Any:
        if not path.is_file():
            return default
        with open(path) as f:
            return json.load(f)

    def load(self) -> list["Run"]:
        runs = []
        for directory in self.run_dirs():
            entry = self._read_json(directory / "run.json", {})
            info = self._read_json(directory / "info.json", None)
            if info is None:  # older Sacred versions kept info inside run.json
                info = entry.get("info", {})
            run = _run_from_record(
                entry,
                run_id=_run_id(directory.name),
                config=self._read_json(directory / "config.json", {}),
                info=info,
                store=self,
                key=directory,
                artifacts={name: directory / name for name in entry.get("artifacts") or []},
            )
            metrics = self._read_json(directory / "metrics.json", {})
            run._metrics = {
                name: (list(m.get("steps", [])), list(m.get("values", []))) for name, m in metrics.items()
            }
            runs.append(run)
        return runs

    def metrics(self, run: "Run") -> dict:
        return run._metrics

    def artifact_bytes(self, run: "Run", name: str) -> bytes:
        return self.artifact_path(run, name).read_bytes()

    def artifact_path(self, run: "Run", name: str) -> Path:
        path = run._artifacts[name]
        if not path.is_file():
            raise FileNotFoundError(f"run {run.run_id}: artifact {name!r} is listed in run.json but {path} is missing")
        return path

    def captured_out(self, run: "Run") -> str:
        path = run._key / "cout.txt"
        return path.read_text() if path.is_file() else ""


def _run_from_record(record: Mapping, *, run_id, config, info, store, key, artifacts) -> "Run":
    """A Run from Sacred's run record (``run.json`` or a ``runs`` document) and its config and info."""
    return Run(
        run_id=run_id,
        experiment=(record.get("experiment") or {}).get("name"),
        status=record.get("status"),
        config=_decode(config),
        info=_strip_observer_bookkeeping(_decode(info)),
        result=_decode(record.get("result")),
        fail_trace=record.get("fail_trace"),
        start_time=_time(record.get("start_time")),
        stop_time=_time(record.get("stop_time")),
        heartbeat=_time(record.get("heartbeat")),
        meta=record.get("meta") or {},
        _store=store,
        _key=key,
        _artifacts=artifacts,
    )


_CLIENTS: dict[str, Any] = {}


def _mongo_client(url: str):
    from pymongo import MongoClient

    if url not in _CLIENTS:
        _CLIENTS[url] = MongoClient(url, serverSelectionTimeoutMS=10_000)
    return _CLIENTS[url]


class _MongoStore:
    def __init__(self, url: str, db_name: str, cache_dir: Path | None):
        from pymongo.errors import OperationFailure, PyMongoError

        self.url, self.db_name = url, db_name
        self.cache_dir = cache_dir
        client = _mongo_client(url)
        try:
            names = client.list_database_names()
        except OperationFailure:  # no right to list databases: trust the name
            names = None
        except PyMongoError as err:
            raise ConnectionError(f"cannot reach MongoDB at {url}: {err}") from err
        if names is not None and db_name not in names:
            raise LookupError(f"MongoDB at {url} has no database {db_name!r}; it has: {', '.join(sorted(names)) or '(none)'}")
        self.db = client[db_name]

    def describe(self) -> str:
        return f"{self.url} database {self.db_name}"

    def load(self, where: Mapping[str, Any], experiment: str | None, status: Any) -> list["Run"]:
        query = _mongo_query(where, experiment, status)
        runs = []
        for doc in self.db.runs.find(query, {"captured_out": 0}):
            runs.append(
                _run_from_record(
                    doc,
                    run_id=doc["_id"],
                    config=doc.get("config") or {},
                    info=doc.get("info"),
                    store=self,
                    key=doc["_id"],
                    artifacts={a["name"]: a["file_id"] for a in doc.get("artifacts") or []},
                )
            )
        return runs

    def fetch_metrics(self, runs: list["Run"]) -> None:
        """All metrics of these runs in one query (the table needs every final value anyway)."""
        by_id = {run.run_id: run for run in runs}
        for run in runs:
            run._metrics = {}
        if not by_id:
            return
        cursor = self.db.metrics.find({"run_id": {"$in": list(by_id)}}, {"timestamps": 0}).sort("_id", 1)
        for doc in cursor:
            run = by_id.get(doc["run_id"])
            if run is None:
                continue
            steps, values = run._metrics.setdefault(doc["name"], ([], []))
            steps.extend(doc.get("steps", []))
            values.extend(doc.get("values", []))

    def metrics(self, run: "Run") -> dict:
        if run._metrics is None:
            self.fetch_metrics([run])
        return run._metrics

    def _gridfs(self):
        import gridfs

        return gridfs.GridFS(self.db)

    def artifact_bytes(self, run: "Run", name: str) -> bytes:
        return self._gridfs().get(run._artifacts[name]).read()

    def artifact_path(self, run: "Run", name: str) -> Path:
        # The GridFS file id is unique per stored file, so a cached copy can never be stale, even
        # when a database is dropped and its run ids are reused.
        file_id = run._artifacts[name]
        cache = self.cache_dir or _default_cache_dir()
        path = cache / _safe(self.db_name) / str(run.run_id) / str(file_id) / name
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".{path.name}.{os.getpid()}.part")
            partial.write_bytes(self.artifact_bytes(run, name))
            os.replace(partial, path)  # atomic: concurrent readers see all of it or nothing
        return path

    def captured_out(self, run: "Run") -> str:
        doc = self.db.runs.find_one({"_id": run._key}, {"captured_out": 1})
        return (doc or {}).get("captured_out") or ""


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "genlab" / "mongo-artifacts"


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)


def _run_id(name: str) -> int | str:
    return int(name) if name.isdigit() else name


# --- public API --------------------------------------------------------------------------------


@dataclass(eq=False)
class Run:
    """One recorded run, from either backend. ``config``, ``info`` and ``result`` are plain values."""

    run_id: int | str
    experiment: str | None
    status: str | None
    config: dict
    info: dict
    result: Any
    fail_trace: list[str] | None
    start_time: pd.Timestamp = pd.NaT
    stop_time: pd.Timestamp = pd.NaT
    heartbeat: pd.Timestamp = pd.NaT
    meta: dict = field(default_factory=dict, repr=False)
    _store: Any = field(default=None, repr=False)
    _key: Any = field(default=None, repr=False)
    _artifacts: dict = field(default_factory=dict, repr=False)
    _metrics: dict | None = field(default=None, repr=False)

    def metric_names(self) -> list[str]:
        return sorted(self._store.metrics(self))

    def metric(self, name: str) -> pd.Series:
        """The logged values of ``name``, indexed by step, in the order they were logged."""
        metrics = self._store.metrics(self)
        if name not in metrics:
            raise KeyError(f"run {self.run_id} has no metric {name!r}; it has: {', '.join(sorted(metrics)) or '(none)'}")
        steps, values = metrics[name]
        return pd.Series(values, index=pd.Index(steps, name="step"), name=name, dtype=float)

    def final_metrics(self) -> dict[str, float]:
        """Each metric's value at its largest step (the last one logged if that step repeats)."""
        final = {}
        for name, (steps, values) in self._store.metrics(self).items():
            if steps:
                last = max(range(len(steps)), key=lambda i: (steps[i], i))
                final[name] = values[last]
        return final

    def artifact_names(self) -> list[str]:
        return sorted(self._artifacts)

    def _check_artifact(self, name: str) -> None:
        if name not in self._artifacts:
            raise KeyError(
                f"run {self.run_id} has no artifact {name!r}; it has: {', '.join(self.artifact_names()) or '(none)'}"
            )

    def artifact_bytes(self, name: str) -> bytes:
        self._check_artifact(name)
        return self._store.artifact_bytes(self, name)

    def artifact_path(self, name: str) -> Path:
        """A local file with the artifact: the run directory's file, or a cached copy from GridFS."""
        self._check_artifact(name)
        return self._store.artifact_path(self, name)

    def captured_out(self) -> str:
        """The run's captured stdout/stderr (``cout.txt`` or the run document's ``captured_out``)."""
        return self._store.captured_out(self)


def _open_source(source: str | os.PathLike, cache_dir: Path | None):
    if isinstance(source, os.PathLike) or not isinstance(source, str):
        path = Path(source)
    elif source.startswith(("mongodb://", "mongodb+srv://")):
        from pymongo.uri_parser import parse_uri

        db_name = parse_uri(source).get("database")
        if not db_name:
            raise ValueError(f"the Mongo URL {source!r} names no database; use mongodb://host:port/<db>")
        return _MongoStore(source, db_name, cache_dir)
    else:
        match = _SACRED_HOST_PORT_DB.match(source)
        if match and not Path(source).exists():  # Sacred's -m HOST:PORT:DB form
            url = f"mongodb://{match['host']}:{match['port']}"
            return _MongoStore(url, match["db"], cache_dir)
        path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no run store at {path}: expected a FileStorageObserver directory or a Mongo URL")
    if not path.is_dir():
        raise NotADirectoryError(f"{path} is not a FileStorageObserver directory")
    return _FileStore(path)


def load_runs(
    source: str | os.PathLike,
    where: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    status: str | Iterable[str] | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Recorded runs as a table, one row per run, sorted by ``run_id``.

    Args:
        source: a FileStorageObserver directory (str or Path), or a MongoDB URL naming the database,
            ``mongodb://host:port/db`` (options and credentials as pymongo accepts them), or Sacred's
            ``host:port:db`` form.
        where: ``{dotted config key: wanted}``, all of which must hold. ``wanted`` is
            * a callable: a predicate on the run's config value;
            * a list, tuple, set or frozenset: a collection of alternatives, the run's value must
              equal one of them. So to select a list-valued config entry, wrap the list:
              ``{"model.encoder_layers": [[32, 64]]}`` (tuples and lists compare equal);
            * anything else (scalar, dict, ...): equality with the run's value (a dict compares with
              the whole config subtree at that key). ``True`` does not equal ``1`` (as in MongoDB).
            Runs whose config lacks the key never match. On MongoDB, equality and any-of filters
            with scalar values are sent as queries on ``config.<key>``; every filter is then also
            applied in Python, so both backends select the same runs.
        experiment: keep runs of this experiment name only.
        status: keep runs with this status (``COMPLETED``, ``FAILED``, ``RUNNING``, ``INTERRUPTED``...),
            or any of several.
        cache_dir: where artifacts from GridFS are extracted for ``Run.artifact_path``
            (default ``$XDG_CACHE_HOME/genlab/mongo-artifacts``, i.e. ``~/.cache/genlab/...``).

    Returns:
        A DataFrame with the columns ``run_id``, ``experiment``, ``status``, ``start_time``,
        ``stop_time``; then the config flattened to dotted columns (sorted; lists stay values, a
        key missing in a run is NaN); then the final value (at the largest step) of every metric,
        in a column named by the metric (sorted); then ``run``, the :class:`Run`. A metric whose name
        equals a config column is renamed ``metric:<name>``. No matching runs gives an empty table
        with the standard columns and ``run``.

    Raises:
        FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
        LookupError: the Mongo server has no such database. ConnectionError: it cannot be reached.
    """
    where = dict(where or {})
    store = _open_source(source, Path(cache_dir) if cache_dir is not None else None)
    if isinstance(store, _MongoStore):
        runs = store.load(where, experiment, status)
    else:
        runs = store.load()
    statuses = None if status is None else ({status} if isinstance(status, str) else set(status))
    runs = [
        run
        for run in runs
        if (experiment is None or run.experiment == experiment)
        and (statuses is None or run.status in statuses)
        and _matches(run.config, where)
    ]
    runs.sort(key=lambda run: (isinstance(run.run_id, str), run.run_id))
    if isinstance(store, _MongoStore):
        store.fetch_metrics(runs)
    if not runs:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in [*STANDARD_COLUMNS, "run"]})

    configs = [flatten_config(run.config) for run in runs]
    finals = [run.final_metrics() for run in runs]
    config_columns = sorted({key for c in configs for key in c} - set(STANDARD_COLUMNS) - {"run"})
    metric_names = sorted({name for f in finals for name in f})
    taken = set(STANDARD_COLUMNS) | set(config_columns) | {"run"}
    metric_columns = {name: (f"metric:{name}" if name in taken else name) for name in metric_names}

    rows = []
    for run, flat, final in zip(runs, configs, finals):
        row: dict[str, Any] = {
            "run_id": run.run_id,
            "experiment": run.experiment,
            "status": run.status,
            "start_time": run.start_time,
            "stop_time": run.stop_time,
        }
        row.update({key: flat.get(key, np.nan) for key in config_columns})
        row.update({column: final.get(name, np.nan) for name, column in metric_columns.items()})
        row["run"] = run
        rows.append(row)
    columns = [*STANDARD_COLUMNS, *config_columns, *metric_columns.values(), "run"]
    table = pd.DataFrame.from_records(rows, columns=columns)
    for column in ("start_time", "stop_time"):
        table[column] = pd.to_datetime(table[column])
    return table


def load_model(run: Run, map_location: Any = "cpu"):
    """Rebuild ``run``'s model from its recorded config and load its ``model.pt``; in eval mode.

    Any run of any experiment: the model is ``genlab.models.build_model(config["model"]["kind"],
    config["model"]["options"], info["model_inputs"])``, the same call the experiment made, so no
    per-paper code is involved. With a device as ``map_location`` (``"cuda"``, ``torch.device``) the
    model is also moved there.
    """
    import torch

    from genlab.models import build_model

    cfg = run.config.get("model")
    if not isinstance(cfg, Mapping) or "kind" not in cfg:
        raise KeyError(
            f"run {run.run_id} has no model.kind in its config (recorded before model kinds existed, or not a "
            "genlab training run); it cannot be rebuilt generically"
        )
    if "model_inputs" not in run.info:
        raise KeyError(f"run {run.run_id} recorded no info['model_inputs'] (what its data told the model builder)")
    model = build_model(cfg["kind"], cfg["options"], run.info["model_inputs"])
    state = torch.load(io.BytesIO(run.artifact_bytes("model.pt")), map_location=map_location, weights_only=True)
    model.load_state_dict(state)
    if isinstance(map_location, (str, torch.device)):
        model.to(map_location)
    return model.eval()


def load_data(run: Run, device: Any = "cpu"):
    """The data parts ``run`` trained and was evaluated on, rebuilt from its recorded dataset config
    (``genlab.data.load_dataset``, the call the experiment made)."""
    from genlab.data import load_dataset

    return load_dataset(run.config["dataset"], device, run.config.get("seed", 0))
