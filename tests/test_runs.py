"""genlab.analysis.runs: the same table, metrics and artifacts from a file store and from MongoDB."""

from __future__ import annotations

import json
import math
import warnings
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pymongo import MongoClient
from sacred import Experiment
from sacred.observers import FileStorageObserver, MongoObserver

from genlab.analysis import runs as runs_module
from genlab.analysis.runs import PROBABLY_DEAD, STANDARD_COLUMNS, Run, UnreadableRunWarning, load_model, load_runs
from genlab.models import register_model

pytestmark = pytest.mark.mongo

DB = "t_analysis_runs"
STEPS = [0, 10, 20, 30]

# (dataset.condition, model.options.layers, training.loss.beta); beta < 0 makes the run fail.
SETTINGS = [
    ("recomb2range", [4, 4], 1.0),
    ("recomb2range", [8], 4.0),
    ("extrapolation", [4, 4], 4.0),
    ("extrapolation", [8], -1.0),
]


def train_loss(beta: float, step: int) -> float:
    return beta / (step + 1)


def notes(run_number: int) -> bytes:
    return f"run {run_number}\n".encode() * 100


def make_experiment(workdir):
    ex = Experiment("tiny_runs", save_git_info=False)
    ex.add_config(
        dataset={"name": "toy", "condition": "recomb2range"},
        model={"kind": "tiny_linear", "options": {"latent_size": 3, "layers": [4, 4]}},
        training={"loss": {"name": "beta_vae", "params": {"beta": 1.0}}, "steps": STEPS[-1]},
    )

    @ex.main
    def main(_run, model, training, seed):
        beta = training["loss"]["params"]["beta"]
        _run.info["model_inputs"] = {"input_shape": (1, 5)}
        torch.manual_seed(seed)
        net = torch.nn.Linear(5, model["options"]["latent_size"])
        path = workdir / f"model-{seed}.pt"
        torch.save(net.state_dict(), path)
        _run.add_artifact(str(path), name="model.pt")
        for step in STEPS:
            _run.log_scalar("train.loss", train_loss(beta, step), step)
            if beta < 0:
                raise ValueError("negative beta")
        _run.log_scalar("train.dci_disentanglement", 0.5, 10)
        _run.log_scalar("train.dci_disentanglement", beta / 10, 30)
        _run.log_scalar("test.recon_nll", 100.0 - beta, STEPS[-1])
        notes_path = workdir / f"notes-{seed}.txt"
        notes_path.write_bytes(notes(seed))
        _run.add_artifact(str(notes_path), name="notes.txt")
        print("finished", seed)
        return {"beta": beta, "shape": (1, 5)}

    return ex


def record(observer_factory, workdir) -> None:
    ex = make_experiment(workdir)
    for number, (condition, layers, beta) in enumerate(SETTINGS, start=1):
        ex.observers[:] = [observer_factory()]
        updates = {
            "seed": number,
            "dataset.condition": condition,
            "model.options.layers": layers,
            "training.loss.params.beta": beta,
        }
        if beta < 0:
            with pytest.raises(ValueError, match="negative beta"):
                ex.run(config_updates=updates, options={"--loglevel": "ERROR", "--capture": "sys"})
        else:
            ex.run(config_updates=updates, options={"--loglevel": "ERROR", "--capture": "sys"})


@pytest.fixture(scope="module")
def stores(tmp_path_factory, mongo_url):
    """The same four runs (one FAILED) recorded once into a file store and once into MongoDB."""
    work = tmp_path_factory.mktemp("runs")
    (work / "artifacts").mkdir()
    record(lambda: FileStorageObserver(str(work / "fs")), work / "artifacts")
    with MongoClient(mongo_url) as client:
        client.drop_database(DB)
    record(lambda: MongoObserver(url=mongo_url, db_name=DB, failure_dir=str(work / "mongo-failed")), work / "artifacts")
    assert not (work / "mongo-failed").exists()  # nothing fell back to pickles
    return {"file": work / "fs", "mongo": f"{mongo_url.rstrip('/')}/{DB}", "cache": work / "cache"}


@pytest.fixture(params=["file", "mongo"])
def source(request, stores):
    return stores[request.param]


def load(source, stores, **kwargs):
    return load_runs(source, cache_dir=stores["cache"], **kwargs)



