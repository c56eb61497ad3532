"""Reload runs recorded by Sacred observers into a pandas table, from a file store or from MongoDB.

Both of Sacred's persistent observers are read with plain json / pymongo / gridfs (the library never
imports Sacred):

* a FileStorageObserver directory ``<root>/<run_id>/`` with ``config.json``, ``run.json``,
  ``info.json``, ``metrics.json``, ``cout.txt`` and the artifacts as files;
* a MongoObserver database: the ``runs`` collection (one document per run, config and info inside,
  artifacts as ``[{name, file_id}]`` in GridFS) and the ``metrics`` collection
  (``{run_id, name, steps, values, timestamps}``).

``load_runs`` returns one row per logical run (a run and the runs resumed from its checkpoints, joined;
see :func:`load_runs`); its ``run`` column holds a :class:`Run` that reads metrics and artifacts the
same way for both backends. A ``RUNNING`` run whose heartbeat stopped (killed with ``kill -9``, its
machine lost) is reported as ``PROBABLY_DEAD``; a run directory with an unreadable JSON file is
skipped with a warning (:class:`UnreadableRunWarning`). ``load_model`` rebuilds any run's model from its config, the
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
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "Run", "load_runs", "load_model", "load_data", "flatten_config", "STANDARD_COLUMNS", "PROBABLY_DEAD",
    "DEFAULT_DEAD_AFTER", "UnreadableRunWarning",
]  # fmt: skip

STANDARD_COLUMNS = ["run_id", "experiment", "status", "start_time", "stop_time", "heartbeat", "links"]

PROBABLY_DEAD = "PROBABLY_DEAD"  # Omniboard's name for a RUNNING run that stopped beating
DEFAULT_DEAD_AFTER = timedelta(seconds=60)  # six of Sacred's 10 s heartbeat intervals
_CHECKPOINT_FILE = re.compile(r"checkpoint_(\d+)\.pt")


class UnreadableRunWarning(UserWarning):
    """``load_runs`` skipped run directories whose ``run.json``, ``config.json``, ``info.json`` or
    ``metrics.json`` could not be read."""

MISSING = object()  # what lookup returns for a key a config does not have
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
    stamp = pd.Timestamp(value)
    if stamp is not pd.NaT and stamp.tzinfo is not None:  # a tz-aware client or string: to naive UTC
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


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


def lookup(config: Mapping, dotted: str) -> Any:
    """The value at a dotted key of a nested config, or ``MISSING``."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


