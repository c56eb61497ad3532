"""Flow contrastive estimation (Gao et al., CVPR 2020), as the 2D reference trains it (docs/fce.md §3),
and the flow's maximum-likelihood baseline (Glow-MLE of the paper's 2D figure, docs/fce.md §5).

``fce``: with a data batch x and as many flow samples x~ = g_alpha(z), z ~ N(0, I),

    V(alpha, theta) = mean_i log sigma(log p_theta(x_i) - log q_alpha(x_i))
                    + mean_j log sigma(log q_alpha(x~_j) - log p_theta(x~_j))         (docs/fce.md §3.1)

Each iteration takes exactly one Adam step on one player (docs/fce.md §3.2, §3.3): the EBM on -V (NCE
with the flow as noise) or the flow on +V (which, for the optimal EBM, minimises 2 JSD - log 4). The
first iteration trains the EBM; the next trains the flow iff the accuracy of this iteration's batch,
measured before the update, exceeds ``threshold`` (0.6). The flag is objective state, checkpointed.

The original back-propagated into both players every step and zeroed the other one's gradients
before its step. Here the idle player is kept out of the graph: the EBM step draws the flow's
quantities under ``no_grad`` and the flow step freezes the EBM's parameters (the gradient still
flows through log p_theta(x~) to the samples). Same updates, half the backward work on EBM steps.

One deliberate change at iteration 0 (docs/fce.md §6 item 3): the flow's density of the data batch is
computed before the samples, so Glow's ActNorms are initialised from data before anything is
sampled (the original sampled first, through uninitialised ActNorms). And flow samples that
overflow to inf are redrawn instead of turning V into NaN (``redraw_nonfinite``; see ``_sample``).

``flow_mle``: the flow alone, by maximum likelihood: loss = -mean_i log q_alpha(x_i).

Both log ``neg_value`` (-V, log 4 = 1.386 at equilibrium), and on the evaluation sample the
flow's NLL and, for datasets with a closed-form density (8gaussians), ``mse_flow`` / ``mse_ebm``:
the mean squared error of log q / log p_theta (normalised by its learned constant) against the true
log density, and ``mse_ebm_grid`` with the EBM normalised numerically on the [-4, 4]^2 grid instead.
"""

from __future__ import annotations

import math

import torch

from genlab.losses.nce import fce_accuracy, fce_value
from genlab.metrics.density_grid import grid_cell_area, grid_log_density
from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step

MAX_REDRAWS = 10
EVAL_NOISE_SEED = 0  # evaluation draws the same flow samples every time: its numbers move only with the models
GRID_LIM, GRID_SIZE = 4.0, 200  # the numerical normalisation of the EBM for ``mse_ebm_grid``


def flow_device(flow) -> torch.device:
    return next(flow.parameters()).device