def test_both_backends_give_the_same_table(stores):
    tables = {kind: load(stores[kind], stores) for kind in ("file", "mongo")}
    file_table, mongo_table = tables["file"], tables["mongo"]
    # Times come from two different recordings; everything else must be identical.
    ignore = ["start_time", "stop_time", "heartbeat", "run"]
    pd.testing.assert_frame_equal(file_table.drop(columns=ignore), mongo_table.drop(columns=ignore))

    t = file_table
    assert list(t.columns[: len(STANDARD_COLUMNS)]) == STANDARD_COLUMNS and t.columns[-1] == "run"
    assert STANDARD_COLUMNS[3:6] == ["start_time", "stop_time", "heartbeat"]
    assert t["links"].tolist() == [[1], [2], [3], [4]]  # no run resumed another
    assert t["run_id"].tolist() == [1, 2, 3, 4]
    assert t["experiment"].tolist() == ["tiny_runs"] * 4
    assert t["status"].tolist() == ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED"]
    assert t["dataset.condition"].tolist() == [s[0] for s in SETTINGS]
    assert t["model.options.layers"].tolist() == [s[1] for s in SETTINGS]  # lists stay values
    assert t["training.loss.params.beta"].tolist() == [s[2] for s in SETTINGS]
    assert t["training.loss.name"].tolist() == ["beta_vae"] * 4
    assert t["seed"].tolist() == [1, 2, 3, 4]
    # Final metric = value at the largest step; the failed run stopped after step 0.
    assert t["train.loss"].tolist() == pytest.approx([train_loss(b, 30) for *_, b in SETTINGS[:3]] + [-1.0])
    assert t["train.dci_disentanglement"].tolist()[:3] == pytest.approx([0.1, 0.4, 0.4])
    assert t["test.recon_nll"].tolist()[:3] == pytest.approx([99.0, 96.0, 96.0])
    assert math.isnan(t["test.recon_nll"].iloc[3])
    for table in tables.values():
        assert pd.api.types.is_datetime64_any_dtype(table["start_time"])
        completed = table[table.status == "COMPLETED"]
        assert (completed["stop_time"] >= completed["start_time"]).all()
        assert all(isinstance(run, Run) for run in table["run"])


def ids(table) -> list:
    return table["run_id"].tolist()


def test_where_filters(source, stores):
    assert ids(load(source, stores, where={"dataset.condition": "recomb2range"})) == [1, 2]
    assert ids(load(source, stores, where={"training.loss.params.beta": [1.0, -1.0]})) == [1, 4]
    assert ids(load(source, stores, where={"training.loss.params.beta": lambda b: b > 2})) == [2, 3]
    # A list value means "any of": to select a list-valued entry, wrap it (tuples equal lists).
    assert ids(load(source, stores, where={"model.options.layers": [[4, 4]]})) == [1, 3]
    assert ids(load(source, stores, where={"model.options.layers": [(8,), [4, 4]]})) == [1, 2, 3, 4]
    assert ids(load(source, stores, where={"model.options.layers": [4, 4]})) == []  # 4 is no run's layers
    # A dict compares with the whole subtree; several keys must all hold.
    loss = {"name": "beta_vae", "params": {"beta": 4.0}}
    assert ids(load(source, stores, where={"training.loss": loss, "dataset.condition": "extrapolation"})) == [3]
    assert ids(load(source, stores, where={"training.loss.params.beta": 4})) == [2, 3]  # 4 == 4.0
    assert ids(load(source, stores, status="FAILED")) == [4]
    assert ids(load(source, stores, experiment="tiny_runs", status=["COMPLETED"])) == [1, 2, 3]

    empty = load(source, stores, where={"no.such.key": 1})
    assert empty.empty and list(empty.columns) == [*STANDARD_COLUMNS, "no.such.key", "run"]  # the selection's keys too
    assert list(load(source, stores, experiment="other").columns) == [*STANDARD_COLUMNS, "run"]
    # the README's example: an empty selection gives an empty table, and picking columns does not raise
    picked = empty.filter(["run_id", "status", "no.such.key", "train.recon_nll"])
    assert picked.empty and list(picked.columns) == ["run_id", "status", "no.such.key"]


