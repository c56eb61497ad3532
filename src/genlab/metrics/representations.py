"""Codes of a dataset under a trained encoder."""

from __future__ import annotations

import torch

from genlab.data.base import FactorImages
from genlab.data.batches import SequentialBatches


@torch.no_grad()
def posterior_means(model, data: FactorImages, batch_size: int = 512) -> torch.Tensor:
    """(N, D) posterior means mu(x) of every image, the representation DCI is measured on (disent.md 5.2)."""
    model.eval()
    return torch.cat([model.encode(batch["x"])[0] for batch in SequentialBatches(data, batch_size)])
