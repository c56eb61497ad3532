"""The registry of image datasets with known generative factors.

Each dataset module registers a :class:`DatasetSpec` under its config name (``dataset.name``) when
it is imported; the built-in modules are imported at the end of this module, so
``DATASETS.get("dsprites")`` works after ``import genlab.data.registry``. A new dataset (3DShapes,
MPI3D, ...) registers itself the same way and is added to the imports below.
"""

from __future__ import annotations

import inspect
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
    description: str = ""  # one line: what the dataset is, its sources (a stand-in says so)
    tiny_strides: tuple[int, ...] | None = None  # a sub-grid for smoke runs that keeps every split non-empty

    def options(self) -> dict:
        """The loader's dataset-specific keyword arguments and their defaults (e.g. MPI3D's ``version``)."""
        common = {"path", "source", "strides", "resident"}
        return {
            name: p.default
            for name, p in inspect.signature(self.load).parameters.items()
            if name not in common and p.default is not inspect.Parameter.empty
        }


DATASETS: Registry[DatasetSpec] = Registry("dataset")

# built-in datasets register themselves on import
import genlab.data.dsprites  # noqa: E402,F401
import genlab.data.mpi3d  # noqa: E402,F401
import genlab.data.shapes3d  # noqa: E402,F401
