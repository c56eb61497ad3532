"""Models. ``build_model`` rebuilds a Gaussian VAE from a recorded config and the data's input shape."""

from __future__ import annotations

import copy
from typing import Sequence

from torch import nn

from genlab.models.architectures import ARCHITECTURES
from genlab.models.discriminator import Discriminator
from genlab.models.gaussian_vae import GaussianVAE
from genlab.models.layers import LAYERS, LayerSpecError


def build_model(
    architecture: str | None = "kim",
    latent_size: int = 10,
    input_shape: Sequence[int] = (1, 64, 64),
    encoder_layers: Sequence | None = None,
    decoder_layers: Sequence | None = None,
    *,
    channels_last: bool = True,
) -> GaussianVAE:
    """A :class:`GaussianVAE` from a named architecture (``ARCHITECTURES``) and/or explicit layer specs.

    ``encoder_layers`` / ``decoder_layers``, when given, replace the named architecture's; a decoder
    that is ``None`` after that is the transpose of the encoder in use. ``architecture`` may be
    ``None`` only when ``encoder_layers`` is given. The arguments are copied, never modified, and
    nothing global is read, so the same call on a run's recorded config rebuilds its model.
    ``channels_last`` only picks the weights' memory order (see :class:`GaussianVAE`).
    """
    input_shape = tuple(int(d) for d in input_shape)
    latent_size = int(latent_size)
    if architecture is None:
        if encoder_layers is None:
            raise ValueError(
                f"give an architecture ({', '.join(ARCHITECTURES.names())}) or encoder_layers"
            )
        arch_encoder, arch_decoder = None, None
    else:
        arch_encoder, arch_decoder = ARCHITECTURES.get(architecture)(input_shape, latent_size)
    encoder = copy.deepcopy(list(encoder_layers)) if encoder_layers is not None else arch_encoder
    decoder = copy.deepcopy(list(decoder_layers)) if decoder_layers is not None else arch_decoder
    return GaussianVAE(encoder, decoder, latent_size=latent_size, input_shape=input_shape, channels_last=channels_last)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe(model: nn.Module) -> str:
    """The module printout followed by the trainable parameter count."""
    return f"{model}\ntrainable parameters: {count_parameters(model):,}"


__all__ = [
    "ARCHITECTURES",
    "LAYERS",
    "Discriminator",
    "GaussianVAE",
    "LayerSpecError",
    "build_model",
    "count_parameters",
    "describe",
]
