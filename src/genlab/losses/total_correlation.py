"""Samples from the product of marginals q(z_1)...q(z_D), for FactorVAE's density-ratio trick."""

from __future__ import annotations

import torch


def permute_dims(z: torch.Tensor) -> torch.Tensor:
    """Shuffle each latent dimension independently across the batch (Kim & Mnih 2018, Alg. 1).

    Rows of the result are samples of prod_j q(z_j) when rows of ``z`` are samples of q(z).
    """
    batch, dims = z.shape
    order = torch.argsort(torch.rand(batch, dims, device=z.device), dim=0)
    return torch.gather(z, 0, order)
