"""Known answers for the FactorVAE metric (genlab.metrics.factorvae_score), Kim & Mnih (2018)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from genlab.data.base import FactorGrid, FactorImages, from_numpy
from genlab.metrics.factorvae_score import factorvae_score

N_EVAL = 800


def grid_data(sizes) -> FactorImages:
    """Every combination of the factors' classes once. Image i is 1 x 1 x (K + 2) uint8 pixels
    holding its K classes and its row id (two bytes), so an ``encode`` can read the classes back or
    look any code up by row, through the real ``x`` path (``FactorImages.pixels``)."""
    k = len(sizes)
    classes = FactorGrid(tuple(f"f{i}" for i in range(k)), tuple(np.arange(s) for s in sizes)).classes()
    ids = np.arange(len(classes))[:, None]
    images = np.concatenate([classes, ids // 256, ids % 256], axis=1).astype(np.uint8)
    names = [f"f{i}" for i in range(k)]
    return from_numpy(images.reshape(-1, 1, 1, k + 2), classes, classes * 0.1, (1, 1, k + 2), names, bits=False)


def read_classes(x: torch.Tensor, k: int) -> torch.Tensor:
    return (x.flatten(1)[:, :k] * 255).round()


def read_ids(x: torch.Tensor) -> torch.Tensor:
    p = (x.flatten(1)[:, -2:] * 255).round().long()
    return p[:, 0] * 256 + p[:, 1]


def chance_band(k: int, n: int = N_EVAL, sds: float = 5.0) -> tuple[float, float]:
    """1/k +- sds binomial standard deviations of an accuracy over n votes."""
    sd = math.sqrt((1 / k) * (1 - 1 / k) / n)
    return 1 / k - sds * sd, 1 / k + sds * sd


def test_identity_code_scores_one():
    data = grid_data((5, 5, 5, 5))
    out = factorvae_score(lambda x: read_classes(x, 4), data)
    # Fixing factor k makes latent k constant (variance 0) while the others vary: every vote is (k, k).
    assert out["score"] == 1.0 and out["train_accuracy"] == 1.0
    assert out["classifier"].tolist() == [0, 1, 2, 3]
    assert np.count_nonzero(out["votes"] - np.diag(np.diag(out["votes"]))) == 0
    assert out["votes"].sum() == 800 and out["eval_votes"].sum() == N_EVAL
    assert out["active_dims"].all() and not out["constant_factors"].any()
    np.testing.assert_allclose(out["scale"], math.sqrt(2 * 625 / 624))  # std of 0..4, ddof = 1


def test_permuted_rescaled_code_with_a_noise_latent_scores_one():
    data = grid_data((5, 5, 5, 5))
    perm = torch.tensor([2, 0, 3, 1])
    scale = torch.tensor([0.3, -4.0, 1.0, 25.0])
    noise = torch.randn(len(data), generator=torch.Generator().manual_seed(0))

    def encode(x):
        c = read_classes(x, 4)[:, perm] * scale + torch.tensor([1.0, -3.0, 0.0, 100.0])
        return torch.cat([c, noise[read_ids(x)][:, None]], dim=1)  # latent 4: varies with no factor

    out = factorvae_score(encode, data)
    # Normalising by the scale makes the argmin blind to the rescaling; the fixed factor's latent
    # still has variance 0 and the noise latent never wins.
    assert out["score"] == 1.0 and out["train_accuracy"] == 1.0
    assert out["classifier"][:4].tolist() == perm.tolist() and out["classifier"][4] == -1
    assert out["votes"][4].sum() == 0


def test_random_code_scores_chance():
    data = grid_data((5, 5, 5, 5))
    noise = torch.Generator().manual_seed(1)
    out = factorvae_score(lambda x: torch.randn(len(x), 10, generator=noise), data)
    # Fresh noise at every call: which latent has the smallest batch variance is independent of
    # the fixed factor, so an evaluation vote is right with probability
    # sum_j P(j) 1/K [classifier(j) != -1] <= 1/K. Over 800 votes the accuracy is binomial:
    # 1/4 +- 5 sd (sd = 0.0153) = [0.173, 0.327], against 1 for a disentangled code.
    # (A *fixed* random code per row would not do: on 625 rows each of the 20 (factor, value) cells
    # has its own sample variances, shared by training and evaluation votes, and the majority vote
    # learns them: about 0.30 here. See the module docstring.)
    lo, hi = chance_band(4)
    assert lo < out["score"] < hi
    assert out["active_dims"].all()
    assert out["train_accuracy"] >= out["score"] - 0.1  # majority vote fitted to the training votes


def test_unencoded_factor_costs_its_share():
    data = grid_data((5, 5, 5, 5))
    out = factorvae_score(lambda x: read_classes(x, 4) * torch.tensor([1.0, 1.0, 1.0, 0.0]), data)
    # Latent 3 is constant: pruned. Votes fixing factors 0-2 are always right; votes fixing factor 3
    # land on latents 0-2 (~1/3 each), which the majority (their own factor, ~3x more votes) maps
    # elsewhere, so they are always wrong: score = 1 - (share of factor-3 evaluation votes).
    assert out["active_dims"].tolist() == [True, True, True, False]
    assert out["classifier"].tolist() == [0, 1, 2, -1]
    assert out["score"] == pytest.approx(1 - out["eval_votes"][:, 3].sum() / N_EVAL, abs=1e-12)
    # That share is binomial(800, 1/4): score in 3/4 -+ 5 sd.
    lo, hi = chance_band(4)
    assert 1 - hi < out["score"] < 1 - lo
    assert out["votes"][3].sum() == 0 and out["votes"][:3, 3].sum() > 0


def test_single_valued_factor_is_excluded_and_splits_work():
    data = grid_data((5, 5, 5, 5))
    fixed = data.subset(torch.nonzero(data.classes[:, 1] == 2).flatten())  # factor 1 is constant here
    out = factorvae_score(lambda x: read_classes(x, 4), fixed)
    assert out["constant_factors"].tolist() == [False, True, False, False]
    assert out["votes"][:, 1].sum() == 0 and out["eval_votes"][:, 1].sum() == 0
    assert not out["active_dims"][1]  # its latent is constant in this set too
    assert out["score"] == 1.0
    # A random 60% split: values are drawn from rows of the split, rows through FactorIndex on it.
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(2))[: int(0.6 * len(data))]
    split = data.subset(keep.sort().values)
    out = factorvae_score(lambda x: read_classes(x, 4), split, n_votes_train=200, n_votes_eval=200)
    assert out["score"] == 1.0 and out["train_accuracy"] == 1.0


def test_reproducible_from_seed_and_encoded_in_big_batches():
    data = grid_data((5, 5, 5, 5))
    table = torch.randn(len(data), 6, generator=torch.Generator().manual_seed(3))
    sizes = []

    def encode(x):
        sizes.append(len(x))
        return table[read_ids(x)]

    a = factorvae_score(encode, data, seed=7)
    # 625 rows for the scale (n_variance >= N: all of them), then 1600 votes x 64 images in calls
    # of 4096 images = 64 whole votes: 25 calls.
    assert sizes == [625] + [4096] * 25
    b = factorvae_score(encode, data, seed=7)
    c = factorvae_score(encode, data, seed=8)
    np.testing.assert_array_equal(a["votes"], b["votes"])
    np.testing.assert_array_equal(a["eval_votes"], b["eval_votes"])
    assert a["score"] == b["score"]
    assert not np.array_equal(a["votes"], c["votes"])
    sizes.clear()
    factorvae_score(encode, data, n_variance=100, batch_size=10, encode_batch_size=95)
    # Scale sample: 100 rows in calls of 95; votes: 9 whole votes (90 images) a call, 7 in the last.
    assert sizes == [95, 5] + [90] * 177 + [70]


def test_degenerate_cases_and_inputs():
    data = grid_data((3, 4))
    dead = factorvae_score(lambda x: torch.zeros(len(x), 3) + 0.01 * read_classes(x, 2)[:, :1], data)
    assert not dead["active_dims"].any()  # stds 0 and 0.01 * 0.853 < 0.05: everything pruned
    assert dead["score"] == 0.0 and dead["train_accuracy"] == 0.0
    one_value = data.subset(torch.arange(1))
    with pytest.raises(ValueError, match="at least 2 images"):
        factorvae_score(lambda x: read_classes(x, 2), one_value)
    const = grid_data((1, 1, 4)).subset(torch.tensor([0, 0, 0]))
    noisy = factorvae_score(lambda x: read_ids(x)[:, None].float() + torch.randn(len(x), 1), const)
    assert math.isnan(noisy["score"])  # no factor with two classes: nothing to fix
    with pytest.raises(ValueError, match="batch_size"):
        factorvae_score(lambda x: read_classes(x, 2), data, batch_size=1)
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        factorvae_score(lambda x: read_classes(x, 2)[:, 0], data)
