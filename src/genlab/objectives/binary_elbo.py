"""The ELBO baseline of "Symmetric Equilibrium Learning of VAEs" (Flach, Schlesinger & Shekhovtsov,
AISTATS 2024; docs/symvae.md §2.2): one optimizer over every parameter, loss = the negative ELBO per
image at one posterior sample, averaged over the batch, binary latents sampled with the ZGR
estimator (``genlab.losses.bernoulli.zgr``; Shekhovtsov, ICML 2023).

    ladder:   -log p(x|z1) + sum KL(Bern(a0) || Bern(1/2)) + sum KL(Bern(g(z0) + a1) || Bern(g(z0)))
    reverse:  -log p(x|z1) + [log q(z1|x) + log q(z0|z1) + nz0 log 2 - log p(z1|z0)]

with z0 = ZGR(a0), z1 = ZGR(g(z0) + a1) (ladder; no stop-gradient, g learns through both logits) or
z1 = ZGR(u(x)), z0 = ZGR(v(z1)) (reverse; the one-sample KL's log-Bernoulli terms carry the ZGR
gradient through z). The per-bit KLs are analytic with the 1e-6 smoothing (``BinaryHVAE.elbo_terms``,
which evaluation shares with a hard sample in place of ZGR). No REINFORCE, baselines, temperature or
KL warm-up.

Logged per unit (docs/symvae.md §3.3): ``dloss`` = -log p(x|z1)/784; ladder ``kl0loss`` = KL0/nz0 and
``kl1loss`` = KL1/nz1; reverse ``klloss`` = KL estimate/(nz0 + nz1); ``loss``, the negative ELBO per
image; and for the ladder the MI monitors ``pmi1``, ``qmi0``, ``qmi1`` of §2.3, the same as
``sym_equilibrium``'s (sum over bits of the per-bit EMA in nats; q from this step's encoder probabilities,
p from a fresh prior draw through g, see that module).
"""

from __future__ import annotations

import torch

from genlab.losses.bernoulli import zgr
from genlab.objectives.base import OBJECTIVES, optimizer_step
from genlab.objectives.sym_equilibrium import PIXELS, BinaryHVAEObjective


@OBJECTIVES.register("binary_elbo")
class BinaryELBO(BinaryHVAEObjective):
    """The negative ELBO with ZGR gradients (docs/symvae.md §2.2); no hyperparameters."""

    def train_step(self, model, optimizers, batch, progress):
        x = batch["x"]
        terms = model.elbo_terms(x, zgr)
        loss = terms["neg_elbo"].mean()
        optimizer_step(optimizers["model"], loss)

        out = {"loss": loss.detach(), "dloss": terms["recon"].detach().mean() / PIXELS}
        if model.ladder:
            out.update(kl0loss=terms["kl0"].detach().mean() / model.nz0, kl1loss=terms["kl1"].detach().mean() / model.nz1)
            with torch.no_grad():
                prior1 = model.g(model._prior_z0(len(x), None))
            out.update(pmi1=self.monitors.update("pmi1", torch.sigmoid(prior1)),
                       qmi0=self.monitors.update("qmi0", torch.sigmoid(terms["logits0"].detach())),
                       qmi1=self.monitors.update("qmi1", torch.sigmoid(terms["logits1"].detach())))  # fmt: skip
        else:
            out["klloss"] = terms["kl"].detach().mean() / (model.nz0 + model.nz1)
        return out
