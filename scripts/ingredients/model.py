"""The ``model`` ingredient: which architecture, captured for ``genlab.models.build_model``.

Every architecture of ``genlab.models.architectures.ARCHITECTURES`` is a named config
(``model.kim``, ``model.burgess`` ...), so an architecture added to the library is usable from the
command line without touching this file. The input shape is not config: it comes from the data at
run time and is recorded in the run's info (the original recorded the named config's shape
instead, which rebuilt dSprites models with 3 channels; disent.md 8.4).
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.models import build_model, describe
from genlab.models.architectures import ARCHITECTURES

model = Ingredient("model")


@model.config
def config():
    architecture = "kim"  # genlab.models.architectures.ARCHITECTURES key
    latent_size = 10
    encoder_layers = None  # an explicit layer spec overrides the architecture's encoder
    decoder_layers = None  # ... and decoder (None: the transpose of the encoder)
    input_shape = None  # None: the data's image shape, recorded in the run's info["input_shape"]


@model.config_hook
def check_architecture(config, command_name, logger):
    ARCHITECTURES.get(config["model"]["architecture"])  # unknown name: fails listing the valid ones
    return {}


for _name in ARCHITECTURES:
    model.add_named_config(_name, {"architecture": _name})


@model.capture
def make_model(data_shape, architecture, latent_size, encoder_layers, decoder_layers, input_shape):
    if input_shape is not None and tuple(input_shape) != tuple(data_shape):
        raise ValueError(f"model.input_shape={list(input_shape)} but the data's images are {list(data_shape)}")
    return build_model(
        architecture=architecture, latent_size=latent_size, input_shape=tuple(data_shape),
        encoder_layers=encoder_layers, decoder_layers=decoder_layers,
    )


@model.command(unobserved=True)
def show(input_shape):
    """Print the architecture and its parameter count, e.g. ``model.show with model.kim``
    (``model.input_shape=[3,64,64]`` for RGB data; default 1 x 64 x 64)."""
    print(describe(make_model(input_shape or (1, 64, 64))))
