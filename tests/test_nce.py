"""The FCE value function and accuracy (docs/fce.md §3.1, §3.3)."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.losses import fce_accuracy, fce_value


def _lse_value(lp_d, lq_d, lp_n, lq_n):
    """docs/fce.md §3.1 written out with the two-element log-sum-exp."""
    data = lp_d - torch.logsumexp(torch.stack((lp_d, lq_d)), dim=0)
    noise = lq_n - torch.logsumexp(torch.stack((lp_n, lq_n)), dim=0)
    return data.mean() + noise.mean()


def _random(seed: int, n_data: int = 1000, n_noise: int = 1000, scale: float = 5.0):
    g = torch.Generator().manual_seed(seed)
    return (
        scale * torch.randn(n_data, generator=g, dtype=torch.float64),
        scale * torch.randn(n_data, generator=g, dtype=torch.float64),
        scale * torch.randn(n_noise, generator=g, dtype=torch.float64),
        scale * torch.randn(n_noise, generator=g, dtype=torch.float64),
    )


@pytest.mark.parametrize("seed", range(3))
def test_value_matches_the_log_sum_exp_formula(seed):
    args = _random(seed, n_noise=700)
    torch.testing.assert_close(fce_value(*args), _lse_value(*args), rtol=1e-12, atol=1e-12)


def test_value_is_minus_log_4_when_p_equals_q():
    lp_d, _, lp_n, _ = _random(0)
    assert fce_value(lp_d, lp_d, lp_n, lp_n).item() == pytest.approx(-math.log(4), abs=1e-12)


@pytest.mark.parametrize("seed", range(3))
def test_value_is_at_most_zero(seed):
    assert fce_value(*_random(seed)).item() <= 0.0


def test_value_approaches_zero_when_perfectly_separated():
    big = torch.full((10,), 50.0)
    assert fce_value(big, -big, -big, big).item() == pytest.approx(0.0, abs=1e-20)


def test_accuracy_tie_rule():
    n = 1000
    high, low = torch.full((n,), 3.0), torch.full((n,), -4.0)
    # p >> q everywhere (the EBM at init): all data right, all samples wrong.
    assert fce_accuracy(high, low, high, low).item() == 0.5
    # p == q: data ties count as right (>=), sample ties as wrong (>).
    x = torch.randn(n)
    assert fce_accuracy(x, x, x, x).item() == 0.5
    # Perfectly separated.
    assert fce_accuracy(high, low, low, high).item() == 1.0
    assert fce_accuracy(low, high, high, low).item() == 0.0


def test_accuracy_counts_over_both_batches():
    lp_d = torch.tensor([1.0, -1.0, 0.0])  # right, wrong, right (tie)
    lp_n = torch.tensor([-1.0, 1.0])  # right, wrong
    acc = fce_accuracy(lp_d, torch.zeros(3), lp_n, torch.zeros(2))
    assert acc.item() == pytest.approx(3 / 5)
    assert acc.dtype.is_floating_point and not acc.requires_grad


def test_gradients_finite_for_extreme_inputs():
    for value in (1e4, -1e4):
        lp_d = torch.full((8,), value, requires_grad=True)
        lq_d = torch.full((8,), -value, requires_grad=True)
        lp_n = torch.full((8,), value, requires_grad=True)
        lq_n = torch.full((8,), -value, requires_grad=True)
        v = fce_value(lp_d, lq_d, lp_n, lq_n)
        assert torch.isfinite(v)
        v.backward()
        for t in (lp_d, lq_d, lp_n, lq_n):
            assert torch.isfinite(t.grad).all()
        # d V / d log p(x_i) = sigma(log q - log p) / B on data; the LSE formula agrees.
        ref = [t.detach().clone().requires_grad_() for t in (lp_d, lq_d, lp_n, lq_n)]
        _lse_value(*ref).backward()
        torch.testing.assert_close(lp_d.grad, ref[0].grad)
        torch.testing.assert_close(lq_n.grad, ref[3].grad)


def test_gradient_signs():
    lp_d, lq_d, lp_n, lq_n = (t.requires_grad_() for t in _random(1))
    fce_value(lp_d, lq_d, lp_n, lq_n).backward()
    # Raising log p on data or log q on samples raises V; the reverse lowers it.
    assert (lp_d.grad > 0).all() and (lq_n.grad > 0).all()
    assert (lq_d.grad < 0).all() and (lp_n.grad < 0).all()


def test_shapes_must_pair_up():
    with pytest.raises(ValueError, match="pair up"):
        fce_value(torch.zeros(4, 1), torch.zeros(4), torch.zeros(4), torch.zeros(4))
    with pytest.raises(ValueError, match="pair up"):
        fce_accuracy(torch.zeros(4), torch.zeros(4), torch.zeros(3), torch.zeros(4))
