"""What the training loop needs from data: batch sources and the parts of a dataset a run uses.

A :class:`BatchSource` is anything that draws batches by index on one device: ``len(source)``
examples, ``source.batch(index)`` a dict of tensors for an index tensor or slice (``x`` always;
``factors``, ``u``, ``s``, ``y``, ``log_density`` ... when the data knows them), ``source.device``.
``FactorImages``, ``Points`` and every future dataset container satisfy it; ``ShuffledBatches`` and
``SequentialBatches`` (``genlab.data.batches``) and the evaluations use nothing else.

:class:`DataParts` is what loading a dataset gives an experiment: the training source, the
validation and test sources when the dataset has them, what the run records about the data
(``info``) and what model builders may read from it (``model_inputs``: ``input_shape`` always).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@runtime_checkable
class BatchSource(Protocol):
    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]: ...


class Subset:
    """The rows ``rows`` of a batch source, as a batch source (for sources without their own ``subset``)."""

    def __init__(self, source: BatchSource, rows: torch.Tensor):
        self.source, self.rows = source, rows.to(source.device)

    @property
    def device(self) -> torch.device:
        return self.source.device

    def __len__(self) -> int:
        return len(self.rows)

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        return self.source.batch(self.rows[index])

    def subset(self, index: torch.Tensor) -> "Subset":
        return Subset(self.source, self.rows[torch.as_tensor(index, device=self.rows.device)])


class Tensors:
    """Named tensors that share their first axis, resident on one device, as a batch source:
    ``batch(index)`` is ``{name: tensor[index]}`` (the simulations' ``x``, ``u``, ``s``)."""

    def __init__(self, name: str = "tensors", **tensors: torch.Tensor):
        if "x" not in tensors:
            raise ValueError("a batch source needs an 'x' tensor")
        n, device = len(tensors["x"]), tensors["x"].device
        for key, value in tensors.items():
            if len(value) != n or value.device != device:
                raise ValueError(f"tensor {key!r} has {len(value)} rows on {value.device}; 'x' has {n} on {device}")
        self.name, self.tensors = name, tensors

    @property
    def device(self) -> torch.device:
        return self.tensors["x"].device

    def __len__(self) -> int:
        return len(self.tensors["x"])

    def batch(self, index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
        if isinstance(index, slice):
            return {k: v[index] for k, v in self.tensors.items()}
        return {k: v.index_select(0, index) for k, v in self.tensors.items()}  # a few times cheaper than v[index] on CPU

    def subset(self, index: torch.Tensor) -> "Tensors":
        index = torch.as_tensor(index, device=self.device)
        return Tensors(self.name, **{k: v[index] for k, v in self.tensors.items()})

    def __repr__(self) -> str:
        return f"Tensors({self.name!r}, n={len(self)}, keys={list(self.tensors)}, device={self.device})"


def subset(source: BatchSource, index: torch.Tensor):
    """The given rows of ``source``: its own ``subset`` (sharing storage) where it has one."""
    if hasattr(source, "subset"):
        return source.subset(index)
    return Subset(source, torch.as_tensor(index))


def sample(source: BatchSource, n: int | None, seed: int = 0):
    """A seeded random subset of ``n`` rows in increasing order (all rows when ``n`` is None or at
    least ``len(source)``)."""
    if n is None or n >= len(source):
        return source
    g = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(source), generator=g)[:n].sort().values
    return subset(source, index.to(source.device))


@dataclass
class DataParts:
    """The parts of a dataset one run uses, all on the training device."""

    name: str
    train: BatchSource
    val: BatchSource | None = None
    test: BatchSource | None = None
    info: dict[str, Any] = field(default_factory=dict)  # recorded in the run's info: sizes, seeds ...
    model_inputs: dict[str, Any] = field(default_factory=dict)  # read by model builders: input_shape ...

    def parts(self) -> dict[str, BatchSource]:
        """The non-empty parts by name (``train``, ``val``, ``test``)."""
        return {k: v for k, v in (("train", self.train), ("val", self.val), ("test", self.test)) if v is not None and len(v)}
