"""The ``model`` ingredient of ``experiments.composition``: the composer, captured for
``genlab.models.composer.build_composer``.

Every architecture of ``genlab.models.architectures.ARCHITECTURES`` is a named config (``model.kim``,
``model.burgess_v2`` ...) and every mixer of ``genlab.models.composer.MIXERS`` is one too, suffixed
``_mixer`` (``model.linear_mixer``, ``model.interpolation_mixer``, ``model.mlp_mixer``; or
``model.mixer=...``). Unknown names fail at start-up. The input shape and the number of actions (the
dataset's factors) come from the data at run time and are recorded in the run's info.
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.models import describe
from genlab.models.architectures import ARCHITECTURES
from genlab.models.composer import MIXERS, build_composer

model = Ingredient("model")


@model.config
def config():
    architecture = "kim"  # genlab.models.architectures.ARCHITECTURES key (the shared encoder and decoder)
    latent_size = 10
    mixer = "linear"  # genlab.models.composer.MIXERS key; the original reported the linear mixer only
    encoder_layers = None  # an explicit layer spec overrides the architecture's encoder
    decoder_layers = None  # ... and decoder (None: the transpose of the encoder)
    input_shape = None  # None: the data's image shape, recorded in the run's info["input_shape"]


@model.config_hook
def check_names(config, command_name, logger):
    cfg = config["model"]
    if cfg["architecture"] is not None or cfg["encoder_layers"] is None:
        ARCHITECTURES.get(cfg["architecture"])  # unknown name: fails listing the valid ones
    MIXERS.get(cfg["mixer"])
    return {}


for _name in ARCHITECTURES:
    model.add_named_config(_name, {"architecture": _name})
for _name in MIXERS:
    model.add_named_config(f"{_name}_mixer", {"mixer": _name})


@model.capture
def make_composer(data_shape, n_actions, architecture, latent_size, mixer, encoder_layers, decoder_layers, input_shape):
    if input_shape is not None and tuple(input_shape) != tuple(data_shape):
        raise ValueError(f"model.input_shape={list(input_shape)} but the data's images are {list(data_shape)}")
    return build_composer(
        architecture=architecture, latent_size=latent_size, input_shape=tuple(data_shape), n_actions=n_actions,
        mixer=mixer, encoder_layers=encoder_layers, decoder_layers=decoder_layers,
    )


@model.command(unobserved=True)
def show(input_shape):
    """Print the composer and its parameter count, e.g. ``model.show with model.burgess_v2 model.mlp_mixer``
    (``model.input_shape=[3,64,64]`` for RGB data; default 1 x 64 x 64, 5 actions)."""
    print(describe(make_composer(input_shape or (1, 64, 64), 5)))
