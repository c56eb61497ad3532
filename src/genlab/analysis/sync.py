"""Upload into MongoDB what it missed of the runs a FileStorageObserver recorded.

A genlab run observed by both observers (``-m`` or ``GENLAB_MONGO`` next to the default file store)
keeps its full record in the file store even when MongoDB goes away during the run: the Mongo
observer then stops talking to the server, pickles its last run entry into the file store's
``_mongo_failures/`` folder and the run goes on. This tool brings the Mongo database back in line::

    python -m genlab.analysis.runs sync data/sims/disent mongodb://mydbhost:27017/disent
    python -m genlab.analysis.sync data/sims/disent mydbhost:27017:disent        # the same

For every run directory of the file store (a folder holding ``run.json``) it finds the run's Mongo
document (``run.json``'s ``mongo_id``, written by genlab's file-store observer or by an earlier
sync; checked to be the same run by experiment name and start time) and uploads what the document
lacks, in the format Sacred's MongoObserver writes:

* no document: a new one (the recorded id when it is free in that database, else the next one),
  with config, info, host, experiment (sources in GridFS), meta, status, result, times, captured
  output; its id is then written back into ``run.json`` (``mongo_id``, ``mongo_db``);
* a document still ``RUNNING`` (or ``QUEUED``) whose run has finished: status, stop time, result,
  fail trace, heartbeat, info and captured output from the file store;
* a missing result, info entries, a shorter captured output;
* artifacts the document does not list (uploaded to GridFS as ``artifact://runs/<id>/<name>``);
* metrics the ``metrics`` collection lacks or holds fewer points of (``{run_id, name, steps,
  values, timestamps}``), and the ``info.metrics`` links to them.

Nothing is ever removed or overwritten that the file store does not have more of, so a second sync
changes nothing. Runs still ``RUNNING`` in the file store are skipped (they may still be writing;
``--include-running`` syncs them too, e.g. runs whose process was killed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import math
import mimetypes
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

__all__ = ["MONGO_FAILURES_DIR", "SyncSummary", "content_type", "main", "mongo_target", "sync"]

MONGO_FAILURES_DIR = "_mongo_failures"
"""Where genlab's Mongo observer pickles run entries it could not save, inside the file store."""

MONGO_FORMAT = "MongoObserver-0.7.0"  # Sacred 0.8.7's MongoObserver.VERSION

_CONTENT_TYPES = {
    ".pt": "application/octet-stream",  # torch.save archives
    ".pth": "application/octet-stream",
    ".ckpt": "application/octet-stream",
    ".npy": "application/octet-stream",
    ".npz": "application/octet-stream",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
    ".pdf": "application/pdf",
    ".json": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".html": "text/html",
}

_SACRED_HOST_PORT_DB = re.compile(r"^(?P<host>[^:/@\s]+):(?P<port>\d+):(?P<db>[^:/\s.!]+)$")
_UNFINISHED = {None, "RUNNING", "QUEUED"}


def content_type(name: str) -> str:
    """The content type genlab gives an artifact called ``name`` (``model.pt``: a torch.save archive,
    ``application/octet-stream``; PNGs ``image/png``; unknown kinds ``application/octet-stream``)."""
    suffix = os.path.splitext(name)[1].lower()
    if suffix in _CONTENT_TYPES:
        return _CONTENT_TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def mongo_target(spec: str) -> tuple[str, str]:
    """``mongodb://host:port/db`` (pymongo's URL, options and credentials allowed) or Sacred's
    ``host:port:db`` -> (client URL, database name)."""
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        from pymongo.uri_parser import parse_uri

        db_name = parse_uri(spec).get("database")
        if not db_name:
            raise ValueError(f"the Mongo URL {spec!r} names no database; use mongodb://host:port/<db>")
        return spec, db_name
    match = _SACRED_HOST_PORT_DB.match(spec)
    if match is None:
        raise ValueError(f"{spec!r} is neither a mongodb://host:port/db URL nor Sacred's host:port:db")
    return f"mongodb://{match['host']}:{match['port']}", match["db"]


