"""The ``model`` ingredient of the 2D FCE experiments: which flow and which EBM, captured for
``genlab.models.energy_flow.build_energy_flow``.

``model.flow`` is a key of ``genlab.models.flows.FLOWS`` (named configs ``model.glow``,
``model.maf``); ``model.flow_options`` and ``model.ebm_options`` are the constructors' keyword
arguments (defaults: the architectures of fce.md 2).
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.models import count_parameters
from genlab.models.energy_flow import build_energy_flow
from genlab.models.flows import FLOWS

model = Ingredient("model")


@model.config
def config():
    flow = "glow"  # genlab.models.flows.FLOWS key
    flow_options = {}  # e.g. {"steps": 10, "width": 64} for glow, {"blocks": 5, "hidden": 100} for maf
    ebm_options = {}  # EnergyMLP(dim=2, hidden=128, negative_slope=0.2, log_z_init=1.0)


@model.config_hook
def check_flow(config, command_name, logger):
    FLOWS.get(config["model"]["flow"])  # unknown name: fails listing the valid ones
    return {}


for _name in FLOWS:
    model.add_named_config(_name, {"flow": _name})


@model.capture
def make_model(with_ebm, flow, flow_options, ebm_options):
    return build_energy_flow(flow, flow_options, ebm_options, with_ebm=with_ebm)


@model.command(unobserved=True)
def show():
    """Print the flow and the EBM with their parameter counts (``model.show with model.maf``)."""
    net = make_model(True)
    for name, player in net.players().items():
        print(f"{name}: {count_parameters(player):,} parameters")
        print(player)
