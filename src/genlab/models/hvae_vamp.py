"""The two-level hierarchical VAEs of "VAE with a VampPrior" (Tomczak & Welling, AISTATS 2018), convHVAE
and PixelHVAE, as MIM's image experiments use them (Livne, Swersky & Fleet 2019; docs/mim.md §2.2).

Generative model p(z2) p(z1|z2) p(x|z1, z2), inference q(z2|x) q(z1|x, z2), 28x28 binary images; every
Gaussian is diagonal and parameterised by its log-variance, clipped to [-6, 2] by a Hardtanh. p(z2) is
N(0, I) (``prior="standard"``) or the VampPrior (1/K) sum_k q(z2|u_k) over K learnable pseudo-inputs
u = Hardtanh(0, 1)(W), W of shape (K, 784): the original's bias-free Linear(K -> 784) applied to the
identity. The decoder is ``conv`` (gated convolutions on the z1, z2 features) or ``pixel`` (a PixelCNN
on x and the two z maps, teacher-forced in training and sampled pixel by pixel in raster order).

Two departures from the original code, both numerically harmless:
- the Gaussian log-densities include the -1/2 log 2 pi per dimension, which the original omits; the
  constants cancel in the ELBO and the importance-sampled likelihood and only shift MIM's loss values;
- log p(x|z) is minus the binary cross-entropy with logits summed over pixels (exact for binary x,
  also defined for grey x in [0, 1]); the original clamps sigmoid probabilities to [1e-5, 1 - 1e-5].

Every nn.Linear weight is He-initialised, N(0, 2 / fan_in), with zero biases; convolutions keep
PyTorch's default initialisation. The PixelCNN has BatchNorm: it is causal in eval mode only (in train
mode the batch statistics mix all pixels, as in the original), so the autoregressive sampler runs the
model in eval mode and restores the caller's mode afterwards. Random draws use torch's global generator.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.models.registry import register_model
from genlab.registry import positive_int

IMAGE_SHAPE = (1, 28, 28)
PIXELS = 784
LOG_2PI = math.log(2 * math.pi)


def gaussian_log_prob(z: Tensor, mean: Tensor, logvar: Tensor) -> Tensor:
    """log N(z; mean, diag(exp(logvar))) per example (B,), summed over all but the first dimension,
    with the -1/2 log 2 pi constants."""
    log_p = -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar))
    return log_p.flatten(1).sum(1)


class GatedDense(nn.Module):
    """h(x) * sigmoid(g(x)) with two linear maps, no further activation (Tomczak & Welling 2018)."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.h, self.g = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class GatedConv2d(nn.Module):
    """conv_h(x) * sigmoid(conv_g(x)), no further activation."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int):
        super().__init__()
        self.h, self.g = (nn.Conv2d(c_in, c_out, kernel, stride, padding) for _ in range(2))

    def forward(self, x: Tensor) -> Tensor:
        return self.h(x) * torch.sigmoid(self.g(x))


class MaskedConv2d(nn.Conv2d):
    """A PixelCNN convolution (van den Oord et al. 2016): type 'A' sees only the pixels strictly before
    the centre in raster order, type 'B' also the centre; the mask covers every input channel."""

    def __init__(self, kind: str, c_in: int, c_out: int, kernel: int = 3):
        super().__init__(c_in, c_out, kernel, 1, kernel // 2, bias=False)
        mask = torch.ones_like(self.weight)
        c = kernel // 2
        mask[:, :, c, c + (kind == "B"):] = 0
        mask[:, :, c + 1:] = 0
        self.register_buffer("mask", mask)

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight * self.mask, None, self.stride, self.padding)


def gated_convs(spec: Sequence[tuple[int, int, int, int, int]]) -> nn.Sequential:
    return nn.Sequential(*(GatedConv2d(*layer) for layer in spec))


class GaussianHead(nn.Module):
    """(mean, logvar) = (Linear(h), Hardtanh(-6, 2)(Linear(h)))."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.mean, self.logvar = nn.Linear(n_in, n_out), nn.Linear(n_in, n_out)

    def forward(self, h: Tensor) -> tuple[Tensor, Tensor]:
        return self.mean(h), F.hardtanh(self.logvar(h), -6.0, 2.0)


