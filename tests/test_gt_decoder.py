"""The ground-truth decoder: specs, input transform, objective."""

import copy

import numpy as np
import pytest
import torch

from genlab.models.gt_decoder import DECODERS, build_gt_decoder, input_transform
from genlab.objectives import build_objective
from genlab.training.optimizers import OptimizerFactory
from genlab.training.progress import Progress


@pytest.mark.parametrize("name", ["higgins", "burgess", "kim", "kim_bn", "deep", "deep_bn"])
@pytest.mark.parametrize("shape", [(1, 64, 64), (3, 64, 64)])
def test_every_decoder_maps_factors_to_image_logits(name, shape):
    decoder = build_gt_decoder(name, n_factors=6, input_shape=shape)
    assert decoder(torch.rand(3, 6)).shape == (3, *shape)
    assert name in DECODERS


def test_batch_norm_decoders_drop_redundant_biases():
    decoder = build_gt_decoder("kim_bn", n_factors=5, input_shape=(1, 64, 64))
    linears = [m for m in decoder.modules() if isinstance(m, torch.nn.Linear)]
    tconvs = [m for m in decoder.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [m.bias is not None for m in linears] == [True, False]
    assert [m.bias is not None for m in tconvs] == [False, False, False, True]


def test_input_transform_normalises_to_the_unit_interval_or_keeps_the_original():
    grid = [np.array([1.0, 2.0, 3.0]), np.linspace(0, 2 * np.pi, 40), np.array([5.0])]
    offset, scale = input_transform(grid, "normalised")
    lows = torch.tensor([1.0, 0.0, 5.0])
    highs = torch.tensor([3.0, 2 * np.pi, 5.0])
    assert torch.allclose((lows - offset) * scale, torch.zeros(3))
    assert torch.allclose(((highs - offset) * scale)[:2], torch.ones(2))
    offset, scale = input_transform(grid, "original")
    assert torch.equal(offset, torch.zeros(3)) and torch.equal(scale, torch.ones(3))
    _, scale = input_transform(grid, "original", multiply_by_size=True)  # the original's MPI3D inputs
    assert scale.tolist() == [3.0, 40.0, 1.0]
    with pytest.raises(ValueError, match="normalised, original"):
        input_transform(grid, "raw")


def test_transform_is_part_of_the_state_dict():
    a = build_gt_decoder("kim", n_factors=3, input_shape=(1, 64, 64)).set_input_transform(torch.tensor([1.0, 2, 3]), torch.tensor([0.5, 0.5, 2]))
    b = build_gt_decoder("kim", n_factors=3, input_shape=(1, 64, 64))
    b.load_state_dict(a.state_dict())
    z = torch.rand(2, 3)
    assert torch.equal(a.eval()(z), b.eval()(z))


def test_objective_trains_the_decoder_and_eval_changes_nothing():
    torch.manual_seed(0)
    decoder = build_gt_decoder("kim_bn", n_factors=5, input_shape=(1, 64, 64))
    objective = build_objective("gt_decoder")
    optimizers = objective.make_optimizers(decoder, OptimizerFactory(lr=1e-3))
    batch = {"x": (torch.rand(8, 1, 64, 64) < 0.1).float(), "factors": torch.rand(8, 5)}
    before = copy.deepcopy(decoder.state_dict())
    out = objective.train_step(decoder, optimizers, batch, Progress(0))
    assert out["loss"] > 0
    moved = {k for k, v in decoder.state_dict().items() if not torch.equal(v, before[k])}
    assert {k for k in before if k.endswith("weight")} <= moved
    assert not {"offset", "scale"} & moved  # the input transform is fixed
    before = copy.deepcopy(decoder.state_dict())
    objective.eval_step(decoder, batch)
    assert all(torch.equal(v, before[k]) for k, v in decoder.state_dict().items())  # incl. BatchNorm statistics
