"""DCI (the disent paper's measure), MIG and the FactorVAE score of the model's encoder.

The representation is the posterior mean ``model.encode(x)[0]`` on the training part of a factor
dataset (Montero et al. 2021, docs/disent.md §5.2): DCI after Eastwood & Williams (2018) with Lasso
regressors, MIG after Chen et al. (2018), the FactorVAE score after Kim & Mnih (2018).
"""

from __future__ import annotations

from typing import Any

from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.metrics.representations import disentanglement_scores


@register_evaluation("disentanglement")
def disentanglement(
    ctx: EvalContext,
    dci_samples: int | None = None,
    dci_alpha: float = 0.02,
    mig_bins: int = 20,
    factorvae_votes: int = 800,
    batch_size: int = 512,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``train.dci_disentanglement``, ``train.dci_completeness``, ``train.dci_informativeness``,
    ``train.mig`` and ``train.factorvae_score``; DCI and MIG see ``dci_samples`` random training
    images (all when None), the FactorVAE score draws ``factorvae_votes`` votes to fit and as many to
    score. Info: the DCI importance matrix ``dci_R``."""
    if not hasattr(ctx.model, "encode") or not hasattr(ctx.data.train, "classes"):
        raise ValueError("the disentanglement evaluation needs an encoder (model.encode) and factor data")
    ctx.model.eval()
    scores, extra = disentanglement_scores(
        lambda x: ctx.model.encode(x)[0], ctx.data.train, dci_samples, dci_alpha, mig_bins, factorvae_votes, batch_size
    )
    return {f"train.{k}": v for k, v in scores.items()}, extra