def reparameterise(mean: Tensor, logvar: Tensor) -> Tensor:
    return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)


class HVAEVamp(nn.Module):
    """convHVAE / PixelHVAE with a standard or VampPrior p(z2) (Tomczak & Welling 2018; docs/mim.md §2.2)."""

    def __init__(self, decoder: str = "conv", prior: str = "vampprior", z1_size: int = 40, z2_size: int = 40,
                 hidden: int = 300, components: int = 500, pseudo_init: str = "data", pseudo_mean: float = 0.05,
                 pseudo_std: float = 0.01, pixel_channels: int = 64, pixel_layers: int = 8):  # fmt: skip
        super().__init__()
        for name, value, allowed in (("decoder", decoder, ("conv", "pixel")),
                                     ("prior", prior, ("vampprior", "standard")),
                                     ("pseudo_init", pseudo_init, ("data", "random"))):  # fmt: skip
            if value not in allowed:
                raise ConfigError(f"hvae_vamp: {name} must be one of {', '.join(allowed)}, got {value!r}")
        sizes = {name: positive_int(value, f"hvae_vamp: {name}") for name, value in (
            ("z1_size", z1_size), ("z2_size", z2_size), ("hidden", hidden), ("components", components),
            ("pixel_channels", pixel_channels), ("pixel_layers", pixel_layers))}  # fmt: skip
        for name, value in (("pseudo_mean", pseudo_mean), ("pseudo_std", pseudo_std)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ConfigError(f"hvae_vamp: {name} must be a finite number, got {value!r}")
        if pseudo_std < 0:
            raise ConfigError(f"hvae_vamp: pseudo_std must be >= 0, got {pseudo_std!r}")
        self.decoder, self.prior, self.pseudo_init = decoder, prior, pseudo_init
        self.z1_size, self.z2_size, self.components = sizes["z1_size"], sizes["z2_size"], sizes["components"]
        self.pseudo_std = float(pseudo_std)
        z1, z2, h = self.z1_size, self.z2_size, sizes["hidden"]
        # q(z2|x): 28 -> 28 -> 14 -> 14 -> 7 -> 7, 6 channels: 294 features
        self.q_z2_convs = gated_convs([(1, 32, 7, 1, 3), (32, 32, 3, 2, 1), (32, 64, 5, 1, 2), (64, 64, 3, 2, 1),
                                       (64, 6, 3, 1, 1)])  # fmt: skip
        self.q_z2_head = GaussianHead(294, z2)
        # q(z1|x, z2)
        self.q_z1_convs = gated_convs([(1, 32, 3, 1, 1), (32, 32, 3, 2, 1), (32, 64, 3, 1, 1), (64, 64, 3, 2, 1),
                                       (64, 6, 3, 1, 1)])  # fmt: skip
        self.q_z1_z2 = GatedDense(z2, 294)
        self.q_z1_joint = GatedDense(588, h)
        self.q_z1_head = GaussianHead(h, z1)
        # p(z1|z2)
        self.p_z1_layers = nn.Sequential(GatedDense(z2, h), GatedDense(h, h))
        self.p_z1_head = GaussianHead(h, z1)
        # p(x|z1, z2)
        if decoder == "conv":
            self.p_x_z1, self.p_x_z2 = GatedDense(z1, h), GatedDense(z2, h)
            self.p_x_joint = GatedDense(2 * h, PIXELS)
            self.p_x_convs = gated_convs([(1, 64, 3, 1, 1)] + [(64, 64, 3, 1, 1)] * 3)
            self.p_x_out = nn.Conv2d(64, 1, 1)
        else:
            c = sizes["pixel_channels"]
            self.p_x_z1, self.p_x_z2 = GatedDense(z1, PIXELS), GatedDense(z2, PIXELS)
            layers: list[nn.Module] = [MaskedConv2d("A", 3, c), nn.BatchNorm2d(c), nn.ReLU()]
            for _ in range(sizes["pixel_layers"] - 1):
                layers += [MaskedConv2d("B", c, c), nn.BatchNorm2d(c), nn.ReLU()]
            self.pixelcnn = nn.Sequential(*layers)
            self.p_x_out = nn.Conv2d(c, 1, 1)
        for module in self.modules():  # He init of every linear map (before W, which is no nn.Linear)
            if isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, math.sqrt(2.0 / module.in_features))
                nn.init.zeros_(module.bias)
        if prior == "vampprior":
            self.pseudo_weight = nn.Parameter(torch.randn(self.components, PIXELS) * pseudo_std + pseudo_mean)

    def extra_repr(self) -> str:
        return f"decoder={self.decoder}, prior={self.prior}, z1={self.z1_size}, z2={self.z2_size}, K={self.components}"

    def _like(self) -> Tensor:
        return self.q_z2_head.mean.weight

    # --- the conditionals ----------------------------------------------------------------------------

    def q_z2(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, logvar) of q(z2|x)."""
        return self.q_z2_head(self.q_z2_convs(x.reshape(-1, *IMAGE_SHAPE)).flatten(1))

    def q_z1(self, x: Tensor, z2: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, logvar) of q(z1|x, z2)."""
        h = torch.cat([self.q_z1_convs(x.reshape(-1, *IMAGE_SHAPE)).flatten(1), self.q_z1_z2(z2)], 1)
        return self.q_z1_head(self.q_z1_joint(h))

    def p_z1(self, z2: Tensor) -> tuple[Tensor, Tensor]:
        """(mean, logvar) of p(z1|z2)."""
        return self.p_z1_head(self.p_z1_layers(z2))

    def _z_maps(self, z1: Tensor, z2: Tensor) -> Tensor:
        """PixelHVAE: the two 1x28x28 z maps, (B, 2, 28, 28)."""
        return torch.cat([self.p_x_z1(z1).view(-1, *IMAGE_SHAPE), self.p_x_z2(z2).view(-1, *IMAGE_SHAPE)], 1)

    def _pixel_logits(self, x: Tensor, maps: Tensor) -> Tensor:
        return self.p_x_out(self.pixelcnn(torch.cat([x, maps], 1)))

    def decoder_logits(self, z1: Tensor, z2: Tensor, x: Tensor | None = None) -> Tensor:
        """Logits of p(x|z1, z2), (B, 1, 28, 28); ``pixel`` needs x (teacher forcing), ``conv`` ignores it."""
        if self.decoder == "conv":
            h = self.p_x_joint(torch.cat([self.p_x_z1(z1), self.p_x_z2(z2)], 1)).view(-1, *IMAGE_SHAPE)
            return self.p_x_out(self.p_x_convs(h))
        if x is None:
            raise ValueError("hvae_vamp: the pixel decoder's logits need x (teacher forcing)")
        return self._pixel_logits(x.reshape(-1, *IMAGE_SHAPE), self._z_maps(z1, z2))

    # --- densities -----------------------------------------------------------------------------------

    @staticmethod
    def log_p_x(x: Tensor, logits: Tensor) -> Tensor:
        """log p(x|z) per example: minus the binary cross-entropy with logits, summed over pixels."""
        return -F.binary_cross_entropy_with_logits(logits, x.reshape(logits.shape), reduction="none").flatten(1).sum(1)

    def pseudo_inputs(self) -> Tensor:
        """The VampPrior's pseudo-inputs Hardtanh(0, 1)(W), (K, 1, 28, 28)."""
        if self.prior != "vampprior":
            raise ValueError("hvae_vamp: the standard prior has no pseudo-inputs")
        return F.hardtanh(self.pseudo_weight, 0.0, 1.0).view(-1, *IMAGE_SHAPE)

    def log_p_z2(self, z2: Tensor) -> Tensor:
        """log p(z2) per example: N(0, I), or log (1/K) sum_k q(z2|u_k) by a logsumexp over components."""
        if self.prior == "standard":
            return gaussian_log_prob(z2, torch.zeros_like(z2), torch.zeros_like(z2))
        mean, logvar = self.q_z2(self.pseudo_inputs())  # (K, D)
        z = z2.unsqueeze(1)  # (B, 1, D)
        log_q = -0.5 * (LOG_2PI + logvar + (z - mean) ** 2 * torch.exp(-logvar)).sum(2)  # (B, K)
        return torch.logsumexp(log_q, 1) - math.log(self.components)

    # --- sampling ------------------------------------------------------------------------------------

    def sample_z2(self, n: int, first_components: bool = False, like: Tensor | None = None) -> Tensor:
        """z2 ~ p(z2), (n, z2_size), reparameterised (gradients reach the pseudo-inputs). VampPrior:
        components uniformly at random, or the first n in order when ``first_components`` (the original's
        S-MIM; n <= K). ``like``: a tensor whose device and dtype the sample takes (default the model's)."""
        like = self._like() if like is None else like
        if self.prior == "standard":
            return torch.randn(n, self.z2_size, device=like.device, dtype=like.dtype)
        if first_components:
            if n > self.components:
                raise ValueError(f"hvae_vamp: {n} samples of the first components, but K = {self.components}")
            index = torch.arange(n, device=like.device)
        else:
            index = torch.randint(self.components, (n,), device=like.device)
        mean, logvar = self.q_z2(self.pseudo_inputs()[index])
        return reparameterise(mean, logvar)

    def sample_latents(self, n: int, first_components: bool = False) -> tuple[Tensor, Tensor]:
        """(z1, z2) from the prior: z2 ~ p(z2), z1 ~ p(z1|z2), reparameterised."""
        z2 = self.sample_z2(n, first_components)
        return reparameterise(*self.p_z1(z2)), z2

    @contextmanager
    def _evaluating(self):
        mode = self.training
        self.eval()
        try:
            yield
        finally:
            self.train(mode)

    @torch.no_grad()
    def sample_x(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Binary x ~ p(x|z1, z2), (B, 1, 28, 28): conv Bernoulli pixels; pixel autoregressively in raster
        order from zeros (784 PixelCNN passes, in eval mode)."""
        if self.decoder == "conv":
            return torch.bernoulli(torch.sigmoid(self.decoder_logits(z1, z2)))
        with self._evaluating():
            maps = self._z_maps(z1, z2)
            x = torch.zeros(z1.shape[0], *IMAGE_SHAPE, device=z1.device, dtype=z1.dtype)
            for i in range(IMAGE_SHAPE[1]):  # row i's logits see rows <= i only: run on those
                for j in range(IMAGE_SHAPE[2]):
                    probs = torch.sigmoid(self._pixel_logits(x[:, :, : i + 1], maps[:, :, : i + 1])[:, :, i, j])
                    x[:, :, i, j] = torch.bernoulli(probs)
        return x

    @torch.no_grad()
    def decoder_mean(self, z1: Tensor, z2: Tensor) -> Tensor:
        """Probabilities in [0, 1]: conv sigmoid(logits); pixel the probability map at an autoregressive
        sample x (the original's generate_x)."""
        if self.decoder == "conv":
            return torch.sigmoid(self.decoder_logits(z1, z2))
        x = self.sample_x(z1, z2)
        with self._evaluating():
            return torch.sigmoid(self.decoder_logits(z1, z2, x))

    @torch.no_grad()
    def generate(self, n: int) -> Tensor:
        """n images' probabilities from the prior: (z1, z2) ~ p, then ``decoder_mean``."""
        return self.decoder_mean(*self.sample_latents(n))

    # --- the objectives' pieces ----------------------------------------------------------------------

    def terms(self, x: Tensor) -> dict[str, Tensor]:
        """One reparameterised z ~ q(z2|x) q(z1|x, z2) and the per-example log-densities at it."""
        q2_mean, q2_logvar = self.q_z2(x)
        z2 = reparameterise(q2_mean, q2_logvar)
        q1_mean, q1_logvar = self.q_z1(x, z2)
        z1 = reparameterise(q1_mean, q1_logvar)
        logits = self.decoder_logits(z1, z2, x)
        return {"z1": z1, "z2": z2, "q_z1_mean": q1_mean, "q_z1_logvar": q1_logvar, "q_z2_mean": q2_mean,
                "q_z2_logvar": q2_logvar, "logits": logits, "log_px": self.log_p_x(x, logits),
                "log_pz1": gaussian_log_prob(z1, *self.p_z1(z2)), "log_pz2": self.log_p_z2(z2),
                "log_qz1": gaussian_log_prob(z1, q1_mean, q1_logvar),
                "log_qz2": gaussian_log_prob(z2, q2_mean, q2_logvar)}  # fmt: skip

    def log_importance_weights(self, x: Tensor, samples: int) -> Tensor:
        """log w = log p(x|z) + log p(z1|z2) + log p(z2) - log q(z1|x, z2) - log q(z2|x) at z ~ q, (samples, B),
        in one pass over the batch repeated ``samples`` times."""
        t = self.terms(x.repeat(samples, *([1] * (x.dim() - 1))))
        log_w = t["log_px"] + t["log_pz1"] + t["log_pz2"] - t["log_qz1"] - t["log_qz2"]
        return log_w.view(samples, x.shape[0])

    @torch.no_grad()
    def reconstruct(self, x: Tensor) -> Tensor:
        """sigmoid of the decoder's logits at one posterior sample (pixel: teacher-forced on x)."""
        return torch.sigmoid(self.terms(x)["logits"])

    @torch.no_grad()
    def init_from_data(self, train: Any) -> None:
        """Start the pseudo-inputs at data (VampPrior with ``pseudo_init="data"``, the original's
        --use_training_data_init): W = the first K training images flattened + N(0, pseudo_std^2) noise,
        cycling the images when there are fewer than K; otherwise nothing. The framework calls this
        once, after building the model and before training, so a run's recorded config rebuilds the
        same model shape and a checkpoint supplies the weights."""
        if self.prior != "vampprior" or self.pseudo_init != "data":
            return
        n = min(len(train), self.components)
        images = torch.as_tensor(train.batch(slice(0, n))["x"]).reshape(n, PIXELS).float()
        images = images[torch.arange(self.components) % n]
        noise = torch.randn(self.components, PIXELS) * self.pseudo_std
        self.pseudo_weight.copy_((images.cpu() + noise).to(self.pseudo_weight))


@register_model("hvae_vamp")
def build_hvae_vamp(
    decoder: str = "conv",
    prior: str = "vampprior",
    z1_size: int = 40,
    z2_size: int = 40,
    hidden: int = 300,
    components: int = 500,
    pseudo_init: str = "data",
    pseudo_mean: float = 0.05,
    pseudo_std: float = 0.01,
    pixel_channels: int = 64,
    pixel_layers: int = 8,
    *,
    input_shape: Sequence[int],
) -> HVAEVamp:
    """Two-level VampPrior HVAE (Tomczak & Welling 2018; docs/mim.md §2.2): ``decoder`` conv (convHVAE) |
    pixel (PixelHVAE), ``prior`` vampprior | standard, ``components`` K pseudo-inputs started at data
    (``pseudo_init="data"``) or N(pseudo_mean, pseudo_std^2) (``"random"``), ``hidden`` the dense width,
    ``pixel_channels`` / ``pixel_layers`` the PixelCNN's width and depth."""
    if tuple(int(d) for d in input_shape) != IMAGE_SHAPE:
        raise ConfigError(f"hvae_vamp takes 1x28x28 binary images; the data's input_shape is {tuple(input_shape)}")
    return HVAEVamp(decoder, prior, z1_size, z2_size, hidden, components, pseudo_init, pseudo_mean, pseudo_std,
                    pixel_channels, pixel_layers)  # fmt: skip
