"""The two-level binary-latent HVAE of "Symmetric Equilibrium Learning of VAEs" (Flach, Schlesinger &
Shekhovtsov, AISTATS 2024; docs/symvae.md §1), with its sampling modes (§4.1-4.3).

Decoder p(z0, z1, x) = p(z0) p(z1|z0) p(x|z1) (docs/symvae.md §1.1): p(z0) uniform on {0,1}^nz0 (no
parameters), p(z1|z0) = prod Bern(z1; g(z0)) with an MLP g, p(x|z1) Bernoulli with logits h(z1)
(MNIST) or N(mu(z1), sigma^2) with one learned scalar s = log sigma, initialised 0 (FashionMNIST).

Two encoders:
- ``ladder`` (§1.2): q(z0|x) q(z1|z0,x), q(z0|x) = prod Bern(a0(x)), q(z1|z0,x) = prod Bern(g(z0) + a1(x)),
  one network r giving both scores and reusing the decoder's g; the encoder owns r only.
- ``reverse`` (§1.3): q(z1|x) q(z0|z1) = prod Bern(u(x)) prod Bern(v(z1)); no parameter is shared.

The architectures are §1.4's exactly (layer shapes, skips, activations, PyTorch's default
initialisation, no normalisation); the test suite checks §1.4's parameter counts. Written here
rather than taken from a library: a few convolutions and MLPs of a fixed published shape, which no
package provides as one block.

Every sampling method takes an optional ``torch.Generator`` on the model's device (training draws from
torch's global generator, which the checkpoints carry) and runs without gradients; methods with a
leading underscore are the pieces the objectives (``sym_equilibrium``, ``binary_elbo``) build on.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from genlab.errors import ConfigError
from genlab.losses.bernoulli import bernoulli_kl, bernoulli_log_prob, gaussian_log_prob, sample_bernoulli
from genlab.models.registry import register_model

ENCODERS = ("ladder", "reverse")
LIKELIHOODS = ("bernoulli", "gaussian")
ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}
CHAIN_STARTS = ("ancestral", "random_code", "noise")
IMAGE_SHAPE = (1, 28, 28)
BASE = 32  # the conv trunk's and the image decoder's base width (docs/symvae.md §1.4)


def conv_trunk(width: int) -> nn.Sequential:
    """The encoder trunk 1x28x28 -> R^width, tanh after every layer (docs/symvae.md §1.4)."""
    layers = [(1, BASE, 3, 1, 1), (BASE, BASE, 2, 1, 0), (BASE, 2 * BASE, 3, 2, 0), (2 * BASE, 2 * BASE, 3, 1, 0),
              (2 * BASE, 2 * BASE, 3, 1, 0), (2 * BASE, 4 * BASE, 3, 2, 0), (4 * BASE, width, 4, 1, 0)]  # fmt: skip
    modules: list[nn.Module] = []
    for c_in, c_out, kernel, stride, padding in layers:  # 28, 27, 13, 11, 9, 4, 1
        modules += [nn.Conv2d(c_in, c_out, kernel, stride, padding), nn.Tanh()]
    return nn.Sequential(*modules, nn.Flatten())


def image_decoder(nz1: int, activation: type[nn.Module]) -> nn.Sequential:
    """z1 (as nz1 x 1 x 1) -> 1x28x28 linear output: logits, or an unsquashed Gaussian mean (docs/symvae.md §1.4)."""
    layers = [(nz1, 4 * BASE, 4, 1), (4 * BASE, 2 * BASE, 3, 2), (2 * BASE, 2 * BASE, 3, 1), (2 * BASE, 2 * BASE, 3, 1),
              (2 * BASE, BASE, 3, 2), (BASE, BASE, 2, 1)]  # fmt: skip
    modules: list[nn.Module] = [nn.Unflatten(1, (nz1, 1, 1))]
    for c_in, c_out, kernel, stride in layers:  # 4, 9, 11, 13, 27, 28
        modules += [nn.ConvTranspose2d(c_in, c_out, kernel, stride), activation()]
    return nn.Sequential(*modules, nn.Conv2d(BASE, 1, 3, 1, 1))


class SkipMLP(nn.Module):
    """A tanh MLP with ``depth`` hidden layers of ``hidden`` units plus a linear skip (no bias) from
    its input to its output logits: g (depth 2) and the reverse v (depth 3), docs/symvae.md §1.4."""

    def __init__(self, n_in: int, n_out: int, hidden: int, depth: int):
        super().__init__()
        layers: list[nn.Module] = []
        width = n_in
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        self.mlp = nn.Sequential(*layers, nn.Linear(width, n_out))
        self.skip = nn.Linear(n_in, n_out, bias=False)

    def forward(self, z: Tensor) -> Tensor:
        return self.mlp(z) + self.skip(z)


class LadderScores(nn.Module):
    """r(x) = (a0, a1) (docs/symvae.md §1.4): a1 = Linear(h); t = two tanh layers of width H on h;
    a0 = Linear(t) + W a1, the z0 score taking a skip from the z1 *score*."""

    def __init__(self, nz0: int, nz1: int, trunk: int):
        super().__init__()
        self.trunk = conv_trunk(trunk)
        self.a1 = nn.Linear(trunk, nz1)
        self.mlp = nn.Sequential(nn.Linear(trunk, trunk), nn.Tanh(), nn.Linear(trunk, trunk), nn.Tanh())
        self.a0 = nn.Linear(trunk, nz0)
        self.skip = nn.Linear(nz1, nz0, bias=False)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.trunk(x)
        a1 = self.a1(h)
        return self.a0(self.mlp(h)) + self.skip(a1), a1


class LogJoint(NamedTuple):
    """log p(z1|z0) + log p(x|z1) per example, and its two terms (the constant log p(z0) is omitted)."""

    total: Tensor
    z1: Tensor
    x: Tensor


class LogPosterior(NamedTuple):
    """log q(z0, z1|x) per example, and its terms log q(z0|...) and log q(z1|...)."""

    total: Tensor
    z0: Tensor
    z1: Tensor


class Sample(NamedTuple):
    """Binary codes with the logits they were drawn from; ``x``/``out`` (the decoder's output, logits
    or mean) are set for ancestral samples. Ladder posterior: ``logits0`` = a0, ``logits1`` = g(z0) + a1
    and ``prior1`` = g(z0); reverse: ``logits1`` = u(x), ``logits0`` = v(z1); prior: ``logits0`` = 0,
    ``logits1`` = ``prior1`` = g(z0)."""

    z0: Tensor | None
    z1: Tensor
    logits0: Tensor | None
    logits1: Tensor
    prior1: Tensor | None = None
    x: Tensor | None = None
    out: Tensor | None = None


class BinaryHVAE(nn.Module):
    """p(z0) p(z1|z0) p(x|z1) with a ``ladder`` or ``reverse`` encoder (docs/symvae.md §1). Parts:
    ``g`` (p(z1|z0)), ``h`` (p(x|z1)), ``log_sigma`` (Gaussian only), ``r`` (ladder) or ``u``, ``v`` (reverse)."""

    def __init__(self, encoder: str = "ladder", likelihood: str = "bernoulli", nz0: int = 30, nz1: int = 100,
                 hidden: int = 600, trunk: int = 600, decoder_activation: str = "tanh",
                 chain_start: str = "ancestral"):  # fmt: skip
        super().__init__()
        for name, value, allowed in (("encoder", encoder, ENCODERS), ("likelihood", likelihood, LIKELIHOODS),
                                     ("decoder_activation", decoder_activation, tuple(ACTIVATIONS)),
                                     ("chain_start", chain_start, CHAIN_STARTS)):  # fmt: skip
            if value not in allowed:
                raise ConfigError(f"binary_hvae: {name} must be one of {', '.join(allowed)}, got {value!r}")
        for name, value in (("nz0", nz0), ("nz1", nz1), ("hidden", hidden), ("trunk", trunk)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"binary_hvae: {name} must be a positive integer, got {value!r}")
        self.encoder, self.likelihood, self.chain_start = encoder, likelihood, chain_start
        self.nz0, self.nz1 = nz0, nz1
        self.g = SkipMLP(nz0, nz1, hidden, depth=2)
        self.h = image_decoder(nz1, ACTIVATIONS[decoder_activation])
        if likelihood == "gaussian":
            self.log_sigma = nn.Parameter(torch.zeros(()))  # s = log sigma, sigma = 1 at the start (§1.1)
        if encoder == "ladder":
            self.r = LadderScores(nz0, nz1, trunk)
        else:
            self.u = nn.Sequential(conv_trunk(trunk), nn.Linear(trunk, nz1))
            self.v = SkipMLP(nz1, nz0, hidden, depth=3)
        # channels-last conv weights: 1.1-1.2x faster training steps on CPU (measured at batch 256, one
        # thread, against the default order in the same process); only 4-d tensors change
        self.to(memory_format=torch.channels_last)

    def extra_repr(self) -> str:
        return f"encoder={self.encoder}, likelihood={self.likelihood}, nz0={self.nz0}, nz1={self.nz1}"

    @property
    def ladder(self) -> bool:
        return self.encoder == "ladder"

    # --- parameter groups (the two players of docs/symvae.md §2.1) ---------------------------------

    def decoder_parameters(self) -> list[nn.Parameter]:
        """g, h (and s): the decoder's player; the ladder's g is the decoder's although q uses it."""
        return [*self.g.parameters(), *self.h.parameters(), *([self.log_sigma] if self.likelihood == "gaussian" else [])]

    def encoder_parameters(self) -> list[nn.Parameter]:
        """r (ladder) or u and v (reverse): the encoder's player."""
        return list(self.r.parameters()) if self.ladder else [*self.u.parameters(), *self.v.parameters()]

    # --- densities ---------------------------------------------------------------------------------

    def _device(self) -> torch.device:
        return self.g.skip.weight.device

    def _dtype(self) -> torch.dtype:
        return self.g.skip.weight.dtype

    def log_px(self, x: Tensor, out: Tensor) -> Tensor:
        """log p(x|z1) per example from the decoder's output ``out`` = h(z1) (logits or mean)."""
        if self.likelihood == "bernoulli":
            return bernoulli_log_prob(out, x)
        return gaussian_log_prob(out, self.log_sigma, x)

    def log_joint(self, x: Tensor, z0: Tensor, z1: Tensor) -> LogJoint:
        """log p(z1|z0) + log p(x|z1) per example (B,), with gradients to the decoder; log p(z0) = -nz0 log 2
        is constant and omitted, as the original (docs/symvae.md §2.1 step 2)."""
        log_z1 = bernoulli_log_prob(self.g(z0), z1)
        log_x = self.log_px(x, self.h(z1))
        return LogJoint(log_z1 + log_x, log_z1, log_x)

    def log_posterior(self, x: Tensor, z0: Tensor, z1: Tensor, detach_prior: bool = True,
                      prior_logits: Tensor | None = None) -> LogPosterior:  # fmt: skip
        """log q(z0, z1|x) per example (B,), with gradients to the encoder. Ladder: log q(z0|x) + log
        q(z1|z0, x) with g(z0) stop-gradient when ``detach_prior`` (the symmetric encoder loss, §2.1
        step 3); ``prior_logits`` = g(z0) when the caller has it (the ancestral sample's). Reverse:
        log q(z1|x) + log q(z0|z1)."""
        if self.ladder:
            a0, a1 = self.r(x)
            if prior_logits is None:
                with torch.set_grad_enabled(torch.is_grad_enabled() and not detach_prior):
                    prior_logits = self.g(z0)
            if detach_prior:
                prior_logits = prior_logits.detach()
            log_z0, log_z1 = bernoulli_log_prob(a0, z0), bernoulli_log_prob(prior_logits + a1, z1)
        else:
            log_z1, log_z0 = bernoulli_log_prob(self.u(x), z1), bernoulli_log_prob(self.v(z1), z0)
        return LogPosterior(log_z0 + log_z1, log_z0, log_z1)

    def log_p(self, x: Tensor, z0: Tensor, z1: Tensor) -> LogJoint:
        """Alias of ``log_joint``: (log p(z1|z0) + log p(x|z1), log p(z1|z0), log p(x|z1)) per example."""
        return self.log_joint(x, z0, z1)

    def log_q(self, x: Tensor, z0: Tensor, z1: Tensor, detach_prior: bool = True) -> LogPosterior:
        """Alias of ``log_posterior``: (log q(z|x), log q(z0|...), log q(z1|...)) per example."""
        return self.log_posterior(x, z0, z1, detach_prior=detach_prior)

    # --- sampling pieces (gradients as the caller's context says) ----------------------------------

    def _prior_z0(self, n: int, generator: torch.Generator | None) -> Tensor:
        """z0 ~ uniform on {0,1}^nz0."""
        u = torch.rand(n, self.nz0, generator=generator, device=self._device(), dtype=self._dtype())
        return (u < 0.5).to(u.dtype)

    def _posterior(self, x: Tensor, generator: torch.Generator | None = None, need_z0: bool = True) -> Sample:
        """z ~ q(z|x) and the logits it was drawn from (reverse without ``need_z0``: z1 only, §4.1)."""
        if self.ladder:
            a0, a1 = self.r(x)
            z0 = sample_bernoulli(a0, generator)
            prior1 = self.g(z0)
            logits1 = prior1 + a1
            return Sample(z0, sample_bernoulli(logits1, generator), a0, logits1, prior1)
        logits1 = self.u(x)
        z1 = sample_bernoulli(logits1, generator)
        if not need_z0:
            return Sample(None, z1, None, logits1)
        logits0 = self.v(z1)
        return Sample(sample_bernoulli(logits0, generator), z1, logits0, logits1)

    def _ancestral(self, n: int, generator: torch.Generator | None = None, sample_x: bool = True) -> Sample:
        """z0 ~ p(z0), z1 ~ p(z1|z0), the decoder output and (``sample_x``) x ~ p(x|z1)."""
        z0 = self._prior_z0(n, generator)
        prior1 = self.g(z0)
        z1 = sample_bernoulli(prior1, generator)
        out = self.h(z1)
        x = self._sample_from(out, generator) if sample_x else None
        return Sample(z0, z1, None, prior1, prior1, x, out)

    def _sample_from(self, out: Tensor, generator: torch.Generator | None) -> Tensor:
        if self.likelihood == "bernoulli":
            return sample_bernoulli(out, generator)
        eps = torch.randn(out.shape, generator=generator, device=out.device, dtype=out.dtype)
        return out + torch.exp(self.log_sigma) * eps

    def _mean_from(self, out: Tensor, binary: bool) -> Tensor:
        """The mean of p(x|z1) from the decoder output; ``binary``: thresholded at 0.5 (logit > 0, §4.3)."""
        if self.likelihood == "bernoulli":
            return (out > 0).to(out.dtype) if binary else torch.sigmoid(out)
        return (out > 0.5).to(out.dtype) if binary else out

    def _binary(self, binary: bool | None) -> bool:
        return self.likelihood == "bernoulli" if binary is None else bool(binary)

    def elbo_terms(self, x: Tensor, sample) -> dict[str, Tensor]:
        """The negative ELBO's terms per example at one posterior sample drawn by ``sample(logits)``
        (``genlab.losses.bernoulli.zgr`` in training, a hard sample in evaluation), docs/symvae.md §2.2.

        Ladder: ``recon`` = -log p(x|z1), ``kl0`` = sum KL(Bern(a0) || Bern(1/2)), ``kl1`` = sum
        KL(Bern(g(z0) + a1) || Bern(g(z0))) at the sampled z0, analytic per bit, g receiving gradients
        through both logits. Reverse: ``kl`` = log q(z1|x) + log q(z0|z1) + nz0 log 2 - log p(z1|z0), the
        one-sample estimate whose log-Bernoulli terms carry the sample's gradient. Also the codes and
        logits (``z0``, ``z1``, ``logits0``, ``logits1``, ``prior1`` = g(z0)) and ``neg_elbo``."""
        if self.ladder:
            a0, a1 = self.r(x)
            z0 = sample(a0)
            prior1 = self.g(z0)
            logits1 = prior1 + a1
            z1 = sample(logits1)
            terms = {"kl0": bernoulli_kl(a0).sum(1), "kl1": bernoulli_kl(logits1, prior1).sum(1)}
            terms["kl"] = terms["kl0"] + terms["kl1"]
            logits0 = a0
        else:
            logits1 = self.u(x)
            z1 = sample(logits1)
            logits0 = self.v(z1)
            z0 = sample(logits0)
            prior1 = self.g(z0)
            # log p(z0) = -nz0 log 2 (the original writes 0.6931 nz0: the same up to a constant)
            terms = {"kl": bernoulli_log_prob(logits1, z1) + bernoulli_log_prob(logits0, z0) + self.nz0 * math.log(2)
                     - bernoulli_log_prob(prior1, z1)}  # fmt: skip
        terms["recon"] = -self.log_px(x, self.h(z1))
        terms["neg_elbo"] = terms["recon"] + terms["kl"]
        terms.update(z0=z0, z1=z1, logits0=logits0, logits1=logits1, prior1=prior1)
        return terms

    # --- public sampling (no gradients) ------------------------------------------------------------

    @torch.no_grad()
    def sample_posterior(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
        """(z0, z1) ~ q(z|x): ladder z0 ~ q(z0|x), z1 ~ q(z1|z0, x); reverse z1 ~ q(z1|x), z0 ~ q(z0|z1)."""
        s = self._posterior(x, generator)
        return s.z0, s.z1

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor]:
        """(z0, z1, x) ancestrally from p: x Bernoulli-sampled, or mu + sigma eps (docs/symvae.md §2.1 step 3)."""
        s = self._ancestral(int(n), generator)
        return s.z0, s.z1, s.x

    @torch.no_grad()
    def x_mean(self, z1: Tensor) -> Tensor:
        """The mean of p(x|z1): sigmoid(h(z1)) or mu(z1), (B, 1, 28, 28)."""
        return self._mean_from(self.h(z1), binary=False)

    @torch.no_grad()
    def sample_x(self, z1: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x ~ p(x|z1)."""
        return self._sample_from(self.h(z1), generator)

    @torch.no_grad()
    def random_code(self, n: int, generator: torch.Generator | None = None, binary: bool | None = None) -> Tensor:
        """Random-code images (docs/symvae.md §4.1): z ~ p(z), the mean of p(x|z1); ``binary`` (default:
        for Bernoulli decoders) thresholds it at 0.5, as the FID material of §4.3."""
        return self._mean_from(self._ancestral(int(n), generator, sample_x=False).out, self._binary(binary))

    @torch.no_grad()
    def reconstruct(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """x -> z ~ q(z|x) -> the mean of p(x|z1) (row 2 of the training grid, docs/symvae.md §3.4)."""
        return self._mean_from(self.h(self._posterior(x, generator, need_z0=False).z1), binary=False)

    @torch.no_grad()
    def chain_start_images(self, n: int, start: str | None = None, generator: torch.Generator | None = None) -> Tensor:
        """The limiting chain's start (docs/symvae.md §4.3): ``ancestral`` x ~ p(x) (mnist-ladder),
        ``random_code`` a random-code image, thresholded for Bernoulli decoders (mnist-reverse),
        ``noise`` Bernoulli(1/2) pixels (fmnist-ladder)."""
        start = self.chain_start if start is None else start
        if start == "ancestral":
            return self._ancestral(int(n), generator).x
        if start == "random_code":
            return self.random_code(n, generator, binary=self.likelihood == "bernoulli")
        if start == "noise":
            u = torch.rand(int(n), *IMAGE_SHAPE, generator=generator, device=self._device(), dtype=self._dtype())
            return (u < 0.5).to(u.dtype)
        raise ConfigError(f"binary_hvae: chain start must be one of {', '.join(CHAIN_STARTS)}, got {start!r}")

    @torch.no_grad()
    def limiting_chain(self, n: int, steps: int = 1000, start: str | Tensor | None = None,
                       generator: torch.Generator | None = None, binary: bool | None = None) -> Tensor:  # fmt: skip
        """Images of the limiting distribution (docs/symvae.md §4.1, §4.3): from the start (a name of
        ``chain_start_images``, None: the model's ``chain_start``, or a tensor of n images), ``steps``
        steps x -> z ~ q(z|x) -> x ~ p(x|z1) sampled (reverse: only z1 is drawn), then one more encode
        and the decoder mean, thresholded at 0.5 when ``binary`` (default: for Bernoulli decoders).
        All n chains advance together."""
        x = start if isinstance(start, Tensor) else self.chain_start_images(n, start, generator)
        for _ in range(int(steps)):
            x = self._sample_from(self.h(self._posterior(x, generator, need_z0=False).z1), generator)
        return self._mean_from(self.h(self._posterior(x, generator, need_z0=False).z1), self._binary(binary))


@register_model("binary_hvae")
def build_binary_hvae(
    encoder: str = "ladder",
    likelihood: str = "bernoulli",
    nz0: int = 30,
    nz1: int = 100,
    hidden: int = 600,
    trunk: int = 600,
    decoder_activation: str = "tanh",
    chain_start: str = "ancestral",
    *,
    input_shape: Sequence[int],
) -> BinaryHVAE:
    """Two-level binary HVAE (Flach et al., AISTATS 2024; docs/symvae.md §1): ``encoder`` ladder |
    reverse, ``likelihood`` bernoulli | gaussian, ``nz0`` / ``nz1`` bits, ``hidden`` the width of g (and
    v), ``trunk`` the encoder trunk's width (1000 for fmnist-ladder), ``decoder_activation`` tanh | relu,
    ``chain_start`` ancestral | random_code | noise (the limiting chain's start, §4.3). Defaults: the
    README demo's mnist-ladder."""
    if tuple(int(d) for d in input_shape) != IMAGE_SHAPE:
        raise ConfigError(f"binary_hvae takes 1x28x28 images (MNIST, FashionMNIST); the data's input_shape is "
                         f"{tuple(input_shape)}")  # fmt: skip
    return BinaryHVAE(encoder, likelihood, nz0, nz1, hidden, trunk, decoder_activation, chain_start)
