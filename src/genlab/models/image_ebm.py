"""ICE-BeeM's energy-based model of images (Khemakhem et al., "ICE-BeeM: Identifiable Conditional
Energy-Based Deep Models Based on Nonlinear ICA", NeurIPS 2020, sections 3 and 5.2; docs/icebeem.md
§3a, §3b), model kind ``image_ebm``.

Energy (docs/icebeem.md §3a), with p(x | y) proportional to exp(-E(x, y)):

    E(x, y) = f(x)^T g(y)                              (plain)
    E(x, y) = f(x)^T g(y) + (f(x)^2)^T (g(y)^2)        (``augment``)

f: images -> R^m is a feature net of ``genlab.models.image_features.FEATURE_NETS`` (docs/icebeem.md
§3b: ``convmlp``, ``mlp``, ``unet``); g(y) = W y is a bias-free Linear on the one-hot label (W in
R^{m x C}, PyTorch's default Linear initialisation: one learned vector per class). With ``positive``
a ReLU is applied to f(x) and to g(y) before the products. The unconditional EBM baseline
(``conditional=False``) fixes g to the all-ones vector, not learned: E(x) = sum_i f_i(x), with the
same ``augment`` / ``positive`` options. The ones are a non-persistent buffer, so the state dicts of
the conditional and unconditional models share every key of f (the transfer experiment loads one
into the other).

feature_size m: 90 for MNIST, 200 for FashionMNIST, CIFAR10 and CIFAR100 in the paper's
configurations; ``final_layer=False`` makes m = C*H*W.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.image_features import FEATURE_NETS
from genlab.models.registry import register_model


class ImageEBM(nn.Module):
    """E(x, y) = f(x)^T g(y) [+ (f(x)^2)^T g(y)^2], g(y) = W y or the all-ones vector (docs/icebeem.md §3a)."""

    def __init__(self, f: nn.Module, feature_size: int, n_classes: int = 10, conditional: bool = True,
                 augment: bool = False, positive: bool = False):  # fmt: skip
        super().__init__()
        self.f = f
        self.feature_size, self.n_classes = int(feature_size), int(n_classes)
        self.conditional, self.augment, self.positive = bool(conditional), bool(augment), bool(positive)
        if self.conditional:
            self.g: nn.Linear | None = nn.Linear(self.n_classes, self.feature_size, bias=False)
        else:
            self.g = None
            self.register_buffer("ones", torch.ones(self.feature_size), persistent=False)

    def features(self, x: Tensor) -> Tensor:
        """f(x), (B, m): the raw features, without the ``positive`` ReLU."""
        return self.f(x)

    def label_vectors(self, y: Tensor | None, batch: int) -> Tensor:
        """g(y), (B, m): W one_hot(y), or the ones for the unconditional model (no ReLU applied)."""
        if not self.conditional:
            if y is not None:
                raise ValueError("the unconditional ImageEBM takes no labels (E(x) = sum_i f_i(x))")
            return self.ones.expand(batch, -1)
        if y is None:
            raise ValueError("the conditional ImageEBM needs the labels y (class indices, shape (B,))")
        return self.g(F.one_hot(y.long(), self.n_classes).to(self.g.weight.dtype))

    def energy(self, x: Tensor, y: Tensor | None = None) -> Tensor:
        """E(x, y), shape (B,); y: int64 class indices (B,), only for the conditional model."""
        f = self.features(x)
        g = self.label_vectors(y, len(f))
        if self.positive:
            f, g = F.relu(f), F.relu(g)
        value = (f * g).sum(1)
        if self.augment:
            value = value + (f.square() * g.square()).sum(1)
        return value

    forward = energy


@register_model("image_ebm", choices={"architecture": (FEATURE_NETS, "")})
def build_image_ebm(
    architecture: str = "convmlp",
    feature_size: int = 90,
    final_layer: bool = True,
    conditional: bool = True,
    augment: bool = False,
    positive: bool = False,
    ngf: int = 64,
    *,
    input_shape: Sequence[int],
    n_classes: int = 10,
) -> ImageEBM:
    """ICE-BeeM's image EBM (docs/icebeem.md §3a): feature net ``architecture`` (§3b) with
    ``feature_size`` outputs (C*H*W when ``final_layer`` is false), conditional on the label or not."""
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3 or shape[1] != shape[2]:
        raise ConfigError(f"model kind 'image_ebm' takes square images (C, H, H), got input_shape {list(shape)}")
    channels, size = shape[0], shape[1]
    out_dim = int(feature_size) if final_layer else None
    f = FEATURE_NETS.get(architecture)(channels, size, out_dim, int(ngf))
    m = out_dim if out_dim is not None else channels * size * size
    return ImageEBM(f, m, int(n_classes), conditional, augment, positive)


__all__ = ["ImageEBM", "build_image_ebm"]
