"""Datasets of every kind, their generalisation splits, and device-resident batches.

``load_dataset(config, device, seed)`` is what experiments and analyses call with a recorded
``dataset`` config: it builds the registered dataset (``DATASETS``) on the training device and
returns its parts (``DataParts``: train / val / test batch sources, what to record, what models may
read). Datasets with generative factors are cut by a registered split (``load_split_data``); the
others come in parts from their builder; for ``labelled_images`` datasets the config's ``labels``,
``n_labels`` and ``first_n`` then select classes and the first training examples
(``genlab.data.labels``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import torch

from genlab.errors import ConfigError
from genlab.data import splits
from genlab.data.base import FactorGrid, FactorImages
from genlab.data.labels import check_selection, select_labels
from genlab.data.registry import DATASETS, KINDS, DatasetKind, DatasetSpec, names_of_kinds
from genlab.data.sources import BatchSource, DataParts, sample, subset
from genlab.registry import check_options as _check_options, keyword_defaults, runtime_arguments

__all__ = [
    "DATASETS", "KINDS", "BatchSource", "DataParts", "DatasetKind", "DatasetSpec", "FactorGrid", "FactorImages",
    "SELECTION_KEYS", "SplitData", "check_dataset", "check_options", "check_split", "load_dataset", "load_split_data", "names_of_kinds",
    "sample", "subset",
]  # fmt: skip

# keys of a ``dataset`` config that are not options of the dataset's builder
CONFIG_KEYS = ("name", "options", "tiny", "condition", "variant", "val_fraction", "split_seed", "transforms", "eval_transforms",
               "labels", "n_labels", "first_n")  # fmt: skip
# the label selection of labelled_images datasets (genlab.data.labels) and its defaults
SELECTION_KEYS = {"labels": "all", "n_labels": None, "first_n": None}


@dataclass
class SplitData(DataParts):
    """A factor dataset cut by a generalisation split; the three parts share one image storage."""

    condition: str | None = None
    variant: str | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def factor_names(self) -> tuple[str, ...]:
        return self.train.factor_names

    def splits(self) -> dict[str, FactorImages]:
        return {"train": self.train, "val": self.val, "test": self.test}


def check_split(name: str, condition: str | None, variant: str | None) -> str | None:
    """Validate names before any data is touched; returns the variant (the default if None)."""
    spec = DATASETS.get(name)
    if condition is None:
        if variant is not None:
            raise ConfigError(f"dataset.variant={variant!r} needs a dataset.condition; conditions: {splits.conditions(name)}")
        return None
    if not spec.has_factors:
        raise ConfigError(
            f"dataset {name!r} ({spec.kind}) has no generative factors, so dataset.condition={condition!r} cannot "
            f"split it; generalisation splits exist for: {', '.join(splits.datasets())}"
        )
    splits.get_split(name, condition, variant)
    return variant if variant is not None else splits.default_variant(name, condition)


def check_options(name: str, options: Mapping[str, Any]) -> None:
    """Refuse builder options the dataset does not have (its kind's loader keys included), listing the ones it has."""
    _check_options(f"dataset {name!r}", DATASETS.get(name).build, options)


def loader_options(config: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword options of the dataset's builder in a ``dataset`` config: every key that is not
    one of :data:`CONFIG_KEYS` (the kind's loader keys: ``source``, ``n_train`` ...), then ``options``."""
    options = {k: v for k, v in config.items() if k not in CONFIG_KEYS and not k.startswith("__")}  # not __doc__
    options.update(config.get("options") or {})
    return options


def check_dataset(config: Mapping[str, Any], kinds=None, data: bool = True) -> str | None:
    """Everything about a ``dataset`` config that can be checked without loading it: the name (and,
    with ``kinds``, that it is of a kind the experiment takes), the builder's options, that its data
    file exists, and that the split leaves training and test images on the data's factor grid.
    ``data=False`` leaves out the file and the split (for commands that only describe the config).
    Returns the split's variant (its default when None). Raises with the valid names or options."""
    name = config["name"]
    spec = DATASETS.get(name)
    if kinds is not None and spec.kind not in kinds:
        raise ConfigError(
            f"dataset {name!r} is {spec.kind} data; this experiment takes {' or '.join(kinds)} datasets: "
            f"{', '.join(names_of_kinds(kinds))}"
        )
    options = loader_options(config)
    check_options(name, options)
    variant = check_split(name, config.get("condition"), config.get("variant"))
    labels, n_labels, first_n = selection(config)
    if (labels, n_labels, first_n) != tuple(SELECTION_KEYS.values()) and spec.kind != "labelled_images":
        raise ConfigError(f"dataset.labels / n_labels / first_n select classes of labelled_images datasets; "
                          f"dataset {name!r} is {spec.kind} data: leave them at their defaults")  # fmt: skip
    check_selection(labels, n_labels, first_n, spec.model_inputs().get("n_classes"))
    if data and spec.rows is not None:  # the files exist, and the split leaves images on both sides
        if config.get("tiny"):
            options = _apply_tiny(spec, options)
        classes, values = spec.rows(**options)
        splits.split_indices(values, classes, name, config.get("condition"), variant,
                             config.get("val_fraction", 0.0), config.get("split_seed", 0))  # fmt: skip
        if labels == "all" and first_n is not None and first_n > len(values):
            raise ConfigError(f"dataset.first_n={first_n:,} exceeds the {len(values):,} training examples of {name}: "
                              f"use a first_n of at most {len(values):,}")  # fmt: skip
    return variant


def selection(config: Mapping[str, Any]) -> tuple[Any, Any, Any]:
    """``(labels, n_labels, first_n)`` of a ``dataset`` config (their defaults where absent)."""
    return tuple(config.get(k, default) for k, default in SELECTION_KEYS.items())


def _apply_tiny(spec: DatasetSpec, options: dict[str, Any]) -> dict[str, Any]:
    """The dataset's smoke-size options fill those left at None or at the builder's default (an explicit
    ``strides`` wins; a ``source`` left at its default ``"file"`` becomes e.g. MNIST's ``"embedded"``)."""
    defaults = keyword_defaults(spec.build)
    return {**options, **{k: v for k, v in spec.tiny.items() if options.get(k) is None or options[k] == defaults.get(k)}}


def load_split_data(
    name: str,
    condition: str | None = None,
    variant: str | None = None,
    val_fraction: float = 0.0,
    split_seed: int = 0,
    device: torch.device | str = "cpu",
    tiny: bool = False,
    **load_options,
) -> SplitData:
    """Load factor dataset ``name`` (``load_options`` go to its builder: ``source``, ``path``,
    ``strides``, ``resident`` and its own options) and split it. Validation images are a seeded random
    part of the training combinations. ``tiny``: the dataset's small sub-grid for smoke runs (unless
    ``strides``)."""
    variant = check_split(name, condition, variant)
    spec = DATASETS.get(name)
    if not spec.has_factors:
        raise ConfigError(f"dataset {name!r} is {spec.kind} data, not factor images")
    if tiny:
        load_options = _apply_tiny(spec, load_options)
    data = spec.build(**load_options).to(device)
    train, val, test = splits.split_indices(
        data.values.cpu().numpy(), data.classes.cpu().numpy(), name, condition, variant, val_fraction, split_seed
    )
    parts = {"train": data.subset(train), "val": data.subset(val), "test": data.subset(test)}
    return SplitData(
        name=name,
        **parts,
        info={
            "input_shape": list(data.image_shape),
            "factor_names": list(data.factor_names),
            "split_sizes": {k: len(v) for k, v in parts.items()},
        },
        model_inputs={**spec.model_inputs(), "input_shape": list(data.image_shape)},
        condition=condition,
        variant=variant,
    )


def load_dataset(config: Mapping[str, Any], device: torch.device | str = "cpu", seed: int = 0) -> DataParts:
    """The parts of the dataset a recorded ``dataset`` config describes, on ``device``.

    ``seed`` is the run's seed, which builders that draw their data take as their default data seed.
    The same call on a run's recorded config rebuilds the data the run saw.
    """
    name = config["name"]
    spec = DATASETS.get(name)
    options = loader_options(config)
    if spec.has_factors:
        return load_split_data(
            name, config.get("condition"), config.get("variant"), config.get("val_fraction", 0.0),
            config.get("split_seed", 0), device=device, tiny=bool(config.get("tiny", False)), **options,
        )  # fmt: skip
    check_split(name, config.get("condition"), config.get("variant"))
    if config.get("tiny"):
        options = _apply_tiny(spec, options)
    labels, n_labels, first_n = selection(config)
    if labels != "all" or first_n is not None:
        check_selection(labels, n_labels, first_n, spec.model_inputs().get("n_classes"))  # before the data is read
    runtime = {"device": torch.device(device), "seed": int(seed)}
    parts = spec.build(**options, **{k: runtime[k] for k in runtime_arguments(spec.build) if k in runtime})
    if labels != "all" or first_n is not None:  # the kept / held-out classes, the first N (genlab.data.labels)
        parts = select_labels(parts, labels, n_labels, first_n)
    return parts

