"""Per-batch transforms: known answers, statistics, purity, reproducibility, config parsing."""

import pytest
import torch

from genlab.data.transforms import TRANSFORMS, Composition, batch_generator, compose, options, parse
from genlab.registry import UnknownNameError

NAMES = ["binarize", "dequantize", "flip_pixels", "gaussian_noise", "hflip", "threshold"]

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"))]


def gen(index=0, seed=0, device="cpu"):
    return batch_generator(seed, index, device)


def apply(name, x, index=0, device="cpu", **opts):
    return TRANSFORMS.get(name)({"x": x}, gen(index, device=device), **opts)["x"]


def test_the_registry_holds_exactly_the_six_transforms():
    assert TRANSFORMS.names() == NAMES


# --- dequantize -----------------------------------------------------------------------------------


def test_dequantize_spreads_each_grey_level_uniformly_over_its_bin():
    k = torch.arange(256, dtype=torch.float64).repeat(2000, 1)  # (2000, 256): every level 2000 times
    out = apply("dequantize", k / 255)
    assert out.dtype == torch.float64
    assert bool((out >= k / 256).all()) and bool((out < (k + 1) / 256).all())
    mean = out.mean(0) * 256 - torch.arange(256)  # per-level mean, in bins: about 0.5 (sd of the mean 0.0065)
    assert torch.allclose(mean, torch.full_like(mean, 0.5), atol=0.03)
    u = out * 256 - k  # the uniform offsets: U[0, 1), so variance 1/12
    assert abs(float(u.var()) - 1 / 12) < 0.0005


def test_dequantize_at_other_levels_and_in_float32():
    k = torch.arange(16.0).repeat(1000, 1)
    out = apply("dequantize", k / 15, levels=16)
    assert out.dtype == torch.float32
    eps = 1e-6  # float32 rounding at the bin edges
    assert bool((out >= k / 16 - eps).all()) and bool((out <= (k + 1) / 16 + eps).all())
    assert abs(float((out * 16 - k).mean()) - 0.5) < 0.01


def test_dequantize_clamps_when_asked():
    x = torch.tensor([0.0, 1.0]).repeat(5000)
    plain = apply("dequantize", x)
    assert float(plain.min()) < 1e-3 and float(plain.max()) > 1 - 1e-3  # without clamp the tails reach past the bounds
    out = apply("dequantize", x, clamp=[1e-3, 1 - 1e-3])
    assert float(out.min()) == pytest.approx(1e-3) and float(out.max()) == pytest.approx(1 - 1e-3)
    inside = (plain > 1e-3) & (plain < 1 - 1e-3)
    assert torch.equal(out[inside], plain[inside])  # same draws, only the tails clamped


# --- binarize, threshold, flip_pixels -------------------------------------------------------------


def test_binarize_draws_zeros_and_ones_with_mean_x():
    x = torch.full((100, 1, 1000), 0.3)
    out = apply("binarize", x)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert abs(float(out.mean()) - 0.3) < 0.01
    edges = apply("binarize", torch.tensor([0.0, 1.0]).repeat(1000))
    assert torch.equal(edges, torch.tensor([0.0, 1.0]).repeat(1000))  # x = 0 never, x = 1 always


def test_binarize_follows_each_elements_own_probability():
    p = torch.linspace(0, 1, 11).repeat(20000, 1)
    means = apply("binarize", p).mean(0)
    assert torch.allclose(means, torch.linspace(0, 1, 11), atol=0.015)


def test_threshold_known_answer_with_the_boundary_going_to_zero():
    x = torch.tensor([[0.0, 0.4375, 0.4376, 0.5, 1.0]])
    assert torch.equal(apply("threshold", x, level=0.4375), torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0]]))
    assert torch.equal(apply("threshold", x), torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0]]))
    ints = apply("threshold", torch.tensor([0, 1, 2]), level=1)
    assert ints.is_floating_point() and torch.equal(ints, torch.tensor([0.0, 0.0, 1.0]))


def test_threshold_uses_no_randomness():
    g = gen()
    before = g.get_state()
    TRANSFORMS.get("threshold")({"x": torch.rand(3, 4)}, g)
    assert torch.equal(g.get_state(), before)


def test_flip_pixels_flips_at_rate_p_and_exactly_to_one_minus_x():
    x = (torch.rand(200, 1000, generator=torch.Generator().manual_seed(1)) < 0.5).float()
    out = apply("flip_pixels", x, p=0.1)
    flipped = out != x
    assert abs(float(flipped.float().mean()) - 0.1) < 0.005  # sd 0.00067
    assert torch.equal(out[flipped], 1 - x[flipped])
    assert torch.equal(apply("flip_pixels", x, p=1.0), 1 - x)
    assert torch.equal(apply("flip_pixels", x, p=0.0), x)


