"""The losses of MIM's toy and PCA experiments (Livne, Swersky & Fleet 2019, "MIM: Mutual Information
Machine"; docs/mim.md §3.1, §3.2, §4.1): ``mim`` (A-MIM, and S-MIM with ``sample=True``), ``vae_mc``
(the VAE with the original's one-sample KL) and ``ae`` (the delta-encoder auto-encoder), each with the
``inv_H`` variant of the entropy-regulariser experiment. They train ``gaussian_mlp`` models.

Notation (docs/mim.md §3): A(x, z) = log p(x|z) + log p(z), the decoder's joint; B(x, z) = log q(z|x) +
log q(x), the encoder's. Every expectation uses one reparameterised sample; losses are means over
the batch of per-example sums over dimensions.

q(x), ``q_x``:

- ``"marginal"`` (default; the original's ``--q-x marginal`` since its 2020-03-06 commit, §3.1): the
  decoder's marginal by one importance sample, log q(x) ~ log p(x|z') + log p(z') - log q(z'|x) with
  z' ~ q(z|x); on the encoding pass z' is the z of the loss, so B = A identically and the MIM encoding
  loss is -1/2 (1 + beta) A: **the encoder entropy cancels** (nothing keeps sigma(x) off its floor,
  docs/mim.md §9.2). This is the form that made the published figures.
- ``"decoder"``: log q(x) := log p(x|z), the original's earlier approximation and the form of NVIDIA
  NeMo's A-MIM (the same first author): at beta = 1 the encoding loss is -log p(x|z) - 1/2 [log p(z)
  + log q(z|x)], which keeps the encoder-entropy term.

The losses (docs/mim.md §3.2):

- ``mim``, encoding pass (x from the data, z ~ q(z|x)):  L_enc = -1/2 [A + beta B].
  ``sample=True`` (S-MIM, ``--mim-samp``) adds, at every step once beta >= 1, the decoding pass:
  z ~ P(z) = N(0, I), x ~ p(x|z) reparameterised (gradients flow through x), L_dec = -1/2 [A + beta B]
  at (x, z), log q(x) from a fresh z' ~ q(z|x); the update follows grad L_enc + beta grad L_dec and
  the logged ``loss`` is (L_enc + L_dec) / 2. Without it (A-MIM) only L_enc trains.
  ``inv_H=True`` (MIM - H, ``--inv-H-loss``): + log M(x, z) on each pass, M = 1/2 e^A + 1/2 e^B (a
  logsumexp); on the encoding pass that is 1/2 (1 - beta) A, zero once beta = 1, so after the warm-up
  only the decoding pass trains: the mechanism of the paper's "strong collapse".
- ``vae_mc``: L = -log p(x|z) + beta [log q(z|x) - log p(z)], the KL by the one sample z (not
  analytic, as the original). ``inv_H=True`` (VAE + H): - B at full weight, whatever beta.
- ``ae`` (``--ae-loss``): L = -log p(x|z) with the encoder's sigma fixed at the floor (beta = 0 in
  training and evaluation, as the original).

beta = min(1, e / ``warmup``) in the 1-based epoch e (``genlab.training.schedules.warmup_weight``);
evaluation always uses beta = 1 (0 for ``ae``). The same ``warmup`` drives the Noam learning rate and
the early-stopping gate (``configs/mim.py``). Evaluation passes log ``loss`` (the loss at beta = 1; for
S-MIM with its decoding pass, halved as the original's test loss), ``H_q_x`` (the one-sample NLL
-log q(x)) and, over the whole pass, ``MI_ksg`` (KSG, k = 5, ``genlab.metrics.ksg``; ``eval_ksg``).
``frames`` keeps the first 200 test points of every evaluation (x, a sampled reconstruction, q(z|x)) in
the objective's checkpointed state: the frames of E1's animation (``toy_frames.pt``, drawn as a GIF by
``genlab.analysis.mim``).
"""

from __future__ import annotations

import abc
import math

import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.metrics.ksg import ksg_mi
from genlab.models.gaussian_mlp import normal_log_prob
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step
from genlab.training.schedules import warmup_weight

Q_X = ("marginal", "decoder")
FRAME_POINTS = 200  # points of each evaluation's view with ``frames`` (docs/mim.md §6.2 shows 200)
_LOG_HALF = math.log(0.5)


def reparameterised(mean: Tensor, std: Tensor) -> Tensor:
    return mean + std * torch.randn_like(mean)


