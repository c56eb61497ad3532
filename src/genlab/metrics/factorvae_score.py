"""The FactorVAE disentanglement metric (Kim & Mnih, ICML 2018).

Kim, H. & Mnih, A. "Disentangling by Factorising", ICML 2018, section 4 ("A new metric for
disentanglement"). Each *vote* fixes one generative factor and looks for the latent that varies least:

1. choose a factor k uniformly and a value v of it;
2. draw a batch of L images whose factor k equals v (all other factors vary);
3. encode them, divide every latent by its standard deviation over the whole dataset (so that the
   argmin is invariant to rescaling a latent), take the empirical variance of each latent over the
   batch;
4. the vote is (argmin_j of those variances, k).

The optimal classifier from a latent index to a factor index is then the majority vote: latent j
predicts the factor it was most often the argmin for (on a set of training votes). The score is its
accuracy on fresh evaluation votes: 1 when every factor is fixed by exactly one latent that varies
with nothing else, 1/K (chance) when the argmin carries no information about k.

Estimator choices (following the common implementation, Locatello et al. 2019's
disentanglement_lib ``factor_vae``, except where noted):

* the representation is whatever ``encode`` returns (posterior means for a VAE);
* the scale of latent j is its standard deviation (ddof = 1) over ``n_variance`` rows of ``data``
  drawn without replacement (all rows when ``n_variance >= len(data)``);
* **pruning**: Kim & Mnih ignore latents that have collapsed to the prior; as in
  disentanglement_lib (``prune_dims``, threshold 0.05 in its study configs) a latent is *active*
  when its standard deviation over that sample is >= ``prune``; the argmin is taken over active
  latents only. (The threshold is on the std, i.e. a variance of 0.0025, in code units: for a VAE
  with an N(0, I) prior a posterior-mean std of 0.05 is "collapsed". A constant latent is always
  inactive, so it is never divided by 0.) No active latent: score and train accuracy 0;
* batch variances use ddof = 1; argmin ties go to the lowest latent index; the majority vote
  breaks ties towards the lowest factor index;
* the data is a finite set of images (a split), not a simulator: v is the factor-k class of a
  uniformly random row of ``data`` (so it exists in the set; on a full grid this is uniform over
  the values), and the L images are uniform draws, with replacement, from the rows of ``data`` with
  that class (``FactorIndex.rows_with``);
* a factor with a single class in ``data`` cannot be "fixed" (every batch fixes it): it is excluded
  from the votes (its columns of the vote matrices stay 0; ``constant_factors`` marks it) and K in
  "chance = 1/K" counts the other factors. No factor with two classes: the score is NaN;
* a latent that received no training vote predicts no factor (classifier -1): its evaluation votes
  count as errors (disentanglement_lib's argmax over a zero row would predict factor 0).

On a small set, an uninformative code can score above chance: the training and evaluation votes
fix the same few (factor, value) cells, each a fixed set of rows whose codes have their own sample
variances, and the majority vote learns those. A fixed random code of the 625 rows of a 5^4 grid
(20 cells of 125 rows, batches of 64) scores about 0.30 instead of 1/4; with the thousands of rows
per cell of the full datasets the effect is small, and noise drawn afresh at every call scores 1/4.

Cost: ``(n_votes_train + n_votes_eval) * batch_size + min(n_variance, N)`` images encoded (with
the defaults 1600 x 64 + 10,000 = 112,400), in calls of ``encode_batch_size`` images; the rows of
all votes are drawn in one vectorised call and nothing else loops over rows or votes in Python.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from genlab.data.base import FactorImages
from genlab.data.sampling import FactorIndex

__all__ = ["factorvae_score"]


@torch.no_grad()
def _encode(encode: Callable[[torch.Tensor], torch.Tensor], data: FactorImages, rows: torch.Tensor) -> torch.Tensor:
    codes = encode(data.pixels(rows))
    if not isinstance(codes, torch.Tensor) or codes.ndim != 2 or codes.shape[0] != len(rows):
        got = tuple(codes.shape) if isinstance(codes, torch.Tensor) else type(codes).__name__
        raise ValueError(f"encode must return a [B, D] tensor for B = {len(rows)} images, got {got}")
    return codes


def factorvae_score(
    encode: Callable[[torch.Tensor], torch.Tensor],
    data: FactorImages,
    n_votes_train: int = 800,
    n_votes_eval: int = 800,
    batch_size: int = 64,
    n_variance: int = 10000,
    prune: float = 0.05,
    seed: int = 0,
    *,
    encode_batch_size: int = 4096,
) -> dict:
    """FactorVAE disentanglement score of the representation ``encode`` on the images ``data``.

    Procedure and estimator choices: see the module docstring (Kim & Mnih 2018, section 4).

    Args:
        encode: maps a float image batch ``x`` [B, C, H, W] in [0, 1] (as ``data.pixels`` gives it,
            on ``data.device``) to codes [B, D], e.g. ``lambda x: model.encode(x)[0]`` (posterior
            means). Called under ``torch.no_grad()``; put the model in eval mode beforehand.
        data: the images and their factor classes (e.g. a test split).
        n_votes_train: votes the majority-vote classifier is fitted on.
        n_votes_eval: votes it is scored on.
        batch_size: images per vote (L; 64 in disentanglement_lib). At least 2.
        n_variance: rows of ``data`` the latents' scales are estimated on.
        prune: latents whose std over those rows is below this are ignored (collapsed).
        seed: seeds a ``torch.Generator`` on ``data.device`` that draws every random choice; the
            result is reproducible for a given seed, device and ``encode``.
        encode_batch_size: images per ``encode`` call (whole votes per call, at least one vote).

    Returns:
        dict with ``score`` (float, accuracy on the evaluation votes), ``train_accuracy`` (float),
        ``votes`` [D, K] and ``eval_votes`` [D, K] (int64 counts: how often latent j was the
        argmin when factor k was fixed), ``classifier`` [D] (int64 factor each latent predicts,
        -1 when it had no training vote), ``active_dims`` [D] (bool), ``scale`` [D] (float64 std of
        each latent) and ``constant_factors`` [K] (bool: single-valued in ``data``, excluded).
    """
    if batch_size < 2:
        raise ValueError(f"batch_size must be at least 2 (a variance needs two images), got {batch_size}")
    if n_votes_train < 1 or n_votes_eval < 1:
        raise ValueError(f"need at least one training and one evaluation vote, got {n_votes_train} and {n_votes_eval}")
    if encode_batch_size < 1:
        raise ValueError(f"encode_batch_size must be positive, got {encode_batch_size}")
    if n_variance < 2:
        raise ValueError(f"n_variance must be at least 2, got {n_variance}")
    n = len(data)
    if n < 2:
        raise ValueError(f"need at least 2 images, got {n}")
    device = data.device
    classes = data.classes
    n_factors = classes.shape[1]
    generator = torch.Generator(device=device)
    generator.manual_seed(seed)

    # 1. Scale of each latent over a random sample of the data; prune collapsed latents.
    if n_variance < n:
        sample_rows = torch.randperm(n, generator=generator, device=device)[:n_variance]
    else:
        sample_rows = torch.arange(n, device=device)
    chunks = [
        _encode(encode, data, sample_rows[i : i + encode_batch_size]).to(device, torch.float64)
        for i in range(0, len(sample_rows), encode_batch_size)
    ]
    scale = torch.cat(chunks).var(dim=0, correction=1).sqrt()
    del chunks
    n_latents = scale.shape[0]
    active = scale >= prune

    constant = ~(classes != classes[:1]).any(dim=0)
    free = torch.nonzero(~constant).flatten()
    result = {
        "votes": np.zeros((n_latents, n_factors), dtype=np.int64),
        "eval_votes": np.zeros((n_latents, n_factors), dtype=np.int64),
        "classifier": np.full(n_latents, -1, dtype=np.int64),
        "active_dims": active.cpu().numpy(),
        "scale": scale.cpu().numpy(),
        "constant_factors": constant.cpu().numpy(),
    }
    if len(free) == 0:
        return {"score": float("nan"), "train_accuracy": float("nan"), **result}
    if not bool(active.any()):
        return {"score": 0.0, "train_accuracy": 0.0, **result}

    # 2. All votes' factors, values and rows at once.
    n_votes = n_votes_train + n_votes_eval
    factor = free[torch.randint(len(free), (n_votes,), generator=generator, device=device)]
    value = classes[torch.randint(n, (n_votes,), generator=generator, device=device), factor]
    index = FactorIndex(classes, (classes.max(dim=0).values + 1).tolist())
    rows = index.rows_with(
        factor.repeat_interleave(batch_size), value.repeat_interleave(batch_size), generator=generator
    ).view(n_votes, batch_size)

    # 3. Encode a few whole votes per call; per-vote variances of the rescaled, active latents.
    votes_per_call = max(1, encode_batch_size // batch_size)
    inv_scale = torch.where(active, 1.0 / torch.where(active, scale, 1.0), 0.0)
    argmin = torch.empty(n_votes, dtype=torch.long, device=device)
    for start in range(0, n_votes, votes_per_call):
        stop = min(start + votes_per_call, n_votes)
        codes = _encode(encode, data, rows[start:stop].reshape(-1)).to(device, torch.float64)
        if codes.shape[1] != n_latents:
            raise ValueError(f"encode returned {n_latents} latents for the scale sample, then {codes.shape[1]}")
        local = (codes * inv_scale).view(stop - start, batch_size, n_latents).var(dim=1, correction=1)
        argmin[start:stop] = local.masked_fill(~active, float("inf")).argmin(dim=1)

    # 4. Majority-vote classifier on the training votes, accuracy on the evaluation votes.
    dims = argmin.cpu().numpy()
    factors = factor.cpu().numpy()
    flat = dims * n_factors + factors
    votes = np.bincount(flat[:n_votes_train], minlength=n_latents * n_factors).reshape(n_latents, n_factors)
    eval_votes = np.bincount(flat[n_votes_train:], minlength=n_latents * n_factors).reshape(n_latents, n_factors)
    classifier = np.where(votes.sum(axis=1) > 0, votes.argmax(axis=1), -1)
    train_accuracy = votes.max(axis=1).sum() / n_votes_train
    score = float(np.mean(classifier[dims[n_votes_train:]] == factors[n_votes_train:]))
    result.update(votes=votes, eval_votes=eval_votes, classifier=classifier)
    return {"score": score, "train_accuracy": float(train_accuracy), **result}
