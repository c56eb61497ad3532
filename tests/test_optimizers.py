"""Optimizers by name: the registry, Adam's fused kernel, SGD's momentum rule, AdamNormGrad's
per-tensor gradient normalisation, exact resume from state_dict, and errors that list the options."""

from __future__ import annotations

import copy

import pytest
import torch

from genlab.registry import UnknownNameError
from genlab.training.optimizers import (
    OPTIMIZERS,
    AdamNormGrad,
    make_optimizer,
    optimizer_options,
)


def tiny_params(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(3, 4, generator=g).requires_grad_(), torch.randn(4, generator=g).requires_grad_()]


def quadratic_loss(params: list[torch.Tensor], scale: float = 1.0) -> torch.Tensor:
    w, b = params
    x = torch.linspace(-1.0, 1.0, 12).reshape(3, 4)
    return scale * ((w * x).sum(0) + b - torch.tensor([1.0, -2.0, 0.5, 3.0])).pow(2).sum()


def train(opt: torch.optim.Optimizer, params: list[torch.Tensor], steps: int, scale: float = 1.0) -> None:
    for _ in range(steps):
        opt.zero_grad()
        quadratic_loss(params, scale).backward()
        opt.step()


def test_registry_lists_the_optimizers():
    assert OPTIMIZERS.names() == ["adam", "adam_norm_grad", "sgd"]
    assert optimizer_options("adam") == {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    assert optimizer_options("sgd") == {"momentum": 0.0, "dampening": 0.0, "nesterov": False, "weight_decay": 0.0}
    assert optimizer_options("adam_norm_grad")["grad_eps"] == 1e-7


def test_adam_is_fused_on_cpu_and_bit_identical_to_torch_fused_adam():
    ours, theirs = tiny_params(), tiny_params()
    opt = make_optimizer("adam", ours, 1e-2, weight_decay=1e-3)
    assert isinstance(opt, torch.optim.Adam) and opt.defaults["fused"] is True
    ref = torch.optim.Adam(theirs, lr=1e-2, weight_decay=1e-3, fused=True)
    train(opt, ours, 5)
    train(ref, theirs, 5)
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)
    assert not torch.equal(ours[0], tiny_params()[0])  # it did move


def test_adam_is_unfused_off_cpu_and_cuda():
    p = torch.zeros(2, device="meta", requires_grad=True)
    assert not make_optimizer("adam", [p], 1e-3).defaults["fused"]


def test_sgd_momentum_matches_the_hand_computed_update():
    p = torch.tensor([1.0, -2.0], requires_grad=True)
    opt = make_optimizer("sgd", [p], 0.1, momentum=0.9)
    grads = [torch.tensor([1.0, 2.0]), torch.tensor([-1.0, 0.5]), torch.tensor([0.5, 0.5])]
    expected, buf = torch.tensor([1.0, -2.0]), None
    for g in grads:
        p.grad = g.clone()
        opt.step()
        buf = g if buf is None else 0.9 * buf + g  # torch: the first buffer is the gradient itself
        expected = expected - 0.1 * buf
    # by hand: buffers [1, 2], [-0.1, 2.3], [0.41, 2.57]; parameter [1, -2] - 0.1 * their sum
    assert torch.allclose(expected, torch.tensor([1.0 - 0.131, -2.0 - 0.687]))
    assert torch.allclose(p.detach(), expected, atol=1e-6)


def test_adam_norm_grad_is_adam_on_per_tensor_normalised_gradients():
    ours, theirs = tiny_params(), tiny_params()
    opt = make_optimizer("adam_norm_grad", ours, 1e-2, grad_eps=1e-7)
    assert isinstance(opt, AdamNormGrad) and opt.defaults["fused"] is True
    ref = torch.optim.Adam(theirs, lr=1e-2, fused=True)
    for _ in range(4):
        opt.zero_grad()
        ref.zero_grad()
        quadratic_loss(ours).backward()
        quadratic_loss(theirs).backward()
        for p in theirs:
            p.grad = p.grad / (p.grad.norm() + 1e-7)
        opt.step()
        ref.step()
        for a, b in zip(ours, theirs):
            assert torch.equal(a, b)
            assert torch.equal(a.grad, b.grad)  # the gradient was normalised in place


