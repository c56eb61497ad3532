"""The pair of explicit densities that flow contrastive estimation trains (docs/fce.md §2, §3).

``EnergyFlow`` holds the EBM p_theta (``genlab.models.ebm.EnergyMLP``) and the flow q_alpha
(``genlab.models.flows``) as one module, so one ``model.pt`` and one checkpoint entry hold both. The
EBM is ``None`` for objectives that train the flow alone (``flow_mle``, the Glow-MLE baseline).
Registered as model kind ``energy_flow``; ``with_ebm`` is in the model's options (the objective sets it).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from torch import nn

from genlab.models.ebm import EnergyMLP
from genlab.models.flows import FLOWS, Flow, build_flow
from genlab.models.registry import register_model


class EnergyFlow(nn.Module):
    def __init__(self, flow: Flow, ebm: EnergyMLP | None = None):
        super().__init__()
        self.flow, self.ebm = flow, ebm

    def players(self) -> dict[str, nn.Module]:
        """The models that exist, by name (``ebm`` only when there is one)."""
        return {name: m for name, m in (("ebm", self.ebm), ("flow", self.flow)) if m is not None}


@register_model("energy_flow", choices={"flow": (FLOWS, "")})
def build_energy_flow(
    flow: str = "glow",
    flow_options: Mapping[str, Any] | None = None,
    ebm_options: Mapping[str, Any] | None = None,
    with_ebm: bool = True,
    *,
    input_shape: Sequence[int] = (2,),
) -> EnergyFlow:
    """A flow from ``genlab.models.flows.FLOWS`` (with its keyword options) and, if ``with_ebm``, the
    EBM; both on vectors of the data's dimension unless their options set ``dim``. The EBM is built
    first, then the flow (the reference's order of random draws)."""
    dim = {"dim": int(input_shape[0])}
    ebm = EnergyMLP(**{**dim, **dict(ebm_options or {})}) if with_ebm else None
    return EnergyFlow(build_flow(flow, **{**dim, **dict(flow_options or {})}), ebm)
