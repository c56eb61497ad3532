"""Vectorised look-ups over the factor classes of a dataset (or of one split of it).

``FactorIndex`` answers, for whole batches at once and on the data's device:
- ``rows_with(factor, value)``: a random row whose class on ``factor`` is ``value`` (the FactorVAE
  score fixes one factor this way; the composer's transform image too);
- ``find(classes)``: the row holding an exact combination of classes, or -1 if the split excluded it
  (the composer's target: the reference with one factor changed).
No per-item Python and no scan of the dataset per item (the original scanned all N rows per item).
"""

from __future__ import annotations

from typing import Sequence

import torch


class FactorIndex:
    def __init__(self, classes: torch.Tensor, sizes: Sequence[int]):
        """``classes``: (N, K) class indices of the rows; ``sizes``: the full grid's size per factor."""
        self.classes = classes
        self.sizes = torch.as_tensor(list(sizes), dtype=torch.long, device=classes.device)
        n, k = classes.shape
        # rows sorted by each factor's class, and where each value's run starts: (K, N) and (K, max+1)
        self._order = torch.argsort(classes.T, dim=1, stable=True)
        max_size = int(self.sizes.max())
        counts = torch.zeros(k, max_size, dtype=torch.long, device=classes.device)
        counts.scatter_add_(1, classes.T.long(), torch.ones_like(classes.T, dtype=torch.long))
        self.counts = counts
        self._starts = torch.cumsum(counts, dim=1) - counts
        # dense table over the full grid: grid position -> row (-1: not in this set)
        strides = torch.ones(k, dtype=torch.long, device=classes.device)
        for d in range(k - 2, -1, -1):
            strides[d] = strides[d + 1] * self.sizes[d + 1]
        self._strides = strides
        self._table = torch.full((int(torch.prod(self.sizes)),), -1, dtype=torch.long, device=classes.device)
        self._table[(classes.long() * strides).sum(1)] = torch.arange(n, device=classes.device)

    def find(self, classes: torch.Tensor) -> torch.Tensor:
        """(B,) rows holding each (B, K) combination of classes, -1 where the set lacks it."""
        return self._table[(classes.long() * self._strides).sum(1)]

    def count(self, factor: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
        """(B,) number of rows whose class on ``factor[i]`` is ``value[i]``."""
        return self.counts[factor, value]

    def rows_with(self, factor: torch.Tensor, value: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """(B,) uniformly random rows with class ``value[i]`` on factor ``factor[i]`` (requires count > 0)."""
        count = self.count(factor, value)
        if bool((count == 0).any()):
            raise ValueError("no row has the requested class on that factor in this set")
        u = torch.rand(len(factor), generator=generator, device=factor.device)
        offset = (u * count).long().clamp_max(count - 1)
        return self._order[factor, self._starts[factor, value] + offset]
