"""ICE-BeeM by conditional flow contrastive estimation (Khemakhem et al., NeurIPS 2020, section 4
and the simulations of section 5.1; FCE: Gao et al., CVPR 2020), as the original trains it on the
nonlinear ICA simulations (docs/icebeem.md §4a).

The EBM log p_theta(x | u) and the flow q_alpha (``genlab.models.icebeem``) are the two sides of a
logistic classifier of data against flow samples with logit Delta = log p_theta(x|u) - log q_alpha(x):

    EBM:  minimise  BCE = -1/2 (mean_data log sigma(Delta) + mean_noise log sigma(-Delta))   over theta
    flow: minimise  -1/2 (mean_data log sigma(-Delta) + mean_noise log sigma(Delta))          over alpha

(the flow is trained with the labels flipped, so that the classifier is wrong; only log q carries
gradient, the noise points being fixed). What each step does is the run's *phase*
(``genlab.training.phases``): the phase's name without a trailing ``_<k>`` is one of

- ``flow_mle``: the flow alone by maximum likelihood, loss -mean log q(x) (the original: 1 epoch,
  Adam lr 1e-4, weight decay 1e-5, with the negative log likelihood summed over the batch);
- ``ebm_g``: the EBM step on W and c only (optimizer ``ebm_g``; the original's "g pretraining");
- ``ebm``: the EBM step on every EBM parameter (optimizer ``ebm``);
- ``flow``: the flow step (optimizer ``flow``).

The original's schedule (``configs/icebeem_sim.py``: ``training.phases``) is flow_mle, ebm_g (<= 15
epochs), ebm (<= 50), then three rounds of flow (<= 5 epochs, lr 1e-5) and ebm (<= 50, lr 3e-4),
each EBM phase stopping once the epoch's accuracy exceeds its cutoff (0.5, then 0.525) and each
flow phase once it falls below 0.475: stop rules on the ``accuracy`` this step returns (the
classifier's accuracy on the batch before the update, as the original counted it). Every
phase starts from fresh Adam moments, because the original built a new optimizer for each
(``fresh_optimizers``).

Noise (docs/icebeem.md §4a, §10.11). At the start of every EBM and flow phase the flow draws one
fixed set of noise points, as many as one epoch's data points (``progress.epoch_length`` batches),
shuffled at each of the phase's epochs; a step pairs its data batch with as many noise points, so
that a step sees B data and B noise points (the original: batches of 128 from the shuffled union of
the data and the noise, half of each in expectation). The noise set is objective state,
checkpointed, with the points' log q. In an EBM phase the flow does not move, so the log q of the
noise points is the one returned when they were drawn and that of each data point is computed once
per phase (the batch's ``index`` says which points it holds), not at every epoch: the same values up to rounding,
and an EBM step then costs the EBM alone. In EBM steps the noise points are conditioned on the uniform segment vector (1/K)
1, in flow steps on the segments of the data batch they are paired with, as in the original.

Quirk kept behind an option: the original's flow step scored the EBM without its augmentation
term while the EBM was trained with it (docs/icebeem.md §10.11). By default genlab scores the same
(augmented) EBM in both steps; ``flow_energy="plain"`` restores the original (named config
``training.icebeem_original``).

Evaluation (``eval_step``, on the whole training set in one batch: MCC is not a mean over batches)
gives the MCC of the readouts ``genlab.models.icebeem.ICEBeeM.readouts`` against the true sources,
raw and after FastICA: ``mcc_flow_ica`` is what the original reported (docs/icebeem.md §10.1),
``mcc_ebm_ica`` what the paper means.
"""

from __future__ import annotations

import re
import torch
import torch.nn.functional as F

from genlab.errors import ConfigError
from genlab.losses.nce import fce_accuracy
from genlab.metrics.mcc import recovery_scores, source_target
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step

ACTIONS = ("flow_mle", "ebm_g", "ebm", "flow")
FLOW_ENERGIES = ("augmented", "plain")


def action_of(phase: str) -> str:
    """What a phase does: its name without a trailing ``_<k>`` (``flow_2`` -> ``flow``)."""
    action = re.sub(r"_\d+$", "", phase)
    if action not in ACTIONS:
        raise ConfigError(f"icebeem_fce: phase {phase!r} is none of {', '.join(ACTIONS)} (optionally with a suffix _<k>)")
    return action


def _reset(optimizer: torch.optim.Optimizer) -> None:
    optimizer.state.clear()  # Adam's moments and step count start again, as a new optimizer's would


