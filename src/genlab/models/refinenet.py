"""The ``unet`` feature extractor of ICE-BeeM's image experiments: the dilated RefineNet of NCSN
(Song & Ermon, NeurIPS 2019), which Khemakhem et al. ("ICE-BeeM", NeurIPS 2020, section 5.2) use as
f(x) with a final Linear to the feature size m (docs/icebeem.md §3b).

Structure, with ngf channels and ELU activations throughout:

    x -> 2x - 1 -> conv 3x3 (C -> ngf)
      -> res1: 2 residual blocks (ngf)                                   H
      -> res2: residual block, down-sampling (-> 2 ngf), then one more   H/2
      -> res3: 2 residual blocks with dilation 2 (2 ngf)                 H/2
      -> res4: 2 residual blocks with dilation 4 (2 ngf)                 H/2
      -> refine1(res4) -> refine2(res3, .) -> refine3(res2, .) (-> ngf) -> refine4(res1, .)
      -> InstanceNorm2dPlus -> ELU -> conv 3x3 (ngf -> C) -> flatten [-> Linear(C*H*W -> m)]

The "down-sampling" blocks of res3 and res4 dilate instead of pooling (as in NCSN), so only res2
halves the resolution. A residual block is norm -> ELU -> conv -> norm -> ELU -> conv plus a
shortcut (a conv where the shape changes). A RefineNet block adapts each input with two residual
conv units (RCU: 2 x [norm, ELU, conv 3x3]), fuses several inputs at the finest one's resolution
(MSF: norm, conv, bilinear up-sampling, sum), applies chained residual pooling (CRP: ELU, then 2 x
[norm, average pool 5x5, conv] accumulated) and an output RCU (3 units in the last block, else 1).
The norms are NCSN's InstanceNorm2dPlus without label conditioning: ICE-BeeM feeds no label to f.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.models.image_features import FEATURE_NETS


class InstanceNorm2dPlus(nn.Module):
    """Instance norm that keeps the channel means' relative sizes: per sample and channel,
    gamma * (IN(x) + alpha * standardised channel mean) + beta; alpha, gamma ~ N(1, 0.02), beta = 0."""

    def __init__(self, channels: int):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(channels).normal_(1, 0.02))
        self.gamma = nn.Parameter(torch.empty(channels).normal_(1, 0.02))
        self.beta = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        means = x.mean(dim=(2, 3))  # (B, C)
        means = (means - means.mean(1, keepdim=True)) / torch.sqrt(means.var(1, keepdim=True) + 1e-5)
        h = F.instance_norm(x) + (means * self.alpha)[..., None, None]
        return self.gamma[:, None, None] * h + self.beta[:, None, None]


def _conv(c_in: int, c_out: int, kernel: int = 3, dilation: int = 1, bias: bool = True) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel, padding=dilation * (kernel // 2), dilation=dilation, bias=bias)


class ConvMeanPool(nn.Module):
    """A convolution followed by 2x2 mean pooling."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        self.conv = _conv(c_in, c_out, kernel)

    def forward(self, x: Tensor) -> Tensor:
        return F.avg_pool2d(self.conv(x), 2)


class ResidualBlock(nn.Module):
    """norm -> ELU -> conv -> norm -> ELU -> conv, plus the input (or its conv shortcut).

    ``down`` without dilation halves the resolution (conv, then conv + mean pool; shortcut 1x1 conv +
    mean pool); with ``dilation`` every conv is a dilated 3x3 and the resolution stays."""

    def __init__(self, c_in: int, c_out: int, down: bool = False, dilation: int | None = None):
        super().__init__()
        d = dilation or 1
        mid = c_in if down else c_out
        self.norm1, self.norm2 = InstanceNorm2dPlus(c_in), InstanceNorm2dPlus(mid)
        self.conv1 = _conv(c_in, mid, dilation=d)
        if down and dilation is None:
            self.conv2: nn.Module = ConvMeanPool(mid, c_out)
            self.shortcut: nn.Module | None = ConvMeanPool(c_in, c_out, kernel=1)
        else:
            self.conv2 = _conv(mid, c_out, dilation=d)
            self.shortcut = _conv(c_in, c_out, dilation=d) if (down or c_in != c_out) else None
        self.act = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(self.act(self.norm2(self.conv1(self.act(self.norm1(x))))))
        return h + (x if self.shortcut is None else self.shortcut(x))


class RCU(nn.Module):
    """Residual conv units: ``n_blocks`` x (x + [norm, ELU, conv 3x3 without bias] x ``n_stages``)."""

    def __init__(self, channels: int, n_blocks: int, n_stages: int = 2):
        super().__init__()
        self.blocks = nn.ModuleList(
            nn.Sequential(*[m for _ in range(n_stages) for m in (InstanceNorm2dPlus(channels), nn.ELU(),
                                                                 _conv(channels, channels, bias=False))])
            for _ in range(n_blocks)
        )  # fmt: skip

    def forward(self, x: Tensor) -> Tensor:
        for block in self.blocks:
            x = x + block(x)
        return x


