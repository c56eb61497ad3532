"""The ground-truth decoder of the disent paper (docs/disent.md §2.3): true factor values -> image.

A decoder that is handed the generative factors themselves is perfectly disentangled by
construction; how well it renders held-out combinations separates the decoder's ability to
generalise from the encoder's. The input is the factor vector, normalised to [0, 1] over the
dataset's factor grid ((v - min) / (max - min)); the original fed the raw values (dSprites
orientation up to 6.28 rad, 3DShapes orientation -30..30) and, for MPI3D, the class index multiplied
by the factor's size (docs/disent.md §1.3, §8 item 8): ``inputs="original"`` reproduces that. The transform is
stored in the model's buffers, so a reloaded model needs only its config and ``model.pt``.

Decoder specs (docs/disent.md §2.3; layer-spec language of :mod:`genlab.models.layers`, ``-1`` = the
image's channels / size), each from ``n_factors`` to the image: ``higgins`` (MLP), ``burgess``, ``kim``,
``kim_bn``, ``deep``, ``deep_bn`` (below). The original's ``mpcnn`` was broken and is not kept.
Initialisation: PyTorch's defaults, as the original (only its VAEs were re-initialised).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from genlab.models import layers
from genlab.models.registry import register_model
from genlab.registry import Registry

Spec = list[tuple]
DECODERS: Registry[Callable[[], Spec]] = Registry("ground-truth decoder")
INPUTS = ("normalised", "original")


def _tconvs(channels: Sequence[int]) -> Spec:
    spec: Spec = []
    for c in channels:
        spec += [("tconv", c, 4, 2, 1), ("relu",)]
    return spec + [("tconv", -1, 4, 2, 1)]


@DECODERS.register("higgins")
def higgins() -> Spec:
    """Higgins et al. (2017) MLP decoder: FC 1200 tanh x 3 -> FC C*64*64."""
    return [("linear", 1200), ("tanh",)] * 3 + [("linear", -1), ("unflatten", -1, 64, 64)]


@DECODERS.register("burgess")
def burgess() -> Spec:
    """Burgess et al. (2018): FC 256 -> FC 512 -> 32x4x4 -> 3 x tconv 32 -> tconv C (ReLUs between)."""
    return [("linear", 256), ("relu",), ("linear", 512), ("relu",), ("unflatten", 32, 4, 4)] + _tconvs([32, 32, 32])


@DECODERS.register("kim")
def kim() -> Spec:
    """Kim & Mnih (2018): FC 256 -> FC 1024 -> 64x4x4 -> tconv 64, 32, 32, C."""
    return [("linear", 256), ("relu",), ("linear", 1024), ("relu",), ("unflatten", 64, 4, 4)] + _tconvs([64, 32, 32])


def _with_batch_norm(widths: Sequence[int], channels: Sequence[int]) -> Spec:
    """Linear/tconv -> ReLU -> BatchNorm for every hidden layer; only the first Linear and the last
    tconv keep a bias (the BatchNorm's shift makes the others redundant), as in the original."""
    spec: Spec = []
    for i, w in enumerate(widths):
        spec += [("linear", [w], {"bias": i == 0}), ("relu",), ("batch_norm",)]
    spec += [("unflatten", 64, 4, 4)]
    for c in channels:
        spec += [("tconv", [c, 4, 2, 1], {"bias": False}), ("relu",), ("batch_norm",)]
    return spec + [("tconv", -1, 4, 2, 1)]


@DECODERS.register("kim_bn")
def kim_bn() -> Spec:
    """``kim`` with BatchNorm: FC 256 -> FC 1024 -> 64x4x4 -> tconv 64, 64, 32, C."""
    return _with_batch_norm([256, 1024], [64, 64, 32])


@DECODERS.register("deep")
def deep() -> Spec:
    """FC 512, 512, 1024, 1024 -> 64x4x4 -> tconv 64, 64, 32, C (ReLUs between)."""
    spec: Spec = []
    for w in (512, 512, 1024, 1024):
        spec += [("linear", w), ("relu",)]
    return spec + [("unflatten", 64, 4, 4)] + _tconvs([64, 64, 32])


@DECODERS.register("deep_bn")
def deep_bn() -> Spec:
    """``deep`` with BatchNorm after each ReLU (the original's choice for MPI3D)."""
    return _with_batch_norm([512, 512, 1024, 1024], [64, 64, 32])


def input_transform(grid_values: Sequence[np.ndarray], inputs: str = "normalised", multiply_by_size: bool = False):
    """(offset, scale) with ``decoder_input = (factors - offset) * scale``.

    ``normalised``: each factor mapped onto [0, 1] over its grid values. ``original``: the raw values
    (offset 0, scale 1), times the factor's size when ``multiply_by_size`` (the original's MPI3D
    target transform, docs/disent.md §1.3).
    """
    if inputs not in INPUTS:
        raise ValueError(f"unknown ground-truth decoder inputs {inputs!r}; valid: {', '.join(INPUTS)}")
    lows = np.array([np.min(v) for v in grid_values], dtype=np.float64)
    highs = np.array([np.max(v) for v in grid_values], dtype=np.float64)
    if inputs == "normalised":
        span = np.where(highs > lows, highs - lows, 1.0)
        return torch.tensor(lows, dtype=torch.float32), torch.tensor(1.0 / span, dtype=torch.float32)
    sizes = np.array([len(v) for v in grid_values], dtype=np.float64)
    scale = sizes if multiply_by_size else np.ones_like(sizes)
    return torch.zeros(len(lows)), torch.tensor(scale, dtype=torch.float32)


class GroundTruthDecoder(nn.Module):
    """``forward(factors (B, K)) -> logits (B, C, H, W)``; ``offset``/``scale`` buffers hold the input transform."""

    def __init__(self, decoder_layers: Sequence, n_factors: int, input_shape: Sequence[int]):
        super().__init__()
        self.n_factors, self.input_shape = int(n_factors), tuple(int(s) for s in input_shape)
        self.decoder, out = layers.build(decoder_layers, (self.n_factors,), image_shape=self.input_shape)
        if out != self.input_shape:
            raise layers.LayerSpecError(f"the decoder maps {self.n_factors} factors to {out}, not to {self.input_shape}")
        self.register_buffer("offset", torch.zeros(self.n_factors))
        self.register_buffer("scale", torch.ones(self.n_factors))
        self.to(memory_format=torch.channels_last)  # faster transposed convs on CPU (see GaussianVAE)

    def set_input_transform(self, offset: torch.Tensor, scale: torch.Tensor) -> "GroundTruthDecoder":
        self.offset.copy_(offset)
        self.scale.copy_(scale)
        return self

    def forward(self, factors: torch.Tensor) -> torch.Tensor:
        return self.decoder((factors - self.offset) * self.scale)

    def extra_repr(self) -> str:
        return f"n_factors={self.n_factors}, input_shape={self.input_shape}"


# datasets whose original target transform multiplied the class index by the factor's size (docs/disent.md §1.3)
ORIGINAL_INPUTS_TIMES_SIZE = frozenset({"mpi3d"})


@register_model("gt_decoder", choices={"architecture": (DECODERS, "")})
def build_gt_decoder(
    architecture: str = "deep_bn",
    decoder_layers: Sequence | None = None,
    inputs: str = "normalised",
    *,
    n_factors: int,
    input_shape: Sequence[int] = (1, 64, 64),
    factor_values: Sequence[Sequence[float]] | None = None,
    dataset: str | None = None,
) -> GroundTruthDecoder:
    """A ground-truth decoder from a named spec (``DECODERS``) or explicit ``decoder_layers``.

    With the grid's ``factor_values`` the decoder's input transform is set for ``inputs``
    ("normalised": each factor onto [0, 1]; "original": the raw values, times the factor's size for
    the datasets of ``ORIGINAL_INPUTS_TIMES_SIZE``, as the original did). The transform lives in the
    model's buffers, so a reloaded ``model.pt`` restores it whatever was passed here.
    """
    if inputs not in INPUTS:
        raise ValueError(f"unknown model.options.inputs={inputs!r}; valid: {', '.join(INPUTS)}")
    spec = list(decoder_layers) if decoder_layers is not None else DECODERS.get(architecture)()
    decoder = GroundTruthDecoder(spec, n_factors, input_shape)
    if factor_values is not None:
        offset, scale = input_transform(factor_values, inputs, multiply_by_size=dataset in ORIGINAL_INPUTS_TIMES_SIZE)
        decoder.set_input_transform(offset, scale)
    return decoder
