"""Data drawn afresh for every batch: the Gaussian-mixture toys and the augmented PCA data of MIM
(Livne et al. 2019, docs/mim.md §1).

A :class:`Stream` has no fixed examples. ``len(stream)`` is the number of examples of one nominal
pass (an "epoch"), ``stream.draw(epoch, b, batch_size, generator)`` the ``b``-th batch of pass
``epoch``: a dict of tensors on ``stream.device`` (``x`` always, ``y`` the label: a mixture's
component, a class). Everything random comes from ``generator``, so a batch is a pure function of
(seed, pass, position) and a resumed run sees exactly the batches of an uninterrupted one.

:class:`StreamBatches` is the training iterable over a stream (``bind``/``len`` like
``genlab.data.batches.ShuffledBatches``): pass ``e``'s batch ``b`` is drawn with a generator seeded
from (seed, e * len + b). :class:`StreamPasses` is the evaluation iterable: every time it is iterated
it yields one whole pass, drawn afresh with a generator seeded from (seed, the position it is bound
to): the original redrew its test set at every epoch (docs/mim.md §1.1), and seeding by the trainer's
iteration keeps that draw the same after a resume.
"""

from __future__ import annotations

from typing import Callable, Iterator, Protocol, runtime_checkable

import torch

from genlab.data.transforms import batch_generator

Batch = dict[str, torch.Tensor]

# kept apart from the training batches' seeds, so the test stream never repeats a training batch
_EVAL_STREAM = 0x7E57


@runtime_checkable
class Stream(Protocol):
    @property
    def device(self) -> torch.device: ...

    def __len__(self) -> int: ...

    def draw(self, epoch: int, b: int, batch_size: int, generator: torch.Generator) -> Batch: ...


def stream_batch(stream: Stream, n: int, seed: int = 0) -> Batch:
    """``n`` examples of ``stream`` in one batch, drawn with ``seed`` (for inspection: ``dataset.show``)."""
    return stream.draw(0, 0, n, batch_generator(seed, 0, stream.device))


class StreamBatches:
    """Training batches of a stream: ``len(stream) // batch_size`` per pass (the last incomplete
    batch dropped, as a ``drop_last`` loader), each drawn afresh. In data-parallel training every
    process draws the whole global batch (the same generator) and keeps its own contiguous slice, so
    the processes together see exactly the single-process batches (drawing is cheap next to a step)."""

    def __init__(self, stream: Stream, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1):
        if len(stream) < batch_size:
            raise ValueError(f"a pass of the stream has {len(stream)} examples, fewer than one batch of {batch_size}")
        if batch_size % world_size:
            raise ValueError(f"a batch of {batch_size} cannot be split evenly over {world_size} processes")
        self.stream, self.batch_size, self.seed = stream, batch_size, seed
        self.rank, self.world_size = rank, world_size
        self._position: Callable[[], int] = lambda: 0

    def __len__(self) -> int:
        return len(self.stream) // self.batch_size

    def bind(self, position: Callable[[], int]) -> "StreamBatches":
        """Start each new iterator at ``position()`` (the global iteration it will serve next)."""
        self._position = position
        return self

    def __iter__(self) -> Iterator[Batch]:
        n = len(self)
        epoch, start = divmod(self._position(), n)
        local = self.batch_size // self.world_size
        first = self.rank * local
        for b in range(start, n):
            batch = self.stream.draw(epoch, b, self.batch_size, batch_generator(self.seed, epoch * n + b, self.stream.device))
            yield batch if self.world_size == 1 else {k: v[first : first + local] for k, v in batch.items()}


class StreamPasses:
    """Evaluation batches of a stream: each iteration is one full pass of ``len(stream) //
    batch_size`` batches (``drop_last``, as the original's test loader), drawn from (seed, key) where
    ``key`` is the position the passes are bound to (the trainer's iteration during training; 0 when
    unbound). ``fixed_key`` pins the key (the end-of-run evaluation's pass)."""

    def __init__(self, stream: Stream, batch_size: int, seed: int = 0, fixed_key: int | None = None):
        if len(stream) < batch_size:
            raise ValueError(f"a pass of the stream has {len(stream)} examples, fewer than one batch of {batch_size}")
        self.stream, self.batch_size, self.seed = stream, batch_size, seed
        self._key: Callable[[], int] = (lambda: fixed_key) if fixed_key is not None else (lambda: 0)
        self._fixed = fixed_key is not None

    def __len__(self) -> int:
        return len(self.stream) // self.batch_size

    def bind(self, position: Callable[[], int]) -> "StreamPasses":
        if not self._fixed:
            self._key = position
        return self

    def __iter__(self) -> Iterator[Batch]:
        key, n = int(self._key()), len(self)
        for b in range(n):
            generator = batch_generator(self.seed ^ _EVAL_STREAM, key * n + b, self.stream.device)
            yield self.stream.draw(key, b, self.batch_size, generator)
