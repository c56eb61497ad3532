"""Models of the disent paper: layer specs, named architectures, the Gaussian VAE, the discriminator."""

from __future__ import annotations

import copy
import json

import pytest
import torch

from genlab.models import count_parameters, describe
from genlab.models.architectures import ARCHITECTURES
from genlab.models.discriminator import Discriminator
from genlab.models.gaussian_vae import GaussianVAE
from genlab.models.gaussian_vae import build_gaussian_vae as build_model
from genlab.models.layers import LayerSpecError
from genlab.models.layers import build, transpose
from genlab.registry import UnknownNameError

SHAPES = [(1, 64, 64), (3, 64, 64)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ["kim", "burgess", "burgess_v2", "mathieu", "higgins"])
def test_every_architecture_builds_and_maps_images_to_logits(name, shape):
    model = build_model(name, latent_size=10, input_shape=shape)
    x = torch.rand(3, *shape)
    out = model(x)
    assert set(out) == {"logits", "mu", "logvar", "z"}
    assert out["logits"].shape == (3, *shape)
    for key in ("mu", "logvar", "z"):
        assert out[key].shape == (3, 10)
    assert model.decode(torch.zeros(2, 10)).shape == (2, *shape)
    assert model.latent_size == 10 and model.input_shape == shape
    # logits, not probabilities: the decoder does not end in a sigmoid
    assert not isinstance(model.decoder[-1], torch.nn.Sigmoid)


def test_architectures_are_registered():
    assert set(ARCHITECTURES.names()) >= {"kim", "burgess", "burgess_v2", "mathieu", "higgins"}
    for name in ARCHITECTURES:
        assert "docs/disent.md §2.2" in ARCHITECTURES.get(name).__doc__


def _conv(c_in, c_out, k=4):
    return c_in * c_out * k * k + c_out


def _linear(n_in, n_out):
    return n_in * n_out + n_out


def test_kim_parameter_count_is_the_hand_computed_one():
    encoder = _conv(1, 32) + _conv(32, 32) + _conv(32, 64) + _conv(64, 64) + _linear(1024, 256) + _linear(256, 20)
    # ConvTranspose2d(c_in, c_out) has the same count as Conv2d(c_in, c_out)
    decoder = _linear(10, 256) + _linear(256, 1024) + _conv(64, 64) + _conv(64, 32) + _conv(32, 32) + _conv(32, 1)
    assert encoder + decoder == 764_245
    model = build_model("kim", 10, input_shape=(1, 64, 64))
    assert count_parameters(model) == encoder + decoder
    assert f"{encoder + decoder:,}" in describe(model)


def test_kim_decoder_is_the_mirrored_encoder_with_relu_after_unflatten():
    model = build_model("kim", 10, input_shape=(3, 64, 64))
    names = [type(m).__name__ for m in model.decoder]
    assert names == [
        "Linear", "ReLU", "Linear", "Unflatten", "ReLU",
        "ConvTranspose2d", "ReLU", "ConvTranspose2d", "ReLU", "ConvTranspose2d", "ReLU", "ConvTranspose2d",
    ]  # fmt: skip
    channels = [m.out_channels for m in model.decoder if isinstance(m, torch.nn.ConvTranspose2d)]
    assert channels == [64, 32, 32, 3]


def _shapes(net, shape):
    x, shapes = torch.zeros(1, *shape), []
    for layer in net:
        x = layer(x)
        shapes.append(tuple(x.shape[1:]))
    return shapes


def test_transpose_of_a_conv_spec_mirrors_its_shapes():
    spec = [("conv", 16, 3, 2, 1), ("relu",), ("pool", 2, 2, 0, "max"), ("conv", 8, 3, 1, 0), ("relu",), ("flatten",)]
    shape = (3, 29, 29)  # odd sizes: the strided conv rounds down, the tconv needs output_padding
    encoder, out = build(spec, shape)
    decoder_spec = transpose(spec, shape)
    decoder, dec_out = build(decoder_spec, (7,), image_shape=shape)
    assert dec_out == shape
    enc_shapes = [shape] + _shapes(encoder, shape)
    dec_shapes = _shapes(decoder, (7,))
    # the decoder starts with linear(latent -> encoder width), then visits the encoder's shapes backwards
    assert dec_shapes[0] == out
    assert dec_shapes[1:] == enc_shapes[::-1][1:]
    assert decoder_spec[-1][:2] == ("tconv", -1)


def test_transposed_decoder_follows_the_image_channels():
    spec = build_model("burgess", 10, input_shape=(1, 64, 64))
    assert spec.decoder[-1].out_channels == 1
    assert build_model("burgess", 10, input_shape=(3, 64, 64)).decoder[-1].out_channels == 3


def test_specs_in_json_form_build_the_same_model():
    encoder = [("conv", 8, 4, 2, 1), ("relu",), ("flatten",), ("linear", 32, {"bias": False}), ("lrelu", 0.2)]
    as_json = json.loads(json.dumps(encoder))
    torch.manual_seed(0)
    a = GaussianVAE(encoder, None, 4, (1, 16, 16))
    torch.manual_seed(0)
    b = GaussianVAE(as_json, None, 4, (1, 16, 16))
    assert str(a) == str(b)
    for pa, pb in zip(a.parameters(), b.parameters()):
        assert torch.equal(pa, pb)
    assert a.encoder[3].bias is None


