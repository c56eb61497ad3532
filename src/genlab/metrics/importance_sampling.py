"""Importance-sampled marginal log-likelihood log p(x), the NLL of MIM's image experiments.

Livne, Swersky & Fleet 2019, "MIM: Mutual Information Machine", the image experiments
(docs/mim.md §6.3), which follow Burda, Grosse & Salakhutdinov 2016, "Importance Weighted
Autoencoders" (eq. 8) as implemented for the VampPrior (Tomczak & Welling 2018): for each x,

    log p(x) ~= logsumexp_s(w_s) - log S,    w_s = log p(x, z_s) - log q(z_s | x),  z_s ~ q(z | x),

with S = 5000 samples drawn in chunks of 100. The estimate is a stochastic lower bound of log p(x)
in expectation (Jensen), exact for any S when q(z|x) is the true posterior (every w_s is log p(x)),
and its bias shrinks as S grows; S = 1 is the one-sample ELBO.

The sum over samples is streamed: a running (B,) logsumexp is combined with each chunk's logsumexp
by ``torch.logaddexp``, so no more than one chunk of log weights is ever held, and the result is
the full logsumexp up to floating-point rounding. Everything runs under ``torch.no_grad`` on the
device of ``x``.

Models expose ``log_importance_weights(x, samples) -> (samples, B)``; :func:`log_weights_of`
turns one into the callable the estimators take.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import torch

__all__ = ["importance_log_likelihood", "importance_nll", "log_weights_of"]

LogWeights = Callable[[torch.Tensor, int], torch.Tensor]


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def log_weights_of(model) -> LogWeights:
    """The callable ``(x, n) -> model.log_importance_weights(x, n)``, an (n, B) tensor of log weights."""
    if not callable(getattr(model, "log_importance_weights", None)):
        raise TypeError(f"{type(model).__name__} has no log_importance_weights(x, samples) method")
    return lambda x, n: model.log_importance_weights(x, n)


def _chunk_logsumexp(log_weights: LogWeights, x: torch.Tensor, n: int) -> torch.Tensor:
    w = log_weights(x, n)
    if not isinstance(w, torch.Tensor) or w.shape != (n, x.shape[0]):
        shape = tuple(w.shape) if isinstance(w, torch.Tensor) else type(w).__name__
        raise ValueError(f"log_weights(x, {n}) must return an ({n}, {x.shape[0]}) tensor (samples, batch), got {shape}")
    return torch.logsumexp(w, dim=0)


def importance_log_likelihood(
    log_weights: LogWeights, x: torch.Tensor, samples: int = 5000, chunk: int = 100
) -> torch.Tensor:
    """The importance-sampled log p(x) of each example: logsumexp over ``samples`` log weights - log S.

    Args:
        log_weights: ``log_weights(x, n)`` returns an (n, B) tensor of log weights
            log p(x, z) - log q(z|x) for n fresh draws z ~ q(z|x) per example.
        x: a batch of B examples (first dimension B).
        samples: S, the number of importance samples per example (MIM uses 5000).
        chunk: the most samples asked for in one call (MIM uses 100); the last chunk holds the
            remainder when S is not a multiple of ``chunk``.

    Returns:
        (B,) estimates of log p(x) in nats, on the device of the log weights (that of ``x``).

    Raises:
        ValueError: if samples or chunk is not a positive integer, or a call returns the wrong shape.
    """
    samples = _positive_int(samples, "samples")
    chunk = _positive_int(chunk, "chunk")
    with torch.no_grad():
        total = None
        done = 0
        while done < samples:
            n = min(chunk, samples - done)
            part = _chunk_logsumexp(log_weights, x, n)
            total = part if total is None else torch.logaddexp(total, part)
            done += n
        return total - math.log(samples)


def importance_nll(
    log_weights: LogWeights,
    batches: Iterable[Mapping[str, torch.Tensor]],
    samples: int = 5000,
    chunk: int = 100,
    max_examples: int | None = None,
    device: torch.device | str | None = None,
) -> dict:
    """The importance-sampled negative log-likelihood over a stream of batches.

    Args:
        log_weights: as for :func:`importance_log_likelihood`.
        batches: an iterable of dicts whose ``"x"`` is a batch of examples.
        samples, chunk: as for :func:`importance_log_likelihood`.
        max_examples: stop after this many examples, truncating the last batch (and reading no
            batch beyond it); ``None`` uses them all.
        device: where to move each ``x`` first; ``None`` leaves it where it is.

    Returns:
        ``{"nll": -mean log p(x), "nll_std": std of -log p(x) across examples (population std,
        ddof = 0), "examples": the count, "log_px": the (N,) per-example log p(x) as a CPU tensor}``;
        nll and nll_std are floats in nats.

    Raises:
        ValueError: on invalid samples, chunk or max_examples, or a stream with no examples.
    """
    samples = _positive_int(samples, "samples")
    chunk = _positive_int(chunk, "chunk")
    if max_examples is not None:
        max_examples = _positive_int(max_examples, "max_examples")
    parts: list[torch.Tensor] = []
    count = 0
    for batch in batches:
        x = batch["x"]
        if device is not None:
            x = x.to(device)
        if max_examples is not None:
            x = x[: max_examples - count]
        if len(x) == 0:
            continue
        parts.append(importance_log_likelihood(log_weights, x, samples, chunk).detach().cpu())
        count += len(x)
        if max_examples is not None and count >= max_examples:
            break
    if count == 0:
        raise ValueError("importance_nll got no examples")
    log_px = torch.cat(parts)
    nll = -log_px.double()
    return {
        "nll": float(nll.mean()),
        "nll_std": float(nll.std(correction=0)),
        "examples": count,
        "log_px": log_px,
    }
