"""Binary latents: log-Bernoulli, the smoothed per-bit Bernoulli KL and entropy, and the ZGR
estimator, as the binary-latent HVAEs of "Symmetric Equilibrium Learning of VAEs" use them (Flach,
Schlesinger & Shekhovtsov, AISTATS 2024; docs/symvae.md §1.1, §2.2, §2.3).

Bern(z; l) is the Bernoulli with success probability sigmoid(l), so log Bern(z; l) = z l - softplus(l)
(docs/symvae.md §1.1). Reductions follow design rule 5: ``bernoulli_log_prob`` sums over every
dimension but the first (bits or pixels) and returns one value per example; the KL and entropy are
per bit (no reduction), for the caller to sum.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SMOOTHING = 1e-6  # p <- (1 - 1e-6) p + 0.5e-6 before any log (docs/symvae.md §2.2, §2.3)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)  # the original writes 0.91894 (docs/symvae.md §1.1)


def bernoulli_log_prob(logits: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """sum_k log Bern(z_k; l_k) = sum_k z_k l_k - softplus(l_k), one value per example (B,).

    Written as minus BCE-with-logits (one fused kernel), whose gradient with respect to the target
    z is l: a ``z`` that carries a ZGR gradient passes it on, as the reverse ELBO needs
    (docs/symvae.md §2.2)."""
    return -F.binary_cross_entropy_with_logits(logits, z, reduction="none").flatten(1).sum(1)


def gaussian_log_prob(mean: torch.Tensor, log_sigma: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """sum_k log N(x_k; mu_k, sigma^2) with one scalar s = log sigma, one value per example (B,): per
    pixel -(0.5 log 2pi + s + (x - mu)^2 / (2 sigma^2)) (docs/symvae.md §1.1)."""
    per_pixel = HALF_LOG_2PI + log_sigma + (x - mean).square() * (0.5 * torch.exp(-2.0 * log_sigma))
    return -per_pixel.flatten(1).sum(1)


def smooth(p: torch.Tensor) -> torch.Tensor:
    """(1 - 1e-6) p + 0.5e-6: probabilities kept off 0 and 1 before logs (docs/symvae.md §2.2)."""
    return p * (1.0 - SMOOTHING) + 0.5 * SMOOTHING


def bernoulli_kl(q_logits: torch.Tensor, p_logits: torch.Tensor | float = 0.0) -> torch.Tensor:
    """KL(Bern(sigmoid(q_logits)) || Bern(sigmoid(p_logits))) per bit, analytic, with both
    probabilities smoothed (docs/symvae.md §2.2); ``p_logits = 0`` is the uniform prior Bern(1/2).
    No reduction: the ELBO sums it over bits."""
    q = smooth(torch.sigmoid(q_logits))
    p = smooth(torch.sigmoid(torch.as_tensor(p_logits, dtype=q.dtype, device=q.device)))
    return q * (torch.log(q) - torch.log(p)) + (1 - q) * (torch.log1p(-q) - torch.log1p(-p))


def bernoulli_entropy(p: torch.Tensor) -> torch.Tensor:
    """H(Bern(p)) in nats per element, of the smoothed probability (docs/symvae.md §2.3)."""
    p = smooth(p)
    return -(p * torch.log(p) + (1 - p) * torch.log1p(-p))


def sample_bernoulli(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A hard sample b ~ Bern(sigmoid(logits)) in {0, 1}, of the logits' dtype, without gradient;
    ``generator`` (on the logits' device) or torch's global one."""
    return torch.bernoulli(torch.sigmoid(logits.detach()), generator=generator)


def zgr(logits: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Bernoulli sample with the ZGR gradient, "ZGR = DARN(1/2)" (Shekhovtsov, ICML 2023;
    docs/symvae.md §2.2).

    Forward: the hard sample b ~ Bern(sigmoid(l)), exactly (the surrogate term is l - l = 0).
    Backward: d b / d l is taken as J = (b (1 - sigmoid(l)) + (1 - b) sigmoid(l)) / 2, detached,
    whose expectation over b is sigmoid(l) (1 - sigmoid(l)) = sigmoid'(l): the value b + J (l - stopgrad l).
    """
    p = torch.sigmoid(logits.detach())
    b = torch.bernoulli(p, generator=generator)
    jacobian = 0.5 * torch.where(b > 0, 1 - p, p)
    return b + jacobian * (logits - logits.detach())
