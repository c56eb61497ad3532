"""The composer's objective (docs/disent.md §2.4, §3): a VAE loss whose reconstruction is of the target.

    L = -log p(x_target | z_out) + beta * [KL(q(z|x_ref) || N(0, I)) + KL(q(z|x_trans) || N(0, I))]

with z_out the mixer's output (``genlab.models.composer``). Bernoulli NLL summed over pixels, KL
summed over latent dimensions and over both posteriors, everything averaged over the B triplets of
the batch: the original's "BCE plus the KL of both posteriors, summed and divided by B". beta = 1
is the original's default (its ``training.vae`` config). Takes triplet batches
(``genlab.data.triplets``: ``x``, ``transform``, ``action``, ``target``).
"""

from __future__ import annotations

import torch

from genlab.losses import bernoulli_nll, gaussian_kl
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step


def composer_terms(model, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """(NLL of the target under the rendered logits, KL of both posteriors per triplet)."""
    out = model(batch)
    recon = bernoulli_nll(out["logits"], batch["target"])
    kl = gaussian_kl(out["mu"], out["logvar"], reduction="none").sum() / len(batch["target"])
    return recon, kl


@OBJECTIVES.register("composer")
class ComposerLoss(Objective):
    """Target reconstruction + beta x (KL of the reference's and the transform's posteriors)."""

    def __init__(self, beta: float = 1.0):
        self.beta = float(beta)

    def train_step(self, model, optimizers, batch, progress):
        model.train()
        recon, kl = composer_terms(model, batch)
        loss = recon + self.beta * kl
        optimizer_step(optimizers["model"], loss)
        return {"loss": loss.detach(), "recon_nll": recon.detach(), "kl": kl.detach()}

    @torch.no_grad()
    def eval_step(self, model, batch):
        """NLL of the target rendered from the posterior means (eval mode), KL, loss."""
        model.eval()
        recon, kl = composer_terms(model, batch)
        return {"recon_nll": recon, "kl": kl, "loss": recon + self.beta * kl}
