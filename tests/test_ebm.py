"""The FCE energy MLP (docs/fce.md §2.1) and the density-grid helpers used to plot 2D models (docs/fce.md §4.3)."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from genlab.data.toy2d import eight_gaussians_log_density
from genlab.metrics.density_grid import grid_cell_area, grid_log_density, normalise_on_grid
from genlab.models.ebm import EnergyMLP


def test_parameter_count_and_architecture():
    model = EnergyMLP()
    assert sum(p.numel() for p in model.parameters()) == 17_026
    linears = [m for m in model.net if isinstance(m, nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(2, 128), (128, 128), (128, 1)]
    assert all(m.negative_slope == 0.2 for m in model.net if isinstance(m, nn.LeakyReLU))
    assert model.log_z.shape == () and model.log_z.item() == 1.0
    # PyTorch's default Linear init: weights uniform within 1 / sqrt(fan_in).
    assert all(m.weight.abs().max() <= 1 / math.sqrt(m.in_features) for m in linears)


def test_constructor_arguments():
    model = EnergyMLP(dim=3, hidden=16, negative_slope=0.1, log_z_init=-2.0)
    assert model.log_z.item() == -2.0
    assert model.energy(torch.randn(5, 3)).shape == (5,)


def test_log_prob_is_minus_energy_minus_log_z():
    torch.manual_seed(0)
    model = EnergyMLP()
    x = torch.randn(2000, 2)
    logp = model.log_prob(x)
    assert logp.shape == (2000,) and logp.dtype == torch.float32
    torch.testing.assert_close(logp, -model.net(x)[:, 0] - model.log_z)
    torch.testing.assert_close(model(x), logp)
    # log_z shifts the log density by a constant and nothing else.
    with torch.no_grad():
        model.log_z.add_(0.5)
    torch.testing.assert_close(model(x), logp - 0.5)


def test_gradients_reach_every_parameter():
    model = EnergyMLP()
    model.log_prob(torch.randn(64, 2)).mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.log_z.grad.item() == pytest.approx(-1.0)


# --- density grid -----------------------------------------------------------------------------


def test_grid_layout_is_ij():
    xs, ys, logp = grid_log_density(lambda p: 10 * p[:, 0] + p[:, 1], lim=2.0, n=5)
    torch.testing.assert_close(xs, torch.linspace(-2, 2, 5))
    torch.testing.assert_close(ys, torch.linspace(-2, 2, 5))
    torch.testing.assert_close(logp, 10 * xs[:, None] + ys[None, :])
    assert grid_cell_area(2.0, 5) == pytest.approx(1.0)


def test_grid_chunking_and_no_grad():
    model = EnergyMLP()
    _, _, whole = grid_log_density(model.log_prob, lim=3.0, n=31)
    _, _, chunked = grid_log_density(model.log_prob, lim=3.0, n=31, chunk=7)
    torch.testing.assert_close(whole, chunked)
    assert whole.shape == (31, 31) and not whole.requires_grad and whole.device.type == "cpu"


def test_normalising_a_known_density_gives_it_back():
    lim, n = 6.0, 241
    area = grid_cell_area(lim, n)
    _, _, logp = grid_log_density(lambda p: eight_gaussians_log_density(p.double()), lim=lim, n=n)
    torch.testing.assert_close(normalise_on_grid(logp, area), logp, atol=1e-6, rtol=0)
    # An unnormalised version (any additive constant) comes back normalised.
    torch.testing.assert_close(normalise_on_grid(logp + 3.7, area), logp, atol=1e-6, rtol=0)


def test_normalised_grid_sums_to_one_over_cell_area():
    lim, n = 4.0, 101
    area = grid_cell_area(lim, n)
    _, _, logp = grid_log_density(EnergyMLP(log_z_init=-5.0).log_prob, lim=lim, n=n)
    total = normalise_on_grid(logp.double(), area).exp().sum().item()
    assert total == pytest.approx(1.0 / area, rel=1e-9)


def test_grid_validation():
    with pytest.raises(ValueError):
        grid_log_density(lambda p: p[:, 0], n=1)
    with pytest.raises(ValueError):
        grid_log_density(lambda p: p[:, 0], lim=0.0)
