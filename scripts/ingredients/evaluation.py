"""The ``evaluation`` ingredient of an experiment: which end-of-run evaluations, with which options.

``evaluation_ingredient(run, defaults)`` makes one: ``run`` lists the keys of
``genlab.evaluations.EVALUATIONS`` the experiment runs by default (``evaluation.run``), in order;
their options sit flat under ``evaluation`` (``evaluation.samples``, ``evaluation.dci_alpha``),
shown with their defaults, and an option none of them takes is refused at start-up.
"""

from __future__ import annotations

from typing import Callable, Sequence

from sacred import Ingredient

from genlab.evaluations.base import EVALUATIONS, evaluation_options


def evaluation_ingredient(run: Sequence[str] = (), defaults: Callable | None = None) -> Ingredient:
    """The options shown (and settable) are those of the default ``run`` list; an evaluation added
    to ``evaluation.run`` on the command line runs with its own defaults."""
    evaluation = Ingredient("evaluation")
    evaluation.add_config(run=list(run), **evaluation_options(run))
    if defaults is not None:
        evaluation.config(defaults)

    @evaluation.config_hook
    def check(config, command_name, logger):
        for name in config["evaluation"]["run"]:
            EVALUATIONS.get(name)  # unknown: fails listing the valid ones
        return {}

    return evaluation


def evaluation_settings(cfg) -> tuple[list[str], dict]:
    """``(names, options)`` of an ``evaluation`` config."""
    cfg = {k: v for k, v in cfg.items() if not k.startswith("__")}  # not a named config's __doc__
    return list(cfg.pop("run")), cfg