def test_run_metrics_and_fields(source, stores):
    table = load(source, stores)
    run = table["run"].iloc[1]
    assert (run.run_id, run.experiment, run.status) == (2, "tiny_runs", "COMPLETED")
    assert run.config["model"] == {"kind": "tiny_linear", "options": {"latent_size": 3, "layers": [8]}}
    assert run.config["training"]["loss"] == {"name": "beta_vae", "params": {"beta": 4.0}}
    assert run.info == {"model_inputs": {"input_shape": (1, 5)}}  # Sacred's jsonpickle tuple decoded, no observer bookkeeping
    assert run.result == {"beta": 4.0, "shape": (1, 5)}
    assert run.fail_trace is None
    assert "finished 2" in run.captured_out()
    assert run.metric_names() == ["test.recon_nll", "train.dci_disentanglement", "train.loss"]

    loss = run.metric("train.loss")
    expected = pd.Series([train_loss(4.0, s) for s in STEPS], index=pd.Index(STEPS, name="step"), name="train.loss")
    pd.testing.assert_series_equal(loss, expected)
    assert run.metric("train.dci_disentanglement").to_dict() == {10: 0.5, 30: pytest.approx(0.4)}
    with pytest.raises(KeyError, match="train.loss"):
        run.metric("val.loss")

    failed = table["run"].iloc[3]
    assert failed.status == "FAILED"
    assert "negative beta" in "".join(failed.fail_trace)
    assert failed.metric("train.loss").to_dict() == {0: -1.0}


def test_artifacts_round_trip(source, stores):
    runs = load(source, stores)["run"].tolist()
    assert runs[0].artifact_names() == ["model.pt", "notes.txt"]
    assert runs[3].artifact_names() == ["model.pt"]  # added before the failure
    assert runs[0].artifact_bytes("notes.txt") == notes(1)
    path = runs[1].artifact_path("notes.txt")
    assert path.name == "notes.txt" and path.read_bytes() == notes(2)
    assert runs[1].artifact_path("notes.txt") == path  # cached
    if source == stores["mongo"]:
        assert stores["cache"] in path.parents
    else:
        assert path == stores["file"] / "2" / "notes.txt"
    with pytest.raises(KeyError, match="model.pt"):
        runs[0].artifact_bytes("missing.bin")


@register_model("tiny_linear")
def linear_builder(latent_size=3, layers=(4, 4), *, input_shape):
    """A model kind of this test only: what the tiny experiment above saves."""
    return torch.nn.Linear(int(np.prod(input_shape)), latent_size)


def test_load_model(source, stores):
    run = load(source, stores, where={"dataset.condition": "extrapolation"}, status="COMPLETED")["run"].iloc[0]
    model = load_model(run)
    assert not model.training
    torch.manual_seed(3)  # the run's seed: the weights it saved
    reference = torch.nn.Linear(5, 3)
    for name, value in reference.state_dict().items():
        torch.testing.assert_close(model.state_dict()[name], value)


def test_sources_and_errors(stores, mongo_url, tmp_path):
    host_port = mongo_url.removeprefix("mongodb://").rstrip("/")
    assert ids(load(f"{host_port}:{DB}", stores)) == [1, 2, 3, 4]  # Sacred's HOST:PORT:DB form
    assert ids(load(str(stores["file"]), stores)) == [1, 2, 3, 4]  # str as well as Path
    with pytest.raises(FileNotFoundError, match="no run store"):
        load_runs(tmp_path / "nothing-here")
    with pytest.raises(LookupError, match="no database 'no_such_db'"):
        load_runs(f"{mongo_url.rstrip('/')}/no_such_db")
    with pytest.raises(ValueError, match="names no database"):
        load_runs(mongo_url)
    (tmp_path / "empty").mkdir()
    assert list(load_runs(tmp_path / "empty").columns) == [*STANDARD_COLUMNS, "run"]


# --- resume chains, dead runs, unreadable runs (hand-written stores) --------------------------------
#
# The stores below are written the way Sacred's observers write them (FileStorageObserver's run.json,
# config.json, info.json, metrics.json; MongoObserver's documents in tests/test_mongo.py), from one
# description, chain_runs(), so both backends hold the same runs:
#   1 -> 2      fce2d: 1 checkpointed at 20 and was killed at 30 (RUNNING, stale heartbeat); 2 resumed
#               at 20 and completed at 40 (its config differs only in max_iterations)
#   3           RUNNING, beating          4   RUNNING, no heartbeat, started long ago
#   5 -> 6 -> 7 5 interrupted at 10; 6 resumed at 10 (resumed_at not recorded: from the file name),
#               checkpointed at 20, failed at 25; 7 resumed at 20 and completed
#   5 -> 8      a second branch from 5's checkpoint at 10, with another learning rate
#   9           resumed from a checkpoint of another store

