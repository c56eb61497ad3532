"""End-of-run evaluations, by name: an experiment lists the ones it runs in ``evaluation.run``.

Every module of this package is imported on the first look-up in ``EVALUATIONS``; a new evaluation
(importance-sampled NLL, MCC of recovered sources, KSG mutual information, FID ...) is a new module
with a function registered by ``@register_evaluation("name")``. See ``base`` for the contract.
"""

from genlab.evaluations.base import EVALUATIONS, EvalContext, evaluation_options, register_evaluation, run_evaluations

__all__ = ["EVALUATIONS", "EvalContext", "evaluation_options", "register_evaluation", "run_evaluations"]
