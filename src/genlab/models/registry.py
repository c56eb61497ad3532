"""The registry of model kinds: ``model.kind`` names a builder, ``model.options`` are its options.

A builder's keyword-only parameters are what the data provides (``input_shape`` always; factor
datasets add ``n_factors``, ``factor_values`` and ``dataset``; see ``DataParts.model_inputs``); its
other keyword parameters, all with defaults, are the options a user configures. ``build(kind,
options, inputs)`` passes a builder only the data inputs it asks for, so the same call on a run's
recorded ``config["model"]`` and ``info["model_inputs"]`` rebuilds the run's model
(``genlab.analysis.runs.load_model``).

``choices`` names the options whose values are themselves registry keys (``architecture`` of a
Gaussian VAE, ``flow`` of an EBM-flow pair ...): each value is checked at start-up, and every key
becomes a named config (``model.kim``, ``model.glow``, ``model.mlp_mixer`` with the suffix).

Every module of ``genlab.models`` is imported on the first look-up, so a new model kind is a new
module that registers a :class:`ModelSpec` and nothing else.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from torch import nn

from genlab.errors import ConfigError
from genlab.registry import Registry, check_options, keyword_defaults, runtime_arguments


@dataclass(frozen=True)
class ModelSpec:
    name: str
    build: Callable[..., nn.Module]
    choices: Mapping[str, tuple[Registry, str]] = field(default_factory=dict)  # option -> (its registry, named-config suffix)
    description: str = ""

    def options(self) -> dict[str, Any]:
        """The builder's options and their defaults."""
        return keyword_defaults(self.build)

    def inputs(self) -> list[str]:
        """The data inputs the builder reads (its keyword-only parameters)."""
        return runtime_arguments(self.build)

    def required_inputs(self) -> list[str]:
        """The data inputs the builder cannot do without (keyword-only, no default)."""
        params = inspect.signature(self.build).parameters
        return [name for name in self.inputs() if params[name].default is inspect.Parameter.empty]


MODELS: Registry[ModelSpec] = Registry("model kind", discover="genlab.models")


def register_model(name: str, choices: Mapping[str, tuple[Registry, str]] | None = None, description: str = ""):
    """Decorator registering a builder function as model kind ``name``."""

    def decorator(build: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        MODELS.register(name)(ModelSpec(name, build, dict(choices or {}), description or (build.__doc__ or "").strip().split("\n")[0]))
        return build

    return decorator


def check_model(kind: str, options: Mapping[str, Any]) -> ModelSpec:
    """The model kind's spec, after refusing options it does not have and unknown choice values."""
    spec = MODELS.get(kind)
    check_options(f"model kind {kind!r}", spec.build, options)
    for option, (registry, _) in spec.choices.items():
        value = options.get(option, spec.options().get(option))
        if value is not None:
            registry.get(value)  # unknown: fails listing the valid ones
    return spec


def build(kind: str, options: Mapping[str, Any], inputs: Mapping[str, Any]) -> nn.Module:
    """Model kind ``kind`` built from its ``options`` and the data ``inputs`` its builder reads."""
    spec = check_model(kind, options)
    missing = [name for name in spec.required_inputs() if name not in inputs]
    if missing:
        raise ConfigError(
            f"model kind {kind!r} needs {', '.join(missing)} from the data, which provides only "
            f"{', '.join(sorted(inputs)) or '(nothing)'}"
        )
    return spec.build(**dict(options), **{name: inputs[name] for name in spec.inputs() if name in inputs})