def _eval_noise(flow, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator(device=device).manual_seed(EVAL_NOISE_SEED)
    return flow.sample(n, generator=generator)


def density_errors(model, batch: dict) -> dict[str, torch.Tensor]:
    """The flow's NLL of the batch and, when the batch carries the true ``log_density``, the MSE of
    each model's log density against it (docs/fce.md §4.1, on a fixed sample instead of the training set)."""
    x = batch["x"]
    log_q = model.flow.log_prob(x)
    out = {"flow_nll": -log_q.mean()}
    truth = batch.get("log_density")
    if truth is not None:
        out["mse_flow"] = (log_q - truth).pow(2).mean()
        if model.ebm is not None:
            out["mse_ebm"] = (model.ebm.log_prob(x) - truth).pow(2).mean()
            _, _, grid = grid_log_density(model.ebm.log_prob, lim=GRID_LIM, n=GRID_SIZE, device=x.device)
            # log of the Riemann sum of exp(log p_theta) over the grid: the numerical normaliser
            log_z_grid = torch.logsumexp(grid.flatten(), 0).to(x.device) + math.log(grid_cell_area(GRID_LIM, GRID_SIZE))
            out["mse_ebm_grid"] = (model.ebm.log_prob(x) - log_z_grid - truth).pow(2).mean()
    return out


@OBJECTIVES.register("fce")
class FlowContrastiveEstimation(Objective):
    model_options = {"with_ebm": True}

    def __init__(self, flow_lr: float = 7e-4, threshold: float = 0.6, redraw_nonfinite: bool = True):
        self.flow_lr, self.threshold = float(flow_lr), float(threshold)
        self.redraw_nonfinite = bool(redraw_nonfinite)
        self.train_ebm = True  # docs/fce.md §3.3: the first iteration trains the EBM
        self._redrawn = 0

    def _sample(self, flow, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` flow samples and their log q, redrawing the base noise of any that overflow.

        Neither flow bounds its scales (docs/fce.md §6 items 5 and 6: MAF's alpha is unclamped, Glow's coupling
        divides by s in (0, 1)), so a tail draw of z can map to inf. One such sample makes V NaN, and
        the original, which never checked, then trained both models on NaN. The redrawn vectors
        (counted in ``batch.redrawn``; their mass under q is ~1e-4 at worst) are drawn from the same
        generator, so runs stay reproducible; ``redraw_nonfinite=False`` keeps the original's
        behaviour, and the run then stops at the NaN with its last checkpoint.
        """
        z = flow.sample_base(n)
        noise, log_q = flow.sample_from(z)
        self._redrawn = 0
        if not self.redraw_nonfinite:
            return noise, log_q
        for _ in range(MAX_REDRAWS):
            bad = ~(torch.isfinite(noise).all(1) & torch.isfinite(log_q))
            if not bool(bad.any()):
                return noise, log_q
            self._redrawn += int(bad.sum())
            z = torch.where(bad[:, None], flow.sample_base(n), z)
            noise, log_q = flow.sample_from(z)
        return noise, log_q  # still non-finite: the NaN stop reports it

    def make_optimizers(self, model, optimizer):
        """``training.lr`` (1e-3) is the EBM's; ``flow_lr`` (7e-4) the flow's; both Adam with betas
        (0.9, 0.999) by default (docs/fce.md §3.2)."""
        return {"ebm": optimizer(model.ebm.parameters()), "flow": optimizer(model.flow.parameters(), lr=self.flow_lr)}

    @staticmethod
    def _terms(model, x: torch.Tensor, noise: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """log p_theta on the data and on the flow samples, in one pass of the EBM."""
        log_p = model.ebm.log_prob(torch.cat([x, noise]))
        return log_p[: len(x)], log_p[len(x) :]

    def train_step(self, model, optimizers, batch, progress):
        x, ebm_step = batch["x"], self.train_ebm
        if ebm_step:
            with torch.no_grad():
                log_q_data = model.flow.log_prob(x)
                noise, log_q_noise = self._sample(model.flow, len(x))
            log_p_data, log_p_noise = self._terms(model, x, noise)
            value = fce_value(log_p_data, log_q_data, log_p_noise, log_q_noise)
            optimizer_step(optimizers["ebm"], -value)
        else:
            model.ebm.requires_grad_(False)  # the flow's loss must not train the EBM
            try:
                log_q_data = model.flow.log_prob(x)
                noise, log_q_noise = self._sample(model.flow, len(x))
                with torch.no_grad():  # log p_theta(x) carries no gradient to the flow
                    log_p_data = model.ebm.log_prob(x)
                log_p_noise = model.ebm.log_prob(noise)
                value = fce_value(log_p_data, log_q_data, log_p_noise, log_q_noise)
                optimizer_step(optimizers["flow"], value)
            finally:
                model.ebm.requires_grad_(True)
        accuracy = fce_accuracy(log_p_data.detach(), log_q_data.detach(), log_p_noise.detach(), log_q_noise.detach())
        self.train_ebm = bool(accuracy <= self.threshold)  # docs/fce.md §3.3: the flow next iff acc > 0.6
        return {"neg_value": -value.detach(), "accuracy": accuracy, "ebm_update": float(ebm_step), "redrawn": self._redrawn}

    @torch.no_grad()
    def eval_step(self, model, batch):
        x = batch["x"]
        noise, log_q_noise = _eval_noise(model.flow, len(x), x.device)
        log_q_data = model.flow.log_prob(x)
        log_p_data, log_p_noise = self._terms(model, x, noise)
        return {
            "neg_value": -fce_value(log_p_data, log_q_data, log_p_noise, log_q_noise),
            "accuracy": fce_accuracy(log_p_data, log_q_data, log_p_noise, log_q_noise),
            "log_z": model.ebm.log_z.detach().clone(),
            **density_errors(model, batch),
        }

    def state_dict(self):
        return {"train_ebm": self.train_ebm}

    def load_state_dict(self, state):
        self.train_ebm = bool(state["train_ebm"])


@OBJECTIVES.register("flow_mle")
class FlowMLE(Objective):
    """No hyperparameters: the flow alone, by maximum likelihood, with the run's optimizer."""

    model_options = {"with_ebm": False}

    def make_optimizers(self, model, optimizer):
        return {"flow": optimizer(model.flow.parameters())}

    def train_step(self, model, optimizers, batch, progress):
        nll = -model.flow.log_prob(batch["x"]).mean()
        optimizer_step(optimizers["flow"], nll)
        return {"nll": nll.detach()}

    @torch.no_grad()
    def eval_step(self, model, batch):
        return density_errors(model, batch)
