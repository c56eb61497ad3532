"""KL divergences of Gaussian posteriors."""

from __future__ import annotations

import torch


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) = -1/2 sum_j (1 + log s_j^2 - mu_j^2 - s_j^2).

    Kingma & Welling (2014), appendix B. Summed over latent dimensions; ``reduction="mean"``
    averages over the batch, ``"none"`` returns (B,), ``"per_dim"`` returns the batch mean per
    latent dimension (D,).
    """
    kl = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "per_dim":
        return kl.mean(0)
    per_item = kl.sum(1)
    return per_item.mean() if reduction == "mean" else per_item
