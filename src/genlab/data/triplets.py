"""Triplets for the composition task of "The Role of Disentanglement in Generalisation" (docs/disent.md §2.4).

A triplet is (reference, transform, target) with an action ``one_hot(d, K)`` naming a factor d:
- the target equals the reference on every factor except d, and differs on d;
- the transform image has the target's class on d (its other factors are unconstrained);
the composer must render the target from the reference, the transform and the action.

Sampling is vectorised over a whole batch, from look-up tables built once per set:
- d is drawn uniformly among the factors that can be acted on at all in this set (a factor with a
  single class, or whose classes never co-occur with the rest, gives no triplet; such factors are
  listed in ``TripletSampler.inert_factors``);
- the reference is drawn uniformly among the rows that have at least one valid target on d. This is
  what redrawing a reference without a valid target until it has one would give (the original's
  item-wise rejection), computed exactly: the number of valid targets of every row on every factor
  is read off a boolean grid of the combinations present in the target set;
- the new class on d is uniform among the classes whose combination with the reference's other
  classes EXISTS in the target set (``FactorIndex.find`` over all candidate classes at once, then a
  uniform choice among the valid ones);
- the transform is a uniform random row with the target's class on d (``FactorIndex.rows_with``).
No per-item Python and no scan of the data per item (the original scanned all N rows for each item
and could fail mid-training when a split left no valid target; here a set without any triplet is
refused when the sampler is built, before training).

Batches are dicts on the data's device: ``x`` (the reference), ``transform``, ``target`` (images),
``action`` (B, K) float one-hot, and ``factors``, the reference's factor values. Index tensors and
random draws stay on the CPU (one small generator per batch), so a batch is the same on every device.

Training batches (``TripletBatches``) are a pure function of (seed, iteration), like
``genlab.data.batches.ShuffledBatches``, so a resumed run sees the batches an uninterrupted run would
have seen. Evaluation uses fixed triplets (``fixed_triplets``) drawn once from a seed; see
``split_triplets`` for the training, validation and test sets of a split.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Iterator

import numpy as np
import torch

from genlab.data.base import FactorImages
from genlab.data.sampling import FactorIndex
from genlab.errors import ConfigError

ROLES = ("reference", "transform", "target")


def generator(seed: int, *stream: int) -> torch.Generator:
    """A CPU generator seeded from ``(seed, *stream)`` by numpy's SeedSequence, so nearby seeds and
    streams (seed 0 / iteration 1 vs seed 1 / iteration 0) give unrelated draws."""
    state = np.random.SeedSequence([int(seed), *(int(s) for s in stream)]).generate_state(1, np.uint64)[0]
    return torch.Generator().manual_seed(int(state))


def union(*parts: FactorImages) -> FactorImages:
    """One ``FactorImages`` holding the rows of several views of the same image storage (e.g. the
    train, validation and test parts of a split: the whole dataset)."""
    base = parts[0]
    if any(p.images is not base.images for p in parts):
        raise ValueError("union() needs views of one image storage (the parts of one split)")

    def rows(p: FactorImages) -> torch.Tensor:
        return p.rows if p.rows is not None else torch.arange(len(p.images), device=p.images.device)

    return replace(
        base,
        rows=torch.cat([rows(p) for p in parts]),
        classes=torch.cat([p.classes for p in parts]),
        values=torch.cat([p.values for p in parts]),
    )


def triplet_batch(
    references: FactorImages, transforms: FactorImages, targets: FactorImages, triplets: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """The batch of index triplets (rows of each set, ``factor`` d): ``x`` (reference), ``transform``,
    ``target``, ``action`` (one-hot d) and ``factors`` (the reference's values), on the data's device."""
    dev = references.device
    ref = references.batch(triplets["reference"].to(dev))
    n_factors = references.classes.shape[1]
    return {
        "x": ref["x"],
        "transform": transforms.pixels(triplets["transform"].to(transforms.device)),
        "target": targets.pixels(triplets["target"].to(targets.device)),
        "action": torch.nn.functional.one_hot(triplets["factor"], n_factors).to(device=dev, dtype=torch.float32),
        "factors": ref["factors"],
    }


class NoTripletsError(ConfigError):
    """A set in which no reference has any valid target."""


class TripletSampler:
    """Draws triplets whose references come from ``references``, targets from ``targets`` and
    transforms from ``transforms`` (both default to ``references``: triplets within one split).

    Returned triplets are index tensors into those three sets (CPU, int64), plus ``factor`` (d).
    """

    def __init__(self, references: FactorImages, targets: FactorImages | None = None, transforms: FactorImages | None = None):
        self.references = references
        self.targets = references if targets is None else targets
        self.transforms = references if transforms is None else transforms
        self.n_factors = references.classes.shape[1]
        self.factor_names = tuple(references.factor_names)
        if len(self.targets) == 0 or len(references) == 0:
            raise NoTripletsError("no triplets: the reference or target set is empty")
        ref_cls = references.classes.cpu().long()
        tgt_cls = self.targets.classes.cpu().long()
        trf_cls = self.transforms.classes.cpu().long()
        sizes = torch.stack([c.max(0).values for c in (ref_cls, tgt_cls, trf_cls)]).max(0).values + 1
        self.sizes = sizes
        self._ref_classes = ref_cls
        self._targets = FactorIndex(tgt_cls, sizes.tolist())
        self._transforms = self._targets if self.transforms is self.targets else FactorIndex(trf_cls, sizes.tolist())

        # valid targets of each reference on each factor: combinations present in the target set on
        # the reference's line along d, less the reference's own combination
        present = torch.zeros(sizes.tolist(), dtype=torch.bool)
        present[tuple(tgt_cls.T)] = True
        own = present[tuple(ref_cls.T)].long()
        n_valid = torch.empty(len(ref_cls), self.n_factors, dtype=torch.long)
        for d in range(self.n_factors):
            line = present.sum(dim=d, keepdim=True)
            at = ref_cls.clone()
            at[:, d] = 0
            n_valid[:, d] = line[tuple(at.T)] - own
        has_target = n_valid > 0
        # per factor, the references with a valid target first (stable: in set order)
        self._valid_refs = torch.argsort((~has_target).T.to(torch.uint8), dim=1, stable=True)
        self._n_valid_refs = has_target.sum(0)
        self.factors = torch.nonzero(self._n_valid_refs > 0).flatten()  # the factors an action can name
        if len(self.factors) == 0:
            raise NoTripletsError(
                f"no triplets: none of the {len(ref_cls):,} references has a target in the target set "
                f"({len(tgt_cls):,} images) that differs from it on exactly one factor; this split "
                "cannot train or test the composer"
            )

    @property
    def inert_factors(self) -> list[str]:
        """Factors never named by an action here (no reference can change them within the set)."""
        return [self.factor_names[d] for d in range(self.n_factors) if self._n_valid_refs[d] == 0]

    def draw(self, n: int, gen: torch.Generator) -> dict[str, torch.Tensor]:
        """``n`` triplets: ``reference``, ``transform``, ``target`` (rows of their sets) and ``factor`` (d)."""
        ar = torch.arange(n)
        d = self.factors[torch.randint(len(self.factors), (n,), generator=gen)]
        count = self._n_valid_refs[d]
        pick = (torch.rand(n, generator=gen) * count).long().clamp_max(count - 1)
        reference = self._valid_refs[d, pick]

        # every class of factor d, in place of the reference's: which combinations exist as targets?
        ref_cls = self._ref_classes[reference]
        n_classes = int(self.sizes.max())
        values = torch.arange(n_classes).expand(n, n_classes)
        in_range = values < self.sizes[d].unsqueeze(1)
        candidates = ref_cls.unsqueeze(1).repeat(1, n_classes, 1)  # (n, V, K)
        candidates[ar.unsqueeze(1), torch.arange(n_classes), d.unsqueeze(1)] = torch.where(in_range, values, 0)
        rows = self._targets.find(candidates.view(-1, self.n_factors)).view(n, n_classes)
        valid = in_range & (rows >= 0) & (values != ref_cls[ar, d].unsqueeze(1))
        keys = torch.rand(n, n_classes, generator=gen).masked_fill_(~valid, -1.0)
        new_class = keys.argmax(1)  # uniform among the valid classes (every row has one, by construction)
        target = rows[ar, new_class]
        transform = self._transforms.rows_with(d, new_class, gen)
        return {"reference": reference, "transform": transform, "target": target, "factor": d}

    def batch(self, triplets: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The images, action and reference factors of index triplets, on the data's device."""
        return triplet_batch(self.references, self.transforms, self.targets, triplets)

    def fixed(self, n: int, seed: int, stream: int = 0) -> dict[str, torch.Tensor]:
        """``n`` triplets drawn once from ``seed`` (the same ones on every call, whatever the data's device)."""
        return self.draw(n, generator(seed, 1, stream))


def fixed_triplets(
    data: FactorImages, n: int, seed: int, *, targets: FactorImages | None = None,
    transforms: FactorImages | None = None, stream: int = 0,
) -> dict[str, torch.Tensor]:
    """``n`` evaluation triplets with references (and, by default, targets and transforms) from
    ``data``, reproducible from ``seed``: a dict of CPU index tensors (see ``TripletSampler.draw``)."""
    return TripletSampler(data, targets, transforms).fixed(n, seed, stream)


class TripletBatches:
    """Training batches of triplets within one split, for ``genlab.training.engines.fit``.

    An "epoch" is ``n_samples // batch_size`` batches (the original fixed it at 10,000 examples,
    docs/disent.md §2.4). Batch i is drawn from a generator seeded by (seed, i), so batches are a pure
    function of (seed, iteration): bound to a trainer, the iterator starts wherever the trainer's
    iteration counter stands and a resumed run continues exactly.
    """

    def __init__(self, data: FactorImages, batch_size: int, n_samples: int = 10_000, seed: int = 0):
        if n_samples < batch_size:
            raise ValueError(f"n_samples={n_samples} is less than one batch of {batch_size}")
        self.sampler = TripletSampler(data)  # refuses a split without triplets, before training
        self.batch_size, self.n_samples, self.seed = int(batch_size), int(n_samples), int(seed)
        self._position: Callable[[], int] = lambda: 0

    def __len__(self) -> int:
        return self.n_samples // self.batch_size

    def bind(self, position: Callable[[], int]) -> "TripletBatches":
        """Start each new iterator at ``position()`` (the global iteration it will serve next)."""
        self._position = position
        return self

    def triplets(self, iteration: int) -> dict[str, torch.Tensor]:
        """The index triplets of global iteration ``iteration`` (0-based)."""
        return self.sampler.draw(self.batch_size, generator(self.seed, 0, iteration))

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch, start = divmod(self._position(), len(self))
        for b in range(start, len(self)):
            yield self.sampler.batch(self.triplets(epoch * len(self) + b))


class SequentialTriplets:
    """Fixed triplets in order, in batches of ``batch_size`` (the last one possibly smaller). Keeps
    the sampler's three sets, not its look-up tables."""

    def __init__(self, sampler: TripletSampler, triplets: dict[str, torch.Tensor], batch_size: int):
        self.sets = (sampler.references, sampler.transforms, sampler.targets)
        self.triplets, self.batch_size = triplets, int(batch_size)

    def __len__(self) -> int:
        return -(-len(self.triplets["factor"]) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = len(self.triplets["factor"])
        for start in range(0, n, self.batch_size):
            yield triplet_batch(*self.sets, {k: v[start : start + self.batch_size] for k, v in self.triplets.items()})


def split_samplers(data) -> dict[str, TripletSampler]:
    """Triplet samplers of a ``genlab.data.SplitData``, one per non-empty part:

    - ``train``: reference, transform and target all from the training part (what training sees);
    - ``val``: targets in the validation part, references and transforms from the training side
      (training + validation images), never from the test part;
    - ``test``: targets in the test part (the excluded combinations), references and transforms from
      anywhere in the dataset. The question is whether the composer renders a combination it never
      saw; a reference that differs from such a target on one factor often lies in the test part
      itself (always, in an extrapolation split, unless d is the extrapolated factor), so restricting
      references to the training part would leave most factors without test triplets.
    """
    samplers = {"train": TripletSampler(data.train)}
    training_side = union(data.train, data.val) if len(data.val) else data.train
    if len(data.val):
        samplers["val"] = TripletSampler(training_side, targets=data.val)
    if len(data.test):
        everything = union(training_side, data.test)
        samplers["test"] = TripletSampler(everything, targets=data.test)
    return samplers


def split_triplets(data, n: int, seed: int, batch_size: int = 512) -> dict[str, SequentialTriplets]:
    """Fixed evaluation triplets of each part of a split (``split_samplers``), ``n`` per part, drawn
    from ``seed`` (a different stream per part): ``{"train"|"val"|"test": SequentialTriplets}``.
    The samplers' look-up tables are dropped once the triplets are drawn."""
    streams = {"train": 0, "val": 1, "test": 2}
    samplers = split_samplers(data)
    return {
        part: SequentialTriplets(sampler, sampler.fixed(n, seed, streams[part]), batch_size)
        for part, sampler in samplers.items()
    }


__all__ = [
    "NoTripletsError",
    "SequentialTriplets",
    "TripletBatches",
    "TripletSampler",
    "fixed_triplets",
    "generator",
    "split_samplers",
    "split_triplets",
    "triplet_batch",
    "union",
]
