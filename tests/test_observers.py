"""How genlab records runs (scripts/ingredients/observers.py) when things go wrong: both observers
together, MongoDB down at start or lost mid-run (and genlab.analysis.sync afterwards), a full disk,
and what the records hold (no config docstrings, torch/ignite versions, artifact content types)."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gridfs
import pytest
import sacred.observers.file_storage
from pymongo import MongoClient
from sacred import Experiment, Ingredient

from genlab.analysis.runs import load_runs
from genlab.analysis.sync import SyncSummary, content_type, mongo_target, sync
from ingredients import observers
from ingredients.observers import (GenlabFileStorageObserver, add_artifact,
                                   add_default_observers, add_torch_artifact, mongo_options, prepare, run_cli)

REPO = Path(__file__).resolve().parents[1]
STEPS = 6


def make_experiment(name: str = "obs", kill=None) -> Experiment:
    """A small genlab-like experiment: an ingredient with a documented config scope and named config,
    metrics, info, ``model.pt`` (torch.save) and a PNG artifact. ``kill()``, if given, is called
    after the third step (with a heartbeat delivered before it)."""
    part = Ingredient("part")

    @part.config
    def part_defaults():
        """The part's defaults (a config scope docstring)."""
        size = 3

    @part.named_config
    def big():
        """A bigger part (a named config docstring)."""
        size = 5

    ex = prepare(Experiment(name, ingredients=[part], save_git_info=False))
    ex.add_config(steps=STEPS, pause=0.0)

    @ex.main
    def main(_run, steps, pause, part, _config):
        assert "__doc__" in _config["part"]  # Sacred's own config keeps it (print_config shows it)
        for step in range(steps):
            _run.log_scalar("train.loss", 1.0 / (step + 1), step)
            _run.info["step"] = step
            if step == 2 and kill is not None:
                time.sleep(0.6)  # a heartbeat (-b 0.2) reaches the observers
                _run.info["killed_at"] = time.monotonic()
                kill()
            time.sleep(pause)
        add_torch_artifact(_run, {"weights": list(range(part["size"]))}, "model.pt")
        with tempfile.TemporaryDirectory() as tmp:
            png = Path(tmp) / "figure.png"
            png.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 64)
            add_artifact(_run, str(png), "figure.png")
        return {"final": 1.0 / steps}

    return ex


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.setenv("GENLAB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("GENLAB_MONGO", raising=False)
    monkeypatch.delenv("GENLAB_MONGO_TIMEOUT", raising=False)
    monkeypatch.delenv("RANK", raising=False)
    return tmp_path / "data"


def cli(ex, *args):
    return run_cli(ex, ["prog", "-l", "WARNING", *args])


def store_runs(store: Path) -> dict[str, dict]:
    return {p.name: json.loads((p / "run.json").read_text()) for p in store.iterdir() if (p / "run.json").is_file()}


def fresh_db(mongo_url: str, name: str):
    client = MongoClient(mongo_url)
    client.drop_database(name)  # a reused $GENLAB_TEST_MONGO server may hold old runs
    return client, client[name]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def no_doc_keys(value) -> bool:
    if isinstance(value, dict):
        return "__doc__" not in value and all(no_doc_keys(v) for v in value.values())
    return True


# --- the command line -------------------------------------------------------------------------------


def test_the_command_line_chooses_genlabs_observers(data, monkeypatch):
    def chosen(argv):
        ex = Experiment("x", save_git_info=False)
        rest = add_default_observers(ex, argv)
        return [type(o) for o in ex.observers], ex, rest

    kinds, ex, rest = chosen(["with", "seed=1"])
    assert kinds == [GenlabFileStorageObserver] and rest == ["with", "seed=1"]
    assert ex.observers[0].basedir == str(data / "sims" / "x")
    kinds, ex, rest = chosen(["-F", "elsewhere", "with", "seed=1"])  # genlab's file store there, not Sacred's
    assert kinds == [GenlabFileStorageObserver] and ex.observers[0].basedir == "elsewhere"
    assert rest == ["with", "seed=1"]
    assert chosen(["--file_storage=elsewhere"])[1].observers[0].basedir == "elsewhere"
    assert chosen(["-u"])[0] == []
    monkeypatch.setenv("RANK", "1")  # torchrun's other processes record nothing, whatever the flags
    assert chosen(["-m", "db:1:x", "-F", "d", "with", "a=1"])[0::2] == ([], ["with", "a=1"])
    monkeypatch.delenv("RANK")
    # commands that record nothing do not ping (the server below does not exist)
    kinds, _, rest = chosen(["print_config", "-m", "127.0.0.1:1:x"])
    assert kinds == [GenlabFileStorageObserver] and rest == ["print_config"]
    monkeypatch.setenv("GENLAB_MONGO", "db.example:27018")
    with pytest.raises(ValueError, match="GENLAB_MONGO"):
        chosen([])


def test_mongo_flag_forms():
    assert mongo_options("db.example:27018:disent") == {"url": "db.example:27018", "db_name": "disent"}
    assert mongo_options("disent") == {"url": "localhost:27017", "db_name": "disent"}
    assert mongo_options("h:1:d.runs2!5") == {"url": "h:1", "db_name": "d", "collection": "runs2", "priority": 5}
    assert mongo_options("mongodb://u:p@h:27017/disent?authSource=admin") == {
        "url": "mongodb://u:p@h:27017/disent?authSource=admin", "db_name": "disent"}
    assert mongo_options("mongodb://h:27017")["db_name"] == "genlab"
    with pytest.raises(ValueError, match="HOST:PORT:DB"):
        mongo_options("not a:spec")
    assert mongo_target("h:27017:disent") == ("mongodb://h:27017", "disent")
    assert mongo_target("mongodb://h:27017/disent") == ("mongodb://h:27017/disent", "disent")
    with pytest.raises(ValueError, match="names no database"):
        mongo_target("mongodb://h:27017")
    assert content_type("model.pt") == content_type("model_last.pt") == "application/octet-stream"
    assert content_type("figure.png") == "image/png" and content_type("table.csv") == "text/csv"


@pytest.mark.parametrize("how", ["flag", "env"])
def test_mongo_down_at_start_fails_at_once_with_one_line(how, data, monkeypatch, capsys):
    port = free_port()  # nothing listens there
    if how == "flag":
        args, named = ["-m", f"127.0.0.1:{port}:t_down"], f"127.0.0.1:{port}"
    else:
        monkeypatch.setenv("GENLAB_MONGO", f"mongodb://127.0.0.1:{port}/t_down")
        args, named = [], f"mongodb://127.0.0.1:{port}/t_down"
    start = time.monotonic()
    with pytest.raises(SystemExit) as exit_:
        cli(make_experiment(), *args)
    took = time.monotonic() - start
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0] and "does not answer within 5 s" in err[0]
    assert took < 15  # was 70 s and a 214-line traceback
    assert not (data / "sims" / "obs").exists() or not store_runs(data / "sims" / "obs")  # nothing ran


