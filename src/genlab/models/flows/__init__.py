"""Normalizing flows: a bijection data -> noise with a standard normal base (``base.Flow``).

Every module of this package is imported on the first look-up in ``FLOWS``, so a new flow is a new
module with a ``Flow`` subclass registered by ``@FLOWS.register("name")``; ``build_flow(name,
**options)`` builds any of them. The FCE flows (Glow, MAF) are described in ``docs/fce.md`` §2.2-2.3.
"""

from __future__ import annotations

from genlab.models.flows.actnorm import ActNorm
from genlab.models.flows.base import FLOWS, Flow, standard_normal_log_prob


def build_flow(name: str, **kwargs) -> Flow:
    """The flow registered as ``name``, built with ``kwargs``; unknown names list the known ones."""
    return FLOWS.get(name)(**kwargs)


__all__ = ["ActNorm", "FLOWS", "Flow", "build_flow", "standard_normal_log_prob"]
