"""The losses of MIM's image experiments on two-level hierarchical VAEs (Livne, Swersky & Fleet 2019,
"MIM: Mutual Information Machine"; docs/mim.md §3.3, §4.2): ``hvae_vae`` (the VAE baseline) and
``hvae_mim`` (A-MIM, and S-MIM with ``sample=True``). They train ``hvae_vamp`` models
(``genlab.models.hvae_vamp``: convHVAE and PixelHVAE, standard or VampPrior prior).

z = (z1, z2); one reparameterised posterior sample per example, losses are batch means of
per-example sums. With beta the warm-up weight (below), A = log p(x|z1,z2) + log p(z1|z2) + beta
log p(z2): **beta weighs only the top prior** in MIM's terms, as the original, and log q(z|x) =
log q(z1|x,z2) + log q(z2|x).

- ``hvae_vae``: L = -log p(x|z) + beta KL, KL = log q(z|x) - log p(z1|z2) - log p(z2) at the sample.
- ``hvae_mim``, the encoding pass (x from the data): L_enc = -1/2 [A + beta (log q(z|x) + log q(x))]
  with log q(x) = A - log q(z|x), the one-sample marginal of the toys (docs/mim.md §3.1), so
  L_enc = -1/2 (1 + beta) A: the encoder entropy cancels, as in the original.
- ``sample=True`` (S-MIM) adds, once beta >= 1, a decoding pass (docs/mim.md §3.3):
  z2 ~ p(z2) (VampPrior: from the first N pseudo-inputs in fixed order, N the batch size, as the
  original), z1 ~ p(z1|z2), x decoded and detached, q(z2|x) and q(z1|x,z2) evaluated at that prior
  sample (no re-encoding), log q(x) := log p(x|z), and
  L_p = -1/2 [log p(x|z) + log p(z1|z2) + beta log p(z2) + beta (log q(z|x) + log p(x|z))];
  for binary data the score-function surrogate L_p + sg(L_p) (log p(x|z) - sg(log p(x|z))) keeps
  the value and adds L_p grad log p(x|z). The update follows L_enc + beta mean(L_p).
  With x the decoder's own Bernoulli means, grad_logits log p(x|z) = x - sigmoid(logits) = 0, so
  this pass gives the decoder no gradient at all (surrogate included): it trains the prior, p(z1|z2)
  and the encoders (docs/mim.md §3.3).
  ``decoded_x``: ``"mean"``, the decoder's Bernoulli means (the original, convHVAE), or
  ``"sample"``, a binary sample x ~ p(x|z). For PixelHVAE the means are not defined without a
  sample (each pixel's probability depends on the pixels before it) and the original's PixelHVAE
  S-MIM path crashes (it calls the sampler without latents, docs/mim.md §3.3, §9.10); here it is
  defined with ``"sample"``: x is drawn autoregressively (784 decoder passes, in eval mode so
  BatchNorm's running statistics see no partial images), and the score-function term is then the
  exact REINFORCE gradient of E_{x ~ p(x|z)}[L_p]. ``"auto"`` (default): mean for conv, sample for
  pixel.

beta = min(1, e / ``warmup``) in the 1-based epoch e (100 epochs in the original); evaluation uses
beta = 1. Evaluation passes log ``loss`` (each objective's own loss, what selects the model as in the
original: the MIM loss with S-MIM's decoding pass for MIM models, -ELBO for VAEs, docs/mim.md §4.2,
§9.11), ``elbo_loss`` (the one-sample -ELBO of every model), ``recon_nll`` and ``kl``. Evaluation
samples are seeded by the batch, so the same weights score a batch the same.

Densities include the -1/2 log 2 pi constants (the original omits them): the losses differ from the
original's by a constant, their gradients not at all.
"""

from __future__ import annotations

import abc

import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.models.hvae_vamp import gaussian_log_prob
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step
from genlab.training.schedules import warmup_weight

DECODED_X = ("auto", "mean", "sample")


def log_q(t: dict[str, Tensor]) -> Tensor:
    return t["log_qz1"] + t["log_qz2"]


def kl_sample(t: dict[str, Tensor]) -> Tensor:
    """log q(z|x) - log p(z1|z2) - log p(z2) at the posterior sample, per example."""
    return log_q(t) - t["log_pz1"] - t["log_pz2"]


def top_weighted_joint(t: dict[str, Tensor], beta: float) -> Tensor:
    """A = log p(x|z) + log p(z1|z2) + beta log p(z2), per example."""
    return t["log_px"] + t["log_pz1"] + beta * t["log_pz2"]


def vae_loss(t: dict[str, Tensor], beta: float) -> Tensor:
    return -t["log_px"] + beta * kl_sample(t)


def encoding_mim_loss(t: dict[str, Tensor], beta: float) -> Tensor:
    """-1/2 [A + beta (log q(z|x) + log q(x))], log q(x) = A - log q(z|x) (equal to -1/2 (1 + beta) A)."""
    a, lq = top_weighted_joint(t, beta), log_q(t)
    return -0.5 * (a + beta * (lq + (a - lq)))