# --- a full disk and other observer failures ---------------------------------------------------


def enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(args[-1]) if args else None)


def test_disk_full_while_copying_model_pt_fails_the_run(data, monkeypatch, capsys):
    real = sacred.observers.file_storage.copyfile

    def copyfile(src, dst, *args, **kwargs):
        if str(dst).endswith("model.pt"):
            enospc(src, dst)
        return real(src, dst, *args, **kwargs)

    monkeypatch.setattr(sacred.observers.file_storage, "copyfile", copyfile)
    with pytest.raises(SystemExit) as exit_:  # was: a warning, exit 0, COMPLETED
        cli(make_experiment())
    assert exit_.value.code != 0
    err = capsys.readouterr().err
    run_dir = data / "sims" / "obs" / "1"
    assert "ObserverFailure" in err and "No space left on device" in err
    assert f"could not store artifact 'model.pt'" in err and str(run_dir / "model.pt") in err
    entry = store_runs(data / "sims" / "obs")["1"]
    assert entry["status"] == "FAILED"
    assert "No space left on device" in "".join(entry["fail_trace"])


def test_a_failed_final_record_exits_non_zero(data, monkeypatch, capsys):
    real = GenlabFileStorageObserver.save_json  # the file store's writer (atomic)

    def save_json(self, obj, filename):
        if filename == "run.json" and obj.get("status") == "COMPLETED":
            enospc(os.path.join(self.dir, filename))
        return real(self, obj, filename)

    monkeypatch.setattr(GenlabFileStorageObserver, "save_json", save_json)
    with pytest.raises(SystemExit) as exit_:
        cli(make_experiment())
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert "the run was not recorded in full" in err and "could not write the final record" in err
    assert str(data / "sims" / "obs" / "1" / "run.json") in err and "No space left on device" in err