class MSF(nn.Module):
    """Multi-resolution fusion: each input normed, convolved to ``channels``, resized, summed."""

    def __init__(self, in_channels: Sequence[int], channels: int):
        super().__init__()
        self.paths = nn.ModuleList(nn.Sequential(InstanceNorm2dPlus(c), _conv(c, channels)) for c in in_channels)

    def forward(self, xs: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        return sum(F.interpolate(path(x), size=tuple(size), mode="bilinear", align_corners=True) for path, x in zip(self.paths, xs))


class CRP(nn.Module):
    """Chained residual pooling: x = ELU(x), then ``n_stages`` x [norm, avg pool 5x5, conv], each added."""

    def __init__(self, channels: int, n_stages: int = 2):
        super().__init__()
        self.stages = nn.ModuleList(
            nn.Sequential(InstanceNorm2dPlus(channels), nn.AvgPool2d(5, 1, 2), _conv(channels, channels, bias=False))
            for _ in range(n_stages)
        )
        self.act = nn.ELU()

    def forward(self, x: Tensor) -> Tensor:
        x = path = self.act(x)
        for stage in self.stages:
            path = stage(path)
            x = x + path
        return x


class RefineBlock(nn.Module):
    """Adapt each input (RCU 2x2), fuse (MSF, when several), CRP, output RCU (3 units if ``end``)."""

    def __init__(self, in_channels: Sequence[int], channels: int, end: bool = False):
        super().__init__()
        self.adapt = nn.ModuleList(RCU(c, 2) for c in in_channels)
        self.msf = MSF(in_channels, channels) if len(in_channels) > 1 else None
        self.crp = CRP(channels)
        self.out = RCU(channels, 3 if end else 1)

    def forward(self, xs: Sequence[Tensor], size: Sequence[int]) -> Tensor:
        hs = [adapt(x) for adapt, x in zip(self.adapt, xs)]
        h = hs[0] if self.msf is None else self.msf(hs, size)
        return self.out(self.crp(h))


class RefineNetDilated(nn.Module):
    """f(x): the dilated RefineNet (module docstring), flattened, with an optional final Linear."""

    def __init__(self, in_channels: int, image_size: int, out_dim: int | None = None, ngf: int = 64):
        super().__init__()
        if image_size % 2:
            raise ValueError(f"the RefineNet needs an even image size, got {image_size}")
        wide = 2 * ngf
        self.begin = nn.Conv2d(in_channels, ngf, 3, padding=1)
        self.res1 = nn.Sequential(ResidualBlock(ngf, ngf), ResidualBlock(ngf, ngf))
        self.res2 = nn.Sequential(ResidualBlock(ngf, wide, down=True), ResidualBlock(wide, wide))
        self.res3 = nn.Sequential(ResidualBlock(wide, wide, down=True, dilation=2), ResidualBlock(wide, wide, dilation=2))
        self.res4 = nn.Sequential(ResidualBlock(wide, wide, down=True, dilation=4), ResidualBlock(wide, wide, dilation=4))
        self.refine1 = RefineBlock([wide], wide)
        self.refine2 = RefineBlock([wide, wide], wide)
        self.refine3 = RefineBlock([wide, wide], ngf)
        self.refine4 = RefineBlock([ngf, ngf], ngf, end=True)
        self.end = nn.Sequential(InstanceNorm2dPlus(ngf), nn.ELU(), nn.Conv2d(ngf, in_channels, 3, padding=1), nn.Flatten())
        size = in_channels * image_size**2
        self.final = nn.Linear(size, int(out_dim)) if out_dim is not None else None
        self.out_dim = int(out_dim) if out_dim is not None else size

    def forward(self, x: Tensor) -> Tensor:
        h1 = self.res1(self.begin(2 * x - 1))
        h2 = self.res2(h1)
        h3 = self.res3(h2)
        h4 = self.res4(h3)
        r = self.refine1([h4], h4.shape[2:])
        r = self.refine2([h3, r], h3.shape[2:])
        r = self.refine3([h2, r], h2.shape[2:])
        r = self.refine4([h1, r], h1.shape[2:])
        out = self.end(r)
        return out if self.final is None else self.final(out)


@FEATURE_NETS.register("unet")
def unet(in_channels: int, image_size: int, out_dim: int | None, ngf: int = 64) -> RefineNetDilated:
    """NCSN's dilated RefineNet with a final Linear to m (docs/icebeem.md §3b)."""
    return RefineNetDilated(in_channels, image_size, out_dim, ngf)


__all__ = ["CRP", "MSF", "RCU", "ConvMeanPool", "InstanceNorm2dPlus", "RefineBlock", "RefineNetDilated", "ResidualBlock",
           "unet"]  # fmt: skip
