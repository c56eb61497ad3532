"""The ``evaluation`` ingredient of an experiment: which end-of-run evaluations, with which options.

``evaluation_ingredient(run, defaults)`` makes one: ``run`` lists the keys of
``genlab.evaluations.EVALUATIONS`` the experiment runs by default (``evaluation.run``), in order;
their options sit flat under ``evaluation`` (``evaluation.samples``, ``evaluation.dci_alpha``),
shown with their defaults, and an option none of them takes is refused at start-up.
``evaluation.smoke`` makes them smoke-sized (``max_examples``: at most 2,000 examples each).
"""

from __future__ import annotations

from typing import Callable, Sequence

from sacred import Ingredient

from genlab.evaluations.base import EVALUATIONS, evaluation_options


SMOKE_EXAMPLES = 2000  # what evaluation.smoke caps every evaluation at


def _cap():
    max_examples = None  # at most this many examples per evaluation set and score (None: no cap; evaluation.smoke: 2000)


def smoke():
    """Smoke-sized end-of-run evaluations: every evaluation set, the DCI/MIG sample and the FactorVAE
    score's images capped at 2,000 examples (``max_examples``), so that a run with ``training.smoke
    evaluation.smoke`` is small end to end."""
    max_examples = SMOKE_EXAMPLES  # smoke-sized: at most 2,000 examples per evaluation set and score


def evaluation_ingredient(run: Sequence[str] = (), defaults: Callable | None = None) -> Ingredient:
    """The options shown (and settable) are those of the default ``run`` list; an evaluation added
    to ``evaluation.run`` on the command line runs with its own defaults. When they take
    ``max_examples`` (a cap on every set), ``evaluation.smoke`` sets it to ``SMOKE_EXAMPLES``."""
    evaluation = Ingredient("evaluation")
    options = evaluation_options(run)
    capped = options.pop("max_examples", "absent") != "absent"
    evaluation.add_config(run=list(run), **options)
    if capped:
        evaluation.config(_cap)
        evaluation.named_config(smoke)
    if defaults is not None:
        evaluation.config(defaults)

    @evaluation.config_hook
    def check(config, command_name, logger):
        for name in config["evaluation"]["run"]:
            EVALUATIONS.get(name)  # unknown: fails listing the valid ones
        if capped and (config.get("training") or {}).get("smoke") and config["evaluation"].get("max_examples") is None:
            return {"max_examples": SMOKE_EXAMPLES}  # a smoke run (training.smoke) is small end to end
        return {}

    return evaluation


def evaluation_settings(cfg) -> tuple[list[str], dict]:
    """``(names, options)`` of an ``evaluation`` config."""
    cfg = {k: v for k, v in cfg.items() if not k.startswith("__")}  # not a named config's __doc__
    return list(cfg.pop("run")), cfg