def encoding_pass(model, x: Tensor, q_x: str = "marginal") -> dict[str, Tensor]:
    """Per-example log-densities at (x, z ~ q(z|x)) and the sampled reconstruction x~ ~ p(x|z)."""
    q_mean, q_std = model.encode(x)
    z = reparameterised(q_mean, q_std)
    p_mean, p_std = model.decode(z)
    log_px_z, log_pz, log_qz_x = normal_log_prob(x, p_mean, p_std), model.prior_log_prob(z), normal_log_prob(z, q_mean, q_std)
    log_qx = log_px_z + log_pz - log_qz_x if q_x == "marginal" else log_px_z  # §3.1: the same z
    return {"x": x, "z": z, "q_mean": q_mean, "q_std": q_std, "p_mean": p_mean, "p_std": p_std,
            "log_px_z": log_px_z, "log_pz": log_pz, "log_qz_x": log_qz_x, "log_qx": log_qx}  # fmt: skip


def decoding_pass(model, n: int, like: Tensor, q_x: str = "marginal") -> dict[str, Tensor]:
    """Per-example log-densities at (x ~ p(x|z), z ~ P(z) = N(0, I)), x reparameterised; log q(x)
    from a fresh re-encoding z' ~ q(z|x) (§3.1)."""
    z = model.sample_anchor(n, like)
    p_mean, p_std = model.decode(z)
    x = reparameterised(p_mean, p_std)
    q_mean, q_std = model.encode(x)
    log_px_z, log_pz, log_qz_x = normal_log_prob(x, p_mean, p_std), model.prior_log_prob(z), normal_log_prob(z, q_mean, q_std)
    if q_x == "marginal":
        z2 = reparameterised(q_mean, q_std)
        m2, s2 = model.decode(z2)
        log_qx = normal_log_prob(x, m2, s2) + model.prior_log_prob(z2) - normal_log_prob(z2, q_mean, q_std)
    else:
        log_qx = log_px_z
    return {"x": x, "z": z, "log_px_z": log_px_z, "log_pz": log_pz, "log_qz_x": log_qz_x, "log_qx": log_qx}


def joints(t: dict[str, Tensor]) -> tuple[Tensor, Tensor]:
    """(A, B) = (log p(x|z) + log p(z), log q(z|x) + log q(x)) per example."""
    return t["log_px_z"] + t["log_pz"], t["log_qz_x"] + t["log_qx"]


def log_mixture(a: Tensor, b: Tensor) -> Tensor:
    """log M = log(1/2 e^A + 1/2 e^B), stably."""
    return torch.logaddexp(a, b) + _LOG_HALF