def test_a_failed_heartbeat_fails_the_run_before_it_completes(data, monkeypatch, capsys):
    def log_metrics(self, metrics_by_name, info):
        enospc(os.path.join(self.dir, "metrics.json"))

    monkeypatch.setattr(sacred.observers.file_storage.FileStorageObserver, "log_metrics", log_metrics)
    ex = make_experiment()
    with pytest.raises(SystemExit) as exit_:
        cli(ex, "-b", "0.1", "with", "pause=0.1")
    assert exit_.value.code != 0
    assert "metrics.json" in capsys.readouterr().err
    assert store_runs(data / "sims" / "obs")["1"]["status"] == "FAILED"


# --- what the records hold ----------------------------------------------------------------------------


def test_records_leave_out_docstrings_and_name_torch_and_ignite(data):
    import ignite
    import torch

    run = cli(make_experiment(), "with", "part.big")
    directory = Path(observers.run_dir(run))
    config = json.loads((directory / "config.json").read_text())
    assert config["part"] == {"size": 5} and no_doc_keys(config)
    assert "__doc__" in run.config["part"]  # only the stored records leave it out
    deps = json.loads((directory / "run.json").read_text())["experiment"]["dependencies"]
    assert f"torch=={torch.__version__.split('+')[0]}" in [d.split("+")[0] for d in deps]
    assert f"pytorch-ignite=={ignite.__version__}" in deps
    assert sorted(json.loads((directory / "run.json").read_text())["artifacts"]) == ["figure.png", "model.pt"]


# --- both observers, MongoDB lost, sync ----------------------------------------------------------------


@pytest.mark.mongo
@pytest.mark.parametrize("how", ["flag", "env"])
def test_both_observers_next_to_a_file_store_that_holds_runs(how, mongo_url, data, monkeypatch):
    db_name = f"t_obs_both_{how}"
    client, db = fresh_db(mongo_url, db_name)
    store = data / "sims" / "obs"
    for _ in range(2):  # the file store already holds runs 1 and 2; MongoDB numbers the next run 1
        cli(make_experiment())
    host_port = mongo_url.removeprefix("mongodb://").rstrip("/")
    if how == "flag":
        args = ["-m", f"{host_port}:{db_name}"]
    else:
        args = []
        monkeypatch.setenv("GENLAB_MONGO", f"mongodb://{host_port}/{db_name}")
    run = cli(make_experiment(), *args, "with", "part.big")  # was: FileExistsError: .../sims/obs/1
    try:
        assert run._id == 1 and observers.run_dir(run) == str(store / "3")
        entry = store_runs(store)["3"]
        assert entry["status"] == "COMPLETED" and entry["mongo_id"] == 1 and entry["mongo_db"] == db_name
        doc = db.runs.find_one({"_id": 1})
        assert doc["status"] == "COMPLETED" and doc["file_store"] == {"dir": str((store / "3").resolve()), "id": "3"}
        assert doc["config"]["part"] == {"size": 5} and no_doc_keys(doc["config"])
        assert {"torch", "pytorch-ignite"} <= {d.split("==")[0] for d in doc["experiment"]["dependencies"]}
        types = {a["name"]: db["fs.files"].find_one({"_id": a["file_id"]})["contentType"] for a in doc["artifacts"]}
        assert types == {"model.pt": "application/octet-stream", "figure.png": "image/png"}
        assert not (store / "_mongo_failures").exists()
        assert sync(store, f"{mongo_url.rstrip('/')}/{db_name}").created == [("1", 2), ("2", 3)]  # the file-only runs
        again = sync(store, f"{mongo_url.rstrip('/')}/{db_name}")
        assert not again.changed and len(again.unchanged) == 3  # nothing to add to the run both recorded
    finally:
        client.close()


