"""The composer of "The Role of Disentanglement in Generalisation" (docs/disent.md §2.4).

A Gaussian VAE whose shared encoder codes a reference and a transform image, a *mixer* that combines
the two codes under a one-hot action naming a factor, and the VAE's decoder rendering the mixed code
(Bernoulli logits). Trained to render the reference with the named factor taken from the transform
(``genlab.data.triplets``, objective ``composer``).

Mixers are registered by name in ``MIXERS`` (``model.mixer`` on the command line); each is built as
``cls(latent_size, n_actions)`` and called as ``mixer(z_ref, z_trans, action)``. They keep PyTorch's
default initialisation, as the original's did; only the VAE is Kaiming-initialised (docs/disent.md §2.2).
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from genlab.models.architectures import ARCHITECTURES
from genlab.models.gaussian_vae import GaussianVAE, build_gaussian_vae
from genlab.models.registry import register_model
from genlab.registry import Registry

MIXERS: Registry[type[nn.Module]] = Registry("mixer")


@MIXERS.register("linear")
class LinearMixer(nn.Module):
    """z_out = A [z_ref; action] + B [z_trans; action], two ``Linear(L + n_actions -> L)`` with biases:
    the original's ``LinearMixer``, the only mixer whose results it reported (docs/disent.md §2.4)."""

    def __init__(self, latent_size: int, n_actions: int):
        super().__init__()
        self.ref = nn.Linear(latent_size + n_actions, latent_size)
        self.trans = nn.Linear(latent_size + n_actions, latent_size)

    def forward(self, z_ref: torch.Tensor, z_trans: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.ref(torch.cat([z_ref, action], 1)) + self.trans(torch.cat([z_trans, action], 1))


@MIXERS.register("interpolation")
class InterpolationMixer(nn.Module):
    """z_out = g * z_ref + (1 - g) * z_trans with a per-dimension gate
    g = sigmoid(W [z_ref; z_trans; action] + b), one ``Linear(2L + n_actions -> L)``.

    The gate sees both codes and the action, so it can pick, per latent dimension, which image that
    dimension is copied from for the named factor (a disentangled code needs only the action; an
    entangled one may need the codes too). The original had a sigmoid-gated ``InterpolationMixer``
    whose inputs are not documented (docs/disent.md §2.4); this is our reading.
    """

    def __init__(self, latent_size: int, n_actions: int):
        super().__init__()
        self.gate = nn.Linear(2 * latent_size + n_actions, latent_size)

    def forward(self, z_ref: torch.Tensor, z_trans: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        g = torch.sigmoid(self.gate(torch.cat([z_ref, z_trans, action], 1)))
        return g * z_ref + (1 - g) * z_trans


@MIXERS.register("mlp")
class MLPMixer(nn.Module):
    """[z_ref; z_trans; action] -> Linear 128 -> ReLU -> BatchNorm -> Linear L (the original's ``MLPMixer``)."""

    def __init__(self, latent_size: int, n_actions: int, hidden: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2 * latent_size + n_actions, hidden), nn.ReLU(), nn.BatchNorm1d(hidden), nn.Linear(hidden, latent_size)
        )

    def forward(self, z_ref: torch.Tensor, z_trans: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([z_ref, z_trans, action], 1))


class Composer(nn.Module):
    """Shared-encoder composer: encode reference and transform, mix under the action, decode.

    ``forward(batch)`` takes a triplet batch (``x`` the reference, ``transform``, ``action``) and
    returns ``logits`` (B, C, H, W) of the rendered image, ``mu`` / ``logvar`` of both posteriors
    (2B rows: the references, then the transforms), ``z`` (B, 2, L) the two codes (samples in training
    mode, posterior means in eval mode) and ``z_out`` (B, L) the mixed code.
    ``encode`` is the VAE's, so representation metrics (DCI) read the composer's encoder directly.
    """

    def __init__(self, vae: GaussianVAE, mixer: nn.Module, n_actions: int):
        super().__init__()
        self.vae, self.mixer, self.n_actions = vae, mixer, int(n_actions)

    @property
    def latent_size(self) -> int:
        return self.vae.latent_size

    @property
    def input_shape(self) -> tuple[int, ...]:
        return self.vae.input_shape

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.vae.encode(x)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        n = len(batch["x"])
        mu, logvar = self.vae.encode(torch.cat([batch["x"], batch["transform"]]))  # one pass, shared encoder
        z = self.vae.reparameterize(mu, logvar)
        z_out = self.mixer(z[:n], z[n:], batch["action"])
        return {
            "logits": self.vae.decode(z_out),
            "mu": mu,
            "logvar": logvar,
            "z": z.view(2, n, -1).transpose(0, 1),
            "z_out": z_out,
        }

    def extra_repr(self) -> str:
        return f"n_actions={self.n_actions}"


@register_model("composer", choices={"architecture": (ARCHITECTURES, ""), "mixer": (MIXERS, "_mixer")})
def build_composer(
    architecture: str | None = "kim",
    latent_size: int = 10,
    mixer: str = "linear",
    encoder_layers: Sequence | None = None,
    decoder_layers: Sequence | None = None,
    *,
    input_shape: Sequence[int] = (1, 64, 64),
    n_factors: int = 5,
) -> Composer:
    """A :class:`Composer` from an architecture name and/or layer specs (as ``build_gaussian_vae``), a
    ``MIXERS`` name and the number of actions: one per factor of the data (``n_factors``). Pure: the
    same call on a run's recorded config and model inputs rebuilds its model."""
    mixer_cls = MIXERS.get(mixer)
    vae = build_gaussian_vae(
        architecture=architecture, latent_size=latent_size, input_shape=input_shape,
        encoder_layers=encoder_layers, decoder_layers=decoder_layers,
    )
    return Composer(vae, mixer_cls(int(latent_size), int(n_factors)), n_factors)


__all__ = ["MIXERS", "Composer", "InterpolationMixer", "LinearMixer", "MLPMixer", "build_composer"]
