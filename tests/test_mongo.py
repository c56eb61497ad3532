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
