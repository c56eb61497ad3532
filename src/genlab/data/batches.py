"""Iterables of batches for Ignite engines, drawn from any batch source that already lives on the device.

``ShuffledBatches`` makes the order of batches a pure function of (seed, epoch, position in the
epoch). Bound to a trainer, it starts wherever the trainer's iteration counter stands, so a run
resumed from a checkpoint sees exactly the batches an uninterrupted run would have seen. Per-batch
transforms (``genlab.data.transforms``: dequantisation, dynamic binarisation, pixel flips ...) are
applied on the device as each batch is drawn, with a generator seeded from (seed, iteration), so
they too are the same after a resume.

Data-parallel training (``world_size`` > 1 processes): every process draws the same global batch
order and keeps its own contiguous slice of each global batch (rank r of W takes rows
[r B/W, (r+1) B/W) of a batch of B), so the processes together see exactly the single-process
batches, and resume stays exact. Transforms are then seeded from (seed, iteration, rank).
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from genlab.data.sources import BatchSource
from genlab.data.transforms import batch_generator

Transform = Callable[[dict, torch.Generator], dict]


class ShuffledBatches:
    """Training batches: a fresh permutation per epoch, last incomplete batch dropped."""

    def __init__(
        self,
        data: BatchSource,
        batch_size: int,
        seed: int = 0,
        transform: Transform | None = None,
        rank: int = 0,
        world_size: int = 1,
    ):
        if len(data) < batch_size:
            raise ValueError(f"the training split has {len(data)} examples, fewer than one batch of {batch_size}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} of {world_size} processes")
        if batch_size % world_size:
            raise ValueError(f"a batch of {batch_size} cannot be split evenly over {world_size} processes")
        self.data, self.batch_size, self.seed, self.transform = data, batch_size, seed, transform
        self.rank, self.world_size = rank, world_size
        self._position: Callable[[], int] = lambda: 0

    def __len__(self) -> int:
        return len(self.data) // self.batch_size

    def bind(self, position: Callable[[], int]) -> "ShuffledBatches":
        """Start each new iterator at ``position()`` (the global iteration it will serve next)."""
        self._position = position
        return self

    def permutation(self, epoch: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        return torch.randperm(len(self.data), generator=g).to(self.data.device)

    def rows(self, perm: torch.Tensor, b: int) -> torch.Tensor:
        """Rows of this process's part of batch ``b`` of the permutation ``perm``."""
        local = self.batch_size // self.world_size
        start = b * self.batch_size + self.rank * local
        return perm[start : start + local]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = len(self)
        epoch, start = divmod(self._position(), n)
        perm = self.permutation(epoch)
        for b in range(start, n):
            batch = self.data.batch(self.rows(perm, b))
            if self.transform is not None:
                stream = (epoch * n + b) * self.world_size + self.rank
                batch = self.transform(batch, batch_generator(self.seed, stream, self.data.device))
            yield batch


class RandomSlices(ShuffledBatches):
    """SymVAE's batching (docs/symvae.md §3.1): no epochs; each batch is ``batch_size`` contiguous
    rows starting at a uniformly random offset in [0, N - batch_size), and the whole set is
    re-permuted every ``N // batch_size`` batches (a "period"); the first period slices the data in
    its stored order (MNIST: training images, then test images). Some examples are therefore seen
    more often than others within a period.

    The original permuted the already-permuted tensor at each reshuffle; here period k >= 1 uses a
    fresh permutation of the stored order seeded by (seed, k), which has the same distribution (a
    uniform permutation composed with any fixed one is uniform) and keeps every batch a pure function
    of (seed, batch index), so resume is exact. A period plays the part of an epoch for the engine."""

    def permutation(self, epoch: int) -> torch.Tensor:
        if epoch == 0:
            return torch.arange(len(self.data), device=self.data.device)
        return super().permutation(epoch)

    def offsets(self, epoch: int) -> torch.Tensor:
        """The start row of every batch of period ``epoch``."""
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) ^ 0x5EED_51CE)
        return torch.randint(0, max(len(self.data) - self.batch_size, 1), (len(self),), generator=g)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        n = len(self)
        epoch, start = divmod(self._position(), n)
        local = self.batch_size // self.world_size
        perm, offsets = self.permutation(epoch), self.offsets(epoch).tolist()
        for b in range(start, n):
            first = offsets[b] + self.rank * local
            batch = self.data.batch(perm[first : first + local])
            if self.transform is not None:
                stream = (epoch * n + b) * self.world_size + self.rank
                batch = self.transform(batch, batch_generator(self.seed, stream, self.data.device))
            yield batch


SAMPLERS = {"shuffle": ShuffledBatches, "random_slices": RandomSlices}  # training.sampler


class SequentialBatches:
    """Evaluation batches in dataset order, the last one possibly smaller; ``transform`` (if any) is
    seeded from (``seed``, batch number), so every evaluation pass sees the same transformed batches."""

    def __init__(self, data: BatchSource, batch_size: int, transform: Transform | None = None, seed: int = 0):
        self.data, self.batch_size, self.transform, self.seed = data, batch_size, transform, seed

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for i, start in enumerate(range(0, len(self.data), self.batch_size)):
            batch = self.data.batch(slice(start, start + self.batch_size))
            if self.transform is not None:
                batch = self.transform(batch, batch_generator(self.seed, i, self.data.device))
            yield batch
