"""FactorVAE (Kim & Mnih 2018), as the disent original trains it (docs/disent.md §3).

Each batch of B is split in halves. With z ~ q(z|x) for the whole batch:

    VAE:  L = E_q[-log p(x|z)]  (whole batch)  + KL(q(z|x) || p(z))  (first half)
              + gamma * TC,   TC ~= mean_{first half} [D(z)_0 - D(z)_1]        (Kim & Mnih, eq. 3)
    D:    L_D = 1/2 [CE(D(z_first), real) + CE(D(permute_dims(z_second)), permuted)]   (Alg. 1)

D outputs two logits (0: sample of q(z), 1: sample of prod_j q(z_j)), so D(z)_0 - D(z)_1 is the
log density ratio. The VAE is updated first with D frozen, then D once on the detached samples of
the same forward pass: a fixed order, each update touching only its own player.

Defaults are the original's values, on which the paper's numbers depend: discriminator Adam lr
1e-5, betas (0.5, 0.9), 6 hidden layers of 1000 units, LeakyReLU slope 0.01. Kim & Mnih used lr
1e-4 and slope 0.2 (named config ``training.factor_vae_kim_mnih``). The original hard-coded the
discriminator's input to 10 latents; here it is built from the model's latent size.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.losses import bernoulli_nll, gaussian_kl, permute_dims
from genlab.models.discriminator import Discriminator
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step
from genlab.objectives.vae import evaluate_vae
from genlab.training.optimizers import adam


@OBJECTIVES.register("factor_vae")
class FactorVAE(Objective):
    def __init__(
        self,
        gamma: float = 100.0,
        disc_lr: float = 1e-5,
        disc_betas: tuple[float, float] = (0.5, 0.9),
        disc_width: int = 1000,
        disc_depth: int = 6,
        disc_slope: float = 0.01,
    ):
        self.gamma, self.disc_lr, self.disc_betas = float(gamma), float(disc_lr), tuple(disc_betas)
        self.disc_width, self.disc_depth, self.disc_slope = int(disc_width), int(disc_depth), float(disc_slope)
        self.discriminator: Discriminator | None = None

    def make_optimizers(self, model, optimizer):
        """The VAE's optimizer is the run's; the discriminator's is Adam with the paper's settings."""
        self.discriminator = Discriminator(
            model.latent_size, width=self.disc_width, depth=self.disc_depth, negative_slope=self.disc_slope
        ).to(next(model.parameters()).device)
        return {
            **super().make_optimizers(model, optimizer),
            "discriminator": adam(self.discriminator.parameters(), lr=self.disc_lr, betas=self.disc_betas),
        }

    def total_correlation(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.discriminator(z)
        return (logits[:, 0] - logits[:, 1]).mean()

    def train_step(self, model, optimizers, batch, progress):
        x = batch["x"]
        half = x.shape[0] // 2
        model.train()
        self.discriminator.train()

        out = model(x)
        recon = bernoulli_nll(out["logits"], x)
        kl = gaussian_kl(out["mu"][:half], out["logvar"][:half])
        self.discriminator.requires_grad_(False)  # the VAE's loss must not train D
        tc = self.total_correlation(out["z"][:half])
        self.discriminator.requires_grad_(True)
        vae_loss = recon + kl + self.gamma * tc
        optimizer_step(optimizers["model"], vae_loss)

        z = out["z"].detach()
        real, permuted = z[:half], permute_dims(z[half : 2 * half])
        logits = self.discriminator(torch.cat([real, permuted]))
        labels = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)]).to(z.device)
        disc_loss = F.cross_entropy(logits, labels)  # mean over both halves = 1/2 (CE_real + CE_perm)
        optimizer_step(optimizers["discriminator"], disc_loss)
        disc_acc = (logits.argmax(1) == labels).float().mean()

        return {
            "loss": vae_loss.detach(),
            "recon_nll": recon.detach(),
            "kl": kl.detach(),
            "tc": tc.detach(),
            "disc_loss": disc_loss.detach(),
            "disc_accuracy": disc_acc,
        }

    @torch.no_grad()
    def eval_step(self, model, batch):
        model.eval()
        self.discriminator.eval()
        metrics = evaluate_vae(model, batch)
        metrics["tc"] = self.total_correlation(model.encode(batch["x"])[0])
        metrics["loss"] = metrics["recon_nll"] + metrics["kl"] + self.gamma * metrics["tc"]
        return metrics