def redact(url: str) -> str:
    """``url`` without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


@dataclass
class SyncSummary:
    """What a sync did, per file-store run directory (by its name)."""

    created: list[tuple[str, Any]] = field(default_factory=list)  # (run dir, new Mongo id)
    updated: list[tuple[str, Any, list[str]]] = field(default_factory=list)  # (run dir, Mongo id, what)
    unchanged: list[tuple[str, Any]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (run dir, why)
    conflicts: list[tuple[str, Any, str]] = field(default_factory=list)  # left alone: Mongo says otherwise
    failure_pickles: int = 0  # files in <store>/_mongo_failures (informational)

    @property
    def changed(self) -> bool:
        return bool(self.created or self.updated)

    def lines(self) -> list[str]:
        out = [f"created {d} -> _id {i}" for d, i in self.created]
        out += [f"updated {d} (_id {i}): {', '.join(what)}" for d, i, what in self.updated]
        out += [f"skipped {d}: {why}" for d, why in self.skipped]
        out += [f"left alone {d} (_id {i}): {why}" for d, i, why in self.conflicts]
        out.append(
            f"{len(self.created)} created, {len(self.updated)} updated, {len(self.unchanged)} unchanged, "
            f"{len(self.skipped)} skipped"
        )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


# --- values -----------------------------------------------------------------------------------


def _read_json(path: Path, default: Any) -> Any:
    if not path.is_file():
        return default
    with open(path) as f:
        return json.load(f)


def _write_json(path: Path, obj: Any) -> None:
    """As Sacred's FileStorageObserver writes its files (sorted keys, indent 2), atomically."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.part")
    with open(partial, "w") as f:
        json.dump(obj, f, sort_keys=True, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(partial, path)


def _time(value: Any) -> dt.datetime | None:
    if value is None or isinstance(value, dt.datetime):
        return value
    return dt.datetime.fromisoformat(value)


def _ms(value: dt.datetime | None) -> dt.datetime | None:
    """MongoDB keeps milliseconds, the file store microseconds: compare at milliseconds."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _same_value(a: Any, b: Any) -> bool:
    """Equality of JSON/BSON values, NaN equal to NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool):  # True is not 1 in BSON
        return type(a) is type(b) and a == b
    return a == b


def _metric_links(info: Any) -> bool:
    return isinstance(info, list) and all(isinstance(m, dict) and set(m) == {"id", "name"} for m in info)


def _without_links(info: dict | None) -> dict:
    info = dict(info or {})
    if _metric_links(info.get("metrics")):
        del info["metrics"]
    return info


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- one run ------------------------------------------------------------------------------------


class _FileRun:
    """A run directory of the file store, read once."""

    def __init__(self, store: Path, directory: Path):
        self.store, self.dir, self.name = store, directory, directory.name
        self.entry = _read_json(directory / "run.json", {})
        self.config = _read_json(directory / "config.json", {})
        info = _read_json(directory / "info.json", None)
        self.info = _without_links(info if info is not None else self.entry.get("info", {}))
        self.metrics = _read_json(directory / "metrics.json", {})
        cout = directory / "cout.txt"
        self.captured_out = cout.read_text(errors="replace") if cout.is_file() else ""
        self.status = self.entry.get("status")
        self.start_time = _time(self.entry.get("start_time"))

    def is_run_of(self, doc: dict | None) -> bool:
        if not doc:
            return False
        if (doc.get("file_store") or {}).get("dir") == str(self.dir.resolve()):
            return True
        return ((doc.get("experiment") or {}).get("name") == (self.entry.get("experiment") or {}).get("name")
                and _ms(_time(doc.get("start_time"))) == _ms(self.start_time))

    def record_mapping(self, mongo_id: Any, db_name: str) -> None:
        if self.entry.get("mongo_id") == mongo_id and self.entry.get("mongo_db") == db_name:
            return
        self.entry["mongo_id"], self.entry["mongo_db"] = mongo_id, db_name
        _write_json(self.dir / "run.json", self.entry)


