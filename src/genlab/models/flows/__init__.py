"""Normalizing flows for flow contrastive estimation on 2D data (reference notes ``fce.md`` 2.2, 2.3, 7).

``build_flow("glow" | "maf", **kwargs)`` builds a registered :class:`Flow`; importing this package
registers both. Every flow maps data -> noise with a standard normal base and offers ``log_prob``,
``sample`` (reparameterised, with its log-density) and ``sample_from``.
"""

from __future__ import annotations

from genlab.models.flows.actnorm import ActNorm
from genlab.models.flows.base import FLOWS, Flow, standard_normal_log_prob
from genlab.models.flows.glow import Glow
from genlab.models.flows.maf import MAF


def build_flow(name: str, **kwargs) -> Flow:
    """The flow registered as ``name``, built with ``kwargs``; unknown names list the known ones."""
    return FLOWS.get(name)(**kwargs)


__all__ = ["ActNorm", "FLOWS", "Flow", "Glow", "MAF", "build_flow", "standard_normal_log_prob"]
