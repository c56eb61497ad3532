"""Sacred's MongoObserver through a real MongoDB-wire server (SecantusDB, see tests/conftest.py)."""

from __future__ import annotations

import gridfs
import pytest
from pymongo import MongoClient
from sacred import Experiment
from sacred.observers import MongoObserver

pytestmark = pytest.mark.mongo


def test_mongo_observer_round_trip(mongo_url, tmp_path):
    db_name = "t_mongo_observer"
    failure_dir = tmp_path / "failed"
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(range(256)) * 2000)  # 512,000 bytes: two GridFS chunks of 255 KiB
    text = tmp_path / "note.txt"
    text.write_text("hello")

    ex = Experiment("t_mongo", save_git_info=False)
    ex.add_config(lr=0.1, nested={"a": [1, 2], "b": "x"})

    @ex.main
    def main(_run, lr):
        for step in range(5):
            _run.log_scalar("train.loss", lr / (step + 1), step * 10)
        _run.add_artifact(str(big), name="big.bin")
        _run.add_artifact(str(text), name="note.txt")
        return {"final": lr}

    with MongoClient(mongo_url) as client:  # a reused $GENLAB_TEST_MONGO server may hold old runs
        client.drop_database(db_name)
    ids = []
    for lr in (0.1, 0.2):
        ex.observers[:] = [MongoObserver(url=mongo_url, db_name=db_name, failure_dir=str(failure_dir))]
        ids.append(ex.run(config_updates={"lr": lr}, options={"--loglevel": "ERROR"})._id)

    client = MongoClient(mongo_url)
    try:
        db = client[db_name]
        assert ids == [1, 2]  # Sacred's auto-increment ids
        doc = db.runs.find_one({"_id": 2})
        assert doc["status"] == "COMPLETED"
        assert doc["experiment"]["name"] == "t_mongo"
        assert doc["config"]["lr"] == 0.2 and doc["config"]["nested"] == {"a": [1, 2], "b": "x"}
        assert doc["result"] == {"final": 0.2}
        assert db.runs.count_documents({"config.nested.b": "x"}) == 2  # dotted query into the config

        metric = db.metrics.find_one({"run_id": 2, "name": "train.loss"})
        assert metric["steps"] == [0, 10, 20, 30, 40]
        assert metric["values"] == pytest.approx([0.2 / (s + 1) for s in range(5)])
        assert len(metric["timestamps"]) == 5
        assert {m["id"] for m in doc["info"]["metrics"]} == {str(metric["_id"])}

        fs = gridfs.GridFS(db)
        artifacts = {a["name"]: a["file_id"] for a in doc["artifacts"]}
        assert fs.get(artifacts["big.bin"]).read() == big.read_bytes()
        assert fs.get(artifacts["note.txt"]).read() == b"hello"
        assert db["fs.chunks"].count_documents({"files_id": artifacts["big.bin"]}) == 2
    finally:
        client.close()
    # MongoObserver.final_save does not raise when a save fails: it pickles the run into failure_dir
    # and warns. A run that "succeeded" this way stored nothing, hence this check.
    assert not failure_dir.exists()


# --- load_runs on MongoDB: resume chains and dead runs (the stores of tests/test_runs.py) -----------


def write_mongo_store(db, runs: dict[int, dict]) -> None:
    """The runs of ``test_runs.chain_runs()`` as Sacred's MongoObserver stores them: one ``runs``
    document each (config, info, artifacts as GridFS ids), one ``metrics`` document per metric
    (referenced in ``info["metrics"]``)."""
    fs = gridfs.GridFS(db)
    for run_id, r in runs.items():
        info = dict(r["info"])
        for name, points in r["metrics"].items():
            metric_id = db.metrics.insert_one({
                "run_id": run_id, "name": name, "steps": list(points), "values": list(points.values()),
                "timestamps": [r["start"]] * len(points),
            }).inserted_id  # fmt: skip
            info.setdefault("metrics", []).append({"name": name, "id": str(metric_id)})
        artifacts = [{"name": name, "file_id": fs.put(data, filename=f"artifact://runs/{run_id}/{name}")}
                     for name, data in r.get("artifacts", {}).items()]  # fmt: skip
        doc = {
            "_id": run_id, "experiment": {"name": r["experiment"], "base_dir": "/src", "sources": [], "dependencies": [],
                                          "repositories": [], "mainfile": "x.py"},
            "format": "MongoObserver-0.7.0", "command": "main", "host": {"hostname": "h"}, "start_time": r["start"],
            "config": r["config"], "meta": {"command": "main"}, "status": r["status"], "resources": [],
            "artifacts": artifacts, "captured_out": f"run {run_id}\n", "info": info, "heartbeat": r.get("heartbeat"),
            "result": r.get("result"),
        }  # fmt: skip
        if r.get("stop") is not None:
            doc["stop_time"] = r["stop"]
        db.runs.insert_one(doc)


@pytest.fixture
def chain_mongo(mongo_url, tmp_path):
    from test_runs import chain_runs

    db_name = "t_runs_chains"
    spec = chain_runs()
    with MongoClient(mongo_url) as client:
        client.drop_database(db_name)
        write_mongo_store(client[db_name], spec)
    return f"{mongo_url.rstrip('/')}/{db_name}", spec


def test_mongo_joins_resume_chains_and_reports_dead_runs(chain_mongo, tmp_path):
    from genlab.analysis.runs import load_runs
    from test_runs import check_chain_filters, check_chain_table

    url, spec = chain_mongo
    table = load_runs(url, cache_dir=tmp_path / "cache")
    check_chain_table(table, spec)
    assert table["run"].iloc[0].artifact_path("model.pt").read_bytes() == b"weights of run 2"  # the last link's
    assert table["run"].iloc[3].captured_out() == "run 7\n"
    check_chain_filters(url, lambda source, **kwargs: load_runs(source, cache_dir=tmp_path / "cache", **kwargs))


def test_mongo_and_file_store_give_the_same_joined_table(chain_mongo, tmp_path):
    import pandas as pd

    from genlab.analysis.runs import load_runs
    from test_runs import write_file_store

    url, spec = chain_mongo
    directory = write_file_store(tmp_path / "fs", spec)
    for kwargs in ({}, {"resumes": "separate"}, {"where": {"training.lr": 0.01}}, {"status": "PROBABLY_DEAD"},
                   {"where": {"training.max_iterations": 30}, "resumes": "separate"}):
        mongo = load_runs(url, cache_dir=tmp_path / "cache", **kwargs)
        files = load_runs(directory, **kwargs)
        pd.testing.assert_frame_equal(mongo.drop(columns="run"), files.drop(columns="run"))
        for a, b in zip(mongo["run"], files["run"]):
            assert {n: a.metric(n).to_dict() for n in a.metric_names()} == {n: b.metric(n).to_dict() for n in b.metric_names()}


def test_mongo_query_for_probably_dead_runs_asks_for_running_ones():
    from genlab.analysis.runs import _mongo_query

    assert _mongo_query({}, None, {"PROBABLY_DEAD"}) == {"status": "RUNNING"}
    assert _mongo_query({}, "e", {"PROBABLY_DEAD", "RUNNING", "FAILED"}) == {
        "experiment.name": "e", "status": {"$in": ["FAILED", "RUNNING"]}}