class GaussianMIMObjective(Objective):
    """What the three toy losses share: beta's warm-up, q(x), evaluation (loss, H_q_x and the pass's
    KSG mutual information)."""

    model_kind = "gaussian_mlp"

    def __init__(self, warmup: int = 3, inv_H: bool = False, q_x: str = "marginal", eval_ksg: bool = True, frames: bool = False):
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ConfigError(f"warmup must be a number of epochs >= 0, got {warmup!r}")
        if q_x not in Q_X:
            raise ConfigError(f"q_x must be one of {', '.join(Q_X)}, got {q_x!r}")
        self.warmup, self.inv_H, self.q_x, self.eval_ksg = warmup, bool(inv_H), q_x, bool(eval_ksg)
        self.frames = bool(frames)
        self._pairs: list[tuple[Tensor, Tensor]] = []
        self._view: list[dict[str, Tensor]] = []
        self.views: list[dict[str, Tensor]] = []  # with ``frames``: one per evaluation, checkpointed

    def beta(self, epoch: int) -> float:
        return warmup_weight(epoch, self.warmup)

    @abc.abstractmethod
    def loss_terms(self, model, batch: dict, beta: float) -> tuple[Tensor, Tensor | None, dict[str, Tensor]]:
        """(L_enc, L_dec or None, the encoding pass's terms) at ``beta``."""

    def train_step(self, model, optimizers, batch, progress):
        model.train()
        beta = self.beta(progress.epoch)
        enc_loss, dec_loss, terms = self.loss_terms(model, batch, beta)
        total = enc_loss if dec_loss is None else enc_loss + beta * dec_loss
        optimizer_step(optimizers["model"], total)
        out = {"loss": enc_loss.detach() if dec_loss is None else (enc_loss.detach() + dec_loss.detach()) / 2,
               "beta": beta, "recon_nll": -terms["log_px_z"].detach().mean()}  # fmt: skip
        if dec_loss is not None:
            out.update(enc_loss=enc_loss.detach(), dec_loss=dec_loss.detach())
        return out

    def eval_beta(self) -> float:
        return 1.0

    def start_evaluation(self) -> None:
        self._pairs, self._view = [], []

    def _keep_view(self, terms: dict[str, Tensor]) -> None:
        """The first ``FRAME_POINTS`` points of a pass: x, a sampled reconstruction and q(z|x) (E1's
        animation frames, docs/mim.md §6.2)."""
        kept = sum(len(v["x"]) for v in self._view)
        if kept < FRAME_POINTS:
            n = FRAME_POINTS - kept
            recon = terms["p_mean"][:n] + terms["p_std"][:n] * torch.randn_like(terms["p_mean"][:n])
            self._view.append({"x": terms["x"][:n].cpu(), "x_recon": recon.cpu(), "q_mean": terms["q_mean"][:n].cpu(),
                               "q_std": terms["q_std"][:n].cpu()})  # fmt: skip

    @torch.no_grad()
    def eval_step(self, model, batch):
        model.eval()
        x = batch["x"]
        # the evaluation's samples are a function of the batch, drawn aside from the training stream's
        # generator: the same model scores a batch the same, and evaluating does not change training
        seed = int(x.double().abs().sum().item() * 1e6) % (2**62)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            enc_loss, dec_loss, terms = self.loss_terms(model, batch, self.eval_beta())
            if self.frames:
                self._keep_view(terms)
        if self.eval_ksg:
            self._pairs.append((terms["x"], terms["z"]))
        loss = enc_loss if dec_loss is None else (enc_loss + dec_loss) / 2
        return {"loss": loss, "H_q_x": -terms["log_qx"].mean(), "recon_nll": -terms["log_px_z"].mean()}

    def finish_evaluation(self, model) -> dict[str, float]:
        if self.frames and self._view:
            self.views.append({k: torch.cat([v[k] for v in self._view]) for k in self._view[0]})
            self._view = []
        if not self.eval_ksg or not self._pairs:
            return {}
        x, z = (torch.cat(parts).cpu().numpy() for parts in zip(*self._pairs))
        self._pairs = []
        return {"MI_ksg": ksg_mi(x, z, k=5)}

    def state_dict(self) -> dict:
        return {"views": list(self.views)} if self.frames else {}

    def load_state_dict(self, state: dict) -> None:
        self.views = list(state.get("views", []))


@OBJECTIVES.register("mim")
class MIM(GaussianMIMObjective):
    """A-MIM, or S-MIM with ``sample=True`` (docs/mim.md §3.2); ``inv_H``: MIM - H."""

    def __init__(self, sample: bool = True, warmup: int = 3, inv_H: bool = False, q_x: str = "marginal", eval_ksg: bool = True,
                 frames: bool = False):  # fmt: skip
        super().__init__(warmup, inv_H, q_x, eval_ksg, frames)
        self.sample = bool(sample)

    def pass_loss(self, t: dict[str, Tensor], beta: float) -> Tensor:
        a, b = joints(t)
        loss = -0.5 * (a + beta * b)
        if self.inv_H:
            loss = loss + log_mixture(a, b)
        return loss.mean()

    def loss_terms(self, model, batch, beta):
        enc = encoding_pass(model, batch["x"], self.q_x)
        dec_loss = None
        if self.sample and beta >= 1.0:  # S-MIM's decoding pass, once the warm-up is over (§4.1)
            dec_loss = self.pass_loss(decoding_pass(model, len(batch["x"]), batch["x"], self.q_x), beta)
        return self.pass_loss(enc, beta), dec_loss, enc


@OBJECTIVES.register("vae_mc")
class MonteCarloVAE(GaussianMIMObjective):
    """The VAE of MIM's toys: the KL by one sample (docs/mim.md §3.2); ``inv_H``: VAE + H."""

    def loss_terms(self, model, batch, beta):
        t = encoding_pass(model, batch["x"], self.q_x)
        loss = -t["log_px_z"] + beta * (t["log_qz_x"] - t["log_pz"])
        if self.inv_H:
            loss = loss - joints(t)[1]
        return loss.mean(), None, t


@OBJECTIVES.register("ae")
class AutoEncoder(MonteCarloVAE):
    """The auto-encoder baseline (``--ae-loss``, docs/mim.md §2.1, §3.2): -log p(x|z) with a delta
    encoder (sigma fixed at the floor); beta = 0 in training and evaluation."""

    model_options = {"delta_encoder": True}

    def beta(self, epoch: int) -> float:
        return 0.0

    def eval_beta(self) -> float:
        return 0.0