def test_flip_pixels_default_rate_is_small():
    assert options("flip_pixels")["p"] == 0.001
    x = torch.zeros(1000, 1000)
    assert abs(float(apply("flip_pixels", x).mean()) - 0.001) < 0.0002  # sd 3e-5


# --- gaussian_noise, hflip ------------------------------------------------------------------------


@pytest.mark.parametrize("std", [0.01, 0.5])
def test_gaussian_noise_has_the_given_std_and_zero_mean(std):
    x = torch.rand(400, 500, generator=torch.Generator().manual_seed(2))
    noise = apply("gaussian_noise", x, std=std) - x
    assert float(noise.std()) == pytest.approx(std, rel=0.01)
    assert abs(float(noise.mean())) < 0.01 * std


def test_hflip_mirrors_whole_images_with_probability_p():
    x = torch.rand(2000, 3, 4, 5, generator=torch.Generator().manual_seed(3))
    out = apply("hflip", x)
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert bool((same ^ mirrored).all())  # each image either unchanged or exactly mirrored (never both: random pixels)
    assert abs(float(mirrored.float().mean()) - 0.5) < 0.04  # sd 0.011
    assert torch.equal(apply("hflip", x, p=1.0), x.flip(-1))
    assert torch.equal(apply("hflip", x, p=0.0), x)
    assert torch.equal(apply("hflip", x[:1], p=1.0)[0, 0, 0], x[0, 0, 0].flip(0))  # the last (width) axis


def test_hflip_refuses_inputs_that_are_not_images():
    with pytest.raises(ValueError, match=r"\(B, C, H, W\).*\(8, 5\)"):
        apply("hflip", torch.rand(8, 5))


# --- every transform ------------------------------------------------------------------------------


def example(name):
    """A batch suited to transform ``name``: (B, C, H, W) images, binary where the transform expects it."""
    x = torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(4))
    return (x > 0.5).float() if name == "flip_pixels" else x


@pytest.mark.parametrize("name", NAMES)
def test_transforms_leave_their_inputs_alone_and_pass_other_keys_through(name):
    x = example(name)
    factors, extra = torch.rand(32, 3), torch.arange(32)
    batch = {"x": x, "factors": factors, "extra": extra}
    saved = {k: v.clone() for k, v in batch.items()}
    out = TRANSFORMS.get(name)(batch, gen())
    assert out is not batch and set(out) == set(batch)
    assert out["factors"] is factors and out["extra"] is extra
    assert out["x"] is not x and out["x"].shape == x.shape
    assert batch["x"] is x and all(torch.equal(batch[k], saved[k]) for k in batch)


@pytest.mark.parametrize("name", NAMES)
def test_the_key_option_selects_the_tensor(name):
    x, y = example(name), example(name)
    out = TRANSFORMS.get(name)({"x": x, "y": y}, gen(), key="y")
    assert out["x"] is x
    assert torch.equal(out["y"], TRANSFORMS.get(name)({"x": y}, gen())["x"])
    with pytest.raises(KeyError, match="'z'"):
        TRANSFORMS.get(name)({"x": x}, gen(), key="z")


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", [n for n in NAMES if n != "threshold"])
def test_same_seed_and_index_reproduce_a_different_index_does_not(name, device):
    x = example(name).to(device)
    opts = {"p": 0.5} if name in ("flip_pixels", "hflip") else {}
    first = apply(name, x, index=7, device=device, **opts)
    again = apply(name, x, index=7, device=device, **opts)
    other = apply(name, x, index=8, device=device, **opts)
    other_seed = TRANSFORMS.get(name)({"x": x}, batch_generator(1, 7, device), **opts)["x"]
    assert first.device.type == device
    assert torch.equal(first, again)
    assert not torch.equal(first, other) and not torch.equal(first, other_seed)


@pytest.mark.parametrize("device", DEVICES)
def test_batch_generator_lives_on_the_device_and_gives_unrelated_streams(device):
    g = batch_generator(0, 1, device)
    assert g.device.type == device
    def draw(seed, index):
        return torch.rand(64, generator=batch_generator(seed, index, device), device=device)
    assert torch.equal(draw(0, 1), draw(0, 1))
    streams = [draw(0, 1), draw(1, 0), draw(0, 0), draw(1, 1), draw(0, 2)]
    for i in range(len(streams)):
        for j in range(i + 1, len(streams)):
            assert not torch.equal(streams[i], streams[j])


def test_batch_generator_differs_from_the_triplet_generator_of_the_same_seed():
    from genlab.data.triplets import generator

    for seed, index in [(0, 0), (3, 5)]:
        ours = torch.rand(16, generator=batch_generator(seed, index, "cpu"))
        assert not torch.equal(ours, torch.rand(16, generator=generator(seed, 0, index)))
        assert not torch.equal(ours, torch.rand(16, generator=generator(seed, index)))


