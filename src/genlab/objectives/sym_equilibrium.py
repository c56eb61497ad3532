"""Symmetric equilibrium learning of a binary-latent HVAE (Flach, Schlesinger & Shekhovtsov, AISTATS
2024, "Symmetric Equilibrium Learning of VAEs"; docs/symvae.md §2.1).

Two players, each ascending its own utility while the other's samples are constants:

    decoder:  L_p = E_data E_q(z|x) [log p(z1|z0) + log p(x|z1)]      (log p(z0) constant, omitted)
    encoder:  L_q = E_p(z, x) [log q(z|x)]

One iteration (docs/symvae.md §2.1), in this fixed order, every sample detached:

1. decoder step: z ~ q(z|x~) of the (already noisy, see below) batch x~ without gradients; loss =
   batch mean of -log p(z1|z0) - log p(x~|z1); one step of the ``decoder`` optimizer (g, h, s);
2. encoder step: an ancestral sample (z0, z1, x') of the decoder *just updated*; loss = batch mean of
   -log q(z0|x') - log q(z1|z0, x') with g(z0) stop-gradient (ladder; g(z0) is the ancestral pass's
   own, the same values) or -log q(z1|x') - log q(z0|z1) (reverse); one step of the ``encoder``
   optimizer (r, or u and v).

The training noise (0.1 % pixel flips on MNIST, N(0, 0.01^2) on FashionMNIST, §2.1 step 1) is the
dataset's per-batch transform, applied before the batch reaches ``train_step``. Randomness comes from
torch's global generator, which the run's checkpoints carry (``genlab.training.handlers.RNGState``),
so a resumed run draws the same samples; evaluation draws from its own fixed-seed generator and
leaves the global one alone.

Logged per unit (docs/symvae.md §3.3): ladder ``ploss1`` = -log p(z1|z0)/nz1, ``plossx`` =
-log p(x|z1)/784, ``qloss0`` = -log q(z0|x')/nz0, ``qloss1`` = -log q(z1|z0,x')/nz1; reverse ``ploss`` =
decoder loss/(784 + nz1), ``qloss`` = encoder loss/(nz0 + nz1); ``loss``, the decoder loss per image
(nats), and ``loss_q``, the encoder loss per image. Ladder only, the MI monitors of §2.3
(``MIMonitors``): ``pmi1``, ``qmi0``, ``qmi1``, each the **sum over bits** of the per-bit MI EMA in
nats (the information the code carries, comparable across latent sizes; the original prints the mean
over bits, ``z1_p_mi.mean()``: divide by nz0 or nz1 for its number).

Where the monitors' probabilities come from: the original recomputes them after both updates from a
fresh prior draw (p) and a fresh encoder pass over the batch (q). Here pmi1 takes g(z0) of the
encoder step's ancestral sample (the same decoder, a fresh prior draw: the same statistic) and qmi0,
qmi1 take the probabilities the decoder step's posterior sample was drawn from (the model before this
iteration's updates: a lag of one iteration in an EMA of rate 0.01), which saves an encoder pass per step.
"""

from __future__ import annotations

from typing import Any

import torch

from genlab.losses.bernoulli import bernoulli_entropy, bernoulli_log_prob, sample_bernoulli
from genlab.models.binary_hvae import IMAGE_SHAPE
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step

PIXELS = IMAGE_SHAPE[0] * IMAGE_SHAPE[1] * IMAGE_SHAPE[2]
MI_RATE = 0.01  # the monitors' EMA rate (docs/symvae.md §2.3)
EVAL_NOISE_SEED = 0  # evaluation draws the same latent samples every time: its numbers move only with the model


