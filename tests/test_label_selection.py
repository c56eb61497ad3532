"""Label selection of labelled_images datasets (genlab.data.labels; docs/icebeem.md §5c): the kept and
held-out classes re-indexed from 0, the first N filtered training examples (not per class, test parts
uncut), the recorded selection, every refusal as a ConfigError naming the problem, and the wiring
through ``load_dataset`` / ``check_dataset`` (MNIST's embedded digits: no file needed)."""

from __future__ import annotations

import pytest
import torch

from genlab.data import check_dataset, load_dataset
from genlab.data.images import LabelledImages
from genlab.data.labels import Relabelled, check_selection, describe_selection, select_labels
from genlab.data.sources import DataParts, Tensors
from genlab.errors import ConfigError

TRAIN_Y = [3, 0, 9, 8, 1, 8, 2, 9, 0, 8, 5, 9]  # 12 training rows
TEST_Y = [9, 9, 0, 8, 4]


def images(labels, fill) -> LabelledImages:
    n = len(labels)
    x = (fill + torch.arange(n, dtype=torch.uint8)).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    return LabelledImages(x, torch.tensor(labels), torch.arange(n), name="fixture")


def parts() -> DataParts:
    return DataParts("fixture", images(TRAIN_Y, 0), None, images(TEST_Y, 100), info={"source": "fixture"},
                     model_inputs={"input_shape": [1, 2, 2], "n_classes": 10})  # fmt: skip


def rows_and_labels(source):
    batch = source.batch(slice(None))
    return batch["index"].tolist(), batch["y"].tolist()


def test_kept_keeps_the_first_classes_with_their_labels():
    data = select_labels(parts(), "kept", 8)
    index, y = rows_and_labels(data.train)
    assert index == [i for i, c in enumerate(TRAIN_Y) if c < 8] and y == [c for c in TRAIN_Y if c < 8]
    assert rows_and_labels(data.test) == ([2, 4], [0, 4])
    assert data.train.batch(slice(None))["x"][:, 0, 0, 0].mul(255).round().tolist() == index  # the rows' own images
    assert data.model_inputs == {"input_shape": [1, 2, 2], "n_classes": 8}
    assert data.info["labels"] == {"labels": "kept", "n_labels": 8, "first_n": None, "classes": list(range(8)),
                                   "sizes": {"train": 6, "test": 2}}  # fmt: skip
    assert data.info["source"] == "fixture"


def test_held_out_keeps_the_last_classes_reindexed_from_zero():
    data = select_labels(parts(), "held_out", 8)
    assert rows_and_labels(data.train) == ([2, 3, 5, 7, 9, 11], [1, 0, 0, 1, 0, 1])
    assert rows_and_labels(data.test) == ([0, 1, 3], [1, 1, 0])
    assert data.model_inputs["n_classes"] == 2 and data.info["labels"]["classes"] == [8, 9]
    assert isinstance(data.train, LabelledImages)
    assert len(data.train.subset(torch.tensor([1]))) == 1  # still a source with subset
    original = parts()
    assert original.train.labels.tolist() == TRAIN_Y and original.model_inputs["n_classes"] == 10  # not modified


def test_first_n_cuts_the_filtered_training_rows_not_per_class_and_not_the_test_part():
    data = select_labels(parts(), "held_out", 8, first_n=4)
    assert rows_and_labels(data.train) == ([2, 3, 5, 7], [1, 0, 0, 1])  # the first four 8s and 9s overall
    assert len(data.test) == 3
    assert data.info["labels"]["sizes"] == {"train": 4, "test": 3}
    data = select_labels(parts(), "all", None, first_n=5)
    assert rows_and_labels(data.train) == ([0, 1, 2, 3, 4], TRAIN_Y[:5]) and len(data.test) == len(TEST_Y)
    assert data.model_inputs["n_classes"] == 10
    with pytest.raises(ConfigError, match=r"first_n=7 exceeds the 6 training examples of the held_out classes \(8, 9\)"):
        select_labels(parts(), "held_out", 8, first_n=7)


