"""ICE-BeeM's image EBMs (docs/icebeem.md §3a, §3b): every feature extractor maps MNIST- and
CIFAR-shaped batches (a batch of one included) to m features, and the energy is fᵀg, with the
augment and positive options, or Σf unconditionally."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from genlab.models import build_model
from genlab.models.image_ebm import ImageEBM


@pytest.mark.parametrize("architecture", ["convmlp", "mlp", "unet"])
@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_every_extractor_gives_m_features_for_a_batch_of_one_too(architecture, shape):
    model = build_model("image_ebm", {"architecture": architecture, "ngf": 8, "feature_size": 7},
                        {"input_shape": list(shape), "n_classes": 3})  # fmt: skip
    model.eval()
    for n in (1, 4):
        x = torch.rand(n, *shape)
        assert model.features(x).shape == (n, 7)
        assert model.energy(x, torch.arange(n) % 3).shape == (n,)


class Known(nn.Module):
    def forward(self, x):
        return torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)  # f(x) = (S, -S)


@pytest.mark.parametrize("augment", [False, True])
@pytest.mark.parametrize("positive", [False, True])
def test_the_energy_is_f_dot_g_with_its_options_and_sum_f_unconditionally(augment, positive):
    x, y = torch.ones(2, 1, 2, 2) * torch.tensor([1.0, -0.5]).view(2, 1, 1, 1), torch.tensor([0, 1])
    model = ImageEBM(Known(), 2, n_classes=2, conditional=True, augment=augment, positive=positive)
    with torch.no_grad():
        model.g.weight.copy_(torch.tensor([[2.0, -1.0], [3.0, 0.5]]))  # g(y) = column y
    f = torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)
    g = model.g.weight.T[y]
    if positive:
        f, g = f.relu(), g.relu()
    expected = (f * g).sum(1) + ((f * f) * (g * g)).sum(1) * augment
    assert torch.allclose(model.energy(x, y), expected)
    plain = ImageEBM(Known(), 2, n_classes=2, conditional=False, augment=augment, positive=positive)
    f = torch.stack([x.flatten(1).sum(1), -x.flatten(1).sum(1)], 1)
    f = f.relu() if positive else f
    assert torch.allclose(plain.energy(x), f.sum(1) + (f * f).sum(1) * augment)
    assert set(plain.state_dict()) == set(model.state_dict()) - {"g.weight"}  # f's keys shared: transfer copies them


def test_convmlp_has_the_originals_parameter_count():
    model = build_model("image_ebm", {"feature_size": 90}, {"input_shape": [1, 28, 28], "n_classes": 8})
    convs = [(1, 32, 3), (32, 64, 3), (64, 128, 3), (128, 256, 3), (256, 256, 7)]
    count = sum(i * o * k * k + o for i, o, k in convs) + sum(2 * o for _, o, _ in convs[:4])  # + BatchNorm
    count += 256 * 256 + 256 + 256 * 90 + 90 + 90 * 8  # the MLP head and g
    assert sum(p.numel() for p in model.parameters()) == count
