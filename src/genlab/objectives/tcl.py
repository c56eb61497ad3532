"""Time-contrastive learning (Hyvärinen & Morioka, NeurIPS 2016, "Unsupervised Feature Extraction by
Time-Contrastive Learning and Nonlinear ICA"), as the ICE-BeeM simulations train it (Khemakhem et al.,
NeurIPS 2020; docs/icebeem.md §3e, §4d, §5a).

    L = mean_i CE(softmax(W h(x_i) + b), k_i) + weight_decay * sum_W 0.5 ||W||_F^2     (docs/icebeem.md §4d)

k_i is the segment of point i (``u`` is one-hot: k = argmax u); the cross-entropy is averaged over
the batch and the decay (TF's ``l2_loss``, weight_decay 1e-4) covers the weight matrices of the MLP
and the MLR, no bias.

Two stages (docs/icebeem.md §3e), run as two phases that name the optimizer each trains:

- ``mlr``: only the MLR, on the features of the MLP frozen at its random initialisation (1e4 steps).
  The features are computed under ``no_grad``, so nothing reaches the MLP, and the decay counts the
  MLR's weight only: the MLP's weights are constants there. (The original's logged loss also held
  the frozen MLP's constant decay term; its gradients were these.)
- ``all``: every parameter (2e4 steps), from where stage 1 left them, with a fresh optimizer, as
  the original started a new TF graph that loaded only the stage-1 weights.

The stage is which optimizer the phase hands ``train_step``: ``all`` when it is among them (so a run
of one phase, handed every optimizer, trains everything without MLR pretraining), else ``mlr``.
Optimizer names are this objective's own, the phase config only selects among them, and there is
no counter to checkpoint (``state_dict`` is empty). The paper's phases::

    [{"name": "mlr", "iterations": 10000, "optimizers": ["mlr"]},
     {"name": "all", "iterations": 20000, "optimizers": ["all"]}]

Both optimizers come from the run's ``OptimizerFactory``; the paper's is SGD with momentum 0.9 and
lr 0.01 (docs/icebeem.md §5a). Its staircase decay (x0.1 every 5e4 steps) is never reached in 1e4 +
2e4 steps, so it needs nothing here (the ``step`` scheduler would express it). The paper evaluates
an exponential moving average of the weights: TF's ``ExponentialMovingAverage(0.9999,
num_updates=global_step)``, whose decay is min(0.9999, (1 + t) / (10 + t)) (about 0.99955 at t = 2e4)
and restarted with stage 2. That is the engine's ``ema_decay=0.9999`` with ``ema_warmup`` (t counted
per phase) and ``evaluate_ema`` (``training.tcl``); a constant 0.9999 from the start would still weigh
the random initialisation by 0.9999^3e4 ~ 0.05 at the end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genlab.objectives.base import OBJECTIVES, Objective, optimizer_step


def weight_decay_term(weights, weight_decay: float) -> torch.Tensor:
    """weight_decay * sum_W 0.5 ||W||_F^2 (TF's ``l2_loss``), over the given weight matrices."""
    return 0.5 * weight_decay * sum(w.square().sum() for w in weights)


@OBJECTIVES.register("tcl")
class TimeContrastiveLearning(Objective):
    model_kind = "tcl"
    """TCL's segment classification loss; ``weight_decay`` multiplies 0.5 ||W||^2 of every weight."""

    def __init__(self, weight_decay: float = 1e-4):
        self.weight_decay = float(weight_decay)

    def make_optimizers(self, model, optimizer):
        """``mlr``: the classifier only (stage 1); ``all``: every parameter (stage 2)."""
        return {"mlr": optimizer(model.mlr_parameters()), "all": optimizer(model.parameters())}

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, weights) -> tuple[torch.Tensor, torch.Tensor]:
        cross_entropy = F.cross_entropy(logits, labels)
        return cross_entropy, cross_entropy + weight_decay_term(weights, self.weight_decay)

    def train_step(self, model, optimizers, batch, progress):
        x, labels = batch["x"], batch["u"].argmax(1)
        if "all" in optimizers:  # stage 2
            optimizer, logits, weights = optimizers["all"], model(x), model.weight_parameters()
        elif "mlr" in optimizers:  # stage 1: the MLP stays at its random initialisation
            with torch.no_grad():
                features = model.features(x)
            optimizer, logits, weights = optimizers["mlr"], model.mlr(features), model.weight_parameters(mlp=False)
        else:
            raise KeyError(f"TCL trains with optimizer 'mlr' (stage 1) or 'all' (stage 2); given {sorted(optimizers)}")
        cross_entropy, loss = self._loss(logits, labels, weights)
        optimizer_step(optimizer, loss)
        logits = logits.detach()
        return {"loss": loss.detach(), "cross_entropy": cross_entropy.detach(),
                "accuracy": (logits.argmax(1) == labels).float().mean()}  # fmt: skip

    @torch.no_grad()
    def eval_step(self, model, batch):
        """The stage-2 loss (decay of every weight), its cross-entropy and the segment accuracy."""
        labels = batch["u"].argmax(1)
        logits = model(batch["x"])
        cross_entropy, loss = self._loss(logits, labels, model.weight_parameters())
        return {"loss": loss, "cross_entropy": cross_entropy, "accuracy": (logits.argmax(1) == labels).float().mean()}
