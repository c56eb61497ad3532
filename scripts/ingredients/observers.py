"""Where runs are recorded, decided on the command line (design rule 8), and the CLI entry point.

- default: a file store (Sacred's FileStorageObserver) under ``data/sims/<experiment>/``;
- ``-F DIR``: that file store instead; ``-u``: unobserved;
- ``-m HOST:PORT:DB`` (Sacred's form) or ``-m mongodb://host:port/db``, or the environment's
  ``GENLAB_MONGO=mongodb://host:port/db`` (for bin/ sweeps and SLURM arrays; db defaults to
  ``genlab``): a MongoObserver *next to* the file store.

genlab creates these observers itself (``-m`` and ``-F`` are taken out of the command line before
Sacred reads it), so that

- both together work: MongoDB numbers the run (``_id``), the file store picks its own folder and
  records the Mongo id in its ``run.json`` (``mongo_id``, ``mongo_db``); the Mongo document records
  the folder (``file_store: {dir, id}``);
- MongoDB is pinged before anything runs: a server that does not answer within
  ``GENLAB_MONGO_TIMEOUT`` seconds (5) stops the command with one line naming it (exit status 2);
- MongoDB lost during a run does not stop or stall it: the Mongo observer stops talking to the
  server after the first failed call, pickles its run entry into ``<file store>/_mongo_failures/``
  at the end and says how to upload what it missed (``python -m genlab.analysis.runs sync``);
- any other observer failure on an artifact or on the run's record (a full disk while copying
  ``model.pt``) fails the run: ``add_artifact`` raises, the run is recorded FAILED where possible and
  the command exits non-zero naming the observer, the path and the OS error.

Named configs' docstrings (``<ingredient>.__doc__`` in Sacred's config, which ``print_config``
shows) are left out of what the observers store.
"""

from __future__ import annotations

import difflib
import json
import logging
import os
import pickle
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlparse

from sacred import Experiment
from sacred.observers import FileStorageObserver, MongoObserver
from sacred.observers.mongo import force_bson_encodeable, get_pattern
from sacred.run import Run
from sacred.serializer import flatten as sacred_flatten
from docopt import docopt
from sacred.arg_parser import get_config_updates
from sacred.utils import ConfigAddedError, ObserverError, SacredError, apply_backspaces_and_linefeeds, print_filtered_stacktrace

from genlab.errors import GenlabError
from genlab.analysis.sync import MONGO_FAILURES_DIR, redact
from genlab.analysis.sync import content_type as artifact_content_type
from genlab.devices import keep_freed_memory
from ingredients.signals import interrupted_exit, terminate_as_interrupt
from genlab.paths import sims_dir

_FILE_FLAGS = ("-F", "--file_storage")
_MONGO_FLAGS = ("-m", "--mongo_db")
_UNOBSERVED_FLAGS = {"-u", "--unobserved"}

logger = logging.getLogger("genlab.observers")


class MongoUnavailable(GenlabError, ConnectionError):
    """The MongoDB server of ``-m`` / ``GENLAB_MONGO`` does not answer."""


class ObserverFailure(RuntimeError):
    """An observer could not store an artifact or the run's record: the run must not pass as recorded."""


def mongo_timeout() -> float:
    """Seconds genlab waits for MongoDB to answer (server selection, connect): ``GENLAB_MONGO_TIMEOUT``, 5."""
    return float(os.environ.get("GENLAB_MONGO_TIMEOUT", "5"))


def _flags(argv: list[str]) -> set[str]:
    return {a.split("=", 1)[0] for a in argv if a.startswith("-")}


def _short(exc: BaseException) -> str:
    """One line about ``exc`` (pymongo's server selection errors carry the whole topology)."""
    text = re.split(r", Timeout:| \(configured timeouts:", str(exc))[0].split("\n")[0].strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def strip_docstrings(config: Any) -> Any:
    """``config`` without its ``__doc__`` entries (the docstrings of named configs and config scopes,
    which Sacred keeps in the config so that ``print_config`` can show them)."""
    if isinstance(config, Mapping):
        return {k: strip_docstrings(v) for k, v in config.items() if k != "__doc__"}
    return config


# --- the file store ------------------------------------------------------------------------------


