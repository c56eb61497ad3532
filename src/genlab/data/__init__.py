"""Datasets with known generative factors, their generalisation splits, and device-resident batches.

``load_split_data`` is what experiments call: it loads a registered dataset, moves it to the
training device once, and cuts it into train / validation / test views by a registered split.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from genlab.data import splits
from genlab.data.base import FactorGrid, FactorImages
from genlab.data.registry import DATASETS, DatasetSpec

__all__ = ["DATASETS", "DatasetSpec", "FactorGrid", "FactorImages", "SplitData", "check_options", "check_split", "load_split_data"]


@dataclass
class SplitData:
    """A dataset cut by a generalisation split; the three parts share one image storage."""

    name: str
    condition: str | None
    variant: str | None
    train: FactorImages
    val: FactorImages
    test: FactorImages

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
    DATASETS.get(name)
    if condition is None:
        if variant is not None:
            raise ValueError(f"dataset.variant={variant!r} needs a dataset.condition; conditions: {splits.conditions(name)}")
        return None
    splits.get_split(name, condition, variant)
    return variant if variant is not None else splits.default_variant(name, condition)


def check_options(name: str, options: dict) -> None:
    """Refuse loader options the dataset does not have, listing the ones it has."""
    known = DATASETS.get(name).options()
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"dataset {name!r} has no option(s) {', '.join(unknown)}; its options: {', '.join(sorted(known)) or '(none)'}")


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
    """Load dataset ``name`` (``load_options`` go to its loader: ``source``, ``path``, ``strides``,
    ``resident`` and its own options) and split it. Validation images are a seeded random part of the
    training combinations. ``tiny``: the dataset's small sub-grid for smoke runs (unless ``strides``)."""
    variant = check_split(name, condition, variant)
    spec = DATASETS.get(name)
    if tiny and load_options.get("strides") is None:
        load_options["strides"] = spec.tiny_strides
    data = spec.load(**load_options).to(device)
    train, val, test = splits.split_indices(
        data.values.cpu().numpy(), data.classes.cpu().numpy(), name, condition, variant, val_fraction, split_seed
    )
    return SplitData(name, condition, variant, data.subset(train), data.subset(val), data.subset(test))
