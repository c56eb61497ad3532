"""DCI (the disent paper's measure), MIG and the FactorVAE score of the model's encoder.

The representation is the posterior mean ``model.encode(x)[0]`` on the training part of a factor
dataset (Montero et al. 2021, docs/disent.md §5.2): DCI after Eastwood & Williams (2018) with Lasso
regressors, MIG after Chen et al. (2018), the FactorVAE score after Kim & Mnih (2018).
"""

from __future__ import annotations

import inspect
from typing import Any

from genlab.data.sources import sample
from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.metrics.factorvae_score import factorvae_score
from genlab.metrics.representations import disentanglement_scores

VOTE_IMAGES = inspect.signature(factorvae_score).parameters["batch_size"].default  # images per FactorVAE vote
POOL_SEED = 3  # seed of the capped pool of training images (``max_examples``)


@register_evaluation("disentanglement")
def disentanglement(
    ctx: EvalContext,
    dci_samples: int | None = None,
    dci_alpha: float = 0.02,
    mig_bins: int = 20,
    factorvae_votes: int = 800,
    batch_size: int = 512,
    max_examples: int | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``train.dci_disentanglement``, ``train.dci_completeness``, ``train.dci_informativeness``,
    ``train.mig`` and ``train.factorvae_score``; DCI and MIG see ``dci_samples`` random training
    images (all when None), the FactorVAE score draws ``factorvae_votes`` votes to fit and as many to
    score. ``max_examples`` caps it all (a smoke run's evaluation): the scores are measured on that
    many random training images, and the FactorVAE score's votes (``VOTE_IMAGES`` images each, twice
    ``factorvae_votes`` of them) encode at most as many images again. Info: the DCI importance matrix
    ``dci_R`` and ``disentanglement_examples`` (the images each score saw)."""
    if not hasattr(ctx.model, "encode") or not hasattr(ctx.data.train, "classes"):
        raise ValueError("the disentanglement evaluation needs an encoder (model.encode) and factor data")
    data, votes = ctx.data.train, int(factorvae_votes)
    if max_examples is not None:
        data = sample(data, int(max_examples), seed=POOL_SEED)
        votes = min(votes, max(1, int(max_examples) // (2 * VOTE_IMAGES)))
    ctx.model.eval()
    scores, extra = disentanglement_scores(
        lambda x: ctx.model.encode(x)[0], data, dci_samples, dci_alpha, mig_bins, votes, batch_size
    )
    extra["disentanglement_examples"] = {
        "images": len(data),  # the training images the scores are drawn from
        "dci_mig": len(data) if dci_samples is None else min(int(dci_samples), len(data)),
        "factorvae_votes": votes,  # to fit, and as many to score
    }
    return {f"train.{k}": v for k, v in scores.items()}, extra
