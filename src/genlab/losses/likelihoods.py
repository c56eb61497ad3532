"""Reconstruction likelihoods."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """-log p(x | logits) under independent Bernoulli pixels, in nats.

    Summed over all pixels of an image; ``reduction="mean"`` averages over the batch, ``"none"``
    returns one value per image. Targets in [0, 1] that are not binary (RGB data) are used as soft
    labels, as in the disent original (docs/disent.md §3), so the NLL has a positive floor there.
    """
    per_image = F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(1)
    return per_image.mean() if reduction == "mean" else per_image
