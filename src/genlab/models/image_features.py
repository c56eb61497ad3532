"""Feature extractors f: x -> R^m of ICE-BeeM's image experiments (Khemakhem et al., "ICE-BeeM:
Identifiable Conditional Energy-Based Deep Models Based on Nonlinear ICA", NeurIPS 2020, section 5.2;
docs/icebeem.md §3b).

``FEATURE_NETS`` maps an architecture name to a builder ``(in_channels, image_size, out_dim, ngf) ->
nn.Module`` whose module maps square images (B, C, H, W) to features (B, m). ``out_dim`` is the
feature size m; ``None`` is the original's ``final_layer: false``, where m = C*H*W: the MLPs then end
in a Linear to C*H*W as the original's did, and the Unet has no final Linear (its flattened output
is the feature vector). Widths scale with ``ngf`` (64 in every configuration of the paper):

- ``convmlp`` (:class:`ConvMLP`): conv 3x3 (C -> ngf/2) BN ReLU, conv 3x3 (-> ngf) BN ReLU, maxpool 2,
  conv 3x3 (-> 2 ngf) BN ReLU, conv 3x3 (-> 4 ngf) BN ReLU, maxpool 2, conv with kernel image_size//4
  (-> 4 ngf, a 1x1 map), flatten, Dropout(0.1), Linear(4 ngf -> 4 ngf), LeakyReLU(0.1), Linear(-> m).
  The map is flattened, not squeezed as in the original, so that a batch of one works
  (docs/icebeem.md §10.15).
- ``mlp`` (:class:`FullMLP`): flatten, Linear(-> 8 ngf), LReLU(0.1), Linear(-> 6 ngf), LReLU(0.1),
  Dropout(0.1), Linear(-> 4 ngf), LReLU(0.1), Linear(-> 4 ngf), LReLU(0.1), Linear(-> m).
- ``unet``: the NCSN RefineNet-dilated network, ``genlab.models.refinenet``.

Every module of ``genlab.models`` is imported on the first look-up in ``FEATURE_NETS`` (as in
``MODELS``), so ``unet``, defined in its own module, is always registered.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from genlab.registry import Registry

FeatureNetBuilder = Callable[[int, int, "int | None", int], nn.Module]

FEATURE_NETS: Registry[FeatureNetBuilder] = Registry("feature net", discover="genlab.models")

SLOPE = 0.1  # LeakyReLU slope of the original's MLP heads


def _conv_bn_relu(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, 1, 1), nn.BatchNorm2d(c_out), nn.ReLU()]


class ConvMLP(nn.Module):
    """The convolutional feature net of docs/icebeem.md §3b (``convmlp``)."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int | None = None, ngf: int = 64):
        super().__init__()
        if image_size % 4 or image_size < 4:
            raise ValueError(f"ConvMLP needs an image size divisible by 4, got {image_size}")
        out_dim = int(out_dim) if out_dim is not None else in_channels * image_size**2
        half, wide = ngf // 2, 4 * ngf
        self.conv = nn.Sequential(
            *_conv_bn_relu(in_channels, half), *_conv_bn_relu(half, ngf), nn.MaxPool2d(2),
            *_conv_bn_relu(ngf, 2 * ngf), *_conv_bn_relu(2 * ngf, wide), nn.MaxPool2d(2),
            nn.Conv2d(wide, wide, image_size // 4, 1, 0),  # (B, 4 ngf, 1, 1)
            nn.Flatten(),
        )  # fmt: skip
        self.linear = nn.Sequential(nn.Dropout(0.1), nn.Linear(wide, wide), nn.LeakyReLU(SLOPE), nn.Linear(wide, out_dim))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.conv(x))


class FullMLP(nn.Module):
    """The fully-connected feature net of docs/icebeem.md §3b (``mlp``)."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int | None = None, ngf: int = 64):
        super().__init__()
        size = in_channels * image_size**2
        out_dim = int(out_dim) if out_dim is not None else size
        widths = (8 * ngf, 6 * ngf, 4 * ngf, 4 * ngf)
        layers: list[nn.Module] = [nn.Flatten()]
        for i, (a, b) in enumerate(zip((size,) + widths[:-1], widths)):
            layers += [nn.Linear(a, b), nn.LeakyReLU(SLOPE)]
            if i == 1:
                layers.append(nn.Dropout(0.1))
        self.net = nn.Sequential(*layers, nn.Linear(widths[-1], out_dim))
        self.out_dim = out_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


@FEATURE_NETS.register("convmlp")
def convmlp(in_channels: int, image_size: int, out_dim: int | None, ngf: int = 64) -> ConvMLP:
    """ConvMLP (docs/icebeem.md §3b): four conv-BN-ReLU layers, a full-size conv, an MLP head."""
    return ConvMLP(in_channels, image_size, out_dim, ngf)


@FEATURE_NETS.register("mlp")
def mlp(in_channels: int, image_size: int, out_dim: int | None, ngf: int = 64) -> FullMLP:
    """FullMLP (docs/icebeem.md §3b): five Linear layers with LeakyReLU(0.1)."""
    return FullMLP(in_channels, image_size, out_dim, ngf)


__all__ = ["FEATURE_NETS", "ConvMLP", "FullMLP", "convmlp", "mlp"]
