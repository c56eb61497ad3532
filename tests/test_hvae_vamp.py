"""The VampPrior HVAEs of docs/mim.md §2.2 (Tomczak & Welling 2018): building through the registry and
refusals, the shape of every method, PixelCNN causality, the VampPrior density, the Gaussian and
Bernoulli densities against torch.distributions, the pseudo-inputs' data start, importance weights
(Jensen), sampling, and the He initialisation."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.errors import ConfigError
from genlab.models import build_model
from genlab.models.hvae_vamp import HVAEVamp, gaussian_log_prob

SHAPE = (1, 28, 28)
TINY = {"z1_size": 4, "z2_size": 3, "hidden": 16, "components": 5, "pixel_channels": 8, "pixel_layers": 3}
B = 3


pytestmark = pytest.mark.usefixtures("one_thread")  # conftest.py


def model(**options) -> HVAEVamp:
    torch.manual_seed(0)
    return build_model("hvae_vamp", {**TINY, **options}, {"input_shape": SHAPE})


def images(n: int = B, seed: int = 0) -> torch.Tensor:
    return (torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(seed)) < 0.3).float()


class Images:
    """The ``init_from_data`` interface: ``len`` and ``batch(slice)["x"]``."""

    def __init__(self, x: torch.Tensor):
        self.x = x

    def __len__(self) -> int:
        return len(self.x)

    def batch(self, index: slice) -> dict[str, torch.Tensor]:
        return {"x": self.x[index]}


@pytest.mark.parametrize("decoder", ["conv", "pixel"])
@pytest.mark.parametrize("prior", ["vampprior", "standard"])
def test_every_method_has_the_documented_shape(decoder, prior):
    m, x = model(decoder=decoder, prior=prior), images()
    (m2, v2), z2 = m.q_z2(x), torch.randn(B, 3)
    assert m2.shape == v2.shape == (B, 3) and v2.min() >= -6 and v2.max() <= 2
    assert all(t.shape == (B, 4) for t in (*m.q_z1(x, z2), *m.p_z1(z2)))
    z1, z2 = m.sample_latents(B)
    assert z1.shape == (B, 4) and z2.shape == (B, 3)
    logits = m.decoder_logits(z1, z2, x)
    assert logits.shape == (B, *SHAPE) and m.log_p_x(x, logits).shape == m.log_p_z2(z2).shape == (B,)
    t = m.terms(x)
    assert {k: tuple(v.shape) for k, v in t.items()} == {
        "z1": (B, 4), "z2": (B, 3), "q_z1_mean": (B, 4), "q_z1_logvar": (B, 4), "q_z2_mean": (B, 3),
        "q_z2_logvar": (B, 3), "logits": (B, *SHAPE), "log_px": (B,), "log_pz1": (B,), "log_pz2": (B,),
        "log_qz1": (B,), "log_qz2": (B,)}  # fmt: skip
    assert m.reconstruct(x).shape == (B, *SHAPE) and m.sample_z2(2).shape == (2, 3)
    if prior == "vampprior":
        assert m.pseudo_inputs().shape == (5, *SHAPE) and m.sample_z2(5, first_components=True).shape == (5, 3)
        with pytest.raises(ValueError):
            m.sample_z2(6, first_components=True)
    else:
        with pytest.raises(ValueError):
            m.pseudo_inputs()
    if decoder == "pixel":
        with pytest.raises(ValueError, match="need x"):
            m.decoder_logits(z1, z2)
    else:
        assert torch.equal(m.decoder_logits(z1, z2), logits)  # x is ignored
    xs, probs = m.sample_x(z1[:1], z2[:1]), m.generate(1)
    assert xs.shape == probs.shape == (1, *SHAPE) and set(xs.unique().tolist()) <= {0.0, 1.0}
    assert 0 <= probs.min() and probs.max() <= 1 and 0 <= m.decoder_mean(z1[:1], z2[:1]).min()


def test_bad_options_and_input_shape_are_refused():
    with pytest.raises(ConfigError, match="input_shape"):
        build_model("hvae_vamp", {}, {"input_shape": (3, 32, 32)})
    for option, value in [("decoder", "mlp"), ("prior", "mog"), ("pseudo_init", "zeros"), ("z1_size", 0),
                          ("components", 2.5), ("pixel_layers", 0), ("pseudo_std", -1.0), ("pseudo_mean", "a"),
                          ("nonsense", 1)]:  # fmt: skip
        with pytest.raises(ConfigError, match=option):
            build_model("hvae_vamp", {**TINY, option: value}, {"input_shape": SHAPE})


def test_the_pixelcnn_is_causal_in_raster_order():
    m = model(decoder="pixel").eval()
    z1, z2 = torch.randn(1, 4), torch.randn(1, 3)
    for i, j in [(5, 7), (14, 0), (27, 27)]:
        x = images(1).requires_grad_(True)
        (grad,) = torch.autograd.grad(m.decoder_logits(z1, z2, x)[0, 0, i, j], x)
        grad = grad.flatten().abs()
        assert grad[i * 28 + j:].sum() == 0 and grad[: i * 28 + j].sum() > 0


def test_the_vampprior_is_the_mean_of_the_encoder_at_the_pseudo_inputs():
    z2 = torch.randn(4, 3)
    one = model(components=1)
    mean, logvar = one.q_z2(one.pseudo_inputs())
    assert torch.allclose(one.log_p_z2(z2), gaussian_log_prob(z2, mean.expand(4, -1), logvar.expand(4, -1)), atol=1e-5)
    m = model()
    mean, logvar = m.q_z2(m.pseudo_inputs())
    per = torch.stack([gaussian_log_prob(z2, mean[k].expand(4, -1), logvar[k].expand(4, -1)) for k in range(5)], 1)
    expected = torch.log(torch.exp(per.double()).mean(1))
    assert torch.allclose(m.log_p_z2(z2).double(), expected, atol=1e-4)
    standard = model(prior="standard")
    assert torch.allclose(standard.log_p_z2(z2), torch.distributions.Normal(0.0, 1.0).log_prob(z2).sum(1))


def test_the_densities_match_torch_distributions():
    torch.manual_seed(1)
    z, mean, logvar = torch.randn(5, 6), torch.randn(5, 6), torch.randn(5, 6)
    normal = torch.distributions.Normal(mean, torch.exp(0.5 * logvar)).log_prob(z).sum(1)
    assert torch.allclose(gaussian_log_prob(z, mean, logvar), normal, atol=1e-5)
    x, logits = images(5), 3 * torch.randn(5, *SHAPE)
    bernoulli = torch.distributions.Bernoulli(logits=logits).log_prob(x).flatten(1).sum(1)
    assert torch.allclose(HVAEVamp.log_p_x(x, logits), bernoulli, atol=1e-3)


def test_init_from_data_starts_the_pseudo_inputs_at_the_images():
    torch.manual_seed(2)
    x = torch.rand(7, *SHAPE)
    m = model(pseudo_std=0.01)
    m.init_from_data(Images(x))
    assert (m.pseudo_weight - x[:5].flatten(1)).abs().max() < 0.06
    few = model(pseudo_std=0.01)
    few.init_from_data(Images(x[:2]))
    assert (few.pseudo_weight - x[torch.tensor([0, 1, 0, 1, 0])].flatten(1)).abs().max() < 0.06
    for options in ({"prior": "standard"}, {"pseudo_init": "random"}):
        other = model(**options)
        before = {k: v.clone() for k, v in other.state_dict().items()}
        other.init_from_data(Images(x))
        assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    w = model(pseudo_init="random", components=500, pseudo_mean=0.05, pseudo_std=0.01).pseudo_weight
    assert abs(w.mean().item() - 0.05) < 1e-3 and abs(w.std().item() - 0.01) < 1e-3


@pytest.mark.parametrize("decoder", ["conv", "pixel"])
def test_importance_weights_are_finite_and_obey_jensen(decoder):
    m, x = model(decoder=decoder).eval(), images()
    torch.manual_seed(3)
    with torch.no_grad():
        log_w = m.log_importance_weights(x, 6)
    assert log_w.shape == (6, B) and torch.isfinite(log_w).all()
    assert (torch.logsumexp(log_w, 0) - math.log(6) >= log_w.mean(0)).all()


def test_pixel_sampling_is_reproducible_draws_in_raster_order_and_restores_the_mode():
    m = model(decoder="pixel")
    z1, z2 = torch.randn(2, 4), torch.randn(2, 3)
    torch.manual_seed(5)
    a = m.sample_x(z1, z2)
    torch.manual_seed(5)
    b = m.sample_x(z1, z2)
    assert torch.equal(a, b) and set(a.unique().tolist()) <= {0.0, 1.0} and m.training
    m.eval()  # the definition: pixel (i, j) ~ Bernoulli(sigmoid(logits at the image drawn so far))
    torch.manual_seed(5)
    x = torch.zeros(2, *SHAPE)
    with torch.no_grad():
        for i in range(28):
            for j in range(28):
                x[:, :, i, j] = torch.bernoulli(torch.sigmoid(m.decoder_logits(z1, z2, x)[:, :, i, j]))
    assert torch.equal(a, x)


def test_linear_weights_are_he_initialised():
    m = model(hidden=300)
    layer = m.p_z1_layers[1].h  # 300 -> 300
    assert abs(layer.weight.std().item() / math.sqrt(2 / 300) - 1) < 0.02 and torch.all(layer.bias == 0)
