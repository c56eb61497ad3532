"""Per-batch random transforms (data augmentation and preprocessing), applied on the device.

A transform is a function ``fn(batch, generator, **options) -> batch``:

- ``batch`` is a dict of tensors on the training device (``x`` (B, C, H, W) images in [0, 1], or
  ``x`` (B, D) vectors, plus e.g. ``factors``);
- it acts on ``batch[key]`` (every transform has the option ``key``, default ``"x"``) and returns a
  NEW dict: the other entries are passed through as the same objects, and no input tensor is ever
  modified in place;
- all its randomness comes from ``generator``, which lives on the batch's device. A batch source
  makes that generator with :func:`batch_generator` from (seed, global batch index), so a batch's
  transforms are a pure function of (seed, index) and a resumed run sees exactly the transformed
  batches of an uninterrupted one (on a given device type: CPU and CUDA streams differ).

Transforms are registered in :data:`TRANSFORMS` under their config names. A config value is a list
of transforms applied in order; each item is a name (``"hflip"``) or a pair ``[name, {options}]``
(``["dequantize", {"clamp": [0.001, 0.999]}]``). :func:`parse` validates such a list (names, option
names and option values) so a bad config fails at start-up, before any data is touched, and
:func:`compose` turns it into one callable ``(batch, generator) -> batch``.

Everything is vectorised over the batch: one draw per call, no per-item Python.
"""

from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from genlab.errors import ConfigError
from genlab.registry import Registry, check_options, keyword_defaults

Batch = dict[str, Tensor]
Transform = Callable[..., Batch]

TRANSFORMS: Registry[Transform] = Registry("batch transform")

# mixed into every batch generator's seed (as the SeedSequence spawn key, with the batch index), so
# transform draws never share a stream with another generator seeded from the same run seed (e.g.
# ``genlab.data.triplets.generator(seed, 0, iteration)``)
_TRANSFORM_STREAM = 0x7472_6673


# --- option values --------------------------------------------------------------------------------


def _real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_key(value: Any) -> str | None:
    return None if isinstance(value, str) and value else "a non-empty string (a key of the batch)"


def _check_levels(value: Any) -> str | None:
    ok = isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 2
    return None if ok else "an integer >= 2 (the number of grey levels the data is stored at)"


def _check_clamp(value: Any) -> str | None:
    if value is None:
        return None
    ok = (
        isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
        and all(_real(v) for v in value) and value[0] < value[1]
    )
    return None if ok else "None or a pair [lo, hi] of numbers with lo < hi"


def _check_probability(value: Any) -> str | None:
    return None if _real(value) and 0 <= value <= 1 else "a probability in [0, 1]"


def _check_std(value: Any) -> str | None:
    return None if _real(value) and value >= 0 else "a number >= 0"


def _check_level(value: Any) -> str | None:
    return None if _real(value) else "a number"


# what each option name means, in every transform that has it
_VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "key": _check_key,
    "levels": _check_levels,
    "clamp": _check_clamp,
    "p": _check_probability,
    "std": _check_std,
    "level": _check_level,
}


def _check_values(name: str, options: Mapping[str, Any]) -> None:
    """Refuse option values that make no sense for transform ``name``."""
    for option, value in options.items():
        problem = _VALUE_CHECKS[option](value)
        if problem is not None:
            raise ConfigError(f"batch transform {name!r}: option {option}={value!r} must be {problem}")


# --- helpers --------------------------------------------------------------------------------------


def _input(batch: Mapping[str, Tensor], key: str, name: str) -> Tensor:
    try:
        return batch[key]
    except KeyError:
        raise KeyError(f"batch transform {name!r} acts on batch[{key!r}], but the batch has only {sorted(batch)}") from None


def _floating(x: Tensor, name: str, key: str) -> Tensor:
    if not x.is_floating_point():
        raise TypeError(f"batch transform {name!r} needs floating-point batch[{key!r}], got {x.dtype}")
    return x


def _uniform(shape: Sequence[int], like: Tensor, generator: torch.Generator, dtype: torch.dtype | None = None) -> Tensor:
    """U[0, 1) of ``shape`` on ``like``'s device, drawn from ``generator`` (in ``dtype``, default ``like``'s)."""
    return torch.rand(tuple(shape), generator=generator, device=like.device, dtype=dtype or like.dtype)


