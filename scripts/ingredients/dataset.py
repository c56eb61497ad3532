"""The ``dataset`` ingredient: which data, which generalisation split, captured for
``genlab.data.load_split_data``.

``dataset.name`` is a key of ``genlab.data.DATASETS`` (each dataset is also a named config, e.g.
``dataset.dsprites``); ``dataset.condition`` / ``dataset.variant`` name a split of
``genlab.data.splits`` (disent.md 1.4). Unknown names fail at start-up, before any data is read.
"""

from __future__ import annotations

import numpy as np
from sacred import Ingredient

from genlab.data import DATASETS, check_options, check_split, load_split_data

dataset = Ingredient("dataset")


@dataset.config
def config():
    name = "dsprites"  # genlab.data.DATASETS key
    source = "file"  # "file": the published file; "generated": rendered offline (dSprites); "standin": synthetic
    path = None  # the published file, if not at data/raw/<name>/<its file name>
    options = DATASETS.get(name).options()  # the dataset's own loader options (e.g. MPI3D's version)
    resident = "auto"  # images on the training device (True), read lazily from the file (False), or "auto"
    tiny = False  # the dataset's small sub-grid for smoke runs
    strides = None  # per-factor strides of a sub-grid (overrides tiny)
    condition = None  # generalisation condition (extrp, recomb2range, recomb2element); None: no split
    variant = None  # the condition's variant (e.g. blank_side); None: the condition's default
    val_fraction = 0.05  # training combinations held out for validation
    split_seed = 0  # seed of the validation hold-out


@dataset.config_hook
def check_names(config, command_name, logger):
    """Refuse unknown names at start-up and record the variant a condition defaults to."""
    cfg = config["dataset"]
    variant = check_split(cfg["name"], cfg["condition"], cfg["variant"])
    check_options(cfg["name"], cfg["options"])
    return {"variant": variant} if variant != cfg["variant"] else {}


for _name in DATASETS:
    dataset.add_named_config(_name, {"name": _name})
dataset.add_named_config("generated", {"source": "generated"})
dataset.add_named_config("standin", {"source": "standin"})
dataset.add_named_config("tiny", {"tiny": True})


@dataset.capture
def load_data(device, name, source, path, options, resident, tiny, strides, condition, variant, val_fraction, split_seed):
    return load_split_data(
        name, condition, variant, val_fraction, split_seed, device=device, tiny=tiny,
        source=source, path=path, strides=strides, resident=resident, **options,
    )


def record_data(run, data, device) -> None:
    """What a run needs beyond its config to be rebuilt and read: the real image shape, the factor
    names and the size of each part of the split."""
    run.info.update(
        input_shape=list(data.image_shape),
        factor_names=list(data.factor_names),
        split_sizes={k: len(v) for k, v in data.splits().items()},
        device=str(device),
    )


@dataset.command(unobserved=True)
def show(name, condition, variant):
    """Print the factor grid and, once loaded, the size of each split (``dataset.show with ...``)."""
    spec = DATASETS.get(name)
    print(f"{name}: images {list(spec.image_shape)}, {len(spec.grid):,} factor combinations. {spec.description}")
    for factor, values in zip(spec.grid.names, spec.grid.values):
        shown = np.array2string(np.asarray(values), precision=3, threshold=8, max_line_width=90)
        print(f"  {factor:<12} {len(values):>3} values  {shown}")
    data = load_data("cpu")
    print(f"split: condition={condition} variant={data.variant}")
    for split, part in data.splits().items():
        print(f"  {split:<5} {len(part):>9,} images")
