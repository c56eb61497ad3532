"""Models, by kind: ``build_model(kind, options, inputs)`` builds any registered kind (``MODELS``).

Each kind is a builder registered with ``genlab.models.registry.register_model`` in its own module
(``gaussian_vae``, ``gt_decoder``, ``composer``, ``energy_flow`` ...); see that module for how
options and data inputs are told apart. ``load_weights`` starts a model from another run's weights.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from genlab.errors import MissingFile
from genlab.models.registry import MODELS, ModelSpec, build as build_model, check_model, register_model


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(model: nn.Module) -> str:
    """The module printout followed by the trainable parameter count (and each part's, when the
    model has several parts, e.g. an EBM and a flow)."""
    parts = [(name, child) for name, child in model.named_children() if count_parameters(child)]
    lines = [str(model)]
    if len(parts) > 1:
        lines += [f"{name}: {count_parameters(child):,} trainable parameters" for name, child in parts]
    lines.append(f"trainable parameters: {count_parameters(model):,}")
    return "\n".join(lines)


def weights_file(path: str | Path) -> Path:
    """``path`` if it is a file, else the ``model.pt`` of the recorded run directory ``path``."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise MissingFile(
            f"model.init_from={str(path)!r}: no such file; give a model.pt or a recorded run directory holding one"
        )
    return path


def load_weights(model: nn.Module, path: str | Path, strict: bool = True) -> dict[str, Any]:
    """Copy the weights of ``path`` (a ``model.pt`` or a run directory) into ``model``.

    ``strict``: every tensor must match by name and shape. Otherwise the tensors whose name and
    shape match are copied and the rest keep their initial values (transfer learning: a new head on
    a trained body). Returns what was done: the file, and the names copied, missing and unused.
    """
    file = weights_file(path)
    state: Mapping[str, torch.Tensor] = torch.load(file, map_location="cpu", weights_only=True)
    own = model.state_dict()
    if strict:
        model.load_state_dict(state)
        return {"path": str(file), "loaded": len(state), "missing": [], "unused": []}
    usable = {k: v for k, v in state.items() if k in own and tuple(own[k].shape) == tuple(v.shape)}
    model.load_state_dict(usable, strict=False)
    return {"path": str(file), "loaded": len(usable), "missing": sorted(set(own) - set(usable)),
            "unused": sorted(set(state) - set(usable))}  # fmt: skip


__all__ = ["MODELS", "ModelSpec", "build_model", "check_model", "count_parameters", "describe", "load_weights",
           "register_model", "weights_file"]  # fmt: skip
