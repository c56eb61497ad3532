"""The iVAE objective (Khemakhem, Kingma, Monti & Hyvärinen, AISTATS 2020), as the ICE-BeeM
simulations train it (docs/icebeem.md §4c, §5a): maximise the single-sample ELBO

    ELBO(x, u) = log N(x; f(z), 0.01 I) + log N(z; 0, diag exp lambda(u)) - log N(z; mu(x, u), diag v(x, u)),

z = mu + sqrt(v) eps, summed over dimensions and averaged over the batch; the loss is -ELBO
(``genlab.models.ivae.IVAE.neg_elbo``). The optimizer is the run's (the original: Adam, lr 1e-3),
the schedule the run's ``training.scheduler`` (the original: ``plateau``, factor 0.1, patience 20
epochs on the epoch-mean ``loss``), the length 70,000 iterations finishing the last epoch.

``train_step`` returns the loss only: every returned quantity costs the shared loop a finiteness
check and a running sum per iteration, and the networks here are so small that those count
(``eval_step`` gives the three terms). Batches: ``x`` (B, d), ``u`` (B, n_segments) one-hot.
"""

from __future__ import annotations

import torch

from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step

EVAL_NOISE_SEED = 0  # evaluation draws the same eps every time: its numbers move only with the model


@OBJECTIVES.register("ivae")
class IVAEObjective(Objective):
    """No hyperparameters: the ELBO of docs/icebeem.md §4c (no annealing, as in the paper's runs)."""

    model_kind = "ivae"

    def train_step(self, model, optimizers, batch, progress):
        # no model.train(): the iVAE has no dropout or batch norm, and the call costs a module walk per step
        loss = model.neg_elbo(batch["x"], batch["u"])
        optimizer_step(optimizers["model"], loss)
        return {"loss": loss.detach()}

    @torch.no_grad()
    def eval_step(self, model, batch):
        x = batch["x"]
        generator = torch.Generator(device=x.device).manual_seed(EVAL_NOISE_SEED)
        terms = model.elbo_terms(x, batch["u"], generator=generator)
        return {"loss": -terms["elbo"], "log_px": terms["log_px"], "log_pz": terms["log_pz"], "log_qz": terms["log_qz"]}