class GenlabFileStorageObserver(FileStorageObserver):
    """Sacred's FileStorageObserver that always picks its own run folder (so that it works next to a
    MongoObserver, which numbers the run first), records the Mongo id in ``run.json``, keeps
    docstrings out of ``config.json``, and remembers its failures (``failures``), which Sacred only
    logs; a run whose record failed is written as FAILED, not COMPLETED."""

    def __init__(self, basedir, **kwargs):
        super().__init__(basedir, **kwargs)
        self.failures: list[str] = []
        self.mongo: GenlabMongoObserver | None = None  # set by add_default_observers

    def __str__(self) -> str:
        return f"file store {self.dir or self.basedir}"

    def save_json(self, obj, filename):
        """Sacred rewrites run.json, info.json and metrics.json in place, so a kill during a write
        leaves an empty or half file; here each is written beside and renamed over (atomic)."""
        path = os.path.join(self.dir, filename)
        partial = os.path.join(self.dir, f".{filename}.{os.getpid()}.part")
        with open(partial, "w") as f:
            json.dump(sacred_flatten(obj), f, sort_keys=True, indent=2)
            f.flush()
        os.replace(partial, path)

    def _failed(self, what: str, exc: BaseException) -> None:
        self.failures.append(f"{self}: {what}: {_short(exc)}")

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        return super().queued_event(ex_info, command, host_info, queue_time, strip_docstrings(config), meta_info, None)

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        own = super().started_event(ex_info, command, host_info, start_time, strip_docstrings(config), meta_info, None)
        mongo = self.mongo
        if _id is not None and mongo is not None and mongo.run_entry and mongo.run_entry.get("_id") == _id:
            self.run_entry["mongo_id"], self.run_entry["mongo_db"] = _id, mongo.db_name
            self.save_json(self.run_entry, "run.json")
            mongo.record_file_store(self.dir, own)
        return own

    def heartbeat_event(self, info, captured_out, beat_time, result):
        try:
            super().heartbeat_event(info, captured_out, beat_time, result)
        except Exception as exc:
            self._failed("could not write the heartbeat (run.json, info.json, cout.txt)", exc)
            raise

    def log_metrics(self, metrics_by_name, info):
        try:
            super().log_metrics(metrics_by_name, info)
        except Exception as exc:
            self._failed(f"could not write {os.path.join(self.dir or '', 'metrics.json')}", exc)
            raise

    def resource_event(self, filename):
        try:
            super().resource_event(filename)
        except Exception as exc:
            self._failed(f"could not store resource {filename}", exc)
            raise

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        try:
            super().artifact_event(name, filename, metadata=metadata, content_type=content_type)
        except Exception as exc:
            self._failed(f"could not store artifact {name!r} ({filename} -> {os.path.join(self.dir or '', name)})", exc)
            raise

    def completed_event(self, stop_time, result):
        if self.failures:  # what it has is incomplete: say so in the record
            self.run_entry["result"] = result
            return self.failed_event(stop_time, ["genlab: the run completed, but its record in this file store is "
                                                 "incomplete:\n", *(f + "\n" for f in self.failures)])
        self._final_record(super().completed_event, stop_time, result)

    def interrupted_event(self, interrupt_time, status):
        self._final_record(super().interrupted_event, interrupt_time, status)

    def failed_event(self, fail_time, fail_trace):
        self._final_record(super().failed_event, fail_time, fail_trace)

    def _final_record(self, write, *args) -> None:
        """Sacred's writing of the final record; a failure is remembered (the run must fail) and raised."""
        try:
            write(*args)
        except Exception as exc:
            self._failed(f"could not write the final record {os.path.join(self.dir or '', 'run.json')}", exc)
            raise


# --- MongoDB -----------------------------------------------------------------------------------