class SecondServer:
    """A SecantusDB of the test's own (bin/mongo-up on a free port, its own pid file), to be stopped
    and started again."""

    def __init__(self, work: Path):
        self.env = {**os.environ, "MONGO_PORT": str(free_port()), "MONGO_DATA": ":memory:",
                    "MONGO_PIDFILE": str(work / "second.pid"), "MONGO_LOG": str(work / "second.log")}
        self.url = f"mongodb://127.0.0.1:{self.env['MONGO_PORT']}"

    def up(self) -> None:
        proc = subprocess.run([str(REPO / "bin" / "mongo-up")], env=self.env, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]

    def down(self) -> None:
        subprocess.run([str(REPO / "bin" / "mongo-down")], env=self.env, check=False, timeout=60)


@pytest.mark.mongo
def test_mongo_lost_mid_run_then_sync_uploads_what_it_missed(mongo_url, data, tmp_path, capsys):
    server = SecondServer(tmp_path)
    server.up()
    try:
        url = f"{server.url}/t_obs_lost"
        ex = make_experiment(kill=server.down)
        start = time.monotonic()
        run = cli(ex, "-m", f"{server.url.removeprefix('mongodb://')}:t_obs_lost", "-b", "0.2", "with", "pause=0.3")
        after_kill = time.monotonic() - run.info["killed_at"]
        took = time.monotonic() - start
        # was: ~5 minutes in Sacred's retries; the steps after the kill take 3 x 0.3 s
        assert after_kill < 20, (after_kill, took)
        store = data / "sims" / "obs"
        entry = store_runs(store)["1"]
        assert entry["status"] == "COMPLETED" and entry["mongo_id"] == 1
        assert sorted(entry["artifacts"]) == ["figure.png", "model.pt"]
        assert len(json.loads((store / "1" / "metrics.json").read_text())["train.loss"]["steps"]) == STEPS
        pickles = list((store / "_mongo_failures").glob("*.pickle"))
        assert len(pickles) == 1
        assert len(load_runs(store)) == 1  # the failures folder is no run
        err = capsys.readouterr().err
        assert f"python -m genlab.analysis.runs sync {store} {server.url.removeprefix('mongodb://')}:t_obs_lost" in err

        server.up()  # a new, empty server: sync creates everything
        summary = sync(store, url)
        assert summary.created == [("1", 1)] and not summary.updated
        with MongoClient(server.url) as client:
            db = client["t_obs_lost"]
            doc = db.runs.find_one({"_id": 1})
            assert doc["status"] == "COMPLETED" and doc["result"] == {"final": 1.0 / STEPS}
            assert doc["info"]["step"] == STEPS - 1 and doc["config"]["pause"] == 0.3
            assert doc["file_store"]["dir"] == str((store / "1").resolve())
            fs = gridfs.GridFS(db)
            arts = {a["name"]: fs.get(a["file_id"]) for a in doc["artifacts"]}
            assert arts["model.pt"].read() == (store / "1" / "model.pt").read_bytes()
            assert db["fs.files"].find_one({"_id": arts["figure.png"]._id})["contentType"] == "image/png"
            metric = db.metrics.find_one({"run_id": 1, "name": "train.loss"})
            assert metric["steps"] == list(range(STEPS)) and len(metric["timestamps"]) == STEPS
            assert doc["info"]["metrics"] == [{"name": "train.loss", "id": str(metric["_id"])}]
            assert doc["experiment"]["sources"] and fs.get(doc["experiment"]["sources"][0][1]).read()
        table = load_runs(url)
        assert table["status"].tolist() == ["COMPLETED"] and table["train.loss"].iloc[0] == 1.0 / STEPS

        second = subprocess.run([sys.executable, "-m", "genlab.analysis.runs", "sync", str(store), url],
                                capture_output=True, text=True, timeout=120)
        assert second.returncode == 0, second.stderr
        assert "0 created, 0 updated, 1 unchanged" in second.stdout  # a second sync is a no-op
    finally:
        server.down()


