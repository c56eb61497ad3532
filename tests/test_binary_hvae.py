"""The binary-latent HVAE of docs/symvae.md §1 and the Bernoulli losses of §2.2: the parameter counts
of §1.4, the two players' parameter sets, the shape of every sampling method, known answers of the
densities, the smoothed KL, and the ZGR estimator's forward value and expected Jacobian."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.losses.bernoulli import bernoulli_kl, bernoulli_log_prob, gaussian_log_prob, sample_bernoulli, smooth, zgr
from genlab.models import build_model
from genlab.models.binary_hvae import BinaryHVAE

SHAPE = [1, 28, 28]
TINY = {"nz0": 4, "nz1": 8, "hidden": 16, "trunk": 16}
B = 16


def model(**options) -> BinaryHVAE:
    torch.manual_seed(0)
    return build_model("binary_hvae", {**TINY, **options}, {"input_shape": SHAPE})


def images(n: int = B, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


def count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# --- architecture --------------------------------------------------------------------------------


@pytest.mark.parametrize("options, expected", [
    ({}, {"r": 2_202_386, "g": 442_300, "h": 375_457}),  # mnist-ladder 30/100
    ({"trunk": 1000, "likelihood": "gaussian", "decoder_activation": "relu"}, {"r": 4_354_786, "g": 442_300, "h": 375_457}),
    ({"trunk": 1000, "nz0": 50, "nz1": 200, "likelihood": "gaussian"}, {"r": 4_481_906, "g": 521_400, "h": 580_257}),
    ({"encoder": "reverse"}, {"u": 1_460_156, "v": 802_830, "g": 442_300, "h": 375_457}),
])  # fmt: skip
def test_parameter_counts_are_those_of_the_papers_code(options, expected):
    m = build_model("binary_hvae", options, {"input_shape": SHAPE})  # the real sizes (docs/symvae.md §1.4)
    assert {name: count(part) for name, part in m.named_children()} == expected
    gaussian = options.get("likelihood") == "gaussian"
    assert count(m) == sum(expected.values()) + gaussian  # + the scalar log sigma
    if gaussian:
        assert m.log_sigma.item() == 0.0


@pytest.mark.parametrize("encoder", ["ladder", "reverse"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_the_players_parameters_are_disjoint_and_cover_the_model(encoder, likelihood):
    m = model(encoder=encoder, likelihood=likelihood)
    dec, enc = {id(p) for p in m.decoder_parameters()}, {id(p) for p in m.encoder_parameters()}
    assert not dec & enc and dec | enc == {id(p) for p in m.parameters()}
    assert {id(p) for p in m.g.parameters()} <= dec  # the ladder's q reuses g, which is still the decoder's
    assert hasattr(m, "log_sigma") == (likelihood == "gaussian")
    if likelihood == "gaussian":
        assert id(m.log_sigma) in dec


def test_bad_options_and_inputs_are_refused():
    with pytest.raises(ConfigError, match="1x28x28"):
        build_model("binary_hvae", {}, {"input_shape": [1, 64, 64]})
    for option, value, message in [("encoder", "direct", "encoder must be one of ladder, reverse"),
                                   ("likelihood", "laplace", "likelihood must be one of"),
                                   ("decoder_activation", "gelu", "decoder_activation must be one of tanh, relu"),
                                   ("chain_start", "data", "chain_start must be one of ancestral, random_code, noise"),
                                   ("nz0", 0, "nz0 must be a positive integer")]:  # fmt: skip
        with pytest.raises(ConfigError, match=message):
            build_model("binary_hvae", {option: value}, {"input_shape": SHAPE})


# --- sampling ------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoder", ["ladder", "reverse"])
@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian"])
def test_every_sampling_method_has_the_documented_shape_and_values(encoder, likelihood):
    m, x = model(encoder=encoder, likelihood=likelihood), images()
    g = torch.Generator().manual_seed(1)
    z0, z1 = m.sample_posterior(x, generator=g)
    assert z0.shape == (B, 4) and z1.shape == (B, 8)
    z0, z1, xs = m.sample_prior(5, generator=g)
    assert z0.shape == (5, 4) and z1.shape == (5, 8) and xs.shape == (5, *SHAPE)
    for z in (z0, z1):
        assert set(z.unique().tolist()) <= {0.0, 1.0}
    assert m.x_mean(z1).shape == (5, *SHAPE) and m.sample_x(z1, generator=g).shape == (5, *SHAPE)
    assert m.reconstruct(x, generator=g).shape == (B, *SHAPE)
    binary = likelihood == "bernoulli"
    for out in (m.random_code(3, generator=g), m.limiting_chain(3, steps=2, generator=g)):
        assert out.shape == (3, *SHAPE) and not out.requires_grad
        assert (set(out.unique().tolist()) <= {0.0, 1.0}) == binary  # thresholded for the FID (§4.3) by default
    if binary:
        assert set(xs.unique().tolist()) <= {0.0, 1.0}
        grey = m.random_code(3, generator=g, binary=False)
        assert ((grey > 0) & (grey < 1)).all()  # sigmoid means
    for start in ("ancestral", "random_code", "noise"):
        assert m.limiting_chain(2, steps=1, start=start, generator=g).shape == (2, *SHAPE)


def test_sampling_follows_the_generator():
    m = model()
    a = m.limiting_chain(4, steps=3, generator=torch.Generator().manual_seed(7))
    b = m.limiting_chain(4, steps=3, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("encoder", ["ladder", "reverse"])
def test_a_chain_of_zero_steps_is_one_encode_and_decode_of_its_start(encoder):
    m = model(encoder=encoder, chain_start="noise")
    start = m.chain_start_images(6, generator=torch.Generator().manual_seed(3))
    assert set(start.unique().tolist()) <= {0.0, 1.0}
    g = torch.Generator().manual_seed(4)
    z1 = m.sample_posterior(start, generator=g)[1] if encoder == "ladder" else sample_bernoulli(m.u(start), g)
    expected = (m.h(z1) > 0).float()
    chained = m.limiting_chain(6, steps=0, start=start, generator=torch.Generator().manual_seed(4))
    assert torch.equal(chained, expected.detach())
    # the model's own start (chain_start) is drawn from the chain's generator first
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    own = m.limiting_chain(6, steps=2, generator=g1)
    given = m.limiting_chain(6, steps=2, start=m.chain_start_images(6, generator=g2), generator=g2)
    assert torch.equal(own, given)


def test_random_code_starts_are_thresholded_random_code_images():
    m = model(encoder="reverse", chain_start="random_code")
    start = m.chain_start_images(5, generator=torch.Generator().manual_seed(2))
    assert torch.equal(start, m.random_code(5, generator=torch.Generator().manual_seed(2)))
    assert set(start.unique().tolist()) <= {0.0, 1.0}


# --- densities -----------------------------------------------------------------------------------


def zero_last_layers(m: BinaryHVAE) -> None:
    """Make every logit 0: g's last layer and skip, h's last conv."""
    with torch.no_grad():
        for p in [*m.g.mlp[-1].parameters(), *m.g.skip.parameters(), *m.h[-1].parameters()]:
            p.zero_()


def test_log_joint_of_zero_logits_is_minus_n_log_2():
    m, x = model(), images()
    zero_last_layers(m)
    z0, z1 = m.sample_posterior(x)
    joint = m.log_joint(x, z0, z1)
    assert torch.allclose(joint.z1, torch.full((B,), -8 * math.log(2)))
    assert torch.allclose(joint.x, torch.full((B,), -784 * math.log(2)))
    assert torch.allclose(joint.total, joint.z1 + joint.x)


def test_log_posterior_is_the_sum_of_its_bernoulli_terms():
    m, x = model(), images()
    z0, z1 = m.sample_posterior(x)
    a0, a1 = m.r(x)
    terms = m.log_posterior(x, z0, z1)
    direct0 = (z0 * a0 - torch.nn.functional.softplus(a0)).sum(1)
    l1 = m.g(z0) + a1
    direct1 = (z1 * l1 - torch.nn.functional.softplus(l1)).sum(1)
    assert torch.allclose(terms.z0, direct0, atol=1e-5) and torch.allclose(terms.z1, direct1, atol=1e-5)
    assert torch.allclose(terms.total, direct0 + direct1, atol=1e-5)


def test_the_ladder_posterior_stops_the_gradient_to_g_only_when_asked():
    m, x = model(), images()
    z0, z1 = m.sample_posterior(x)
    (-m.log_posterior(x, z0, z1).total.mean()).backward()
    assert all(p.grad is None for p in m.g.parameters()) and all(p.grad is not None for p in m.r.parameters())
    (-m.log_posterior(x, z0, z1, detach_prior=False).total.mean()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.g.parameters())


def test_the_gaussian_nll_per_pixel_is_the_documented_formula():
    m = model(likelihood="gaussian")
    with torch.no_grad():
        m.log_sigma.fill_(0.3)
    x, z1 = torch.rand(3, *SHAPE), (torch.rand(3, 8) < 0.5).float()
    mu = m.x_mean(z1)
    sigma = math.exp(0.3)
    per_pixel = 0.5 * math.log(2 * math.pi) + 0.3 + (x - mu) ** 2 / (2 * sigma**2)
    with torch.no_grad():
        assert torch.allclose(-m.log_px(x, m.h(z1)), per_pixel.flatten(1).sum(1), rtol=1e-5)
    assert torch.allclose(gaussian_log_prob(mu, torch.tensor(0.3), x), -per_pixel.flatten(1).sum(1), rtol=1e-5)


# --- losses --------------------------------------------------------------------------------------


def test_log_bernoulli_is_z_l_minus_softplus_and_passes_a_gradient_to_z():
    logits = torch.randn(5, 7)
    z = (torch.rand(5, 7) < 0.5).float().requires_grad_()
    value = bernoulli_log_prob(logits, z)
    assert torch.allclose(value, (z * logits - torch.nn.functional.softplus(logits)).sum(1), atol=1e-6)
    value.sum().backward()
    assert torch.allclose(z.grad, logits, atol=1e-6)  # what carries the ZGR gradient in the reverse ELBO (§2.2)


def test_the_smoothed_bernoulli_kl_matches_a_direct_sum():
    lq, lp = torch.randn(6, 5) * 3, torch.randn(6, 5) * 3
    q, p = smooth(torch.sigmoid(lq)), smooth(torch.sigmoid(lp))
    direct = sum(a * (torch.log(a) - torch.log(b)) for a, b in ((q, p), (1 - q, 1 - p)))
    assert torch.allclose(bernoulli_kl(lq, lp), direct, atol=1e-6)
    assert torch.allclose(bernoulli_kl(lq), bernoulli_kl(lq, torch.zeros_like(lq)))  # the uniform prior
    assert (bernoulli_kl(lq, lp) >= -1e-7).all() and torch.allclose(bernoulli_kl(lq, lq), torch.zeros_like(lq), atol=1e-6)
    # the smoothing keeps a saturated posterior finite: log(0.5e-6) bounds each log
    assert torch.isfinite(bernoulli_kl(torch.tensor([100.0]), torch.tensor([-100.0]))).all()


def test_zgr_is_the_hard_sample_forward_and_sigmoid_prime_on_average_backward():
    torch.manual_seed(0)
    values = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    n = 200_000
    logits = values.repeat(n, 1).requires_grad_()
    b = zgr(logits)
    assert set(b.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(b.detach(), b.detach().round())  # exactly the hard sample
    b.sum().backward()  # d b_i / d l_i per element, J
    mean_jacobian = logits.grad.mean(0)
    s = torch.sigmoid(values)
    assert torch.allclose(mean_jacobian, s * (1 - s), atol=2e-3)
    assert torch.allclose(b.detach().mean(0), s, atol=5e-3)
