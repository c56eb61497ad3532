"""Objectives, one module per paper objective, registered by name in ``OBJECTIVES``.

Importing this package registers every objective, so ``build_objective(name, **loss)`` knows them all.
"""

from genlab.objectives import cci_vae, composer, factor_vae, fce, gt_decoder, vae  # noqa: F401  (registration)
from genlab.objectives.base import OBJECTIVES, Objective, build_objective, check_hyperparameters

__all__ = ["OBJECTIVES", "Objective", "build_objective", "check_hyperparameters"]