class MIMonitors:
    """Per-bit mutual-information monitors of docs/symvae.md §2.3, the objective's state.

    For a monitor over n bits: m <- 0.99 m + 0.01 mean_batch(p) (from m = 1/2), then
    MI = H(Bern(m)) - mean_batch H(Bern(p)) per bit (smoothed probabilities, nats), and
    mi <- 0.99 mi + 0.01 MI (from 0). Created at the first update with the size of its bits; updates
    build new tensors, so a ``state_dict`` taken earlier is not changed afterwards."""

    def __init__(self) -> None:
        self.state: dict[str, dict[str, torch.Tensor]] = {}

    @torch.no_grad()
    def update(self, name: str, probs: torch.Tensor) -> torch.Tensor:
        """Update monitor ``name`` with the (B, n) probabilities ``probs``; returns the sum over bits
        of its MI EMA in nats (the logged value)."""
        probs = probs.detach()
        if name not in self.state:
            n = probs.shape[1]
            self.state[name] = {"mean": torch.full((n,), 0.5, dtype=probs.dtype, device=probs.device),
                                "mi": torch.zeros(n, dtype=probs.dtype, device=probs.device)}  # fmt: skip
        s = {k: v.to(probs.device) for k, v in self.state[name].items()}  # a checkpoint may load on the CPU
        mean = s["mean"] * (1 - MI_RATE) + probs.mean(0) * MI_RATE
        mi = bernoulli_entropy(mean) - bernoulli_entropy(probs).mean(0)
        self.state[name] = {"mean": mean, "mi": s["mi"] * (1 - MI_RATE) + mi * MI_RATE}
        return self.state[name]["mi"].sum()

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {name: dict(s) for name, s in self.state.items()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        self.state = {name: dict(s) for name, s in state.items()}


def eval_generator(x: torch.Tensor) -> torch.Generator:
    return torch.Generator(device=x.device).manual_seed(EVAL_NOISE_SEED)


def encoder_loss(model, sample) -> tuple[torch.Tensor, Any]:
    """The batch mean of -log q(z|x') on an ancestral ``sample`` of the decoder (g stop-gradient),
    and the per-example terms (docs/symvae.md §2.1 step 3)."""
    terms = model.log_posterior(sample.x, sample.z0, sample.z1, detach_prior=True, prior_logits=sample.prior1)
    return -terms.total.mean(), terms


@torch.no_grad()
def evaluate_binary_hvae(model, batch: dict) -> dict[str, torch.Tensor]:
    """The evaluation of both objectives, per-batch means, from a fixed-seed generator:
    ``neg_elbo`` (= ``loss``) in nats per image at one posterior sample (ladder: the analytic KLs of
    docs/symvae.md §2.2; reverse: the one-sample estimate), its ``recon`` and ``kl``; ``loss_p``, the
    decoder loss -log p(z1|z0) - log p(x|z1) at that sample; ``loss_q``, the encoder loss -log q(z|x')
    on an ancestral sample of the batch's size (§2.1)."""
    x = batch["x"]
    generator = eval_generator(x)
    terms = model.elbo_terms(x, lambda logits: sample_bernoulli(logits, generator))
    loss_p = terms["recon"] - bernoulli_log_prob(terms["prior1"], terms["z1"])
    loss_q, _ = encoder_loss(model, model._ancestral(len(x), generator))
    neg_elbo = terms["neg_elbo"].mean()
    return {"loss": neg_elbo, "neg_elbo": neg_elbo, "recon": terms["recon"].mean(), "kl": terms["kl"].mean(),
            "loss_p": loss_p.mean(), "loss_q": loss_q}  # fmt: skip


class BinaryHVAEObjective(Objective):
    """What both objectives of a ``binary_hvae`` share: the MI monitors (objective state, for exact
    resume) and the evaluation."""

    model_kind = "binary_hvae"

    def __init__(self) -> None:
        self.monitors = MIMonitors()

    @torch.no_grad()
    def eval_step(self, model, batch):
        return evaluate_binary_hvae(model, batch)

    def state_dict(self) -> dict[str, Any]:
        return {"monitors": self.monitors.state_dict()} if self.monitors.state else {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.monitors.load_state_dict(state.get("monitors", {}))


@OBJECTIVES.register("sym_equilibrium")
class SymmetricEquilibrium(BinaryHVAEObjective):
    """Symmetric equilibrium learning (docs/symvae.md §2.1): a decoder step on posterior samples of
    the batch, then an encoder step on an ancestral sample of the updated decoder; no hyperparameters."""

    def make_optimizers(self, model, optimizer):
        """Two optimizers of the run's kind (the paper: Adam, lr 1e-4): ``decoder`` (g, h, s) and ``encoder`` (r, or u, v)."""
        return {"decoder": optimizer(model.decoder_parameters()), "encoder": optimizer(model.encoder_parameters())}

    def decoder_step(self, model, optimizer, x: torch.Tensor) -> tuple[torch.Tensor, Any, Any]:
        """Step 1 (docs/symvae.md §2.1): z ~ q(z|x) without gradients, loss = batch mean of
        -log p(z1|z0) - log p(x|z1), one step of the decoder's ``optimizer``. Returns the loss
        (detached), the per-example ``LogJoint`` terms and the posterior ``Sample`` (its logits feed qmi0/qmi1)."""
        with torch.no_grad():
            posterior = model._posterior(x)
        joint = model.log_joint(x, posterior.z0, posterior.z1)
        loss = -joint.total.mean()
        optimizer_step(optimizer, loss)
        return loss.detach(), joint, posterior

    def encoder_step(self, model, optimizer, n: int) -> tuple[torch.Tensor, Any, Any]:
        """Step 2 (docs/symvae.md §2.1): an ancestral sample (z0, z1, x') of n from the decoder as it
        is now, without gradients; loss = batch mean of -log q(z|x') (ladder: g(z0) stop-gradient, the
        ancestral pass's own g(z0)); one step of the encoder's ``optimizer``. Returns the loss (detached),
        the per-example ``LogPosterior`` terms and the ancestral ``Sample`` (its g(z0) feeds pmi1)."""
        with torch.no_grad():
            prior = model._ancestral(n)
        loss, terms = encoder_loss(model, prior)
        optimizer_step(optimizer, loss)
        return loss.detach(), terms, prior

    def train_step(self, model, optimizers, batch, progress):
        x = batch["x"]
        loss_p, joint, posterior = self.decoder_step(model, optimizers["decoder"], x)
        loss_q, posterior_terms, prior = self.encoder_step(model, optimizers["encoder"], len(x))

        out = {"loss": loss_p, "loss_q": loss_q}
        if model.ladder:
            out.update(ploss1=-joint.z1.detach().mean() / model.nz1, plossx=-joint.x.detach().mean() / PIXELS,
                       qloss0=-posterior_terms.z0.detach().mean() / model.nz0,
                       qloss1=-posterior_terms.z1.detach().mean() / model.nz1)  # fmt: skip
            out.update(pmi1=self.monitors.update("pmi1", torch.sigmoid(prior.prior1)),
                       qmi0=self.monitors.update("qmi0", torch.sigmoid(posterior.logits0)),
                       qmi1=self.monitors.update("qmi1", torch.sigmoid(posterior.logits1)))  # fmt: skip
        else:
            out.update(ploss=loss_p / (PIXELS + model.nz1), qloss=loss_q / (model.nz0 + model.nz1))
        return out