def test_eval_gives_the_posterior_mean_and_training_samples():
    torch.manual_seed(0)
    model = build_model("kim", 6, input_shape=(1, 64, 64))
    x = (torch.rand(4, 1, 64, 64) > 0.5).float()
    model.eval()
    out = model(x)
    assert torch.equal(out["z"], out["mu"])
    model.train()
    first, second = model(x), model(x)
    assert not torch.allclose(first["z"], first["mu"])
    assert not torch.allclose(first["z"], second["z"])
    assert torch.allclose(first["mu"], second["mu"])


def test_build_model_does_not_mutate_its_arguments():
    encoder = [("conv", 8, 4, 2, 1), ("relu",), ("flatten",), ["linear", [32]], ("relu",)]
    decoder = [("linear", 512), ("unflatten", [8, 8, 8]), ("relu",), ("tconv", -1, 4, 2, 1)]
    before = copy.deepcopy((encoder, decoder))
    shape = [1, 16, 16]
    model = build_model(None, 5, input_shape=shape, encoder_layers=encoder, decoder_layers=decoder)
    build_model("kim", 5, input_shape=shape, encoder_layers=encoder)
    assert (encoder, decoder) == before and shape == [1, 16, 16]
    assert model(torch.rand(2, 1, 16, 16))["logits"].shape == (2, 1, 16, 16)


def test_explicit_specs_override_the_named_architecture():
    encoder = [("flatten",), ("linear", 64), ("relu",)]
    model = build_model("kim", 3, input_shape=(1, 8, 8), encoder_layers=encoder)
    assert [type(m).__name__ for m in model.encoder] == ["Flatten", "Linear", "ReLU", "Linear"]
    # no decoder given and kim has none of its own: the transpose of the given encoder
    assert [type(m).__name__ for m in model.decoder] == ["Linear", "ReLU", "Linear", "Unflatten"]


def test_unknown_architecture_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        build_model("kimm")
    for name in ("kim", "burgess", "burgess_v2", "mathieu", "higgins"):
        assert name in str(err.value)


def test_unknown_layer_lists_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        build([("flatten",), ("dense", 10)], (1, 8, 8))
    for name in ("linear", "conv", "tconv", "pool", "unflatten", "relu", "lrelu"):
        assert name in str(err.value)


def test_a_spec_that_does_not_fit_says_which_layer():
    with pytest.raises(LayerSpecError, match=r"layer 1 .*linear"):
        build([("conv", 4, 3, 1, 1), ("linear", 10)], (1, 8, 8))
    with pytest.raises(LayerSpecError, match=r"layer 2 "):
        build([("conv", 4, 4, 2, 1), ("conv", 4, 4, 2, 1), ("conv", 4, 4, 2, 1)], (1, 4, 4))
    with pytest.raises(LayerSpecError, match="image shape"):
        GaussianVAE([("flatten",)], [("linear", 10)], 2, (1, 4, 4))


@pytest.mark.parametrize("latent_size", [6, 10])
def test_discriminator_outputs_two_logits(latent_size):
    disc = Discriminator(latent_size)
    assert disc(torch.randn(5, latent_size)).shape == (5, 2)
    linears = [m for m in disc.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) == 7 and linears[0].in_features == latent_size
    leaky = [m for m in disc.modules() if isinstance(m, torch.nn.LeakyReLU)]
    assert len(leaky) == 6 and all(m.negative_slope == 0.01 for m in leaky)


@pytest.mark.parametrize("name", ["kim", "higgins"])
def test_rebuilt_model_with_loaded_state_reproduces_outputs(name):
    config = dict(architecture=name, latent_size=10, input_shape=[3, 64, 64])
    torch.manual_seed(1)
    model = build_model(**config).eval()
    torch.manual_seed(2)  # a different initialisation, overwritten by the state dict
    rebuilt = build_model(**json.loads(json.dumps(config))).eval()
    rebuilt.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 64, 64)
    a, b = model(x), rebuilt(x)
    for key in a:
        assert torch.equal(a[key], b[key])


def test_kaiming_initialisation_of_weights():
    torch.manual_seed(0)
    model = build_model("kim", 10, input_shape=(1, 64, 64))
    fc = model.encoder[9]  # Linear(1024, 256): kaiming-uniform bound sqrt(6 / fan_in)
    bound = (6 / 1024) ** 0.5
    assert fc.weight.abs().max() <= bound
    assert fc.weight.abs().max() > 0.9 * bound  # PyTorch's default bound would be sqrt(1 / 1024)


def test_in_place_relus_never_touch_the_input_or_outputs_backward_needs():
    spec = [("relu",), ("flatten",), ("linear", 8), ("tanh",), ("relu",), ("linear", 8), ("relu",)]
    net, _ = build(spec, (1, 4, 4))
    assert [m.inplace for m in net if isinstance(m, torch.nn.ReLU)] == [False, False, True]
    x = torch.randn(3, 1, 4, 4)
    before = x.clone()
    net(x).sum().backward()
    assert torch.equal(x, before)


def test_channels_last_and_in_place_relus_change_speed_not_results():
    torch.manual_seed(0)
    fast = build_model("kim", 10, input_shape=(3, 64, 64))
    torch.manual_seed(0)
    plain = build_model("kim", 10, input_shape=(3, 64, 64), channels_last=False)
    for m in plain.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    assert fast.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    x = torch.rand(4, 3, 64, 64)
    outs = [model.eval()(x)["logits"] for model in (fast, plain)]
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-4, atol=1e-4)
    for out in outs:
        out.square().sum().backward()
    for a, b in zip(fast.parameters(), plain.parameters()):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-3, atol=1e-3)  # memory formats sum in other orders (AVX2: 2.3e-4 seen)
