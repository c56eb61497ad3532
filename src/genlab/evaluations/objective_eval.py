"""The objective's own evaluation quantities (its ``eval_step``) on each evaluation set.

For the disent VAEs this is the paper's reconstruction NLL of the posterior mean on the training and
the excluded (test) combinations (``recon_nll``, with the KL), for the ground-truth decoder its NLL,
for the composer the NLL of the target images of fixed triplets.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator, Sequence

from ignite.engine import Events

from genlab.data.batches import SequentialBatches
from genlab.data.sources import sample
from genlab.evaluations.base import EvalContext, register_evaluation
from genlab.training.engines import create_evaluator
from genlab.training.handlers import evaluate
from genlab.training.reporting import evaluation_progress


def _cap(*sizes: int | None) -> int | None:
    """The smallest of the sizes given (None: no limit)."""
    given = [int(s) for s in sizes if s is not None]
    return min(given) if given else None


class FirstExamples:
    """The first ``n`` examples of the batches ``batches`` (dicts whose tensors share their first
    axis with ``x``), the last batch cut to fit; drawn as they are iterated."""

    def __init__(self, batches: Iterable[dict], n: int):
        self.batches, self.n = batches, int(n)

    def __len__(self) -> int:
        per = getattr(self.batches, "batch_size", None)
        if per is None or not hasattr(self.batches, "__len__"):
            raise TypeError("unknown number of batches")
        return min(len(self.batches), -(-self.n // int(per)))

    def __iter__(self) -> Iterator[dict]:
        seen = 0
        for batch in self.batches:
            if seen >= self.n:
                return
            size = len(batch["x"])
            if seen + size > self.n:
                keep = self.n - seen
                batch = {k: v[:keep] if getattr(v, "shape", ())[:1] == (size,) else v for k, v in batch.items()}
                size = keep
            seen += size
            yield batch


def _length(batches) -> int | None:
    try:
        return len(batches)
    except TypeError:
        return None


@register_evaluation("objective_eval")
def objective_eval(
    ctx: EvalContext,
    samples: int | None = None,
    batch_size: int = 512,
    quantities: Sequence[str] = ("recon_nll", "kl"),
    sample_seed: int = 1,
    max_examples: int | None = None,
) -> tuple[dict[str, float], dict[str, Any]]:
    """``<set>.<quantity>`` for every evaluation set and every listed quantity the objective's
    ``eval_step`` returns (batch-size-weighted means). A set that is a batch source is evaluated on a
    seeded random ``samples`` of its examples (all of them when None), in order, ``batch_size`` at a
    time; a set given as batches is evaluated as it is. ``max_examples`` caps every set (a smoke
    run's evaluation): at most that many random examples of a source, the first ones of batches.
    Long sets log progress lines at the run's progress interval. Info ``objective_eval_examples``:
    the examples each set was evaluated on."""
    metrics, examples = {}, {}
    for split, data in ctx.sets.items():
        if hasattr(data, "batch"):
            batches = SequentialBatches(sample(data, _cap(samples, max_examples), seed=sample_seed), batch_size)
        else:
            batches = data if max_examples is None else FirstExamples(data, max_examples)
        evaluator = create_evaluator(ctx.model, ctx.objective)
        seen = {"examples": 0}

        @evaluator.on(Events.ITERATION_COMPLETED)
        def count(engine) -> None:
            seen["examples"] += int(engine.state.output[1])  # the eval step's (quantities, batch size)

        evaluation_progress(evaluator, _length(batches), f"objective_eval {split}: batch")
        measured = evaluate(evaluator, batches)
        metrics.update({f"{split}.{q}": float(measured[q]) for q in quantities if q in measured})
        examples[split] = seen["examples"]
    return metrics, {"objective_eval_examples": examples}