def test_batch_generator_refuses_negative_seeds():
    with pytest.raises(ValueError, match="non-negative"):
        batch_generator(-1, 0, "cpu")


# --- parse and compose ----------------------------------------------------------------------------


def test_parse_accepts_names_pairs_and_tuples():
    specs = ["binarize", ["dequantize", {"levels": 16, "clamp": [0.001, 0.999]}], ("hflip", {"p": 0.25})]
    assert parse(specs) == [("binarize", {}), ("dequantize", {"levels": 16, "clamp": [0.001, 0.999]}), ("hflip", {"p": 0.25})]
    assert parse(tuple(specs)) == parse(specs)
    assert parse([]) == [] and parse(None) == []


def test_parse_copies_the_options():
    given = {"p": 0.25}
    (_, opts), = parse([["hflip", given]])
    assert opts == given and opts is not given


def test_parse_refuses_unknown_names_listing_the_valid_ones():
    with pytest.raises(UnknownNameError) as err:
        parse(["hflip", "vflip"])
    assert "'vflip'" in str(err.value) and all(name in str(err.value) for name in NAMES)


def test_parse_refuses_unknown_options_listing_the_valid_ones():
    with pytest.raises(ValueError, match=r"'dequantize'.*\blevel\b.*clamp, key, levels"):
        parse([["dequantize", {"level": 16}]])
    with pytest.raises(ValueError, match=r"'binarize'.*has no option\(s\) p.*: key$"):
        parse([("binarize", {"p": 0.5})])


@pytest.mark.parametrize(
    "item",
    [3, None, ["hflip"], ["hflip", {"p": 0.5}, "extra"], ["hflip", "threshold"], [{"p": 0.5}, "hflip"], {"hflip": {}}],
)
def test_parse_explains_malformed_items(item):
    with pytest.raises(ValueError, match=r"malformed.*a transform name.*\[name, \{option: value\}\]"):
        parse(["binarize", item])


def test_parse_refuses_a_bare_string_or_mapping_for_the_list():
    for specs in ("hflip", {"hflip": {}}):
        with pytest.raises(ValueError, match="must be a list"):
            parse(specs)


@pytest.mark.parametrize(
    "spec, message",
    [
        (["hflip", {"p": 1.5}], r"p=1\.5 must be a probability"),
        (["flip_pixels", {"p": "0.1"}], r"p='0\.1' must be a probability"),
        (["dequantize", {"levels": 1}], "levels=1 must be an integer >= 2"),
        (["dequantize", {"levels": 255.5}], "must be an integer"),
        (["dequantize", {"clamp": [0.9, 0.1]}], "lo < hi"),
        (["dequantize", {"clamp": 0.5}], "lo < hi"),
        (["gaussian_noise", {"std": -0.1}], ">= 0"),
        (["threshold", {"level": None}], "must be a number"),
        (["threshold", {"key": ""}], "non-empty string"),
    ],
)
def test_parse_refuses_bad_option_values(spec, message):
    with pytest.raises(ValueError, match=message):
        parse([spec])


def test_compose_applies_in_order_with_one_generator():
    x = torch.rand(4, 1, 6, 6, generator=torch.Generator().manual_seed(5))
    fn = compose([["threshold", {"level": 0.4375}], ["flip_pixels", {"p": 1.0}]])
    out = fn({"x": x, "factors": x}, gen())
    assert torch.equal(out["x"], 1 - (x > 0.4375).float())
    assert out["factors"] is x
    other_order = compose([["flip_pixels", {"p": 1.0}], ["threshold", {"level": 0.4375}]])
    assert torch.equal(other_order({"x": x}, gen())["x"], (1 - x > 0.4375).float())

    steps = compose(["dequantize", "hflip"])({"x": x}, gen(3))["x"]
    g = gen(3)
    by_hand = TRANSFORMS.get("hflip")(TRANSFORMS.get("dequantize")({"x": x}, g), g)["x"]
    assert torch.equal(steps, by_hand)  # the second transform continues the first one's stream


def test_compose_of_nothing_is_none():
    assert compose([]) is None and compose(None) is None and compose(()) is None


def test_compose_repr_shows_names_and_options():
    fn = compose(["binarize", ["dequantize", {"clamp": [0.001, 0.999]}]])
    assert isinstance(fn, Composition) and len(fn) == 2
    assert repr(fn) == "Composition(binarize(key='x'), dequantize(levels=256, clamp=[0.001, 0.999], key='x'))"


def test_compose_validates_before_touching_data():
    with pytest.raises(ValueError, match="has no option"):
        compose(["binarize", ["hflip", {"q": 1}]])


def test_every_option_has_a_default():
    import inspect

    for name in NAMES:
        params = list(inspect.signature(TRANSFORMS.get(name)).parameters.values())[2:]
        assert params and all(p.default is not inspect.Parameter.empty for p in params)
        assert set(options(name)) == {p.name for p in params} and options(name)["key"] == "x"