def _events(shape: Sequence[int], like: Tensor, generator: torch.Generator, p: float | Tensor) -> Tensor:
    """Boolean events of probability ``p`` (a number or a tensor broadcastable to ``shape``), drawn
    in float32 whatever the data's dtype, so small probabilities keep their resolution. ``p = 1``
    is always true, ``p = 0`` never (the uniforms lie in [0, 1))."""
    return _uniform(shape, like, generator, torch.float32) < p


def _with(batch: Mapping[str, Tensor], key: str, value: Tensor) -> Batch:
    out = dict(batch)
    out[key] = value
    return out


# --- transforms -----------------------------------------------------------------------------------


@TRANSFORMS.register("dequantize")
def dequantize(batch: Batch, generator: torch.Generator, levels: int = 256, clamp: Sequence[float] | None = None, key: str = "x") -> Batch:
    """Uniform dequantisation of data in [0, 1] stored at ``levels`` grey levels:

        x <- (x * (levels - 1) + u) / levels,   u ~ U[0, 1) per element,

    so grey level k (x = k / (levels - 1)) becomes uniform on [k / levels, (k + 1) / levels); then,
    if ``clamp = [lo, hi]`` is given, x <- clamp(x, lo, hi).

    ICE-BeeM dequantises its images as x * 255/256 + u/256 (levels=256); MIM uses (255 v + u)/256
    and clamps to [1e-3, 1 - 1e-3] (``clamp=[0.001, 0.999]``).
    """
    _check_values("dequantize", {"levels": levels, "clamp": clamp, "key": key})
    x = _floating(_input(batch, key, "dequantize"), "dequantize", key)
    out = (x * (levels - 1) + _uniform(x.shape, x, generator)) / levels
    if clamp is not None:
        out = out.clamp(float(clamp[0]), float(clamp[1]))
    return _with(batch, key, out)


@TRANSFORMS.register("binarize")
def binarize(batch: Batch, generator: torch.Generator, key: str = "x") -> Batch:
    """Dynamic binarisation: x <- Bernoulli(x) per element (x in [0, 1] is the probability of a 1),
    drawn afresh for every batch. MIM binarises its images this way."""
    _check_values("binarize", {"key": key})
    x = _floating(_input(batch, key, "binarize"), "binarize", key)
    return _with(batch, key, _events(x.shape, x, generator, x).to(x.dtype))


@TRANSFORMS.register("threshold")
def threshold(batch: Batch, generator: torch.Generator, level: float = 0.5, key: str = "x") -> Batch:
    """Deterministic binarisation: x <- 1 if x > level else 0 (x == level gives 0), as float. Draws
    nothing. SymVAE binarises MNIST at level 7/16 = 0.4375."""
    _check_values("threshold", {"level": level, "key": key})
    x = _input(batch, key, "threshold")
    dtype = x.dtype if x.is_floating_point() else torch.get_default_dtype()
    return _with(batch, key, (x > level).to(dtype))


@TRANSFORMS.register("flip_pixels")
def flip_pixels(batch: Batch, generator: torch.Generator, p: float = 0.001, key: str = "x") -> Batch:
    """Pixel-flip noise on binary data: each element independently becomes x <- 1 - x with
    probability ``p`` and is kept otherwise. SymVAE's MNIST training noise (p = 0.001)."""
    _check_values("flip_pixels", {"p": p, "key": key})
    x = _input(batch, key, "flip_pixels")
    return _with(batch, key, torch.where(_events(x.shape, x, generator, p), 1 - x, x))


@TRANSFORMS.register("gaussian_noise")
def gaussian_noise(batch: Batch, generator: torch.Generator, std: float = 0.01, key: str = "x") -> Batch:
    """Additive Gaussian noise: x <- x + std * n, n ~ N(0, 1) per element. SymVAE's FashionMNIST
    training noise (std = 0.01)."""
    _check_values("gaussian_noise", {"std": std, "key": key})
    x = _floating(_input(batch, key, "gaussian_noise"), "gaussian_noise", key)
    noise = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return _with(batch, key, x + std * noise)


@TRANSFORMS.register("hflip")
def hflip(batch: Batch, generator: torch.Generator, p: float = 0.5, key: str = "x") -> Batch:
    """Random horizontal flip: each image of a (B, C, H, W) batch is mirrored along its last (width)
    axis, x <- x[..., ::-1], with probability ``p``, independently per image, and kept otherwise.
    The usual CIFAR training augmentation. Refuses inputs that are not 4-d."""
    _check_values("hflip", {"p": p, "key": key})
    x = _input(batch, key, "hflip")
    if x.dim() != 4:
        raise ValueError(f"batch transform 'hflip' needs (B, C, H, W) images in batch[{key!r}], got shape {tuple(x.shape)}")
    mirror = _events((x.shape[0], 1, 1, 1), x, generator, p)
    return _with(batch, key, torch.where(mirror, x.flip(-1), x))