def canonical(value: Any) -> Any:
    """Tuples compare equal to lists (JSON has only lists); nested containers compared element-wise."""
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    if isinstance(value, Mapping):
        return {k: canonical(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return canonical(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    return value


def _equal(a: Any, b: Any) -> bool:
    a, b = canonical(a), canonical(b)
    # bool is an int in Python but not in MongoDB: keep True != 1 so both backends agree.
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    try:
        return bool(a == b)
    except Exception:
        return False


def _matches(config: Mapping, where: Mapping[str, Any]) -> bool:
    for key, wanted in where.items():
        value = lookup(config, key)
        if value is MISSING:
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


def _mongo_query(where: Mapping[str, Any], experiment: str | None, statuses: set[str] | None) -> dict:
    query: dict[str, Any] = {}
    if experiment is not None:
        query["experiment.name"] = experiment
    if statuses is not None:
        # a PROBABLY_DEAD run is recorded as RUNNING; which RUNNING ones are dead is decided in Python
        recorded = sorted({"RUNNING" if s == PROBABLY_DEAD else s for s in statuses})
        query["status"] = recorded[0] if len(recorded) == 1 else {"$in": recorded}  # [] matches nothing
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


class _Unreadable(Exception):
    """One of a run directory's JSON files cannot be read (the file's name, what went wrong)."""

    def __init__(self, filename: str, reason: str):
        super().__init__(filename, reason)
        self.filename, self.reason = filename, reason


class _FileStore:
    def __init__(self, root: Path):
        self.root = root
        self.skipped: list[tuple[Path, str, str]] = []  # (run directory, file, what went wrong)

    def describe(self) -> str:
        return str(self.root)

    def run_dirs(self) -> list[Path]:
        dirs = []
        for path in sorted(self.root.iterdir()):
            try:
                if path.is_dir() and (path / "run.json").is_file():
                    dirs.append(path)
            except OSError as err:  # e.g. a directory this user may not enter
                if not path.name.startswith(("_", ".")):  # Sacred's _sources / _resources, hidden folders
                    self.skipped.append((path, "run.json", f"{type(err).__name__}: {err.strerror or err}"))
        return dirs

    @staticmethod
    def _read_json(path: Path, default: Any) -> Any:
        """The JSON object in ``path``, ``default`` when there is no such file; ``_Unreadable`` when it
        cannot be read or is not a JSON object (truncated, binary garbage, no permission)."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return default
        except OSError as err:
            raise _Unreadable(path.name, f"{type(err).__name__}: {err.strerror or err}") from err
        try:
            value = json.loads(data)
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
            raise _Unreadable(path.name, f"not valid JSON ({err})") from err
        if not isinstance(value, dict):
            raise _Unreadable(path.name, f"not a JSON object but {type(value).__name__}")
        return value

    def load(self) -> list["Run"]:
        """Every readable run; the others are listed in ``self.skipped``."""
        self.skipped = []
        runs = []
        for directory in self.run_dirs():
            try:
                runs.append(self._load_run(directory))
            except _Unreadable as err:
                self.skipped.append((directory, err.filename, err.reason))
        return runs

    def _load_run(self, directory: Path) -> "Run":
        entry = self._read_json(directory / "run.json", {})
        info = self._read_json(directory / "info.json", None)
        config = self._read_json(directory / "config.json", {})
        metrics = self._read_json(directory / "metrics.json", {})
        try:
            if info is None:  # older Sacred versions kept info inside run.json
                info = entry.get("info") or {}
            run = _run_from_record(
                entry,
                run_id=_run_id(directory.name),
                config=config,
                info=info,
                store=self,
                key=directory,
                artifacts={name: directory / name for name in entry.get("artifacts") or []},
            )
        except (TypeError, ValueError, AttributeError, KeyError) as err:  # well-formed JSON, not a run record
            raise _Unreadable("run.json", f"{type(err).__name__}: {err}") from err
        try:
            run._metrics = {
                name: (list(m.get("steps", [])), list(m.get("values", []))) for name, m in metrics.items()
            }
        except (TypeError, AttributeError) as err:
            raise _Unreadable("metrics.json", f"not Sacred's metrics ({type(err).__name__}: {err})") from err
        if any(len(steps) != len(values) for steps, values in run._metrics.values()):
            raise _Unreadable("metrics.json", "a metric has different numbers of steps and values")
        return run

    def link_keys(self, runs: list["Run"]) -> list["_LinkKey"]:
        # A file-store run recorded without info["checkpoint_dir"] kept its checkpoints in
        # <run dir>/checkpoints (genlab's default there).
        return [_link_key(run, run.info.get("checkpoint_dir") or run._key / "checkpoints") for run in runs]

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
    info = _strip_observer_bookkeeping(_decode(info))
    return Run(
        run_id=run_id,
        experiment=(record.get("experiment") or {}).get("name"),
        status=record.get("status"),
        config=_decode(config),
        info=info,
        result=_decode(record.get("result")),
        fail_trace=record.get("fail_trace"),
        start_time=_time(record.get("start_time")),
        stop_time=_time(record.get("stop_time")),
        heartbeat=_time(record.get("heartbeat")),
        meta=record.get("meta") or {},
        _store=store,
        _key=key,
        _artifacts=artifacts,
        _resumed_at=_resumed_at(info),
    )


# --- resume chains -----------------------------------------------------------------------------


def _norm_path(path: Any) -> str | None:
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        return None
    return os.path.normpath(os.path.expanduser(os.fspath(path)))


@dataclass(frozen=True)
class _LinkKey:
    """What links a recorded run to the one it resumed from: its own checkpoint folder, the folder
    of the checkpoint file it resumed from, and when it started (all normalised)."""

    run_id: Any
    checkpoint_dir: str | None
    resumed_dir: str | None
    start_time: Any


def _link_key(run: "Run", checkpoint_dir: Any) -> _LinkKey:
    return _link_key_from(run.run_id, checkpoint_dir, run.info.get("resumed_from"), run.start_time)


def _link_key_from(run_id: Any, checkpoint_dir: Any, resumed_from: Any, start_time: Any) -> _LinkKey:
    resumed = _norm_path(resumed_from)
    return _LinkKey(run_id, _norm_path(checkpoint_dir), os.path.dirname(resumed) if resumed else None, start_time)


def _resumed_at(info: Mapping) -> int | None:
    """The iteration a run resumed at: ``info["resumed_at"]``, else N of ``checkpoint_<N>.pt`` in
    ``info["resumed_from"]``; None for a run that did not resume (or from a file named otherwise)."""
    value = info.get("resumed_at")
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    resumed = _norm_path(info.get("resumed_from"))
    match = _CHECKPOINT_FILE.fullmatch(os.path.basename(resumed)) if resumed else None
    return int(match.group(1)) if match else None


def _sort_key(run_id: Any) -> tuple:
    return (isinstance(run_id, str), run_id)


def _predecessors(keys: Iterable[_LinkKey]) -> dict[Any, Any]:
    """``{run id: id of the run it resumed from}`` among ``keys``. B resumed from A when the folder of
    B's ``resumed_from`` file is A's ``checkpoint_dir``. Of several runs with that folder the latest
    one that started before B is taken (a run cannot resume from a checkpoint written after it
    started); links that would close a cycle are dropped."""
    keys = list(keys)
    by_dir: dict[str, list[_LinkKey]] = {}
    for key in keys:
        if key.checkpoint_dir is not None:
            by_dir.setdefault(key.checkpoint_dir, []).append(key)

    def started_after(a: _LinkKey, b: _LinkKey) -> bool:
        return not pd.isna(a.start_time) and not pd.isna(b.start_time) and a.start_time > b.start_time

    pred: dict[Any, Any] = {}
    for key in keys:
        if key.resumed_dir is None:
            continue
        candidates = [c for c in by_dir.get(key.resumed_dir, []) if c.run_id != key.run_id and not started_after(c, key)]
        if candidates:
            best = max(candidates, key=lambda c: (not pd.isna(c.start_time),
                                                   c.start_time if not pd.isna(c.start_time) else pd.Timestamp.min,
                                                   _sort_key(c.run_id)))  # fmt: skip
            pred[key.run_id] = best.run_id
    for start in list(pred):
        seen, node = set(), start
        while node in pred and node not in seen:
            seen.add(node)
            node = pred[node]
        if node in seen:  # a cycle (only possible without start times): cut it here
            del pred[node]
    return pred


def _chain(run_id: Any, pred: Mapping[Any, Any]) -> list[Any]:
    """The ids of the runs ``run_id`` continues, first to last (``run_id`` itself last)."""
    chain = [run_id]
    while chain[-1] in pred:
        chain.append(pred[chain[-1]])
    return chain[::-1]


def _join_metrics(links: list["Run"]) -> dict[str, tuple[list, list]]:
    """Each metric of a resume chain: link i's points up to the step the next link resumed at, then the
    next link's points. An earlier link's points after its last checkpoint (which the next link
    recomputes) are dropped. Without a known resume step, an earlier link's points before the next
    link's first step of that metric are kept."""
    data = [link._metric_data() for link in links]
    joined: dict[str, tuple[list, list]] = {}
    for i, metrics in enumerate(data):
        following = data[i + 1] if i + 1 < len(links) else None
        cut = links[i + 1].resumed_at if following is not None else None
        for name, (steps, values) in metrics.items():
            if following is None:
                keep = range(len(steps))
            elif cut is not None:
                keep = [j for j, step in enumerate(steps) if step <= cut]
            else:
                later = following.get(name, ([], []))[0]
                first = min(later) if later else None
                keep = [j for j, step in enumerate(steps) if first is None or step < first]
            joined_steps, joined_values = joined.setdefault(name, ([], []))
            joined_steps.extend(steps[j] for j in keep)
            joined_values.extend(values[j] for j in keep)
    return joined


def _logical_run(chain: list["Run"]) -> "Run":
    """One run of a resume chain: the last link's record, the first link's start time, joined metrics."""
    if len(chain) == 1:
        return chain[0]
    first, last = chain[0], chain[-1]
    return Run(
        run_id=last.run_id,
        experiment=last.experiment,
        status=last.status,
        config=last.config,
        info=last.info,
        result=last.result,
        fail_trace=last.fail_trace,
        start_time=first.start_time,
        stop_time=last.stop_time,
        heartbeat=last.heartbeat,
        meta=last.meta,
        recorded_status=last.recorded_status,
        _store=last._store,
        _key=last._key,
        _artifacts=last._artifacts,
        _links=list(chain),
        _resumed_at=first.resumed_at,
    )


# --- dead runs ---------------------------------------------------------------------------------


def _as_timedelta(value: Any) -> pd.Timedelta | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        delta = pd.Timedelta(value)
    elif isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        delta = pd.Timedelta(seconds=float(value))
    else:
        raise TypeError(f"dead_after must be a datetime.timedelta, a number of seconds or None, not {value!r}")
    if delta < pd.Timedelta(0):
        raise ValueError(f"dead_after must not be negative, got {value!r}")
    return delta


def _utcnow() -> pd.Timestamp:
    return pd.Timestamp(datetime.now(timezone.utc)).tz_localize(None)


def _mark_dead(run: "Run", now: pd.Timestamp, dead_after: pd.Timedelta | None) -> None:
    """A RUNNING run that has not beaten (or, without a beat, started) for ``dead_after``: PROBABLY_DEAD."""
    if dead_after is None or run.recorded_status != "RUNNING":
        return
    last = run.heartbeat if not pd.isna(run.heartbeat) else run.start_time
    if not pd.isna(last) and now - last > dead_after:
        run.status = PROBABLY_DEAD


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

    def load(self, query: Mapping[str, Any]) -> list["Run"]:
        runs = []
        for doc in self.db.runs.find(dict(query), {"captured_out": 0}):
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

    def load_ids(self, ids: Iterable[Any]) -> list["Run"]:
        ids = list(ids)
        return self.load({"_id": {"$in": ids}}) if ids else []

    def link_keys(self) -> list[_LinkKey]:
        """What links runs to the runs they resumed from, for every run of the database (one query
        reading only those fields): a filtered query must still find all links of its runs."""
        fields = {"info.checkpoint_dir": 1, "info.resumed_from": 1, "start_time": 1}
        keys = []
        for doc in self.db.runs.find({}, fields):
            info = doc.get("info") or {}
            info = info if isinstance(info, Mapping) else {}
            keys.append(_link_key_from(doc["_id"], info.get("checkpoint_dir"), info.get("resumed_from"),
                                       _time(doc.get("start_time"))))  # fmt: skip
        return keys

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
    """One recorded run, or one logical run of a resume chain, from either backend. ``config``,
    ``info`` and ``result`` are plain values.

    ``status`` is the recorded status, except that a ``RUNNING`` run that stopped beating is
    ``PROBABLY_DEAD`` (``recorded_status`` keeps what Sacred recorded). A logical run joining a resume
    chain (see :func:`load_runs`) is its last link's record (id, config, info, result, status,
    artifacts, captured output) with the first link's ``start_time``, and its metrics joined over
    ``links``.
    """

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
    recorded_status: str | None = None
    _store: Any = field(default=None, repr=False)
    _key: Any = field(default=None, repr=False)
    _artifacts: dict = field(default_factory=dict, repr=False)
    _metrics: dict | None = field(default=None, repr=False)
    _links: list | None = field(default=None, repr=False)
    _resumed_at: int | None = field(default=None, repr=False)

    def __post_init__(self):
        if self.recorded_status is None:
            self.recorded_status = self.status

    @property
    def links(self) -> list["Run"]:
        """The recorded runs this run joins, first to last: ``[self]`` for a run that continues no other
        (and for every run of ``load_runs(..., resumes="separate")``)."""
        return list(self._links) if self._links else [self]

    @property
    def resumed_at(self) -> int | None:
        """The iteration this record resumed at (``info["resumed_at"]``, else N of the
        ``checkpoint_<N>.pt`` it resumed from); None when it did not resume. For a joined run: its
        first link's (set only when that resumed from a run of another store)."""
        return self._resumed_at

    def _metric_data(self) -> dict:
        if not self._links:
            return self._store.metrics(self)
        if self._metrics is None:
            self._metrics = _join_metrics(self._links)
        return self._metrics

    def metric_names(self) -> list[str]:
        return sorted(self._metric_data())

    def metric(self, name: str) -> pd.Series:
        """The logged values of ``name``, indexed by step, in the order they were logged (for a joined
        run: joined over its links, see :func:`load_runs`)."""
        metrics = self._metric_data()
        if name not in metrics:
            raise KeyError(f"run {self.run_id} has no metric {name!r}; it has: {', '.join(sorted(metrics)) or '(none)'}")
        steps, values = metrics[name]
        return pd.Series(values, index=pd.Index(steps, name="step"), name=name, dtype=float)

    def final_metrics(self) -> dict[str, float]:
        """Each metric's value at its largest step (the last one logged if that step repeats)."""
        final = {}
        for name, (steps, values) in self._metric_data().items():
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


def experiment_runs(experiment: str, source=None, where: Mapping[str, Any] | None = None,
                    status: str | Iterable[str] | None = "COMPLETED") -> pd.DataFrame:
    """``load_runs`` of one experiment's runs, from ``source`` (a file store or a Mongo URL) or, when
    None, its default store ``data/sims/<experiment>``, where a missing directory is no runs: what each
    paper's analysis module reads by default."""
    if source is None:
        from genlab.paths import sims_dir

        source = sims_dir(experiment)
        if not Path(source).is_dir():
            return pd.DataFrame(columns=["run_id", "experiment", "run"])
    return load_runs(source, where=where, experiment=experiment, status=status)


def load_runs(
    source: str | os.PathLike,
    where: Mapping[str, Any] | None = None,
    experiment: str | None = None,
    status: str | Iterable[str] | None = None,
    *,
    resumes: str = "join",
    dead_after: timedelta | float | None = DEFAULT_DEAD_AFTER,
    cache_dir: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Recorded runs as a table, one row per logical run, sorted by ``run_id``.

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
        status: keep runs with this status (``COMPLETED``, ``FAILED``, ``RUNNING``, ``INTERRUPTED``,
            ``PROBABLY_DEAD``...), or any of several. ``RUNNING`` does not select the probably dead ones.
        resumes: ``"join"`` (default): a run resumed from another run's checkpoint and the runs it
            continues are one logical run (below); ``"separate"``: one row per recorded run.
        dead_after: a ``RUNNING`` run whose last heartbeat (without one: its start) is older than this
            (a ``datetime.timedelta`` or seconds; default 60 s, six of Sacred's 10 s heartbeat
            intervals) was killed without a word (``kill -9``, a lost machine) and gets the status
            ``PROBABLY_DEAD`` (Omniboard's name; ``Run.recorded_status`` keeps ``RUNNING``). None:
            never.
        cache_dir: where artifacts from GridFS are extracted for ``Run.artifact_path``
            (default ``$XDG_CACHE_HOME/genlab/mongo-artifacts``, i.e. ``~/.cache/genlab/...``).

    Resume chains: each genlab training run records ``info["checkpoint_dir"]`` (the absolute folder of
    its checkpoints) and, when it resumed, ``info["resumed_from"]`` (the checkpoint file,
    ``<checkpoint_dir>/checkpoint_<N>.pt``) and ``info["resumed_at"]`` (N; else N is read from the file
    name). Run B continues run A when the folder of B's ``resumed_from`` is A's ``checkpoint_dir``
    (normalised paths; in a file store a run without ``checkpoint_dir`` has ``<run dir>/checkpoints``).
    Chains may be longer (A -> B -> C). With ``resumes="join"`` a chain is one row: config, status,
    result, info, artifacts and ``run_id`` of the last link, ``start_time`` of the first,
    ``stop_time`` and ``heartbeat`` of the last; each metric joined by step: a link's points up to
    the step the next link resumed at, then the next link's (the points an earlier link logged after
    its last checkpoint, which the next link recomputed, are dropped); the final metrics are those of
    the joined metrics. A chain that branches (two runs resumed from the same checkpoint folder)
    gives one logical run per branch, each with the shared prefix. A run resumed from a run that is
    not in this store starts its chain. ``where``, ``experiment`` and ``status`` select logical
    runs by their last link (so a first link whose config differed, e.g. in its number of
    iterations, does not drop out), on both backends alike.

    Unreadable runs: a run directory whose ``run.json``, ``config.json``, ``info.json`` or
    ``metrics.json`` cannot be read (truncated or garbage JSON, no permission) is skipped, with one
    :class:`UnreadableRunWarning` naming every skipped directory and its file and error.

    Returns:
        A DataFrame with the columns ``run_id``, ``experiment``, ``status``, ``start_time``,
        ``stop_time``, ``heartbeat`` (the last heartbeat; times are naive UTC), ``links`` (the run
        ids of the logical run, first to last; ``[run_id]`` for a single run) (``STANDARD_COLUMNS``);
        then the config flattened to dotted columns (sorted; lists stay values, a key missing in a run
        is NaN); then the final value (at the largest step) of every metric, in a column named by the
        metric (sorted); then ``run``, the :class:`Run` (``Run.links``: the recorded runs it joins).
        A metric whose name equals a config column is renamed ``metric:<name>``. No matching runs
        gives an empty table with the standard columns, the ``where`` keys and ``run`` (select
        metric columns with ``runs.filter([...])``, which keeps the ones present).

    Raises:
        FileNotFoundError / NotADirectoryError: the directory does not exist / is a file.
        LookupError: the Mongo server has no such database. ConnectionError: it cannot be reached.
        ValueError: ``resumes`` is neither ``"join"`` nor ``"separate"``.
    """
    where = dict(where or {})
    if resumes not in ("join", "separate"):
        raise ValueError(f"resumes must be 'join' or 'separate', not {resumes!r}")
    join = resumes == "join"
    dead_after = _as_timedelta(dead_after)
    statuses = None if status is None else ({status} if isinstance(status, str) else set(status))
    store = _open_source(source, Path(cache_dir) if cache_dir is not None else None)
    pred: dict[Any, Any] = {}
    if isinstance(store, _MongoStore):
        keys = store.link_keys() if join else []
        # The query selects candidates for the last link of a logical run; their earlier links are
        # fetched by id below, so a filter never loses links.
        candidates = store.load(_mongo_query(where, experiment, statuses))
        records = {run.run_id: run for run in candidates}
        if join:
            pred = _predecessors(keys)
            continued = set(pred.values())
            needed = {i for run in candidates if run.run_id not in continued for i in _chain(run.run_id, pred)}
            for run in store.load_ids(sorted(needed - set(records), key=_sort_key)):
                records[run.run_id] = run
    else:
        candidates = store.load()
        if store.skipped:
            skipped = "; ".join(f"{directory} ({name}: {reason})" for directory, name, reason in store.skipped)
            n = len(store.skipped)
            warnings.warn(
                f"load_runs skipped {n} unreadable run director{'y' if n == 1 else 'ies'} in {store.root}: {skipped}",
                UnreadableRunWarning,
                stacklevel=2,
            )
        records = {run.run_id: run for run in candidates}
        if join:
            pred = _predecessors(store.link_keys(candidates))
    now = _utcnow()
    for run in records.values():
        _mark_dead(run, now, dead_after)

    if join:
        continued = set(pred.values())
        logical = []
        for run in candidates:
            if run.run_id in continued:
                continue  # an earlier link: part of the logical runs that continue it
            chain = _chain(run.run_id, pred)
            missing = [i for i, run_id in enumerate(chain) if run_id not in records]
            if missing:  # deleted between two queries: the chain starts after it
                chain = chain[missing[-1] + 1 :]
            logical.append(_logical_run([records[i] for i in chain]))
    else:
        logical = candidates
    runs = [
        run
        for run in logical
        if (experiment is None or run.experiment == experiment)
        and (statuses is None or run.status in statuses)
        and _matches(run.config, where)
    ]
    runs.sort(key=lambda run: _sort_key(run.run_id))
    if isinstance(store, _MongoStore):
        store.fetch_metrics(list({id(link): link for run in runs for link in run.links}.values()))
    if not runs:  # the columns every table has, and the config keys the selection named
        named = [k for k in sorted(where) if k not in STANDARD_COLUMNS]
        return pd.DataFrame({name: pd.Series(dtype=object) for name in [*STANDARD_COLUMNS, *named, "run"]})

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
            "heartbeat": run.heartbeat,
            "links": [link.run_id for link in run.links],
        }
        row.update({key: flat.get(key, np.nan) for key in config_columns})
        row.update({column: final.get(name, np.nan) for name, column in metric_columns.items()})
        row["run"] = run
        rows.append(row)
    columns = [*STANDARD_COLUMNS, *config_columns, *metric_columns.values(), "run"]
    table = pd.DataFrame.from_records(rows, columns=columns)
    for column in ("start_time", "stop_time", "heartbeat"):
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


if __name__ == "__main__":  # python -m genlab.analysis.runs sync <file store> <mongo url>
    import sys

    if sys.argv[1:2] != ["sync"]:
        raise SystemExit("usage: python -m genlab.analysis.runs sync <file store> <mongodb://host:port/db | host:port:db>")
    from genlab.analysis.sync import main

    raise SystemExit(main(sys.argv[2:]))


def analysis_parser(experiment: str, doc: str) -> "argparse.ArgumentParser":
    """The command line of ``python -m genlab.analysis.<experiment>``: ``--source`` (a file-store
    directory or a Mongo URL; default ``data/sims/<experiment>``) and ``--out`` (default
    ``data/results/<experiment>``); the module adds its own options."""
    import argparse

    parser = argparse.ArgumentParser(prog=f"python -m genlab.analysis.{experiment}", description=doc.split("\n\n")[0])
    parser.add_argument("--source", default=None, help=f"{experiment} runs: file-store directory or mongodb://host:port/db")
    parser.add_argument("--out", default=None, help=f"output directory (default data/results/{experiment})")
    return parser
