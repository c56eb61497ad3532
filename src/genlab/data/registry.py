"""The registry of image datasets with known generative factors.

Each dataset module registers a :class:`DatasetSpec` under its config name (``dataset.name``) when
it is imported; the built-in modules are imported at the end of this module, so
``DATASETS.get("dsprites")`` works after ``import genlab.data.registry``. A new dataset (3DShapes,
MPI3D, ...) registers itself the same way and is added to the imports below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from genlab.data.base import FactorGrid, FactorImages
from genlab.registry import Registry


@dataclass(frozen=True)
class DatasetSpec:
    """What the rest of the code needs to know about a dataset before (or without) loading it."""

    name: str
    load: Callable[..., FactorImages]  # keyword arguments: the dataset's config entries
    grid: FactorGrid  # full factor grid, colour or other constant factors dropped
    image_shape: tuple[int, int, int]


DATASETS: Registry[DatasetSpec] = Registry("dataset")

# built-in datasets register themselves on import
import genlab.data.dsprites  # noqa: E402,F401
