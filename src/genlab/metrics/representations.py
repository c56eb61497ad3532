"""Codes of a dataset under a trained encoder."""

from __future__ import annotations

import torch

from genlab.data.base import FactorImages


@torch.no_grad()
def posterior_means(model, data: FactorImages, batch_size: int = 512) -> torch.Tensor:
    """(N, D) posterior means mu(x) of every image, the representation DCI is measured on (disent.md 5.2).

    Written into one preallocated tensor: keeping thousands of per-batch results alive between the
    large, freed activation buffers fragments the heap and holds on to hundreds of MB.
    """
    model.eval()
    out = torch.empty(len(data), model.latent_size, device=data.device)
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        out[start:stop] = model.encode(data.pixels(slice(start, stop)))[0]
    return out