CK = "/ckpts"  # checkpoint folders are absolute paths recorded in info; nothing reads them here


def _now_ms() -> datetime:
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)  # MongoDB keeps milliseconds


def fce_config(max_iterations: int) -> dict:
    return {"dataset": {"name": "8gaussians"}, "model": {"kind": "energy_flow", "options": {"flow": "maf"}},
            "training": {"objective": "fce", "max_iterations": max_iterations}, "seed": 3}


def vae_config(max_iterations: int, lr: float = 0.1, seed: int = 5) -> dict:
    return {"training": {"objective": "beta_vae", "max_iterations": max_iterations, "lr": lr}, "seed": seed}


def chain_runs() -> dict[int, dict]:
    """The runs described above: times relative to now (heartbeats decide which runs are dead)."""
    now = _now_ms()
    t0 = now - timedelta(days=2)
    hour = timedelta(hours=1)
    ebm_a, ebm_b = {10: 1.0, 20: 1.0, 30: 0.0}, {25: 0.0, 30: 1.0, 35: 1.0, 40: 1.0}
    return {
        1: dict(experiment="fce2d", config=fce_config(30), status="RUNNING", start=t0, heartbeat=t0 + hour,
                info={"checkpoint_dir": f"{CK}/1", "data_seed": 3},
                metrics={"batch.loss": {10: 1.0, 20: 0.8, 30: 0.7}, "batch.ebm_update": ebm_a, "val.mse_ebm": {20: 0.5}}),
        2: dict(experiment="fce2d", config=fce_config(40), status="COMPLETED", start=t0 + 2 * hour,
                stop=t0 + 3 * hour, heartbeat=t0 + 3 * hour, result=0.1, artifacts={"model.pt": b"weights of run 2"},
                info={"checkpoint_dir": f"{CK}/2", "resumed_from": f"{CK}/1/checkpoint_20.pt", "resumed_at": 20,
                      "iterations": 40, "data_seed": 3},
                metrics={"batch.loss": {25: 0.6, 30: 0.5, 35: 0.4, 40: 0.3}, "batch.ebm_update": ebm_b,
                         "val.mse_ebm": {40: 0.1}}),
        3: dict(experiment="disent", config=vae_config(100, seed=0), status="RUNNING", start=now - timedelta(seconds=30),
                heartbeat=now - timedelta(seconds=1), info={"checkpoint_dir": f"{CK}/3"}, metrics={"batch.loss": {5: 9.0}}),
        4: dict(experiment="disent", config=vae_config(100, seed=1), status="RUNNING", start=t0, heartbeat=None,
                info={}, metrics={}),
        5: dict(experiment="disent", config=vae_config(10), status="INTERRUPTED", start=t0, stop=t0 + hour,
                heartbeat=t0 + hour, info={"checkpoint_dir": f"{CK}/5"}, metrics={"batch.loss": {5: 5.0, 10: 4.0}}),
        6: dict(experiment="disent", config=vae_config(20), status="FAILED", start=t0 + 2 * hour, stop=t0 + 3 * hour,
                heartbeat=t0 + 3 * hour, info={"checkpoint_dir": f"{CK}/6", "resumed_from": f"{CK}/5/checkpoint_10.pt"},
                metrics={"batch.loss": {15: 3.0, 20: 2.0, 25: 1.9}}),
        7: dict(experiment="disent", config=vae_config(30), status="COMPLETED", start=t0 + 4 * hour, stop=t0 + 5 * hour,
                heartbeat=t0 + 5 * hour, result=1.0, artifacts={"model.pt": b"weights of run 7"},
                info={"checkpoint_dir": f"{CK}/7/", "resumed_from": f"{CK}//6/./checkpoint_20.pt", "resumed_at": 20},
                metrics={"batch.loss": {25: 1.5, 30: 1.0}}),
        8: dict(experiment="disent", config=vae_config(30, lr=0.01), status="COMPLETED", start=t0 + 6 * hour,
                stop=t0 + 7 * hour, heartbeat=t0 + 7 * hour,
                info={"checkpoint_dir": f"{CK}/8", "resumed_from": f"{CK}/5/checkpoint_10.pt", "resumed_at": 10},
                metrics={"batch.loss": {15: 2.5, 30: 0.5}}),
        9: dict(experiment="disent", config=vae_config(10, seed=9), status="COMPLETED", start=t0, stop=t0 + hour,
                heartbeat=t0 + hour, info={"checkpoint_dir": f"{CK}/9", "resumed_from": "/elsewhere/ck/checkpoint_7.pt"},
                metrics={"batch.loss": {10: 0.9}}),
    }


