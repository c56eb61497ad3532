"""The objective's own evaluation quantities (its ``eval_step``) on each evaluation set.

For the disent VAEs this is the paper's reconstruction NLL of the posterior mean on the training and
the excluded (test) combinations (``recon_nll``, with the KL), for the ground-truth decoder its NLL,
for the composer the NLL of the target images of fixed triplets.
"""

from __future__ import annotations

from typing import Any, Sequence

from genlab.data.batches import SequentialBatches
from genlab.data.sources import sample
from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.training.engines import create_evaluator
from genlab.training.handlers import evaluate


@register_evaluation("objective_eval")
def objective_eval(
    ctx: EvalContext,
    samples: int | None = None,
    batch_size: int = 512,
    quantities: Sequence[str] = ("recon_nll", "kl"),
    sample_seed: int = 1,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``<set>.<quantity>`` for every evaluation set and every listed quantity the objective's
    ``eval_step`` returns (batch-size-weighted means). A set that is a batch source is evaluated on a
    seeded random ``samples`` of its examples (all of them when None), in order, ``batch_size`` at a
    time; a set given as batches is evaluated as it is."""
    evaluator = create_evaluator(ctx.model, ctx.objective)
    metrics = {}
    for split, data in ctx.sets.items():
        batches = data if not hasattr(data, "batch") else SequentialBatches(sample(data, samples, seed=sample_seed), batch_size)
        measured = evaluate(evaluator, batches)
        metrics.update({f"{split}.{q}": float(measured[q]) for q in quantities if q in measured})
    return metrics, {}
