"""The ``model`` ingredient of ``experiments.decoders``: a ground-truth decoder (disent.md 2.3),
captured for ``genlab.models.gt_decoder.build_gt_decoder``.

Every decoder spec of ``DECODERS`` is a named config (``model.deep_bn`` ...); ``model.original_inputs``
feeds the raw factor values (and MPI3D's index x size) as the original did.
"""

from __future__ import annotations

from sacred import Ingredient

from genlab.data import DATASETS
from genlab.models import describe
from genlab.models.gt_decoder import DECODERS, INPUTS, build_gt_decoder, input_transform

model = Ingredient("model")

# datasets whose original target transform multiplied the class index by the factor's size (disent.md 1.3)
ORIGINAL_INPUTS_TIMES_SIZE = {"mpi3d"}


@model.config
def config():
    architecture = "deep_bn"  # genlab.models.gt_decoder.DECODERS key
    decoder_layers = None  # an explicit layer spec (n_factors -> image) overrides the architecture
    inputs = "normalised"  # "normalised": factors mapped onto [0, 1]; "original": raw values (MPI3D: index x size)
    input_shape = None  # None: the data's image shape, recorded in the run's info["input_shape"]


@model.config_hook
def check_names(config, command_name, logger):
    cfg = config["model"]
    DECODERS.get(cfg["architecture"])
    if cfg["inputs"] not in INPUTS:
        raise ValueError(f"unknown model.inputs={cfg['inputs']!r}; valid: {', '.join(INPUTS)}")
    return {}


for _name in DECODERS:
    model.add_named_config(_name, {"architecture": _name})


@model.named_config
def original_inputs():
    """Raw factor values as decoder inputs, the original's behaviour (disent.md 2.3, 8.8); the MPI3D
    inputs are then class index x factor size, as its (probably mistaken) target transform made them."""
    inputs = "original"


@model.capture
def make_decoder(dataset_name, data_shape, architecture, decoder_layers, inputs, input_shape):
    if input_shape is not None and tuple(input_shape) != tuple(data_shape):
        raise ValueError(f"model.input_shape={list(input_shape)} but the data's images are {list(data_shape)}")
    grid = DATASETS.get(dataset_name).grid
    decoder = build_gt_decoder(architecture, len(grid.names), data_shape, decoder_layers)
    offset, scale = input_transform(grid.values, inputs, multiply_by_size=dataset_name in ORIGINAL_INPUTS_TIMES_SIZE)
    return decoder.set_input_transform(offset, scale)


@model.command(unobserved=True)
def show(input_shape):
    """Print the decoder for dSprites-shaped data (``model.show with model.kim_bn``)."""
    print(describe(make_decoder("dsprites", input_shape or (1, 64, 64))))