def decoded_x(model, z1: Tensor, z2: Tensor, how: str) -> Tensor:
    """The decoding pass's x, detached: the Bernoulli means, or a binary sample drawn in eval mode."""
    if how == "mean":
        if model.decoder == "pixel":
            raise ConfigError("hvae_mim decoded_x='mean' is not defined for the PixelHVAE (its pixel probabilities "
                              "depend on the pixels before them): use decoded_x='sample' or 'auto'")  # fmt: skip
        with torch.no_grad():
            return torch.sigmoid(model.decoder_logits(z1, z2))
    was_training = model.training
    model.eval()
    try:
        return model.sample_x(z1.detach(), z2.detach())
    finally:
        model.train(was_training)


def decoding_pass(model, n: int, beta: float, how: str) -> tuple[Tensor, Tensor]:
    """(the surrogate whose gradient S-MIM follows, the value L_p) per example (docs/mim.md §3.3)."""
    z1, z2 = model.sample_latents(n, first_components=True)
    x = decoded_x(model, z1, z2, how)
    log_px = model.log_p_x(x, model.decoder_logits(z1, z2, x))
    log_pz1, log_pz2 = gaussian_log_prob(z1, *model.p_z1(z2)), model.log_p_z2(z2)
    log_qz = gaussian_log_prob(z2, *model.q_z2(x)) + gaussian_log_prob(z1, *model.q_z1(x, z2))
    value = -0.5 * (log_px + log_pz1 + beta * log_pz2 + beta * (log_qz + log_px))  # log q(x) := log p(x|z)
    return value + value.detach() * (log_px - log_px.detach()), value


class HVAEObjective(Objective):
    """What the image losses share: beta's warm-up and the seeded evaluation."""

    model_kind = "hvae_vamp"

    def __init__(self, warmup: int = 100):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup must be a number of epochs >= 0, got {warmup!r}")
        self.warmup = warmup

    def beta(self, epoch: int) -> float:
        return warmup_weight(epoch, self.warmup)

    @abc.abstractmethod
    def losses(self, model, x: Tensor, beta: float) -> tuple[Tensor, dict[str, Tensor], dict[str, Tensor]]:
        """(what the update follows, the logged values, the encoding pass's terms)."""

    def train_step(self, model, optimizers, batch, progress):
        model.train()
        beta = self.beta(progress.epoch)
        total, values, t = self.losses(model, batch["x"], beta)
        optimizer_step(optimizers["model"], total)
        return {**{k: v.detach() for k, v in values.items()}, "beta": beta, "recon_nll": -t["log_px"].detach().mean(),
                "kl": kl_sample(t).detach().mean()}  # fmt: skip

    def eval_step(self, model, batch):
        model.eval()
        x = batch["x"]
        seed = int(x.double().sum().item() * 1e3 + len(x)) % (2**62)  # a function of the batch, aside from training's stream
        with torch.no_grad(), torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            _, values, t = self.losses(model, x, 1.0)
        return {"loss": values["loss"], "elbo_loss": vae_loss(t, 1.0).mean(), "recon_nll": -t["log_px"].mean(),
                "kl": kl_sample(t).mean()}  # fmt: skip


@OBJECTIVES.register("hvae_vae")
class HierarchicalVAE(HVAEObjective):
    """The VAE of MIM's image experiments (``convhvae_2level``, ``pixelhvae_2level``; docs/mim.md §3.3)."""

    def losses(self, model, x, beta):
        t = model.terms(x)
        loss = vae_loss(t, beta).mean()
        return loss, {"loss": loss}, t


@OBJECTIVES.register("hvae_mim")
class HierarchicalMIM(HVAEObjective):
    """A-MIM (``*-amim``), or S-MIM with ``sample=True`` (``convhvae_2level-smim``; docs/mim.md §3.3)."""

    def __init__(self, sample: bool = True, warmup: int = 100, decoded_x: str = "auto"):
        super().__init__(warmup)
        if decoded_x not in DECODED_X:
            raise ConfigError(f"decoded_x must be one of {', '.join(DECODED_X)}, got {decoded_x!r}")
        self.sample, self.decoded_x = bool(sample), decoded_x

    def how(self, model) -> str:
        if self.decoded_x != "auto":
            return self.decoded_x
        return "sample" if model.decoder == "pixel" else "mean"

    def losses(self, model, x, beta):
        t = model.terms(x)
        enc = encoding_mim_loss(t, beta).mean()
        if not (self.sample and beta >= 1.0):
            return enc, {"loss": enc}, t
        surrogate, value = decoding_pass(model, len(x), beta, self.how(model))
        loss = enc.detach() + beta * value.detach().mean()
        return enc + beta * surrogate.mean(), {"loss": loss, "enc_loss": enc.detach(), "dec_loss": value.detach().mean()}, t
