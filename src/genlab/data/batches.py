"""Iterables of batches for Ignite engines, drawn from data that already lives on the device.

``ShuffledBatches`` makes the order of batches a pure function of (seed, epoch, position in the
epoch). Bound to a trainer, it starts wherever the trainer's iteration counter stands, so a run
resumed from a checkpoint sees exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch

from genlab.data.base import FactorImages


class ShuffledBatches:
    """Training batches: a fresh permutation per epoch, last incomplete batch dropped."""

    def __init__(self, data: FactorImages, batch_size: int, seed: int = 0):
        if len(data) < batch_size:
            raise ValueError(f"the training split has {len(data)} images, fewer than one batch of {batch_size}")
        self.data, self.batch_size, self.seed = data, batch_size, seed
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

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        epoch, start = divmod(self._position(), len(self))
        perm = self.permutation(epoch)
        for b in range(start, len(self)):
            yield self.data.batch(perm[b * self.batch_size : (b + 1) * self.batch_size])


class SequentialBatches:
    """Evaluation batches in dataset order, the last one possibly smaller."""

    def __init__(self, data: FactorImages, batch_size: int):
        self.data, self.batch_size = data, batch_size

    def __len__(self) -> int:
        return -(-len(self.data) // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for start in range(0, len(self.data), self.batch_size):
            yield self.data.batch(slice(start, start + self.batch_size))
