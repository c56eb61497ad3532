"""The registry of every dataset, whatever its kind, and the kinds themselves.

Each dataset module registers a :class:`DatasetSpec` under its config name (``dataset.name``); every
module of ``genlab.data`` is imported on the first look-up in ``DATASETS``, so a new dataset is a new
module and nothing else. A dataset has a *kind* (:data:`KINDS`), which says what its builder returns
and which of the builder's options sit at the top level of the ``dataset`` config:

- ``factor_images``: images on a Cartesian grid of generative factors (dSprites, 3DShapes, MPI3D).
  The builder returns the whole grid as :class:`~genlab.data.base.FactorImages`; generalisation
  splits (``genlab.data.splits``) then cut it into training, validation and test parts.
- ``points``: vectors drawn from a known distribution (the 2D toys of FCE). The builder returns
  :class:`~genlab.data.sources.DataParts` with a training set and a held-out evaluation sample.
- ``labelled_images``: images with a class label (MNIST-like); the builder returns ``DataParts``.
- ``simulation``: generated observations ``x`` with auxiliary variables ``u`` and true sources ``s``
  (the nonlinear ICA simulations of ICE-BeeM); the builder returns ``DataParts``.
- ``stream``: no fixed examples; every batch is drawn afresh (MIM's mixture toys and augmented PCA
  data). The builder returns ``DataParts`` whose ``train`` and ``test`` are
  :class:`~genlab.data.streams.Stream` objects.

A builder's keyword-only parameters (``device``, ``seed``) are supplied by the run; its other
keyword parameters are the dataset's options: the kind's ``loader_keys`` are written at the top level
of the config (``dataset.source``, ``dataset.n_train`` ...), the rest under ``dataset.options``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from genlab.data.base import FactorGrid
from genlab.registry import Registry, keyword_defaults


@dataclass(frozen=True)
class DatasetKind:
    name: str
    loader_keys: tuple[str, ...]  # builder options every dataset of the kind takes, at the top level of the config
    has_factors: bool = False  # factor-value splits apply
    description: str = ""


KINDS: dict[str, DatasetKind] = {
    kind.name: kind
    for kind in (
        DatasetKind("factor_images", ("source", "path", "strides", "resident"), True,
                    "images on a grid of generative factors, cut by generalisation splits"),
        DatasetKind("points", ("n_train", "n_eval", "data_seed"), False,
                    "points drawn from a known distribution, with a held-out evaluation sample"),
        DatasetKind("labelled_images", ("source", "path"), False, "images with a class label"),
        DatasetKind("simulation", ("data_seed",), False, "simulated observations x with auxiliary u and sources s"),
        DatasetKind("stream", (), False, "examples drawn afresh for every batch (genlab.data.streams)"),
    )
}


@dataclass(frozen=True)
class DatasetSpec:
    """What the rest of the code needs to know about a dataset before (or without) loading it."""

    name: str
    kind: str  # a key of KINDS
    build: Callable[..., Any]  # keyword options (+ keyword-only device/seed) -> FactorImages or DataParts
    shape: tuple[int, ...]  # the shape of one example's ``x`` (image C, H, W; point D)
    description: str = ""  # one line: what the dataset is, its sources (a stand-in says so)
    grid: FactorGrid | None = None  # factor_images: the full factor grid (constant factors dropped)
    tiny: Mapping[str, Any] = field(default_factory=dict)  # options of a smoke-size version (``dataset.tiny``)
    # factor datasets: the builder's options -> (classes, values) of the rows it will return, read
    # from no data file (raising MissingFile when the file is absent), so that a split is checked
    # before anything loads
    rows: Callable[..., Any] | None = None
    inputs: Mapping[str, Any] = field(default_factory=dict)  # further model inputs of the default options (n_segments ...)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"dataset {self.name!r}: unknown kind {self.kind!r}; kinds: {', '.join(KINDS)}")
        missing = [k for k in KINDS[self.kind].loader_keys if k not in keyword_defaults(self.build)]
        if missing:
            raise ValueError(f"dataset {self.name!r}: a {self.kind} builder must take {', '.join(missing)}")
        if KINDS[self.kind].has_factors and self.grid is None:
            raise ValueError(f"dataset {self.name!r}: a {self.kind} dataset needs its factor grid")

    @property
    def image_shape(self) -> tuple[int, ...]:
        return self.shape

    @property
    def has_factors(self) -> bool:
        return KINDS[self.kind].has_factors

    def options(self) -> dict:
        """The builder's dataset-specific options and their defaults (not the kind's loader keys)."""
        return keyword_defaults(self.build, skip=KINDS[self.kind].loader_keys)

    def model_inputs(self) -> dict[str, Any]:
        """What model builders may read about this dataset (``input_shape``; with factors also
        ``n_factors``, ``factor_values`` of the grid and the ``dataset`` name), as JSON-able values."""
        inputs: dict[str, Any] = {"input_shape": [int(d) for d in self.shape], **self.inputs}
        if self.grid is not None:
            inputs.update(
                n_factors=len(self.grid.names),
                factor_values=[[float(v) for v in values] for values in self.grid.values],
                dataset=self.name,
            )
        return inputs


DATASETS: Registry[DatasetSpec] = Registry("dataset", discover="genlab.data")


def names_of_kinds(kinds) -> list[str]:
    """Registered datasets of the given kinds, sorted."""
    return [name for name in DATASETS.names() if DATASETS.get(name).kind in set(kinds)]
