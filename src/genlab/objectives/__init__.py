"""Objectives, one module per paper objective, registered by name in ``OBJECTIVES``.

Every module of this package is imported on the first look-up in ``OBJECTIVES``, so a new
objective is a new module with ``@OBJECTIVES.register("name")`` and nothing else.
"""

from genlab.objectives.base import OBJECTIVES, Objective, build_objective, check_hyperparameters

__all__ = ["OBJECTIVES", "Objective", "build_objective", "check_hyperparameters"]