class _Database:
    def __init__(self, url: str, db_name: str, timeout_s: float):
        import gridfs
        from pymongo import MongoClient

        self.url, self.db_name = url, db_name
        ms = int(timeout_s * 1000)
        self.client = MongoClient(url, serverSelectionTimeoutMS=ms, connectTimeoutMS=ms)
        self.db = self.client[db_name]
        self.runs, self.metrics = self.db["runs"], self.db["metrics"]
        self.fs = gridfs.GridFS(self.db)

    def next_id(self) -> int:
        last = list(self.runs.find({}, {"_id": 1}).sort("_id", -1).limit(1))
        return last[0]["_id"] + 1 if last and isinstance(last[0]["_id"], int) else 1

    def put(self, path: Path, **attributes) -> Any:
        with open(path, "rb") as f:
            return self.fs.put(f, **attributes)

    def find_doc(self, run: _FileRun) -> dict | None:
        mongo_id = run.entry.get("mongo_id")
        if mongo_id is not None:
            doc = self.runs.find_one({"_id": mongo_id}, {"experiment.sources": 0})
            if run.is_run_of(doc):
                return doc
        doc = self.runs.find_one({"file_store.dir": str(run.dir.resolve())}, {"experiment.sources": 0})
        return doc if run.is_run_of(doc) else None

    def sources(self, run: _FileRun) -> list:
        """The run's sources in GridFS, as Sacred's MongoObserver stores them (found by file name and
        md5, which genlab stores on the file, so no source is uploaded twice)."""
        experiment = run.entry.get("experiment") or {}
        base_dir = experiment.get("base_dir", "")
        out = []
        for name, stored in experiment.get("sources") or []:
            path = Path(stored) if os.path.isabs(stored) else run.store / stored
            if not path.is_file():
                continue
            md5 = _md5(path)
            filename = os.path.join(base_dir, name)
            found = self.fs.find_one({"filename": filename, "md5": md5})
            out.append([name, found._id if found else self.put(path, filename=filename, md5=md5)])
        return out

    def create(self, run: _FileRun) -> Any:
        """A skeleton run document (no artifacts, no metrics: ``repair`` adds them)."""
        from pymongo.errors import DuplicateKeyError

        entry = run.entry
        experiment = dict(entry.get("experiment") or {})
        experiment["sources"] = self.sources(run)
        resources = []
        for filename, stored in entry.get("resources") or []:
            path = Path(stored) if os.path.isabs(stored) else run.store / stored
            resources.append([filename, _md5(path) if path.is_file() else None])
        doc = {
            "experiment": experiment,
            "format": MONGO_FORMAT,
            "command": entry.get("command"),
            "host": entry.get("host") or {},
            "start_time": run.start_time,
            "config": run.config,
            "meta": entry.get("meta") or {},
            "status": run.status,
            "resources": resources,
            "artifacts": [],
            "captured_out": run.captured_out,
            "info": dict(run.info),
            "heartbeat": _time(entry.get("heartbeat")),
            "result": entry.get("result"),
            "file_store": {"dir": str(run.dir.resolve()), "id": run.name},
        }
        for key in ("stop_time",):
            if entry.get(key) is not None:
                doc[key] = _time(entry[key])
        if entry.get("fail_trace") is not None:
            doc["fail_trace"] = entry["fail_trace"]
        wanted = entry.get("mongo_id")
        free = isinstance(wanted, int) and not self.runs.count_documents({"_id": wanted}, limit=1)
        candidate = wanted if free else None
        for _ in range(100):
            doc["_id"] = candidate if candidate is not None else self.next_id()
            try:
                self.runs.insert_one(doc)
                return doc["_id"]
            except DuplicateKeyError:  # another writer took it
                candidate = None
        raise RuntimeError(f"could not find a free _id in {self.db_name}.runs")

    def repair(self, run: _FileRun, doc: dict, conflicts: list[str]) -> list[str]:
        """Bring ``doc`` up to what the file store has; returns what changed."""
        run_id, entry, changes = doc["_id"], run.entry, []
        updates: dict[str, Any] = {}
        status = doc.get("status")
        finished_now = status in _UNFINISHED and run.status not in _UNFINISHED
        if finished_now:
            updates["status"] = run.status
            changes.append(f"status {status} -> {run.status}")
            for key in ("stop_time", "heartbeat"):
                if entry.get(key) is not None:
                    updates[key] = _time(entry[key])
            if entry.get("fail_trace") is not None:
                updates["fail_trace"] = entry["fail_trace"]
        elif status != run.status and run.status not in _UNFINISHED:
            conflicts.append(f"status is {status} in MongoDB, {run.status} in the file store")
        if entry.get("result") is not None and doc.get("result") is None:
            updates["result"] = entry["result"]
            changes.append("result")
        if doc.get("stop_time") is None and entry.get("stop_time") is not None and "stop_time" not in updates:
            updates["stop_time"] = _time(entry["stop_time"])
            changes.append("stop_time")
        doc_info = _without_links(doc.get("info"))
        if (finished_now or set(run.info) - set(doc_info)) and not _same_value(doc_info, run.info):
            links = (doc.get("info") or {}).get("metrics")
            updates["info"] = {**run.info, **({"metrics": links} if _metric_links(links) else {})}
            changes.append("info")
        if len(doc.get("captured_out") or "") < len(run.captured_out):
            updates["captured_out"] = run.captured_out
            changes.append("captured_out")
        if updates:
            self.runs.update_one({"_id": run_id}, {"$set": updates})

        listed = {a.get("name") for a in doc.get("artifacts") or []}
        for name in entry.get("artifacts") or []:
            if name in listed:
                continue
            path = run.dir / name
            if not path.is_file():
                conflicts.append(f"artifact {name} is listed in run.json but {path} is missing")
                continue
            file_id = self.put(path, filename=f"artifact://runs/{run_id}/{name}", metadata=None,
                               content_type=content_type(name))
            self.runs.update_one({"_id": run_id}, {"$push": {"artifacts": {"name": name, "file_id": file_id}}})
            changes.append(f"artifact {name}")

        for name, series in run.metrics.items():
            steps, values = list(series.get("steps", [])), list(series.get("values", []))
            stamps = [_time(t) for t in series.get("timestamps", [])]
            mdoc = self.metrics.find_one({"run_id": run_id, "name": name}, {"steps": 1})
            if mdoc is None:
                self.metrics.insert_one({"run_id": run_id, "name": name, "steps": steps, "values": values,
                                         "timestamps": stamps})
                changes.append(f"metric {name} ({len(steps)} points)")
            elif len(mdoc.get("steps") or []) < len(steps):
                self.metrics.update_one({"_id": mdoc["_id"]},
                                        {"$set": {"steps": steps, "values": values, "timestamps": stamps}})
                changes.append(f"metric {name} ({len(mdoc.get('steps') or [])} -> {len(steps)} points)")

        # the info.metrics links to the metric documents, as Sacred's MongoObserver keeps them
        metric_docs = self.metrics.find({"run_id": run_id}, {"name": 1}).sort("_id", 1)
        links = [{"name": m["name"], "id": str(m["_id"])} for m in metric_docs]
        fresh = self.runs.find_one({"_id": run_id}, {"info.metrics": 1}) or {}
        present = (fresh.get("info") or {}).get("metrics")
        have = {(m["name"], m["id"]) for m in present} if _metric_links(present) else set()
        if links and {(m["name"], m["id"]) for m in links} != have:
            self.runs.update_one({"_id": run_id}, {"$set": {"info.metrics": links}})
            if not any(c.startswith("metric ") for c in changes):
                changes.append("info.metrics links")
        return changes


