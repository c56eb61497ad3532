"""The ``evaluation`` ingredient: the end-of-run measurements the disent experiments share.

Posterior-mean reconstruction NLL on the training and excluded (test) combinations, and DCI (the
paper's measure, disent.md 5.2), MIG and the FactorVAE score of an encoder on the training split.
``evaluation.samples`` / ``evaluation.dci_samples`` cap how many images they see (None: all).
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.metrics.representations import disentanglement_scores
from genlab.training.engines import create_evaluator, evaluate_parts

evaluation = Ingredient("evaluation")


@evaluation.config
def config():
    samples = None  # images per split for the end-of-run NLL (None: the whole split)
    dci_samples = None  # training images DCI and MIG see (None: the whole training split)
    dci_alpha = 0.02  # Lasso penalty of DCI (disent.md 5.2)
    mig_bins = 20  # equal-width bins per latent for MIG (Chen et al. 2018)
    factorvae_votes = 800  # training and evaluation votes of the FactorVAE score (Kim & Mnih 2018)
    batch_size = 512


@evaluation.capture
def final_nll(model, objective, parts: dict, quantities: tuple[str, ...], samples, batch_size) -> dict[str, dict[str, float]]:
    """``{part: {quantity: value}}`` of ``objective.eval_step`` over each non-empty part."""
    measured = evaluate_parts(create_evaluator(model, objective), parts, samples, batch_size)
    return {part: {q: metrics[q] for q in quantities} for part, metrics in measured.items()}


@evaluation.capture
def encoder_scores(model, train_data, dci_samples, dci_alpha, mig_bins, factorvae_votes, batch_size):
    """DCI, MIG and the FactorVAE score of ``model.encode``'s posterior means on ``train_data``."""
    model.eval()
    return disentanglement_scores(
        lambda x: model.encode(x)[0], train_data, dci_samples, dci_alpha, mig_bins, factorvae_votes, batch_size
    )
