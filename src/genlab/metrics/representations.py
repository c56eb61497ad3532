"""Codes of a dataset under a trained encoder, and the disentanglement scores the papers report."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from genlab.data.base import FactorImages
from genlab.data.sources import sample

Encode = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def codes_of(encode: Encode, data: FactorImages, batch_size: int = 512) -> torch.Tensor:
    """(N, D) codes ``encode(x)`` of every image of ``data``, in order.

    Written into one preallocated tensor: keeping thousands of per-batch results alive between the
    large, freed activation buffers fragments the heap and holds on to hundreds of MB.
    """
    out = None
    for start in range(0, len(data), batch_size):
        stop = min(start + batch_size, len(data))
        codes = encode(data.pixels(slice(start, stop)))
        if out is None:
            out = torch.empty(len(data), codes.shape[1], device=codes.device)
        out[start:stop] = codes
    return out


def posterior_means(model, data: FactorImages, batch_size: int = 512) -> torch.Tensor:
    """(N, D) posterior means mu(x) of every image, the representation DCI is measured on (docs/disent.md §5.2)."""
    model.eval()
    return codes_of(lambda x: model.encode(x)[0], data, batch_size)


def disentanglement_scores(
    encode: Encode,
    data: FactorImages,
    samples: int | None = None,
    dci_alpha: float = 0.02,
    mig_bins: int = 20,
    factorvae_votes: int = 800,
    batch_size: int = 512,
    seed: int = 2,
) -> tuple[dict[str, float], dict[str, Any]]:
    """DCI (the paper's measure, docs/disent.md §5.2), MIG and the FactorVAE score of ``encode`` on ``data``
    (a training split). DCI and MIG see ``samples`` random images (all when None); the FactorVAE score
    draws its own votes from ``data``. Returns the flat scores and ``{"dci_R": R}``."""
    from genlab.metrics.dci import dci
    from genlab.metrics.factorvae_score import factorvae_score
    from genlab.metrics.mig import mig

    part = sample(data, samples, seed=seed)
    codes = codes_of(encode, part, batch_size).cpu().numpy()
    d = dci(codes, part.values.cpu().numpy(), alpha=dci_alpha)
    m = mig(codes, part.classes.cpu().numpy(), bins=mig_bins)
    f = factorvae_score(encode, data, n_votes_train=factorvae_votes, n_votes_eval=factorvae_votes, seed=seed)
    scores = {
        "dci_disentanglement": d["disentanglement"],
        "dci_completeness": d["completeness"],
        "dci_informativeness": float(np.nanmean(d["informativeness"])),  # mean held-out R^2 over factors
        "mig": float(m["mig"]),
        "factorvae_score": float(f["score"]),
    }
    return scores, {"dci_R": d["R"].tolist()}