def _run_dirs(store: Path) -> list[Path]:
    dirs = [p for p in store.iterdir() if p.is_dir() and (p / "run.json").is_file()]
    return sorted(dirs, key=lambda p: (not p.name.isdigit(), int(p.name) if p.name.isdigit() else 0, p.name))


def sync(file_store_dir: str | os.PathLike, mongo_url: str, *, include_running: bool = False,
         timeout_s: float = 10.0) -> SyncSummary:
    """Upload into the MongoDB ``mongo_url`` (``mongodb://host:port/db`` or ``host:port:db``) what it
    lacks of the runs in the FileStorageObserver directory ``file_store_dir``; idempotent.

    Returns a :class:`SyncSummary`. Raises ``ConnectionError`` when the server does not answer within
    ``timeout_s``, ``FileNotFoundError`` when the directory does not exist.
    """
    from pymongo.errors import PyMongoError

    store = Path(file_store_dir)
    if not store.is_dir():
        raise FileNotFoundError(f"no file store at {store}")
    url, db_name = mongo_target(mongo_url)
    database = _Database(url, db_name, timeout_s)
    summary = SyncSummary()
    failures = store / MONGO_FAILURES_DIR
    summary.failure_pickles = len(list(failures.glob("*.pickle"))) if failures.is_dir() else 0
    try:
        database.client.admin.command("ping")
        for directory in _run_dirs(store):
            run = _FileRun(store, directory)
            if run.status in _UNFINISHED and not include_running:
                summary.skipped.append((run.name, f"status {run.status} in the file store (still running?)"))
                continue
            doc = database.find_doc(run)
            created = doc is None
            if created:
                run_id = database.create(run)
                run.record_mapping(run_id, db_name)  # first, so an interrupted sync resumes on this document
                doc = database.runs.find_one({"_id": run_id}, {"experiment.sources": 0})
            else:
                run_id = doc["_id"]
                run.record_mapping(run_id, db_name)
            conflicts: list[str] = []
            changes = database.repair(run, doc, conflicts)
            for why in conflicts:
                summary.conflicts.append((run.name, run_id, why))
            if created:
                summary.created.append((run.name, run_id))
            elif changes:
                summary.updated.append((run.name, run_id, changes))
            else:
                summary.unchanged.append((run.name, run_id))
    except PyMongoError as err:
        raise ConnectionError(f"MongoDB at {redact(url)} (database {db_name}): {err}") from err
    finally:
        database.client.close()
    return summary


