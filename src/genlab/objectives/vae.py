"""VAE and beta-VAE (Kingma & Welling 2014; Higgins et al. 2017), docs/disent.md §3.

    L = E_q[-log p(x|z)] + beta * KL(q(z|x) || N(0, I))          (Higgins et al. 2017, eq. 4)

Summed over pixels and latent dimensions, averaged over the batch; beta = 1 is the plain VAE.
"""

from __future__ import annotations

import torch

from genlab.losses import bernoulli_nll, gaussian_kl
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step


def reconstruction_terms(model, x: torch.Tensor) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Forward pass, Bernoulli NLL and KL to the standard normal prior."""
    out = model(x)
    return out, bernoulli_nll(out["logits"], x), gaussian_kl(out["mu"], out["logvar"])


def evaluate_vae(model, batch: dict) -> dict[str, torch.Tensor]:
    """Posterior-mean reconstruction NLL (the paper's NLL), KL, and the KL of each latent."""
    out, recon, kl = reconstruction_terms(model, batch["x"])
    metrics = {"recon_nll": recon, "kl": kl}
    for j, kl_j in enumerate(gaussian_kl(out["mu"], out["logvar"], reduction="per_dim")):
        metrics[f"kl_{j}"] = kl_j
    return metrics


@OBJECTIVES.register("beta_vae", "vae")
class BetaVAE(Objective):
    """beta-VAE; ``vae`` is the same objective, meant with beta = 1."""

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def train_step(self, model, optimizers, batch, progress):
        model.train()
        _, recon, kl = reconstruction_terms(model, batch["x"])
        loss = recon + self.beta * kl
        optimizer_step(optimizers["model"], loss)
        return {"loss": loss.detach(), "recon_nll": recon.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def eval_step(self, model, batch):
        model.eval()
        metrics = evaluate_vae(model, batch)
        metrics["loss"] = metrics["recon_nll"] + self.beta * metrics["kl"]
        return metrics