def _iso(t):
    return None if t is None else t.isoformat()


def write_file_store(root: Path, runs: dict[int, dict]) -> Path:
    """Run directories as Sacred's FileStorageObserver writes them."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "_sources").mkdir(exist_ok=True)
    for run_id, r in runs.items():
        d = root / str(run_id)
        d.mkdir()
        entry = {
            "artifacts": sorted(r.get("artifacts", {})), "command": "main",
            "experiment": {"base_dir": "/src", "dependencies": [], "mainfile": "x.py", "name": r["experiment"],
                           "repositories": [], "sources": []},
            "heartbeat": _iso(r.get("heartbeat")), "host": {"hostname": "h"}, "meta": {"command": "main"},
            "resources": [], "result": r.get("result"), "start_time": _iso(r["start"]), "status": r["status"],
        }
        if r.get("stop") is not None:
            entry["stop_time"] = _iso(r["stop"])
        (d / "run.json").write_text(json.dumps(entry, sort_keys=True, indent=2))
        (d / "config.json").write_text(json.dumps(r["config"], sort_keys=True, indent=2))
        if r["info"]:
            (d / "info.json").write_text(json.dumps(r["info"], sort_keys=True, indent=2))
        metrics = {name: {"steps": list(points), "values": list(points.values()),
                          "timestamps": [_iso(r["start"])] * len(points)} for name, points in r["metrics"].items()}
        (d / "metrics.json").write_text(json.dumps(metrics, sort_keys=True, indent=2))
        (d / "cout.txt").write_text(f"run {run_id}\n")
        for name, data in r.get("artifacts", {}).items():
            (d / name).write_bytes(data)
    return root


@pytest.fixture
def chain_spec():
    return chain_runs()


@pytest.fixture
def chain_store(tmp_path, chain_spec):
    return write_file_store(tmp_path / "fs", chain_spec)


def series(points: dict) -> pd.Series:
    return pd.Series(list(points.values()), index=pd.Index(list(points), name="step"), dtype=float)


def check_chain_table(table, spec) -> None:
    """The joined table of chain_runs(); the same for both backends."""
    assert list(table.columns[: len(STANDARD_COLUMNS)]) == STANDARD_COLUMNS
    assert ids(table) == [2, 3, 4, 7, 8, 9]
    assert table["links"].tolist() == [[1, 2], [3], [4], [5, 6, 7], [5, 8], [9]]
    assert table["status"].tolist() == ["COMPLETED", "RUNNING", PROBABLY_DEAD, "COMPLETED", "COMPLETED", "COMPLETED"]
    by_id = dict(zip(ids(table), table["run"]))
    run = by_id[2]
    assert [link.run_id for link in run.links] == [1, 2] and run.run_id == 2
    assert run.links[0].status == PROBABLY_DEAD and run.links[0].recorded_status == "RUNNING"
    assert run.config == spec[2]["config"] and run.info["iterations"] == 40 and run.result == 0.1
    # metrics joined by step: 1's points up to its checkpoint at 20, then 2's; 1's step 30 is dropped
    pd.testing.assert_series_equal(run.metric("batch.loss"), series({10: 1.0, 20: 0.8, 25: 0.6, 30: 0.5, 35: 0.4, 40: 0.3}),
                                   check_names=False)
    assert run.metric("batch.ebm_update").mean() == pytest.approx(5 / 6)  # not 0.75 (run 2 alone), not 5/7 (doubled)
    assert run.metric("val.mse_ebm").to_dict() == {20: 0.5, 40: 0.1}
    assert run.final_metrics() == {"batch.loss": 0.3, "batch.ebm_update": 1.0, "val.mse_ebm": 0.1}
    assert run.metric_names() == ["batch.ebm_update", "batch.loss", "val.mse_ebm"]
    assert run.artifact_names() == ["model.pt"] and run.artifact_bytes("model.pt") == b"weights of run 2"
    assert run.captured_out() == "run 2\n"  # the last link's
    row = table.iloc[0]
    assert row["start_time"] == pd.Timestamp(spec[1]["start"]) and row["stop_time"] == pd.Timestamp(spec[2]["stop"])
    assert row["heartbeat"] == pd.Timestamp(spec[2]["heartbeat"]) and row["training.max_iterations"] == 40
    assert row["batch.loss"] == 0.3 and row["val.mse_ebm"] == 0.1
    # three links (6's step 25, after its checkpoint at 20, is dropped; 6 recorded no resumed_at)
    assert by_id[7].metric("batch.loss").to_dict() == {5: 5.0, 10: 4.0, 15: 3.0, 20: 2.0, 25: 1.5, 30: 1.0}
    assert by_id[7].links[1].resumed_at == 10 and by_id[7].links[1].status == "FAILED"
    assert table.set_index("run_id").loc[7, "start_time"] == pd.Timestamp(spec[5]["start"])
    # a branch shares the prefix
    assert by_id[8].metric("batch.loss").to_dict() == {5: 5.0, 10: 4.0, 15: 2.5, 30: 0.5}
    assert by_id[8].links[0] is by_id[7].links[0]
    assert by_id[9].links == [by_id[9]] and by_id[9].resumed_at == 7  # its earlier run is in another store
    # dead runs
    assert by_id[4].status == PROBABLY_DEAD and by_id[4].recorded_status == "RUNNING"
    assert by_id[3].status == by_id[3].recorded_status == "RUNNING"
    assert pd.isna(table.set_index("run_id").loc[4, "heartbeat"])
    assert pd.api.types.is_datetime64_any_dtype(table["heartbeat"])


def check_chain_filters(source, load) -> None:
    """Filters select logical runs by their last link, on both backends."""
    assert ids(load(source, where={"training.max_iterations": 40})) == [2]
    assert load(source, where={"training.max_iterations": 40})["links"].tolist() == [[1, 2]]
    assert ids(load(source, where={"training.max_iterations": 30})) == [7, 8]  # not 1, an earlier link
    assert ids(load(source, where={"training.max_iterations": 10})) == [9]  # not 5
    eight = load(source, where={"training.lr": 0.01})
    assert eight["links"].tolist() == [[5, 8]] and eight["batch.loss"].tolist() == [0.5]
    assert eight["run"].iloc[0].metric("batch.loss").index.tolist() == [5, 10, 15, 30]
    assert ids(load(source, where={"training.lr": [0.1, 0.01], "training.max_iterations": lambda n: n >= 30})) == [3, 4, 7, 8]
    assert ids(load(source, experiment="fce2d")) == [2]
    assert ids(load(source, experiment="fce2d", status="COMPLETED", where={"training.objective": "fce"})) == [2]
    assert ids(load(source, status=PROBABLY_DEAD)) == [4]
    assert ids(load(source, status="RUNNING")) == [3]  # not the dead ones
    assert ids(load(source, status=["RUNNING", PROBABLY_DEAD])) == [3, 4]
    assert ids(load(source, status="FAILED")) == []  # 6 failed, but 7 continued it
    assert ids(load(source, status="RUNNING", dead_after=timedelta(days=30))) == [3, 4]
    assert ids(load(source, status="RUNNING", dead_after=None)) == [3, 4]
    assert ids(load(source, status=PROBABLY_DEAD, dead_after=0.5)) == [3, 4]  # 3 beat 1 s before the store was written

    separate = load(source, resumes="separate")
    assert ids(separate) == list(range(1, 10))
    assert separate["links"].tolist() == [[i] for i in range(1, 10)]
    assert separate["status"].tolist()[:4] == [PROBABLY_DEAD, "COMPLETED", "RUNNING", PROBABLY_DEAD]
    assert separate["run"].iloc[1].metric("batch.ebm_update").mean() == pytest.approx(0.75)
    assert ids(load(source, resumes="separate", status=PROBABLY_DEAD)) == [1, 4]
    assert ids(load(source, resumes="separate", where={"training.max_iterations": 30})) == [1, 7, 8]
    assert ids(load(source, resumes="separate", status="FAILED")) == [6]


def test_resume_chains_join_into_one_run(chain_store, chain_spec):
    check_chain_table(load_runs(chain_store), chain_spec)


def test_filters_select_logical_runs_by_their_last_link(chain_store):
    check_chain_filters(chain_store, load_runs)
    with pytest.raises(ValueError, match="resumes"):
        load_runs(chain_store, resumes="chain")
    with pytest.raises(TypeError, match="dead_after"):
        load_runs(chain_store, dead_after="60s")


def test_dead_after_in_seconds_or_timedelta(tmp_path):
    now = _now_ms()
    spec = {1: dict(experiment="e", config={"a": 1}, status="RUNNING", start=now - timedelta(minutes=10),
                    heartbeat=now - timedelta(seconds=90), info={}, metrics={})}
    store = write_file_store(tmp_path / "fs", spec)
    assert load_runs(store)["status"].tolist() == [PROBABLY_DEAD]  # default 60 s
    assert load_runs(store, dead_after=120)["status"].tolist() == ["RUNNING"]
    assert load_runs(store, dead_after=timedelta(seconds=30))["status"].tolist() == [PROBABLY_DEAD]
    assert load_runs(store, dead_after=timedelta(minutes=5))["run"].iloc[0].status == "RUNNING"
    assert load_runs(store, status=PROBABLY_DEAD, dead_after=60.0)["run"].iloc[0].recorded_status == "RUNNING"


def test_unreadable_runs_are_skipped_with_one_warning(chain_store, monkeypatch):
    (chain_store / "3" / "config.json").write_text('{"training": {"objective": "beta_')  # truncated
    (chain_store / "4" / "metrics.json").write_bytes(bytes(range(256)) * 4)  # binary garbage
    (chain_store / "9" / "run.json").write_text("[1, 2]")  # JSON, but no run record
    real_open = open

    def no_permission(path, *args, **kwargs):
        if Path(path) == chain_store / "8" / "info.json":
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(runs_module, "open", no_permission, raising=False)  # root ignores chmod
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = load_runs(chain_store, where={"training.objective": "fce"})
    assert ids(table) == [2] and table["links"].tolist() == [[1, 2]]
    skipped = [w for w in caught if issubclass(w.category, UnreadableRunWarning)]
    assert len(skipped) == 1
    message = str(skipped[0].message)
    assert "4 unreadable run directories" in message
    for run_id, name in ((3, "config.json"), (4, "metrics.json"), (8, "info.json"), (9, "run.json")):
        assert f"{chain_store / str(run_id)} ({name}: " in message
    assert "PermissionError" in message and "not valid JSON" in message
    assert skipped[0].filename == __file__  # points at the caller
    # the other runs are unchanged; 8's chain is gone, so 5 is now a run of its own (it has a successor, 6)
    with pytest.warns(UnreadableRunWarning, match="4 unreadable"):
        everything = load_runs(chain_store)
    assert everything["links"].tolist() == [[1, 2], [5, 6, 7]]

    monkeypatch.setattr(runs_module, "open", real_open, raising=False)
    for run_id in (3, 4, 9):
        (chain_store / str(run_id)).joinpath("run.json").unlink()  # no run.json: not a run, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableRunWarning)
        assert load_runs(chain_store)["links"].tolist() == [[1, 2], [5, 6, 7], [5, 8]]


def test_fce_analysis_reads_joined_runs(chain_store):
    """The known failure: the table of a resumed FCE run must use its whole history."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from genlab.analysis import fce2d

    runs = fce2d.load_fce_runs(chain_store)
    assert ids(runs) == [2] and runs["links"].tolist() == [[1, 2]]
    table = fce2d.results_table(runs)
    assert table["ebm_update_fraction"].tolist() == [pytest.approx(5 / 6)]
    assert table[["iterations", "mse_ebm"]].values.tolist() == [[40, 0.1]]
    fig = fce2d.curves_figure(runs)
    mse_axis = fig.axes[2]
    assert [line.get_xdata().tolist() for line in mse_axis.lines if "mse_ebm" in line.get_label()] == [[20, 40]]
    plt.close(fig)


def test_the_readme_selection_example_runs_on_a_store_without_matches(tmp_path, monkeypatch):
    """The README's load_runs example, up to its column selection, on an empty file store."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### Reloading runs, figures and tables", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    selection = block.split("model = load_model", 1)[0]  # what needs no run
    (tmp_path / "data" / "sims" / "disent").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(selection, "README.md", "exec"), namespace)
    assert namespace["runs"].empty and "training.objective" in namespace["runs"].columns
