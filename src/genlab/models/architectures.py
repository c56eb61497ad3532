"""Named Gaussian-VAE architectures of the disent paper (docs/disent.md §2.2).

Each entry is a function ``(input_shape, latent_size) -> (encoder_spec, decoder_spec or None)`` in the
layer-spec language of :mod:`genlab.models.layers`. The encoder spec stops before the latent layer
(:class:`~genlab.models.gaussian_vae.GaussianVAE` adds ``linear(2 * latent_size)``); a ``None`` decoder
means the transpose of the encoder. Specs are fresh lists on every call, so a caller may edit its copy.

Channel placeholders (``-1``) keep one spec valid for 1-channel (dSprites) and 3-channel (3DShapes,
MPI3D) images. Convolutional specs assume 64x64 images, as every dataset of the paper has.
"""

from __future__ import annotations

from typing import Callable, Sequence

from genlab.registry import Registry

Spec = list[tuple]
Architecture = Callable[[Sequence[int], int], tuple[Spec, "Spec | None"]]

ARCHITECTURES: Registry[Architecture] = Registry("architecture")


def _kim_convs() -> Spec:
    """Four 4x4 stride-2 convolutions, 64x64 -> 64x4x4, ReLU after each."""
    spec: Spec = []
    for channels in (32, 32, 64, 64):
        spec += [("conv", channels, 4, 2, 1), ("relu",)]
    return spec + [("flatten",)]


@ARCHITECTURES.register("kim")
def kim(input_shape: Sequence[int], latent_size: int) -> tuple[Spec, None]:
    """Kim & Mnih (2018), "Disentangling by Factorising" (FactorVAE), appendix architecture.

    docs/disent.md §2.2 ``kim``: conv 32-4-2-1, 32, 64, 64 (ReLU) -> flatten 1024 -> FC 256 ReLU -> FC 2L.
    Decoder: the transpose (FC 256 ReLU -> FC 1024 -> 64x4x4 -> ReLU -> tconv 64, 32, 32, C). The
    paper's choice for 3DShapes, MPI3D and dSprites-FactorVAE. The FC width (256) is the disent
    config's; as far as we recall, Kim & Mnih's own dSprites table has 128 there (compare ``mathieu``).
    """
    return _kim_convs() + [("linear", 256), ("relu",)], None


@ARCHITECTURES.register("burgess")
def burgess(input_shape: Sequence[int], latent_size: int) -> tuple[Spec, None]:
    """Burgess et al. (2018), "Understanding disentangling in beta-VAE", appendix architecture.

    docs/disent.md §2.2 ``burgess``: 4x conv 32-4-2-1 (ReLU) -> flatten 512 -> FC 256 -> FC 256 -> FC 2L.
    Decoder: the transpose (FC 256, FC 256, FC 512, 32x4x4, 3x tconv 32, tconv C).
    """
    spec: Spec = []
    for _ in range(4):
        spec += [("conv", 32, 4, 2, 1), ("relu",)]
    return spec + [("flatten",), ("linear", 256), ("relu",), ("linear", 256), ("relu",)], None


@ARCHITECTURES.register("burgess_v2")
def burgess_v2(input_shape: Sequence[int], latent_size: int) -> tuple[Spec, None]:
    """Burgess et al. (2018)'s two FC-256 layers on Kim & Mnih (2018)'s convolutions.

    docs/disent.md §2.2 ``burgess_v2`` (dSprites beta-VAE runs): as ``kim`` plus a second FC 256.
    Decoder: the transpose (FC 256, FC 256, FC 1024, 64x4x4, tconv 64, 32, 32, C).
    """
    return _kim_convs() + [("linear", 256), ("relu",), ("linear", 256), ("relu",)], None


@ARCHITECTURES.register("mathieu")
def mathieu(input_shape: Sequence[int], latent_size: int) -> tuple[Spec, Spec]:
    """Mathieu et al. (2019), "Disentangling Disentanglement in Variational Autoencoders".

    docs/disent.md §2.2 ``mathieu``: as ``kim`` with a 128-unit FC layer; explicit decoder FC 128 ReLU ->
    FC 1024 ReLU -> 64x4x4 -> tconv 64, 32, 32 (ReLU) -> tconv C. Fixed here: the original's last
    tconv had 1 channel whatever the image; it is the image's channel count (``-1``).
    """
    encoder = _kim_convs() + [("linear", 128), ("relu",)]
    decoder: Spec = [("linear", 128), ("relu",), ("linear", 1024), ("relu",), ("unflatten", (64, 4, 4))]
    for channels in (64, 32, 32):
        decoder += [("tconv", channels, 4, 2, 1), ("relu",)]
    return encoder, decoder + [("tconv", -1, 4, 2, 1)]


@ARCHITECTURES.register("higgins")
def higgins(input_shape: Sequence[int], latent_size: int) -> tuple[Spec, Spec]:
    """Higgins et al. (2017), "beta-VAE: Learning basic visual concepts...", dSprites MLP.

    docs/disent.md §2.2 ``higgins``: FC 1200 ReLU -> FC 1200 ReLU -> FC 2L; decoder FC 1200 tanh x3 ->
    FC C*H*W. Fixed here: the original fed (C, 64, 64) images to the first Linear, which then saw only
    the last dimension; the encoder flattens first and the decoder unflattens to the image shape.
    """
    encoder: Spec = [("flatten",), ("linear", 1200), ("relu",), ("linear", 1200), ("relu",)]
    decoder: Spec = []
    for _ in range(3):
        decoder += [("linear", 1200), ("tanh",)]
    height, width = (int(d) for d in tuple(input_shape)[1:])
    return encoder, decoder + [("linear", -1), ("unflatten", (-1, height, width))]


__all__ = ["ARCHITECTURES", "burgess", "burgess_v2", "higgins", "kim", "mathieu"]
