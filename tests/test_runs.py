"""genlab.analysis.runs: the same table, metrics and artifacts from a file store and from MongoDB."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from pymongo import MongoClient
from sacred import Experiment
from sacred.observers import FileStorageObserver, MongoObserver

from genlab.analysis.runs import STANDARD_COLUMNS, Run, load_model, load_runs
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
    ignore = ["start_time", "stop_time", "run"]
    pd.testing.assert_frame_equal(file_table.drop(columns=ignore), mongo_table.drop(columns=ignore))

    t = file_table
    assert list(t.columns[:5]) == STANDARD_COLUMNS and t.columns[-1] == "run"
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
    assert empty.empty and list(empty.columns) == [*STANDARD_COLUMNS, "run"]
    assert load(source, stores, experiment="other").empty


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