@OBJECTIVES.register("icebeem_fce")
class IceBeemFCE(Objective):
    model_kind = "icebeem"

    def __init__(self, flow_weight_decay: float = 1e-5, flow_energy: str = "augmented", fresh_optimizers: bool = True,
                 ica_seed: int = 0):  # fmt: skip
        if flow_energy not in FLOW_ENERGIES:
            raise ConfigError(f"icebeem_fce: flow_energy must be one of {', '.join(FLOW_ENERGIES)}, got {flow_energy!r}")
        self.flow_weight_decay, self.flow_energy = float(flow_weight_decay), flow_energy
        self.fresh_optimizers, self.ica_seed = bool(fresh_optimizers), int(ica_seed)
        self.noise: torch.Tensor | None = None  # the phase's fixed noise set, shuffled per epoch ...
        self.noise_log_q: torch.Tensor | None = None  # ... its log q when drawn
        self.noise_phase = -1  # the index of the phase it was drawn for
        self.data_log_q: torch.Tensor | None = None  # log q of each data point in the current EBM phase (NaN: not yet)
        self.cache_phase = -1

    def make_optimizers(self, model, optimizer):
        """Three optimizers of the run's kind (Adam): ``flow`` (weight decay ``flow_weight_decay``),
        ``ebm_g`` (W and c) and ``ebm`` (all of the EBM); phases set their learning rates."""
        return {
            "flow": optimizer(model.flow.parameters(), weight_decay=self.flow_weight_decay),
            "ebm_g": optimizer(model.ebm.g_parameters()),
            "ebm": optimizer(model.ebm.parameters()),
        }

    # --- noise -----------------------------------------------------------------------------------

    def _noise_batch(self, model, progress, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``size`` points of the phase's noise set and their log q: drawn at the phase's first step,
        reshuffled at each of its epochs, rows ``b size`` to ``(b + 1) size`` of the epoch's order at
        its ``b``-th step."""
        n = progress.epoch_length * size
        if self.noise_phase != progress.phase_index or self.noise is None or len(self.noise) != n:
            with torch.no_grad():
                noise, log_q = model.flow.sample(n)
            self.noise, self.noise_log_q = noise.detach(), log_q.detach()
            self.noise_phase = progress.phase_index
        b = progress.phase_iteration % progress.epoch_length
        if b == 0 and progress.phase_iteration > 0:
            order = torch.randperm(n, device=self.noise.device)
            self.noise, self.noise_log_q = self.noise[order], self.noise_log_q[order]
        rows = slice(b * size, (b + 1) * size)
        return self.noise[rows], self.noise_log_q[rows]

    @torch.no_grad()
    def _data_log_q(self, model, batch, progress) -> torch.Tensor:
        """log q of the data batch in an EBM phase, where the flow is fixed: computed once per point
        and phase (batches carry the points' ``index``) instead of at every epoch. Without an index,
        at every step."""
        x, index = batch["x"], batch.get("index")
        if index is None:
            return model.flow.log_prob(x)
        size = int(index.max()) + 1
        if self.cache_phase != progress.phase_index or self.data_log_q is None:
            self.data_log_q, self.cache_phase = torch.full((size,), float("nan"), device=x.device), progress.phase_index
        elif len(self.data_log_q) < size:
            grown = torch.full((size,), float("nan"), device=x.device)
            grown[: len(self.data_log_q)] = self.data_log_q
            self.data_log_q = grown
        cached = self.data_log_q[index]
        missing = torch.isnan(cached)
        if bool(missing.any()):
            cached[missing] = model.flow.log_prob(x[missing])
            self.data_log_q[index] = cached
        return cached

    # --- steps -----------------------------------------------------------------------------------

    def train_step(self, model, optimizers, batch, progress):
        action = action_of(progress.phase)
        if progress.phase_iteration == 0 and self.fresh_optimizers:
            for opt in optimizers.values():
                _reset(opt)
        model.train()
        x, u = batch["x"], batch["u"]
        if action == "flow_mle":
            nll = -model.flow.log_prob(x).mean()
            optimizer_step(optimizers["flow"], nll)
            return {"loss": nll.detach()}
        noise, noise_log_q = self._noise_batch(model, progress, len(x))
        both = torch.cat([x, noise])
        if action == "flow":
            log_q = model.flow.log_prob(both)  # the fixed noise points' log q moves with the flow
            with torch.no_grad():  # the data's segments condition the noise they are paired with
                log_p = model.ebm.log_prob(both, torch.cat([u, u]), augment=self.flow_energy == "augmented")
            delta = log_p - log_q
            d, n = delta[: len(x)], delta[len(x) :]
            loss = 0.5 * (F.softplus(d).mean() + F.softplus(-n).mean())  # flipped labels: -log sigma(-Delta_data) ...
            optimizer_step(optimizers["flow"], loss)
        else:
            log_q = torch.cat([self._data_log_q(model, batch, progress), noise_log_q])  # the flow is fixed here
            uniform = torch.full_like(u, 1.0 / u.shape[1])  # noise points: the average segment
            log_p = model.ebm.log_prob(both, torch.cat([u, uniform]), augment=True)
            delta = log_p - log_q
            d, n = delta[: len(x)], delta[len(x) :]
            loss = 0.5 * (F.softplus(-d).mean() + F.softplus(n).mean())  # -1/2 (log sigma(Delta_d) + log sigma(-Delta_n))
            optimizer_step(optimizers[action], loss)
        lp, lq = log_p.detach(), log_q.detach()
        accuracy = fce_accuracy(lp[: len(x)], lq[: len(x)], lp[len(x) :], lq[len(x) :])
        return {"loss": loss.detach(), "accuracy": accuracy}

    @torch.no_grad()
    def eval_step(self, model, batch):
        model.eval()
        target = source_target(batch["s"].cpu().numpy(), model.source_target)
        readouts = {k: v.cpu().numpy() for k, v in model.readouts(batch["x"], batch["u"]).items()}
        return {f"mcc_{k}": v for k, v in recovery_scores(readouts, target, ica_seed=self.ica_seed).items()}

    # --- checkpoint ------------------------------------------------------------------------------

    def state_dict(self):
        return {"noise": self.noise, "noise_log_q": self.noise_log_q, "noise_phase": self.noise_phase,
                "data_log_q": self.data_log_q, "cache_phase": self.cache_phase}  # fmt: skip

    def load_state_dict(self, state):
        self.noise, self.noise_log_q, self.noise_phase = state["noise"], state["noise_log_q"], int(state["noise_phase"])
        self.data_log_q, self.cache_phase = state["data_log_q"], int(state["cache_phase"])