@pytest.mark.mongo
def test_sync_completes_an_incomplete_document_once(mongo_url, data):
    db_name = "t_obs_sync"
    client, db = fresh_db(mongo_url, db_name)
    target = f"{mongo_url.rstrip('/')}/{db_name}"
    store = data / "sims" / "obs"
    host_port = mongo_url.removeprefix("mongodb://").rstrip("/")
    try:
        cli(make_experiment(), "-m", f"{host_port}:{db_name}")
        cli(make_experiment(), "-m", f"{host_port}:{db_name}", "with", "part.big")
        complete = db.runs.find_one({"_id": 2})
        metric_2 = db.metrics.find_one({"run_id": 2})
        # as MongoDB lost mid-run leaves a run: RUNNING, no result, an artifact and metric points missing
        db.runs.update_one({"_id": 2}, {"$set": {"status": "RUNNING", "artifacts": complete["artifacts"][:1],
                                                 "info": {"step": 2, "metrics": complete["info"]["metrics"]},
                                                 "captured_out": ""},
                                        "$unset": {"result": "", "stop_time": ""}})
        first_three = {k: metric_2[k][:3] for k in ("steps", "values", "timestamps")}
        db.metrics.update_one({"_id": metric_2["_id"]}, {"$set": first_three})
        db.runs.delete_one({"_id": 1})  # and a run MongoDB never got
        db.metrics.delete_many({"run_id": 1})

        summary = sync(store, target)
        assert isinstance(summary, SyncSummary)
        assert summary.created == [("1", 1)]  # its recorded id, free again
        assert store_runs(store)["1"]["mongo_id"] == 1
        [(name, run_id, what)] = summary.updated
        assert (name, run_id) == ("2", 2)
        assert what[0] == "status RUNNING -> COMPLETED" and "result" in what and "artifact figure.png" in what
        assert "metric train.loss (3 -> 6 points)" in what
        doc = db.runs.find_one({"_id": 2})
        for key in ("status", "result", "config", "captured_out", "host", "command", "meta"):
            assert doc[key] == complete[key], key
        assert doc["info"] == complete["info"] and abs(doc["stop_time"] - complete["stop_time"]).total_seconds() < 0.01
        assert [a["name"] for a in doc["artifacts"]] == ["model.pt", "figure.png"]
        assert db.metrics.find_one({"_id": metric_2["_id"]})["steps"] == metric_2["steps"]
        assert db.metrics.count_documents({"run_id": 2}) == 1

        again = sync(store, target)
        assert not again.changed and sorted(again.unchanged) == [("1", 1), ("2", 2)]
        files, mongo = load_runs(store), load_runs(target)
        for column in ("status", "part.size", "train.loss"):
            assert files[column].tolist() == mongo[column].tolist(), column

        db.runs.delete_one({"_id": 1})  # a run whose mapping points at another run's document
        db.runs.update_one({"_id": 2}, {"$set": {"_moved": True}})
        store_entry = store_runs(store)["1"]
        (store / "1" / "run.json").write_text(json.dumps({**store_entry, "mongo_id": 2}, sort_keys=True, indent=2))
        moved = sync(store, target)
        assert moved.created == [("1", 3)] and store_runs(store)["1"]["mongo_id"] == 3  # the next free id
        assert db.runs.find_one({"_id": 2})["config"]["part"]["size"] == 5  # run 2's document untouched
    finally:
        client.close()
