"""The ground-truth decoder's objective (docs/disent.md §2.3): Bernoulli NLL of the image rendered from
the true factors, summed over pixels, mean over the batch. No encoder, no KL."""

from __future__ import annotations

import torch

from genlab.losses import bernoulli_nll
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step


@OBJECTIVES.register("gt_decoder")
class GroundTruthDecoding(Objective):
    """No hyperparameters: the model is trained to maximise the likelihood of each image."""

    def train_step(self, model, optimizers, batch, progress):
        model.train()
        loss = bernoulli_nll(model(batch["factors"]), batch["x"])
        optimizer_step(optimizers["model"], loss)
        return {"loss": loss.detach(), "recon_nll": loss.detach()}

    @torch.no_grad()
    def eval_step(self, model, batch):
        model.eval()
        nll = bernoulli_nll(model(batch["factors"]), batch["x"])
        return {"loss": nll, "recon_nll": nll}
