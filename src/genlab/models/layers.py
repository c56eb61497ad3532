"""Layer specs: plain, JSON-able lists that describe a network, and the builder that turns them into modules.

A spec is a list of entries, one per layer. Each entry is a list or tuple whose first item is the
layer name and whose remaining items are its arguments, written either flat or grouped, with an
optional trailing dict of keyword arguments::

    ("conv", 32, 4, 2, 1)            # flat positional arguments
    ("conv", [32, 4, 2, 1])          # grouped positional arguments (the disent original's form)
    ("linear", [256], {"bias": False})
    ("relu",)

A single list after the name is read as the argument list (so a pair-valued first argument is
written ``("pool", [[2, 3]])`` or flat). Sacred records tuples as lists, so ``["conv", [32, 4, 2, 1]]``
read back from a ``config.json`` builds the same layer. Shapes are tracked per example (no batch
dimension) while building, so ``linear`` and ``conv`` infer their input sizes and a spec that does
not fit its input fails with the offending layer named.

Placeholders (one spec serves 1- and 3-channel images): a channel count of ``-1`` in ``conv`` /
``tconv`` means the image's channel count, ``linear(-1)`` means the image's flattened size, and a
``-1`` in ``unflatten`` is inferred from the flat size (as in ``torch.reshape``).

``transpose`` mirrors an encoder spec into a decoder in the manner of the disent original
(docs/disent.md §2.1): the list is reversed, ``conv`` becomes ``tconv``, ``pool``
becomes ``upsample``, ``flatten`` becomes ``unflatten``, linear sizes are swapped, and a first
``linear`` from the latent code to the encoder's output width is prepended. As in the original, a
ReLU therefore follows the ``unflatten``. Unlike the original, ``tconv`` gets an ``output_padding``
where a strided ``conv`` rounded a size down, so the decoder always ends at the encoder's input shape.

Written here rather than taken from a library: no maintained package reads this spec language,
which the disent configs (and their recorded runs) are written in.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from genlab.errors import ConfigError

from torch import nn

from genlab.registry import Registry

Shape = tuple[int, ...]
LayerBuilder = Callable[..., tuple[nn.Module, Shape]]

LAYERS: Registry[LayerBuilder] = Registry("layer")


class LayerSpecError(ConfigError):
    """A spec entry that is malformed or does not fit the shape that reaches it."""


@dataclass(frozen=True)
class _Context:
    """What a layer builder may look at: the incoming per-example shape and the image shape.

    ``fresh`` says that the incoming tensor was made inside the network by a layer whose backward
    pass does not read its own output, so a ReLU may overwrite it in place (saves one full-size
    allocation and pass over memory per ReLU; about 3% of a kim train step on CPU).
    """

    shape: Shape
    image_shape: Shape
    fresh: bool = False


# --------------------------------------------------------------------------------------------------
# spec entries


def parse_entry(entry: Any) -> tuple[str, list, dict]:
    """Split one spec entry into ``(name, args, kwargs)``; accepts tuples and lists (JSON form)."""
    if isinstance(entry, str):
        return entry, [], {}
    if not isinstance(entry, (list, tuple)) or not entry or not isinstance(entry[0], str):
        raise LayerSpecError(f"a layer entry is (name, args...) or (name, [args], {{kwargs}}); got {entry!r}")
    name, rest = entry[0], list(entry[1:])
    kwargs: dict = {}
    if rest and isinstance(rest[-1], dict):
        kwargs = dict(rest.pop())
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        rest = list(rest[0])
    return name, rest, kwargs


def _entry(name: str, *args: Any, **kwargs: Any) -> tuple:
    """A canonical (flat) spec entry."""
    return (name, *args, kwargs) if kwargs else (name, *args)


def _ints(values: Any) -> Shape:
    if isinstance(values, (int, float)):
        values = (values,)
    return tuple(int(v) for v in values)


def _pair(v: Any) -> tuple[int, int]:
    t = _ints(v)
    if len(t) == 1:
        return t[0], t[0]
    if len(t) != 2:
        raise ValueError(f"expected an int or a pair, got {v!r}")
    return t[0], t[1]


def _need(ctx: _Context, ndim: int, what: str) -> None:
    if len(ctx.shape) != ndim:
        hint = " (add ('flatten',) before it)" if ndim == 1 else " (add ('unflatten', shape) before it)"
        kind = "a flat (features,)" if ndim == 1 else "a (channels, height, width)"
        raise ValueError(f"{what} needs {kind} input, got per-example shape {ctx.shape}{hint}")


def _channels(ctx: _Context, channels: int) -> int:
    channels = int(channels)
    if channels == -1:
        return ctx.image_shape[0]
    if channels <= 0:
        raise ValueError(f"channel count must be positive or -1 (the image channels), got {channels}")
    return channels


# --------------------------------------------------------------------------------------------------
# layer builders: (ctx, *args, **kwargs) -> (module, output shape)


@LAYERS.register("linear")
def _linear(ctx: _Context, out_features: int, bias: bool = True) -> tuple[nn.Module, Shape]:
    _need(ctx, 1, "linear")
    out_features = int(out_features)
    if out_features == -1:
        out_features = math.prod(ctx.image_shape)
    if out_features <= 0:
        raise ValueError(f"out_features must be positive or -1 (the image size), got {out_features}")
    return nn.Linear(ctx.shape[0], out_features, bias=bool(bias)), (out_features,)


def _conv_out(size: int, k: int, s: int, p: int, d: int = 1) -> int:
    return (size + 2 * p - d * (k - 1) - 1) // s + 1


@LAYERS.register("conv")
def _conv(ctx: _Context, channels: int, kernel: Any, stride: Any = 1, padding: Any = 0, **kw: Any):
    _need(ctx, 3, "conv")
    c = _channels(ctx, channels)
    k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(kw.get("dilation", 1))
    h, w = (_conv_out(n, k[i], s[i], p[i], d[i]) for i, n in enumerate(ctx.shape[1:]))
    if h <= 0 or w <= 0:
        raise ValueError(f"kernel {k} with stride {s} and padding {p} leaves no output for input {ctx.shape}")
    return nn.Conv2d(ctx.shape[0], c, k, s, p, **kw), (c, h, w)


@LAYERS.register("tconv")
def _tconv(ctx: _Context, channels: int, kernel: Any, stride: Any = 1, padding: Any = 0, **kw: Any):
    _need(ctx, 3, "tconv")
    c = _channels(ctx, channels)
    k, s, p = _pair(kernel), _pair(stride), _pair(padding)
    op, d = _pair(kw.get("output_padding", 0)), _pair(kw.get("dilation", 1))
    h, w = ((n - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + op[i] + 1 for i, n in enumerate(ctx.shape[1:]))
    if h <= 0 or w <= 0:
        raise ValueError(f"kernel {k} with stride {s} and padding {p} leaves no output for input {ctx.shape}")
    return nn.ConvTranspose2d(ctx.shape[0], c, k, s, p, **kw), (c, h, w)


@LAYERS.register("pool")
def _pool(ctx: _Context, kernel: Any, stride: Any = None, padding: Any = 0, mode: str = "max"):
    """``max`` / ``avg`` pooling, or ``adapt`` (adaptive average pooling to output size ``kernel``)."""
    _need(ctx, 3, "pool")
    if mode == "adapt":
        size = _pair(kernel)
        return nn.AdaptiveAvgPool2d(size), (ctx.shape[0], *size)
    if mode not in ("max", "avg"):
        raise ValueError(f"pool mode must be 'max', 'avg' or 'adapt', got {mode!r}")
    k = _pair(kernel)
    s = k if stride is None else _pair(stride)
    p = _pair(padding)
    h, w = (_conv_out(n, k[i], s[i], p[i]) for i, n in enumerate(ctx.shape[1:]))
    if h <= 0 or w <= 0:
        raise ValueError(f"pool {k} with stride {s} leaves no output for input {ctx.shape}")
    module = nn.MaxPool2d(k, s, p) if mode == "max" else nn.AvgPool2d(k, s, p)
    return module, (ctx.shape[0], h, w)


@LAYERS.register("batch_norm")
def _batch_norm(ctx: _Context, dims: int | None = None, **kw: Any):
    """BatchNorm1d on flat features, BatchNorm2d on feature maps (``dims``, if given, must agree)."""
    ndim = {1: 1, 3: 2}.get(len(ctx.shape))
    if ndim is None:
        raise ValueError(f"batch_norm needs a flat or (C, H, W) input, got {ctx.shape}")
    if dims is not None and int(dims) != ndim:
        raise ValueError(f"batch_norm({dims}) does not match input shape {ctx.shape} (needs {ndim})")
    cls = nn.BatchNorm1d if ndim == 1 else nn.BatchNorm2d
    return cls(ctx.shape[0], **kw), ctx.shape


@LAYERS.register("dropout")
def _dropout(ctx: _Context, p: float = 0.5):
    """Channel dropout (Dropout2d, as the original) on feature maps; element dropout on flat features."""
    cls = nn.Dropout2d if len(ctx.shape) == 3 else nn.Dropout
    return cls(float(p)), ctx.shape


@LAYERS.register("flatten")
def _flatten(ctx: _Context, start_dim: int = 1):
    """``start_dim`` counts the batch dimension, as ``nn.Flatten`` does."""
    start = int(start_dim) - 1
    if not 0 <= start < len(ctx.shape):
        raise ValueError(f"flatten start_dim must be in 1..{len(ctx.shape)}, got {start_dim}")
    return nn.Flatten(start + 1), (*ctx.shape[:start], math.prod(ctx.shape[start:]))


@LAYERS.register("unflatten")
def _unflatten(ctx: _Context, *shape: Any):
    if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
        shape = tuple(shape[0])
    shape = _ints(shape)
    _need(ctx, 1, "unflatten")
    n = ctx.shape[0]
    if shape.count(-1) > 1 or any(d == 0 or d < -1 for d in shape):
        raise ValueError(f"bad unflatten shape {shape}")
    known = math.prod(d for d in shape if d != -1)
    if -1 in shape:
        if n % known:
            raise ValueError(f"cannot unflatten {n} features into {shape}")
        shape = tuple(n // known if d == -1 else d for d in shape)
    if math.prod(shape) != n:
        raise ValueError(f"cannot unflatten {n} features into {shape} ({math.prod(shape)} features)")
    return nn.Unflatten(1, shape), shape


@LAYERS.register("upsample")
def _upsample(ctx: _Context, *size: Any, mode: str = "bilinear"):
    """Resize feature maps to ``size`` (bilinear, as the original)."""
    _need(ctx, 3, "upsample")
    hw = _pair(size[0] if len(size) == 1 else size)
    kw = {"align_corners": False} if mode in ("linear", "bilinear", "bicubic") else {}
    return nn.Upsample(size=hw, mode=mode, **kw), (ctx.shape[0], *hw)


@LAYERS.register("relu")
def _relu(ctx: _Context):
    return nn.ReLU(inplace=ctx.fresh), ctx.shape


@LAYERS.register("sigmoid")
def _sigmoid(ctx: _Context):
    return nn.Sigmoid(), ctx.shape


@LAYERS.register("tanh")
def _tanh(ctx: _Context):
    return nn.Tanh(), ctx.shape


@LAYERS.register("lrelu")
def _lrelu(ctx: _Context, negative_slope: float = 0.01):
    return nn.LeakyReLU(float(negative_slope)), ctx.shape


@LAYERS.register("elu")
def _elu(ctx: _Context, alpha: float = 1.0):
    return nn.ELU(float(alpha)), ctx.shape


# --------------------------------------------------------------------------------------------------
# building and transposing


def _as_shape(shape: Any, what: str) -> Shape:
    try:
        shape = _ints(shape)
    except (TypeError, ValueError):
        raise LayerSpecError(f"{what} must be a sequence of positive ints, got {shape!r}") from None
    if not shape or any(d <= 0 for d in shape):
        raise LayerSpecError(f"{what} must be a sequence of positive ints, got {shape!r}")
    return shape


# layers whose output may be overwritten by the next ReLU (their backward reads inputs, not outputs);
# views (flatten, unflatten) and dropout (the identity in eval mode) pass the property on; sigmoid and
# tanh (whose backward reads their output) and the network's input (the caller's tensor) do not have it
_FRESH_OUTPUT = {"linear", "conv", "tconv", "pool", "upsample", "batch_norm", "lrelu", "elu"}
_KEEPS_FRESHNESS = {"flatten", "unflatten", "dropout", "relu"}


def trace(spec: Sequence, input_shape: Sequence[int], image_shape: Sequence[int] | None = None):
    """Build each layer in turn; returns ``[(name, args, kwargs, in_shape, module, out_shape), ...]``."""
    shape = _as_shape(input_shape, "input_shape")
    image = _as_shape(image_shape if image_shape is not None else input_shape, "image_shape")
    if isinstance(spec, (str, bytes)) or not isinstance(spec, Sequence):
        raise LayerSpecError(f"a layer spec is a list of layer entries, got {spec!r}")
    steps = []
    fresh = False
    for i, entry in enumerate(spec):
        name, args, kwargs = parse_entry(entry)
        builder = LAYERS.get(name)  # unknown names raise UnknownNameError listing the valid ones
        try:
            module, out = builder(_Context(shape, image, fresh), *args, **kwargs)
        except (TypeError, ValueError) as err:
            raise LayerSpecError(f"layer {i} {tuple(entry)!r} does not fit input shape {shape}: {err}") from None
        steps.append((name, args, kwargs, shape, module, out))
        shape = out
        fresh = name in _FRESH_OUTPUT or (fresh and name in _KEEPS_FRESHNESS)
    return steps


def build(
    spec: Sequence, input_shape: Sequence[int], image_shape: Sequence[int] | None = None
) -> tuple[nn.Sequential, Shape]:
    """Build ``spec`` for per-example ``input_shape``; returns ``(nn.Sequential, output_shape)``.

    ``image_shape`` (default: ``input_shape``) resolves the ``-1`` placeholders; a decoder passes the
    image it must produce. The spec is only read, never modified.
    """
    steps = trace(spec, input_shape, image_shape)
    out = steps[-1][-1] if steps else _ints(input_shape)
    return nn.Sequential(*(s[4] for s in steps)), out


def output_shape(spec: Sequence, input_shape: Sequence[int], image_shape: Sequence[int] | None = None) -> Shape:
    """The per-example shape ``spec`` produces from ``input_shape``."""
    return build(spec, input_shape, image_shape)[1]


def _mirror(name: str, args: list, kwargs: dict, in_shape: Shape, out_shape: Shape, first: bool) -> tuple:
    """The decoder entry that undoes one encoder entry (maps ``out_shape`` back to ``in_shape``)."""
    if name == "linear":
        bias = kwargs.get("bias", args[1] if len(args) > 1 else True)
        return _entry("linear", -1 if first else in_shape[0], **({} if bias else {"bias": False}))
    if name in ("conv", "tconv"):
        bound = {"stride": 1, "padding": 0, **dict(zip(("channels", "kernel", "stride", "padding"), args))}
        bound.update(kwargs)
        kernel, stride, padding = bound["kernel"], bound["stride"], bound["padding"]
        extra = {k: v for k, v in kwargs.items() if k in ("bias", "dilation")}
        channels = -1 if first else in_shape[0]
        if name == "tconv":
            return _entry("conv", channels, kernel, stride, padding, **extra)
        # a strided conv rounds down; give tconv the output_padding that lands on the conv's input size
        k, s, p, d = _pair(kernel), _pair(stride), _pair(padding), _pair(extra.get("dilation", 1))
        op = tuple(
            in_shape[1 + i] - ((out_shape[1 + i] - 1) * s[i] - 2 * p[i] + d[i] * (k[i] - 1) + 1) for i in range(2)
        )
        if any(o < 0 or o >= max(s[i], d[i]) for i, o in enumerate(op)):
            raise LayerSpecError(f"cannot transpose conv {args}: no tconv maps {out_shape} back to {in_shape}")
        if any(op):
            extra["output_padding"] = list(op) if op[0] != op[1] else op[0]
        return _entry("tconv", channels, kernel, stride, padding, **extra)
    if name == "pool":
        return _entry("upsample", list(in_shape[1:]))
    if name == "upsample":
        return _entry("pool", list(in_shape[1:]), None, 0, "adapt")
    if name == "flatten":
        if len(out_shape) != 1:
            raise LayerSpecError(f"cannot transpose a partial flatten {args}: unflatten needs a flat input")
        return _entry("unflatten", list(in_shape))
    if name == "unflatten":
        return _entry("flatten")
    if name == "batch_norm":
        return _entry("batch_norm", **kwargs)
    return _entry(name, *args, **kwargs)  # dropout and nonlinearities stay as they are


def transpose(spec: Sequence, input_shape: Sequence[int]) -> list[tuple]:
    """Mirror an encoder spec (for images of ``input_shape``) into a decoder spec (docs/disent.md §2.1).

    The result starts from the latent code: a ``linear`` to the encoder's output width (and an
    ``unflatten`` if the encoder ends on feature maps), then the encoder reversed with each layer
    replaced by its mirror, ending at ``input_shape``. The final layer's channel count / size is the
    ``-1`` placeholder, so the decoder follows the image shape it is built for.
    """
    steps = trace(spec, input_shape)
    enc_out = steps[-1][-1] if steps else _ints(input_shape)
    head: list[tuple] = [_entry("linear", math.prod(enc_out))]
    if len(enc_out) != 1:
        head.append(_entry("unflatten", list(enc_out)))
    body = [
        _mirror(name, args, kwargs, in_shape, out_shape, first=(i == 0))
        for i, (name, args, kwargs, in_shape, _, out_shape) in enumerate(steps)
    ]
    return head + body[::-1]


__all__ = ["LAYERS", "LayerSpecError", "build", "output_shape", "parse_entry", "trace", "transpose"]