def test_sources_without_labels_of_their_own_are_relabelled_by_a_wrapper():
    train = Tensors("t", x=torch.zeros(12, 3), y=torch.tensor(TRAIN_Y), index=torch.arange(12))
    data = select_labels(DataParts("t", train, model_inputs={"n_classes": 10}), "held_out", 8, first_n=5)
    assert isinstance(data.train, Relabelled) and data.test is None
    assert data.train.batch(slice(None))["y"].tolist() == [1, 0, 0, 1, 0]
    assert data.train.batch(slice(None))["index"].tolist() == [2, 3, 5, 7, 9]


@pytest.mark.parametrize("labels, n_labels, first_n, n_classes, match", [
    ("some", 8, None, 10, r"unknown dataset.labels='some'; valid: all, kept, held_out"),
    ("kept", None, None, 10, r"dataset.labels=kept needs dataset.n_labels"),
    ("held_out", 10, None, 10, r"n_labels=10 must be from 1 to 9.*leaves no held-out classes"),
    ("held_out", 0, None, 10, r"n_labels=0 must be from 1 to 9"),
    ("kept", 8.5, None, 10, r"n_labels=8.5 must be an integer"),
    ("kept", True, None, 10, r"n_labels=True must be an integer"),
    ("kept", 8, 0, 10, r"first_n=0 must be None .* or a positive integer"),
    ("all", None, 2.0, 10, r"first_n=2.0 must be"),
    ("kept", 8, None, None, r"needs a dataset with class labels"),
])  # fmt: skip
def test_bad_selections_are_config_errors_naming_the_problem(labels, n_labels, first_n, n_classes, match):
    with pytest.raises(ConfigError, match=match):
        check_selection(labels, n_labels, first_n, n_classes)


def test_the_description_line():
    assert describe_selection("held_out", 8, 500, 10) == "labels: held_out (classes 8, 9 -> 0, 1), first 500 training examples"
    assert describe_selection("kept", 85, None, 100) == "labels: kept (classes 0..84 -> 0..84), all training examples"
    assert describe_selection("all", None, None, 10) == "labels: all (10 classes), all training examples"


def mnist(**selection):
    return {"name": "mnist", "source": "embedded", "path": None, "options": {}, **selection}


def test_through_load_dataset_on_the_embedded_digits():
    data = load_dataset(mnist(labels="held_out", n_labels=8))
    batch = data.train.batch(slice(None))
    full = load_dataset(mnist()).train.batch(slice(None))
    digits = full["y"][batch["index"]]
    assert set(digits.tolist()) == {8, 9} and torch.equal(batch["y"], digits - 8)
    assert len(data.train) == int(((full["y"] == 8) | (full["y"] == 9)).sum()) == 1000
    assert torch.equal(batch["x"], full["x"][batch["index"]])
    assert data.model_inputs["n_classes"] == 2 and data.info["labels"]["classes"] == [8, 9]
    cut = load_dataset(mnist(labels="kept", n_labels=8, first_n=300))
    assert len(cut.train) == 300 and cut.train.batch(slice(None))["y"].max() < 8
    assert len(load_dataset(mnist(first_n=10)).train) == 10


def test_check_dataset_refuses_bad_selections_before_loading():
    assert check_dataset(mnist(labels="kept", n_labels=8, first_n=100)) is None
    with pytest.raises(ConfigError, match="n_labels=10 must be from 1 to 9"):
        check_dataset(mnist(labels="held_out", n_labels=10))
    with pytest.raises(ConfigError, match="unknown dataset.labels"):
        load_dataset(mnist(labels="odd", n_labels=8))
    with pytest.raises(ConfigError, match="first_n=6,000 exceeds the 5,000 training examples of mnist"):
        check_dataset(mnist(first_n=6000))
    with pytest.raises(ConfigError, match="first_n=1,001 exceeds the 1,000 training examples"):
        load_dataset(mnist(labels="held_out", n_labels=8, first_n=1001))
    with pytest.raises(ConfigError, match=r"labels=held_out \(classes 8, 9\) leaves none of the 512 training examples"):
        load_dataset(mnist(labels="held_out", n_labels=8, tiny=True))  # the embedded digits are sorted by class
    with pytest.raises(ConfigError, match="select classes of labelled_images datasets"):
        check_dataset({"name": "tcl", "labels": "kept", "n_labels": 2}, data=False)
