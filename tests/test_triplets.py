"""Composition triplets: valid by construction, drawn from the right sets, reproducible, refused when impossible."""

import numpy as np
import pytest
import torch

from genlab.data import SplitData
from genlab.data.base import FactorGrid, from_numpy
from genlab.data.triplets import (
    NoTripletsError,
    TripletBatches,
    TripletSampler,
    fixed_triplets,
    split_samplers,
    split_triplets,
)

GRID = FactorGrid(("a", "b", "c"), (np.arange(3.0), np.arange(4.0), np.arange(5.0)))


def images_of(keep=None):
    """A dataset whose (1, 1, 3) uint8 'images' are their own class indices, so a batch shows which
    rows it was built from."""
    classes = GRID.classes()
    data = from_numpy(classes.astype(np.uint8)[:, None, None, :], classes, GRID.values_of(classes), (1, 1, 3), GRID.names, bits=False)
    return data if keep is None else data.subset(torch.from_numpy(np.flatnonzero(keep)))


def classes_in(images):
    return (images * 255).round().long().view(len(images), -1)


def holes():
    """A split with holes: every third combination missing."""
    return np.arange(len(GRID)) % 3 != 0


def test_a_triplet_changes_exactly_the_named_factor_and_the_transform_carries_it():
    split = images_of(holes())
    sampler = TripletSampler(split)
    t = sampler.draw(4000, torch.Generator().manual_seed(0))
    ref, tgt, trf = (split.classes[t[k]] for k in ("reference", "target", "transform"))
    d = t["factor"]
    ar = torch.arange(len(d))
    other = torch.ones_like(ref, dtype=torch.bool)
    other[ar, d] = False
    assert (ref[other] == tgt[other]).all()  # equal everywhere but on d ...
    assert (ref[ar, d] != tgt[ar, d]).all()  # ... and different on d
    assert (trf[ar, d] == tgt[ar, d]).all()  # the transform has the target's class on d
    assert (trf != tgt).any(1).float().mean() > 0.5  # and is otherwise unconstrained
    assert set(d.tolist()) == {0, 1, 2}
    # the batch holds those very rows, as images, with the one-hot action and the reference's factors
    b = sampler.batch({k: v[:64] for k, v in t.items()})
    assert torch.equal(classes_in(b["x"]), ref[:64]) and torch.equal(classes_in(b["target"]), tgt[:64])
    assert torch.equal(classes_in(b["transform"]), trf[:64])
    assert torch.equal(b["action"], torch.nn.functional.one_hot(d[:64], 3).float())
    assert torch.equal(b["factors"], split.values[t["reference"][:64]])


def test_every_valid_new_class_is_drawn_and_only_those():
    split = images_of(holes())
    sampler = TripletSampler(split)
    t = sampler.draw(20000, torch.Generator().manual_seed(1))
    present = {tuple(c) for c in split.classes.tolist()}
    ref, tgt = split.classes[t["reference"]], split.classes[t["target"]]
    pairs = {(tuple(r), tuple(g)) for r, g in zip(ref.tolist(), tgt.tolist())}
    expected = set()
    for r in present:
        for d in range(3):
            for v in range(GRID.sizes[d]):
                g = r[:d] + (v,) + r[d + 1:]
                if v != r[d] and g in present:
                    expected.add((r, g))
    assert pairs == expected


def test_targets_and_transforms_come_from_their_own_sets():
    full = images_of()
    test_mask = np.zeros(len(GRID), bool)
    test_mask[GRID.index_of(GRID.classes()[GRID.classes()[:, 2] == 4])] = True  # c == 4 held out
    data = SplitData(name="toy", train=full.subset(torch.from_numpy(np.flatnonzero(~test_mask))),
                     val=full.subset(torch.tensor([], dtype=torch.long)),
                     test=full.subset(torch.from_numpy(np.flatnonzero(test_mask))), condition="extrp", variant="c4")
    samplers = split_samplers(data)
    assert set(samplers) == {"train", "test"}  # no validation part: no val triplets
    train_t = samplers["train"].draw(2000, torch.Generator().manual_seed(0))
    for role in ("reference", "transform", "target"):
        assert (data.train.classes[train_t[role], 2] < 4).all()
    test = samplers["test"]
    t = test.draw(2000, torch.Generator().manual_seed(0))
    assert (test.targets.classes[t["target"], 2] == 4).all()  # every target is an excluded combination
    refs = test.references.classes[t["reference"]]
    assert (refs[:, 2] == 4).any() and (refs[:, 2] < 4).any()  # references from anywhere in the dataset
    assert set(t["factor"].tolist()) == {0, 1, 2}
    sets = split_triplets(data, 300, seed=5, batch_size=128)
    assert [len(b["x"]) for b in sets["test"]] == [128, 128, 44]
    assert all((classes_in(b["target"])[:, 2] == 4).all() for b in sets["test"])


def test_training_batches_are_a_function_of_seed_and_iteration():
    split = images_of(holes())
    batches = TripletBatches(split, batch_size=16, n_samples=100, seed=3)
    assert len(batches) == 6
    served = []  # a trainer's iteration counter: batches served so far
    batches.bind(lambda: len(served))
    for _ in range(2):  # two epochs from the start
        served += list(batches)
    straight = served
    resumed = list(TripletBatches(split, batch_size=16, n_samples=100, seed=3).bind(lambda: 8))
    assert len(resumed) == 4  # the rest of the second epoch
    for a, b in zip(straight[8:], resumed):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(straight[0]["x"], straight[6]["x"])  # epochs differ
    other = next(iter(TripletBatches(split, batch_size=16, n_samples=100, seed=4)))
    assert not torch.equal(other["x"], straight[0]["x"])


def test_fixed_triplets_are_reproducible_from_their_seed():
    split = images_of(holes())
    a, b, c = fixed_triplets(split, 500, seed=7), fixed_triplets(split, 500, seed=7), fixed_triplets(split, 500, seed=8)
    assert set(a) == {"reference", "transform", "target", "factor"}
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["reference"], c["reference"])


def test_a_split_without_triplets_is_refused_and_inert_factors_are_never_named():
    diagonal = np.zeros(len(GRID), bool)
    diagonal[GRID.index_of(np.array([[i, i, i] for i in range(3)]))] = True  # any two differ on every factor
    with pytest.raises(NoTripletsError, match="no triplets"):
        TripletBatches(images_of(diagonal), batch_size=2, n_samples=10)
    constant_c = GRID.classes()[:, 2] == 1  # one class of c: no triplet can change c
    sampler = TripletSampler(images_of(constant_c))
    assert sampler.inert_factors == ["c"]
    assert set(sampler.draw(1000, torch.Generator().manual_seed(0))["factor"].tolist()) == {0, 1}
