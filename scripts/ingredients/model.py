"""The ``model`` ingredient of an experiment: which kind of model and its options, captured for
``genlab.models.build_model``.

``model_ingredient(kinds, named)`` makes one for an experiment: ``kinds`` are the model kinds it can
train (``genlab.models.MODELS``; the first is the default), ``named`` the paper's named configs.
``model.kind`` names the builder and ``model.options`` holds its options, shown with their defaults
and checked against the builder's signature. Every value of the kind's choice registries is a named
config (``model.kim``, ``model.glow``, ``model.mlp_mixer``), so a new architecture, flow or mixer is
usable at once. What the data decides (the input shape, the number of factors) is not config: it
comes from the data at run time and is recorded in the run's ``info["model_inputs"]``.

Settings the objective depends on (``Objective.model_options``, e.g. whether an EBM is built next to
a flow) are written into ``model.options`` here, so the recorded ``config["model"]`` alone rebuilds
the model. ``model.init_from`` starts training from another run's weights (a run directory or a
``model.pt``; ``model.init_strict=False`` copies only the tensors that match): transfer learning and
two-stage training. It is recorded in the run and is not ``training.resume``, which continues a run
exactly.
"""

from __future__ import annotations

from typing import Callable, Sequence

from sacred import Ingredient

from genlab.data import DATASETS
from genlab.errors import ConfigError
from genlab.models import MODELS, build_model, check_model, describe
from genlab.objectives import OBJECTIVES
from genlab.registry import UnknownNameError


def _filled(kind, options):
    options = {**(MODELS.get(kind).options() if kind in MODELS else {}), **options}  # with their defaults


def model_ingredient(kinds: Sequence[str], named: Sequence[Callable] = (), experiment: str = "this experiment") -> Ingredient:
    """``kinds``: the model kinds the experiment trains. With one, it is ``model.kind``'s default;
    with several (the ICE-BeeM simulations' three methods), ``model.kind`` defaults to None: the
    objective's ``model_kind`` (``training.ivae`` trains an ``ivae`` model)."""
    kinds = tuple(kinds)
    model = Ingredient("model")
    model.add_config(kind=kinds[0] if len(kinds) == 1 else None, options={}, init_from=None, init_strict=True)
    model.config(_filled)

    @model.config_hook
    def check(config, command_name, logger):
        """Unknown kinds, options and choice values fail at start-up; the builder's options are shown
        with their defaults, with the settings the objective needs written in."""
        cfg = config["model"]
        objective = config.get("training", {}).get("objective")
        cls = OBJECTIVES.get(objective) if objective in OBJECTIVES else None
        kind, updates = cfg["kind"], {}
        if kind is None:  # several kinds: the objective's
            kind = getattr(cls, "model_kind", None)
            if kind is None:
                raise ConfigError(f"objective {objective!r} does not name the model kind it trains; set model.kind "
                                  f"(one of {', '.join(kinds)})")
            updates = {"kind": kind, "options": {**MODELS.get(kind).options(), **cfg["options"]}} if kind in MODELS else {"kind": kind}
        if kind not in kinds:
            raise UnknownNameError(f"{experiment} model kind", kind, list(kinds))
        needed = dict(cls.model_options) if cls is not None else {}
        options = {**updates.get("options", cfg["options"]), **needed}
        check_model(kind, options)
        if needed:
            updates["options"] = options
        return updates

    for option, (registry, suffix) in MODELS.get(kinds[0]).choices.items():
        for name in registry:
            model.add_named_config(f"{name}{suffix}", {"options": {option: name}})
    for fn in named:
        model.named_config(fn)

    @model.command(unobserved=True)
    def show(_run):
        """Print the model built for one example of the run's dataset, with its parameter count
        (``model.show with model.burgess dataset.shapes3d``)."""
        cfg = _run.config["model"]
        print(describe(build_model(cfg["kind"], cfg["options"], DATASETS.get(_run.config["dataset"]["name"]).model_inputs())))

    return model


def check_model_values(config) -> None:
    """Build the run's model once from its dataset's shape, so that option *values* the signature check
    cannot see (an unknown activation, a zero width, a misspelt decoder) are refused at start-up. For
    experiments whose models cost little to build (a config hook calls it)."""
    model = config["model"]
    if config["dataset"]["name"] in DATASETS:
        build_model(model["kind"], model["options"], DATASETS.get(config["dataset"]["name"]).model_inputs())