class GenlabMongoObserver(MongoObserver):
    """Sacred's MongoObserver with short timeouts, a ``ping``, and a run that survives the server:

    the first call that finds the server gone (``pymongo.errors.ConnectionFailure``) marks the
    observer ``lost``; it then skips every network call, so the run neither stalls in pymongo's
    server selection nor in Sacred's ten final-save retries, and at the end pickles its run entry
    into ``failure_dir`` (``<file store>/_mongo_failures/``) with a warning naming the sync command.
    Losing the server is tolerated only when a file store (``file_store``) records the run in full;
    otherwise, and for any other failure on an artifact or on the record, ``failures`` says why.
    """

    def __init__(self, url: str, db_name: str = "genlab", *, failure_dir=None, timeout_s: float | None = None,
                 **kwargs):
        from pymongo.errors import ConfigurationError, ConnectionFailure

        self.url, self.db_name = url, db_name
        self.timeout_s = mongo_timeout() if timeout_s is None else float(timeout_s)
        self.failures: list[str] = []
        self.lost: str | None = None
        self.missed: list[str] = []
        self.file_store: GenlabFileStorageObserver | None = None  # set by add_default_observers
        ms = max(1, int(self.timeout_s * 1000))
        options = {"serverSelectionTimeoutMS": ms, "connectTimeoutMS": ms, "socketTimeoutMS": max(30_000, ms), **kwargs}
        try:
            super().__init__(url=url, db_name=db_name, failure_dir=failure_dir, **options)
        except ConnectionFailure as exc:  # Sacred looks up an -m ...:<id> run to overwrite
            raise MongoUnavailable(self._unavailable(exc)) from None
        except ConfigurationError as exc:
            raise ValueError(f"MongoDB {redact(url)}: {exc}") from None

    def __str__(self) -> str:
        if self.url.startswith(("mongodb://", "mongodb+srv://")) and urlparse(self.url).path.strip("/") == self.db_name:
            return f"MongoDB {redact(self.url)}"
        return f"MongoDB {redact(self.url)} (database {self.db_name})"

    def sync_target(self) -> str:
        """The Mongo argument of ``python -m genlab.analysis.runs sync`` for this database."""
        if self.url.startswith(("mongodb://", "mongodb+srv://")):
            from pymongo.uri_parser import parse_uri

            if parse_uri(self.url).get("database") == self.db_name:
                return redact(self.url)
            parsed = urlparse(self.url)
            if parsed.path in ("", "/") and not parsed.query:
                return f"{redact(self.url).rstrip('/')}/{self.db_name}"
        elif re.fullmatch(r"[^:/@\s]+:\d+", self.url):
            return f"{self.url}:{self.db_name}"
        return f"<{redact(self.url)} with database {self.db_name}>"

    def _unavailable(self, exc: BaseException) -> str:
        return f"{self} does not answer within {self.timeout_s:g} s: {_short(exc)}"

    def ping(self) -> None:
        """Raise ``MongoUnavailable`` unless the server answers within ``timeout_s``."""
        from pymongo.errors import PyMongoError

        try:
            self._client.admin.command("ping")
        except PyMongoError as exc:
            raise MongoUnavailable(self._unavailable(exc)) from None

    # -- losing the server ------------------------------------------------------------------------

    def _lose(self, what: str, exc: BaseException) -> None:
        if self.lost is not None:
            return
        self.lost = f"{what}: {_short(exc)}"
        if self.file_store is None:
            self.failures.append(f"{self}: lost during {self.lost}; nothing else records this run")
            logger.error("%s lost during %s", self, self.lost)
            return
        logger.warning(
            "%s lost during %s. The run goes on; its full record is in %s. MongoDB gets no more of it: "
            "afterwards run  python -m genlab.analysis.runs sync %s %s", self, self.lost, self.file_store,
            self.file_store.basedir, self.sync_target())

    def _guard(self, what: str, call, *args, **kwargs):
        from pymongo.errors import ConnectionFailure

        if self.lost is not None:
            self.missed.append(what)
            return None
        try:
            return call(*args, **kwargs)
        except ConnectionFailure as exc:
            self.missed.append(what)
            self._lose(what, exc)
        except Exception as exc:
            self.failures.append(f"{self}: {what}: {_short(exc)}")
            raise
        return None

    # -- events -----------------------------------------------------------------------------------

    def queued_event(self, ex_info, command, host_info, queue_time, config, meta_info, _id):
        return super().queued_event(ex_info, command, host_info, queue_time, strip_docstrings(config), meta_info, _id)

    def started_event(self, ex_info, command, host_info, start_time, config, meta_info, _id):
        from pymongo.errors import ConnectionFailure

        try:
            return super().started_event(ex_info, command, host_info, start_time, strip_docstrings(config),
                                         meta_info, None)  # numbers runs itself, whoever came first
        except ConnectionFailure as exc:  # gone since the ping
            if self.file_store is None:
                raise MongoUnavailable(self._unavailable(exc)) from None
            self.missed.append("the run's start")
            self._lose("the run's start", exc)
            return None

    def record_file_store(self, directory: str, run_id: Any) -> None:
        """Add the file store's run folder to the run document (``file_store: {dir, id}``)."""
        if self.run_entry is None or self.lost is not None:
            return
        self.run_entry["file_store"] = {"dir": str(Path(directory).resolve()), "id": run_id}
        self.save()

    def log_metrics(self, metrics_by_name, info):
        self._guard("logging metrics", super().log_metrics, metrics_by_name, info)

    def resource_event(self, filename):
        self._guard(f"storing resource {filename}", super().resource_event, filename)

    def artifact_event(self, name, filename, metadata=None, content_type=None):
        content_type = content_type or artifact_content_type(name)
        self._guard(f"storing artifact {name!r}", super().artifact_event, name, filename, metadata=metadata,
                    content_type=content_type)

    def save(self):
        import pymongo.errors

        if self.lost is not None:
            return
        try:
            self.runs.update_one({"_id": self.run_entry["_id"]}, {"$set": self.run_entry})
        except pymongo.errors.ConnectionFailure as exc:
            self._lose("saving the run", exc)
        except pymongo.errors.InvalidDocument as exc:
            raise ObserverError("Run contained an unserializable entry. (most likely in the info)") from exc

    def final_save(self, attempts):
        import pymongo.errors

        if self.lost is None and self.run_entry.get("_id") is not None:
            tries = max(1, min(attempts, 3))
            for attempt in range(tries):
                try:
                    self.runs.update_one({"_id": self.run_entry["_id"]}, {"$set": self.run_entry}, upsert=True)
                    return
                except (pymongo.errors.ServerSelectionTimeoutError, pymongo.errors.NetworkTimeout) as exc:
                    self._lose("the final save", exc)  # it waited the whole timeout already
                    break
                except pymongo.errors.ConnectionFailure as exc:  # a dropped connection: try again
                    if attempt == tries - 1:
                        self._lose("the final save", exc)
                    else:
                        time.sleep(0.5)
                except pymongo.errors.InvalidDocument as exc:
                    if attempt == tries - 1:
                        self.failures.append(f"{self}: the final save: {_short(exc)}")
                    self.run_entry = force_bson_encodeable(self.run_entry)
                    print("Warning: some entries of the run were not BSON-serializable; they were altered so that "
                          "they can be stored (most likely in the info or the result)", file=sys.stderr)
        self._save_failure()

    def _save_failure(self) -> None:
        """The run entry MongoDB did not get, pickled as Sacred's MongoObserver does."""
        if self.failure_dir is None:
            self.failures.append(f"{self}: the run's record was not saved and there is no failure_dir")
            return
        try:
            os.makedirs(self.failure_dir, exist_ok=True)
            with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False, dir=self.failure_dir,
                                             prefix=f"sacred_mongo_fail_{self.run_entry.get('_id')}_") as f:
                pickle.dump(self.run_entry, f)
        except Exception as exc:
            self.failures.append(f"{self}: could not pickle the run entry into {self.failure_dir}: {_short(exc)}")
            return
        self.failure_file = f.name
        logger.warning("%s did not get all of this run (%s); its last entry is in %s", self, self.lost, f.name)