def main(argv: Iterable[str] | None = None) -> int:
    """``python -m genlab.analysis.runs sync <file store> <mongo url>`` (also ``python -m genlab.analysis.sync``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["sync"]:
        args = args[1:]
    parser = argparse.ArgumentParser(
        prog="python -m genlab.analysis.runs sync",
        description="Upload into MongoDB what it missed of the runs a file store recorded (idempotent).",
    )
    parser.add_argument("file_store", help="a FileStorageObserver directory, e.g. data/sims/disent")
    parser.add_argument("mongo_url", help="mongodb://host:port/db or host:port:db")
    parser.add_argument("--include-running", action="store_true",
                        help="also sync runs whose file-store status is still RUNNING (e.g. killed processes)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the server (10)")
    options = parser.parse_args(args)
    try:
        summary = sync(options.file_store, options.mongo_url, include_running=options.include_running,
                       timeout_s=options.timeout)
    except (ConnectionError, FileNotFoundError, ValueError) as err:
        print(f"sync: {err}", file=sys.stderr)
        return 2
    print(summary)
    if summary.failure_pickles:
        print(f"({summary.failure_pickles} entries the Mongo observer could not save are in "
              f"{Path(options.file_store) / MONGO_FAILURES_DIR}; once synced they can be deleted)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