def test_adam_norm_grad_two_steps_by_hand():
    # g = (3, -4) then 10 g: both normalise to u = g / (5 + grad_eps), so Adam's moments stay
    # m_hat = u and v_hat = u**2 and each step moves by lr * u / (|u| + eps) = lr * sign(u).
    # (Plain Adam would see the gradient grow tenfold and move by 0.1 + 0.0807 instead of 0.2.)
    p = torch.tensor([0.0, 0.0], requires_grad=True)
    opt = make_optimizer("adam_norm_grad", [p], 0.1, eps=1e-8, grad_eps=1e-7)
    for scale in (1.0, 10.0):
        p.grad = scale * torch.tensor([3.0, -4.0])
        opt.step()
    assert torch.allclose(p.grad, torch.tensor([0.6, -0.8]), rtol=1e-6)
    assert torch.allclose(p.detach(), torch.tensor([-0.2, 0.2]), rtol=1e-5, atol=0)


def test_adam_norm_grad_is_invariant_to_the_scale_of_the_loss():
    small, large = tiny_params(), tiny_params()
    train(make_optimizer("adam_norm_grad", small, 1e-2), small, 6, scale=1.0)
    train(make_optimizer("adam_norm_grad", large, 1e-2), large, 6, scale=1000.0)
    for a, b in zip(small, large):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(small[0], tiny_params()[0], atol=1e-3)  # it did move
    # the check can fail: SGD's parameters do depend on the scale of the loss
    sgd_small, sgd_large = tiny_params(), tiny_params()
    train(make_optimizer("sgd", sgd_small, 1e-5), sgd_small, 6, scale=1.0)
    train(make_optimizer("sgd", sgd_large, 1e-5), sgd_large, 6, scale=1000.0)
    assert not torch.allclose(sgd_small[0], sgd_large[0], rtol=1e-3, atol=1e-4)


def test_adam_norm_grad_runs_the_closure_before_normalising():
    p = torch.tensor([0.0, 0.0], requires_grad=True)
    opt = make_optimizer("adam_norm_grad", [p], 0.1)

    def closure():
        opt.zero_grad()
        loss = (p - torch.tensor([3.0, -4.0])).pow(2).sum()
        loss.backward()
        return loss.detach()

    assert float(opt.step(closure)) == 25.0
    assert torch.allclose(p.grad, torch.tensor([-0.6, 0.8]))  # -2 * (3, -4) / 10


@pytest.mark.parametrize("name,options", [("adam", {}), ("sgd", {"momentum": 0.9}), ("adam_norm_grad", {})])
def test_state_dict_round_trip_continues_identically(name, options):
    uninterrupted = tiny_params()
    opt = make_optimizer(name, uninterrupted, 1e-2, **options)
    train(opt, uninterrupted, 3)
    saved_params = [p.detach().clone() for p in uninterrupted]
    saved_state = copy.deepcopy(opt.state_dict())
    train(opt, uninterrupted, 3)

    resumed = [p.requires_grad_() for p in saved_params]
    opt2 = make_optimizer(name, resumed, 1.0)  # a different lr: the state dict restores it
    opt2.load_state_dict(saved_state)
    assert opt2.param_groups[0]["lr"] == 1e-2
    if name == "adam_norm_grad":
        assert opt2.param_groups[0]["grad_eps"] == 1e-7
    train(opt2, resumed, 3)
    for a, b in zip(uninterrupted, resumed):
        assert torch.equal(a, b)


def test_unknown_optimizer_name_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="unknown optimizer 'adamw'; valid optimizers: adam, adam_norm_grad, sgd"):
        make_optimizer("adamw", tiny_params(), 1e-3)


def test_unknown_option_is_named_and_the_valid_ones_listed():
    with pytest.raises(ValueError) as err:
        make_optimizer("sgd", tiny_params(), 1e-3, momentun=0.9)
    assert str(err.value) == (
        "optimizer 'sgd' has no option(s) momentun; its options are: dampening, momentum, nesterov, weight_decay"
    )
    with pytest.raises(ValueError, match=r"optimizer 'adam_norm_grad' has no option\(s\) fused, grad_epsilon; "
                                         r"its options are: betas, eps, grad_eps, weight_decay$"):
        make_optimizer("adam_norm_grad", tiny_params(), 1e-3, grad_epsilon=1e-6, fused=False)