# --- choosing the observers --------------------------------------------------------------------


def _take_option(argv: list[str], short: str, long: str) -> tuple[list[str], list[str]]:
    """(values of ``short``/``long`` in ``argv``, ``argv`` without them): ``-m X``, ``-mX``,
    ``--mongo_db X``, ``--mongo_db=X``."""
    values, rest, i = [], [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in (short, long):
            if i + 1 >= len(argv):
                raise ValueError(f"{arg} needs a value")
            values.append(argv[i + 1])
            i += 2
            continue
        if arg.startswith(long + "="):
            values.append(arg[len(long) + 1:])
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            values.append(arg[len(short):].removeprefix("="))
        else:
            rest.append(arg)
        i += 1
    if len(values) > 1:
        raise ValueError(f"{short}/{long} given {len(values)} times")
    return values, rest


def mongo_options(spec: str) -> dict[str, Any]:
    """``-m``'s value -> GenlabMongoObserver arguments: a ``mongodb://host:port/db`` URL (db
    defaults to ``genlab``) or Sacred's ``[host:port:]db[.collection[:id]][!priority]``."""
    if spec.startswith(("mongodb://", "mongodb+srv://")):
        return {"url": spec, "db_name": urlparse(spec).path.strip("/") or "genlab"}
    match = re.match(get_pattern(), spec)
    if match is None:
        raise ValueError(f"-m {spec!r}: expected HOST:PORT:DB (Sacred's form) or mongodb://host:port/db")
    g = match.groupdict()
    host, port = (g["host1"], g["port1"]) if g["host1"] else (g["host2"], g["port2"])
    options: dict[str, Any] = {"url": f"{host}:{port}" if host else "localhost:27017",
                               "db_name": g["db_name"] or "sacred"}
    if g["collection"]:
        options["collection"] = g["collection"]
    if g["overwrite"]:
        options["overwrite"] = g["overwrite"]
    if g["priority"] is not None:
        options["priority"] = int(g["priority"])
    return options


def mongo_from_env(env: dict[str, str] | None = None, **kwargs) -> GenlabMongoObserver | None:
    """A Mongo observer for ``GENLAB_MONGO=mongodb://host:port/db`` (db defaults to ``genlab``), not pinged."""
    url = (env if env is not None else os.environ).get("GENLAB_MONGO")
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("mongodb", "mongodb+srv"):
        raise ValueError(f"GENLAB_MONGO={url!r} is not a mongodb://host:port/db URL")
    return GenlabMongoObserver(url=url, db_name=parsed.path.strip("/") or "genlab", **kwargs)


def _command(ex: Experiment, argv: list[str]):
    words = argv[: argv.index("with")] if "with" in argv else argv
    for word in words:
        if word in ex.commands:
            return ex.commands[word]
    return None


def add_default_observers(ex: Experiment, argv: list[str]) -> list[str]:
    """Add the observers the command line ``argv`` (without the program name) chooses; returns
    ``argv`` without ``-m``/``-F`` and their values (genlab's observers replace Sacred's).

    None on the processes of a ``torchrun`` launch other than rank 0 (``RANK``), which alone
    records the run, and none with ``-u``. A Mongo observer is pinged here: ``MongoUnavailable``
    when it does not answer (not for commands that record nothing, such as ``print_config``).
    """
    mongo_specs, argv = _take_option(list(argv), *_MONGO_FLAGS)
    file_dirs, argv = _take_option(argv, *_FILE_FLAGS)
    if _flags(argv) & _UNOBSERVED_FLAGS or os.environ.get("RANK", "0") != "0":
        return argv
    command = _command(ex, argv)
    records = not getattr(command, "unobserved", False)
    store = GenlabFileStorageObserver(file_dirs[0] if file_dirs else str(sims_dir(ex.path)))
    ex.observers.append(store)
    if not records:
        return argv
    failure_dir = os.path.join(store.basedir, MONGO_FAILURES_DIR)
    if mongo_specs:
        mongo = GenlabMongoObserver(**mongo_options(mongo_specs[0]), failure_dir=failure_dir)
    else:
        mongo = mongo_from_env(failure_dir=failure_dir)
    if mongo is not None:
        mongo.ping()
        mongo.file_store, store.mongo = store, mongo
        ex.observers.append(mongo)
    return argv


# --- observer failures --------------------------------------------------------------------------


def observer_failures(run) -> list[str]:
    """What genlab's observers of ``run`` failed to store (empty for other runs and observers)."""
    return [f for observer in getattr(run, "observers", None) or [] for f in getattr(observer, "failures", [])]


def check_observers(run) -> None:
    """Raise ``ObserverFailure`` if an observer of ``run`` failed to store something."""
    failures = observer_failures(run)
    if failures:
        raise ObserverFailure("the run could not be recorded: " + "; ".join(failures))


def add_artifact(run, path: str, name: str | None = None, *, content_type: str | None = None,
                 metadata: dict | None = None) -> None:
    """``run.add_artifact`` with genlab's content type for ``name``, then ``check_observers``: an
    artifact an observer could not store (a full disk) fails the run instead of a warning."""
    name = name or os.path.basename(path)
    if not isinstance(run, Run):  # the stand-ins of spawned processes (ingredients.experiment)
        run.add_artifact(path, name=name)
        return
    run.add_artifact(path, name=name, metadata=metadata, content_type=content_type or artifact_content_type(name))
    check_observers(run)


class _CheckObserversAfterMain:
    """Post-run hook: an observer failure during the run (a heartbeat's metrics.json on a full
    disk) fails the run before it is recorded COMPLETED. A plain callable, not one of Sacred's
    captured functions: each of those draws a seed from the run's seed in order of registration,
    so adding one before ``main`` would change ``main``'s ``_seed`` and with it every run's batches."""

    def __init__(self, ex: Experiment):
        self.ex = ex

    def __call__(self) -> None:
        if self.ex.current_run is not None:
            check_observers(self.ex.current_run)


# --- every experiment ------------------------------------------------------------------------------


class _NamedConfigDocstrings(logging.Filter):
    """Sacred warns 'Added new config entry: "<ingredient>.__doc__"' for every documented named
    config of an ingredient; the docstrings are intended (design rule 6), the warning is noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.getMessage().startswith("Added new config entry") and record.getMessage().endswith('__doc__"'))


def _version(distribution: str, module: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return getattr(__import__(module), "__version__", "unknown")


def prepare(ex: Experiment) -> Experiment:
    """Settings every genlab experiment shares: filtered captured output, the genlab logger, torch and
    pytorch-ignite as recorded dependencies, the observer check after ``main``."""
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
    ex.add_package_dependency("torch", _version("torch", "torch"))
    ex.add_package_dependency("pytorch-ignite", _version("pytorch-ignite", "ignite"))
    if not any(isinstance(h, _CheckObserversAfterMain) for h in ex.post_run_hooks):
        ex.post_run_hooks.append(_CheckObserversAfterMain(ex))
    return ex


def run_cli(ex: Experiment, argv: list[str] | None = None):
    """The command line of a genlab experiment, with its default observers.

    Exits with status 2 and one line on bad input (``_run_commandline``) or when MongoDB does not
    answer at start (or ``-m`` / ``GENLAB_MONGO`` is malformed), with status 1 when an observer failed to store the run's final
    record; warns when MongoDB was lost during the run (the file store has the run; sync later).
    Ctrl-C or SIGTERM at any point records the run INTERRUPTED and exits with 130 / 143 and one line
    naming what ``training.resume`` takes (``ingredients.signals``).
    """
    argv = list(sys.argv if argv is None else argv)
    keep_freed_memory()
    try:
        rest = add_default_observers(ex, argv[1:])
    except (MongoUnavailable, ValueError) as err:
        print(f"{os.path.basename(str(argv[0]))}: error: {err}", file=sys.stderr)
        sys.exit(2)
    with terminate_as_interrupt():  # SIGTERM at any point: recorded INTERRUPTED, as Ctrl-C
        try:
            run = _run_commandline(ex, [argv[0], *rest])
        except KeyboardInterrupt:
            interrupted_exit(_resume_target(getattr(ex, "current_run", None)))
    for observer in getattr(run, "observers", None) or []:
        if isinstance(observer, GenlabMongoObserver) and observer.lost and not observer.failures:
            print(f"warning: {observer} was lost during the run ({observer.lost}); the run is complete in "
                  f"{observer.file_store}. Upload what MongoDB missed with:  python -m genlab.analysis.runs sync "
                  f"{observer.file_store.basedir} {observer.sync_target()}", file=sys.stderr)
    failures = observer_failures(run)
    if failures:
        print("error: the run was not recorded in full:", *failures, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    return run


# what a refused command raises while Sacred builds its config (config hooks, named configs, unknown
# keys): bad input, since nothing has run yet
_REFUSED_AT_START = (GenlabError, SacredError, ValueError, KeyError, FileNotFoundError)


def _run_commandline(ex: Experiment, argv: list[str]) -> Run:
    """Sacred's ``Experiment.run_commandline``, with genlab's error reporting.

    Bad input (an unknown name, a missing or corrupt file, an impossible split, a refused resume;
    :class:`genlab.errors.GenlabError`, and whatever Sacred's config building refuses) is one line
    ``<program>: error: <message>`` on stderr and exit status 2, without a traceback. The checks that
    need no compute run while Sacred builds the config, before the observers start, so such a
    command records nothing; a ``GenlabError`` met later (a corrupt file found while reading it)
    leaves the run recorded FAILED. Any other exception is a bug: Sacred's filtered traceback and
    status 1 (``--debug`` re-raises it as Sacred does).
    """
    short_usage, usage, internal_usage = ex.get_usage()
    args = docopt(internal_usage, [str(a) for a in argv[1:]], default_help=False)
    command = args.get("COMMAND") or ex.default_command
    config_updates, named_configs = get_config_updates(args["UPDATE"])
    problem = ex._check_command(command)
    if not args["help"] and problem:
        _refuse(argv, problem)
    if ex._handle_help(args, usage):
        sys.exit()
    debug = bool(args.get("--debug"))
    try:
        run = ex._create_run(command, config_updates, named_configs, info={}, meta_info={}, options=args)
    except _REFUSED_AT_START as err:
        if debug:
            raise
        _refuse(argv, err)
    try:
        run()
    except GenlabError as err:
        if debug or run.debug:
            raise
        _refuse(argv, err)
    except Exception:
        if debug or run.debug:
            raise
        print_filtered_stacktrace()
        sys.exit(1)
    return run


def _refuse(argv: list[str], error: BaseException | str) -> None:
    message = str(error)
    if isinstance(error, KeyError) and not isinstance(error, GenlabError) and error.args:
        message = str(error.args[0])  # not KeyError's quoted repr
    if isinstance(error, ConfigAddedError):
        message = _unknown_keys(error)
    elif isinstance(error, SacredError):  # its own class name says what kind of mistake it is
        message = f"{type(error).__name__}: {message}"
    program = os.path.basename(str(argv[0])) if argv else "genlab"
    print(f"{program}: error: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(2)


def _unknown_keys(error: ConfigAddedError) -> str:
    """Sacred's "added new config entry" as what it is: a misspelt key, with the nearest real ones."""
    from genlab.analysis.runs import flatten_config

    relative = [k for k in flatten_config(error.__config__) if "__doc__" not in k]  # of the ingredient the key is in
    parts = []
    for key in error.__conflicting_configs__:
        steps = key.split(".")
        known = {f"{'.'.join(steps[:i])}.{k}" if i else k for i in range(len(steps)) for k in relative}
        near = _near(steps, [k.split(".") for k in sorted(known - set(error.__conflicting_configs__))])
        parts.append(key + (f" (did you mean {' or '.join(near)}?)" if near else ""))
    return f"unknown config key {'; '.join(parts)}; print_config lists every key"


def _near(steps: list[str], known: list[list[str]]) -> list[str]:
    """Keys like ``steps`` with its first unknown component replaced by a similar known one."""
    for depth in range(len(steps) - 1, -1, -1):
        children = {k[depth] for k in known if len(k) > depth and k[:depth] == steps[:depth]}
        if children:
            close = difflib.get_close_matches(steps[depth], sorted(children), n=2, cutoff=0.7)
            return [".".join([*steps[:depth], c, *steps[depth + 1 :]]) for c in close]
    return []


def _resume_target(run) -> str | None:
    """What ``training.resume`` should name to continue an interrupted run (None: nothing to resume)."""
    if run is None:
        return None
    directory = (getattr(run, "info", None) or {}).get("checkpoint_dir")
    return directory if directory and os.path.isdir(directory) else None


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
    """Save ``obj`` with torch.save and record it as the artifact ``name`` (file store and/or GridFS,
    content type ``application/octet-stream``); raises ``ObserverFailure`` if an observer could not
    store it."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        torch.save(obj, path)
        add_artifact(run, path, name=name)


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