# --- configs --------------------------------------------------------------------------------------


def options(name: str) -> dict[str, Any]:
    """The options of transform ``name`` and their defaults."""
    return keyword_defaults(TRANSFORMS.get(name))


_FORMS = (
    "each item of a batch-transform list is a transform name (e.g. \"hflip\") or a pair "
    "[name, {option: value}] (e.g. [\"dequantize\", {\"clamp\": [0.001, 0.999]}])"
)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


def parse(specs: Sequence[Any] | None) -> list[tuple[str, dict[str, Any]]]:
    """Validate a config list of transforms and return ``[(name, options), ...]`` in order.

    Items are names or ``[name, {options}]`` pairs (lists or tuples; mappings for the options).
    Raises ``UnknownNameError`` for an unknown name (listing the valid ones) and ``ValueError`` for
    unknown options (listing the transform's options), bad option values, or a malformed item.
    The options returned are those given (a new dict); the defaults fill in the rest when applied.
    """
    if specs is None:
        return []
    if not _is_list(specs):
        raise ConfigError(f"batch transforms must be a list, got {specs!r}; {_FORMS}")
    parsed = []
    for position, item in enumerate(specs):
        if isinstance(item, str):
            name, given = item, {}
        elif _is_list(item) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], Mapping):
            name, given = item[0], dict(item[1])
        else:
            raise ConfigError(f"batch transform #{position} is malformed: {item!r}; {_FORMS}")
        fn = TRANSFORMS.get(name)
        check_options(f"batch transform {name!r}", fn, given)
        _check_values(name, given)
        parsed.append((name, given))
    return parsed


class Composition:
    """Transforms applied in order to a batch, all drawing from the same generator.

    ``steps`` holds ``(name, options)`` with every option (defaults filled in), which is also what
    the repr shows, e.g. ``Composition(dequantize(levels=256, clamp=None, key='x'), hflip(p=0.5, key='x'))``.
    """

    def __init__(self, steps: Sequence[tuple[str, Mapping[str, Any]]]):
        self.steps: tuple[tuple[str, dict[str, Any]], ...] = tuple(
            (name, {**options(name), **given}) for name, given in steps
        )
        self._functions = tuple(TRANSFORMS.get(name) for name, _ in self.steps)

    def __call__(self, batch: Mapping[str, Tensor], generator: torch.Generator) -> Batch:
        out = dict(batch)
        for fn, (_, opts) in zip(self._functions, self.steps):
            out = fn(out, generator, **opts)
        return out

    def __len__(self) -> int:
        return len(self.steps)

    def __repr__(self) -> str:
        parts = (f"{name}({', '.join(f'{k}={v!r}' for k, v in opts.items())})" for name, opts in self.steps)
        return f"Composition({', '.join(parts)})"


def compose(specs: Sequence[Any] | None) -> Composition | None:
    """One callable ``(batch, generator) -> batch`` applying the transforms of a config list (see
    :func:`parse`) in order; ``None`` for an empty or missing list (no transforms to apply)."""
    steps = parse(specs)
    return Composition(steps) if steps else None


def batch_generator(seed: int, index: int, device: torch.device | str) -> torch.Generator:
    """The generator for the transforms of batch ``index`` (its global index) of a run seeded by
    ``seed``, on ``device`` (a CUDA generator for a CUDA device).

    Its seed comes from numpy's SeedSequence over (seed, index), so nearby pairs (seed 0 / index 1
    and seed 1 / index 0) give unrelated streams; the same (seed, index, device type) always gives
    the same stream. The seed space is kept apart from the run's other SeedSequence-seeded
    generators (see ``_TRANSFORM_STREAM``).
    """
    seed, index = int(seed), int(index)
    if seed < 0 or index < 0:
        raise ValueError(f"batch_generator needs a non-negative seed and index, got seed={seed}, index={index}")
    sequence = np.random.SeedSequence(seed, spawn_key=(_TRANSFORM_STREAM, index))
    state = int(sequence.generate_state(1, np.uint64)[0])
    return torch.Generator(device=torch.device(device)).manual_seed(state)


__all__ = [
    "TRANSFORMS",
    "Composition",
    "batch_generator",
    "binarize",
    "compose",
    "dequantize",
    "flip_pixels",
    "gaussian_noise",
    "hflip",
    "options",
    "parse",
    "threshold",
]
